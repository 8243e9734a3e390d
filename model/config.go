package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/lmscore/lmscore/gguf"
)

// ParseArch maps llama.cpp's general.architecture name to an Arch.
func ParseArch(name string) (Arch, error) {
	for a, f := range families {
		if f.name == name {
			return a, nil
		}
	}
	return 0, unsupported(ErrUnsupportedArch, "unsupported architecture %q (lmscore supports %s)", name, supportedList())
}

// Validate checks that the hyperparameters describe a model the cores can
// run: positive sizes that fit the C ABI's int32, whole heads (or an
// explicit head width, which all but gpt2 may have), and the RoPE type of
// the architecture.
func (c Config) Validate() error {
	fam, ok := families[c.Arch]
	if !ok {
		return unsupported(ErrUnsupportedArch, "unsupported architecture %s (lmscore supports %s)", c.Arch, supportedList())
	}
	rope := fam.rope
	for _, f := range []struct {
		name string
		v    int
	}{{"n_vocab", c.NVocab}, {"n_embd", c.NEmbd}, {"n_layer", c.NLayer}, {"n_head", c.NHead},
		{"n_head_kv", c.NHeadKV}, {"n_ff", c.NFF}, {"n_ctx_train", c.NCtxTrain}} {
		if f.v <= 0 || f.v > math.MaxInt32 {
			return fmt.Errorf("%s is %d, want 1 to %d", f.name, f.v, math.MaxInt32)
		}
	}
	switch {
	case c.NEmbdHead < 0 || c.NEmbdHead > math.MaxInt32:
		return fmt.Errorf("head_dim is %d, want 1 to %d (or 0 for n_embd/n_head)", c.NEmbdHead, math.MaxInt32)
	case c.NEmbdHead == 0 && c.NEmbd%c.NHead != 0:
		return fmt.Errorf("n_embd %d is not a multiple of n_head %d", c.NEmbd, c.NHead)
	case c.Arch == ArchGPT2 && c.NEmbdHead != 0 && c.NEmbdHead*c.NHead != c.NEmbd:
		return fmt.Errorf("gpt2 has no head width of its own: head_dim %d × n_head %d differs from n_embd %d", c.NEmbdHead, c.NHead, c.NEmbd)
	case int64(c.NHead+2*c.NHeadKV)*int64(c.HeadDim()) > math.MaxInt32:
		return fmt.Errorf("(n_head + 2·n_head_kv) × head_dim = (%d + 2·%d) × %d exceeds %d", c.NHead, c.NHeadKV, c.HeadDim(), math.MaxInt32)
	}
	if c.NHead%c.NHeadKV != 0 {
		return fmt.Errorf("n_head %d is not a multiple of n_head_kv %d", c.NHead, c.NHeadKV)
	}
	if c.Arch == ArchGPT2 && c.NHeadKV != c.NHead {
		return fmt.Errorf("gpt2 has no grouped-query attention: n_head_kv %d differs from n_head %d", c.NHeadKV, c.NHead)
	}
	if c.RopeType != rope {
		return fmt.Errorf("%s uses RoPE type %s, not %s", c.Arch, rope, c.RopeType)
	}
	if rope != RopeNone {
		if c.HeadDim()%2 != 0 {
			return fmt.Errorf("head_dim %d is odd: RoPE rotates pairs", c.HeadDim())
		}
		if !(c.RopeFreqBase > 0) || math.IsInf(float64(c.RopeFreqBase), 0) {
			return fmt.Errorf("rope freq_base is %v, want a positive number", c.RopeFreqBase)
		}
	}
	if !(c.NormEps > 0) || math.IsInf(float64(c.NormEps), 0) {
		return fmt.Errorf("norm epsilon is %v, want a positive number", c.NormEps)
	}
	return c.validateFeatures(fam)
}

// validateFeatures checks the optional features: partial rotary, scales,
// sliding windows and experts.
func (c Config) validateFeatures(fam family) error {
	if c.NRot < 0 || c.NRot > c.HeadDim() || c.NRot%2 != 0 {
		return fmt.Errorf("rope.dimension_count is %d, want an even number up to head_dim %d", c.NRot, c.HeadDim())
	}
	if c.NRot != 0 && c.RopeType == RopeNone {
		return fmt.Errorf("rope.dimension_count is %d but %s has no RoPE", c.NRot, c.Arch)
	}
	for _, f := range []struct {
		name string
		v    float32
	}{{"rope.scaling.factor (as a frequency scale)", c.RopeFreqScale}, {"rope attention factor", c.RopeAttnFactor},
		{"attention.scale", c.AttnScale}, {"attention.logit_softcapping", c.AttnSoftcap},
		{"final_logit_softcapping", c.FinalSoftcap}, {"rope.freq_base_swa", c.RopeFreqBaseSWA},
		{"rope frequency scale of sliding layers", c.RopeFreqScaleSWA}} {
		if f.v < 0 || math.IsNaN(float64(f.v)) || math.IsInf(float64(f.v), 0) {
			return fmt.Errorf("%s is %v, want a positive number (or 0 for none)", f.name, f.v)
		}
	}
	switch {
	case c.NSWA < 0 || c.NSWA > math.MaxInt32:
		return fmt.Errorf("attention.sliding_window is %d, want 0 to %d", c.NSWA, math.MaxInt32)
	case c.SWALayers != nil && len(c.SWALayers) != c.NLayer:
		return fmt.Errorf("the sliding-window pattern has %d layers, the model %d", len(c.SWALayers), c.NLayer)
	case c.SWALayers != nil && c.NSWA == 0:
		return fmt.Errorf("a sliding-window pattern is given but attention.sliding_window is 0")
	}
	if c.NExpert == 0 {
		if c.NExpertUsed != 0 || c.NFFExp != 0 || c.NFFShexp != 0 {
			return fmt.Errorf("expert_used_count %d, expert_feed_forward_length %d and expert_shared_feed_forward_length %d need expert_count > 0",
				c.NExpertUsed, c.NFFExp, c.NFFShexp)
		}
		return nil
	}
	switch {
	case !fam.moe:
		return unsupported(ErrUnsupportedArch, "%s has no experts, but expert_count is %d", c.Arch, c.NExpert)
	case c.NExpert > 1<<16:
		return fmt.Errorf("expert_count is %d, want at most %d", c.NExpert, 1<<16)
	case c.NExpertUsed <= 0 || c.NExpertUsed > c.NExpert:
		return fmt.Errorf("expert_used_count is %d, want 1 to expert_count %d", c.NExpertUsed, c.NExpert)
	case c.NFFExp <= 0 || int64(c.NFFExp)*int64(c.NExpert) > math.MaxInt32:
		return fmt.Errorf("expert_feed_forward_length is %d, want > 0 with n_ff_exp·n_expert within int32", c.NFFExp)
	case int64(c.NEmbd)*int64(c.NExpert) > math.MaxInt32:
		return fmt.Errorf("n_embd·n_expert = %d·%d exceeds %d", c.NEmbd, c.NExpert, math.MaxInt32)
	case c.NFFShexp < 0 || c.NFFShexp > math.MaxInt32:
		return fmt.Errorf("expert_shared_feed_forward_length is %d", c.NFFShexp)
	case fam.shared && c.NFFShexp == 0:
		return fmt.Errorf("%s needs expert_shared_feed_forward_length", c.Arch)
	case !fam.shared && c.NFFShexp != 0:
		return unsupported(ErrUnsupportedArch, "%s has no shared expert, but expert_shared_feed_forward_length is %d", c.Arch, c.NFFShexp)
	}
	return nil
}

// ConfigFromGGUF reads the hyperparameters from llama.cpp's metadata keys.
// The vocabulary size comes from token_embd.weight, which every model file
// has; a tokenizer or {arch}.vocab_size that disagrees with it is an error.
// The family's options (features_gguf.go) are read with llama.cpp's
// defaults; values lmscore does not implement (YaRN, keys and values of
// different widths) are refused by key rather than silently ignored.
// attention.key_length, the head width, may differ from n_embd/n_head
// (Qwen3's does), but not for gpt2.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	var c Config
	archName, err := f.String("general.architecture")
	if err != nil {
		return c, err
	}
	if c.Arch, err = ParseArch(archName); err != nil {
		return c, fmt.Errorf("model: %s: %w", f.Name, err)
	}
	p := archName + "."
	intKey := func(key string, dst *int) {
		if err != nil {
			return
		}
		var n int64
		if n, err = f.Int(p + key); err == nil {
			if n <= 0 || n > math.MaxInt32 {
				err = fmt.Errorf("model: %s: %s%s is %d, want 1 to %d", f.Name, p, key, n, math.MaxInt32)
			}
			*dst = int(n)
		}
	}
	intKey("context_length", &c.NCtxTrain)
	intKey("embedding_length", &c.NEmbd)
	intKey("block_count", &c.NLayer)
	intKey("feed_forward_length", &c.NFF)
	intKey("attention.head_count", &c.NHead)
	if err != nil {
		return c, err
	}
	c.NHeadKV = c.NHead
	if f.Has(p + "attention.head_count_kv") {
		intKey("attention.head_count_kv", &c.NHeadKV)
		if err != nil {
			return c, err
		}
	}
	c.RopeType = families[c.Arch].rope
	epsKey := p + families[c.Arch].epsKey
	eps, err := f.Float(epsKey)
	if err != nil {
		return c, err
	}
	c.NormEps = float32(eps)
	if c.RopeType != RopeNone {
		c.RopeFreqBase = 10000 // llama.cpp's default
		if f.Has(p + "rope.freq_base") {
			base, err := f.Float(p + "rope.freq_base")
			if err != nil {
				return c, err
			}
			c.RopeFreqBase = float32(base)
		}
	}
	if f.Has(p + "attention.key_length") {
		intKey("attention.key_length", &c.NEmbdHead)
		if err != nil {
			return c, err
		}
		if c.NEmbd%c.NHead == 0 && c.NEmbdHead == c.NEmbd/c.NHead {
			c.NEmbdHead = 0 // the default, spelled out
		}
	}
	if err := readFeatures(f, &c); err != nil {
		return c, err
	}

	emb, ok := f.Tensor(NameTokEmbd)
	if !ok {
		// c holds every hyperparameter but the vocabulary size, which
		// OpenMeta-style callers take from the tokenizer instead.
		return c, &kindError{kind: ErrVocabOnly,
			msg: fmt.Sprintf("model: %s: missing tensor %q (a vocabulary-only file cannot be scored with)", f.Name, NameTokEmbd)}
	}
	if len(emb.Dims) < 2 || emb.Dims[1] <= 0 || emb.Dims[1] > math.MaxInt32 {
		return c, fmt.Errorf("model: %s: tensor %q has shape %v, want [n_embd n_vocab]", f.Name, NameTokEmbd, emb.Dims)
	}
	c.NVocab = int(emb.Dims[1])
	if f.Has(p + "vocab_size") {
		n, err := f.Int(p + "vocab_size")
		if err != nil {
			return c, err
		}
		if n != int64(c.NVocab) {
			return c, fmt.Errorf("model: %s: %svocab_size is %d but %s has %d rows", f.Name, p, n, NameTokEmbd, c.NVocab)
		}
	}
	if toks, err := f.Strings("tokenizer.ggml.tokens"); err == nil && len(toks) != c.NVocab {
		return c, fmt.Errorf("model: %s: the tokenizer has %d tokens but %s has %d rows", f.Name, len(toks), NameTokEmbd, c.NVocab)
	} else if err != nil && !errors.Is(err, gguf.ErrKeyNotFound) {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("model: %s: %w", f.Name, err)
	}
	return c, nil
}
