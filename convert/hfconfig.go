package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/tokenizer"
)

// hfConfig is the part of a Hugging Face config.json the importer reads.
// Pointers tell an absent key from a zero one, so that the transformers
// defaults can fill the gaps.
type hfConfig struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`

	// Llama, Qwen2 and Qwen3.
	HiddenSize            *int            `json:"hidden_size"`
	IntermediateSize      *int            `json:"intermediate_size"`
	NumHiddenLayers       *int            `json:"num_hidden_layers"`
	NumAttentionHeads     *int            `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`    // transformers 4: an hfRope or null
	RopeParameters        *hfRope         `json:"rope_parameters"` // transformers 5: rope_theta and the scaling together
	LayerTypes            []string        `json:"layer_types"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	HiddenAct             *string         `json:"hidden_act"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               *bool           `json:"mlp_bias"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`

	// OriginalMaxPositionEmbeddings outside rope_scaling is where llama.cpp's
	// converter looks for it; transformers reads the one inside.
	OriginalMaxPositionEmbeddings *float64 `json:"original_max_position_embeddings"`

	// GPT-2.
	NEmbd                      *int     `json:"n_embd"`
	NLayer                     *int     `json:"n_layer"`
	NHead                      *int     `json:"n_head"`
	NPositions                 *int     `json:"n_positions"`
	NCtx                       *int     `json:"n_ctx"`
	NInner                     *int     `json:"n_inner"`
	LayerNormEpsilon           *float64 `json:"layer_norm_epsilon"`
	ActivationFunction         *string  `json:"activation_function"`
	ScaleAttnByInverseLayerIdx *bool    `json:"scale_attn_by_inverse_layer_idx"`
	ScaleAttnWeights           *bool    `json:"scale_attn_weights"`
	ReorderAndUpcastAttn       *bool    `json:"reorder_and_upcast_attn"`

	VocabSize         *int            `json:"vocab_size"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	BosTokenID        json.RawMessage `json:"bos_token_id"`
	EosTokenID        json.RawMessage `json:"eos_token_id"`
	PadTokenID        json.RawMessage `json:"pad_token_id"`
}

// hfRope is rope_scaling (transformers 4) or rope_parameters (transformers
// 5): the RoPE type and, for "llama3", its parameters.
type hfRope struct {
	RopeType                      string   `json:"rope_type"`
	Type                          string   `json:"type"` // rope_scaling's older spelling of rope_type
	RopeTheta                     *float64 `json:"rope_theta"`
	Factor                        *float64 `json:"factor"`
	LowFreqFactor                 *float64 `json:"low_freq_factor"`
	HighFreqFactor                *float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings *float64 `json:"original_max_position_embeddings"`
}

// hfRopeTypes are the RoPE types lmscore converts, for error messages.
const hfRopeTypes = `"default" and "llama3" (Llama 3.1, 3.2, 3.3)`

// ropeScaling reads the RoPE scaling from rope_parameters, or else from
// rope_scaling: nil for plain RoPE ("default", or none given), the llama3
// parameters, or an error naming the key for any other type. Missing
// llama3 parameters are an error, as transformers' validation makes them.
func (c *hfConfig) ropeScaling(a model.Arch) (*model.Llama3Rope, error) {
	key, r := "rope_parameters", c.RopeParameters
	if r == nil {
		if t := bytes.TrimSpace(c.RopeScaling); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			return nil, nil
		}
		key, r = "rope_scaling", &hfRope{}
		if err := json.Unmarshal(c.RopeScaling, r); err != nil {
			var compact bytes.Buffer
			if json.Compact(&compact, c.RopeScaling) != nil {
				compact.Write(c.RopeScaling)
			}
			return nil, fmt.Errorf("rope_scaling %s is not an object of RoPE parameters: %v", compact.String(), err)
		}
	}
	typ, typKey := r.RopeType, key+".rope_type"
	if typ == "" && r.Type != "" {
		typ, typKey = r.Type, key+".type"
	}
	switch typ {
	case "", "default":
		return nil, nil
	case "llama3":
	default:
		return nil, fmt.Errorf("%s %q is not supported (lmscore converts %s)", typKey, typ, hfRopeTypes)
	}
	if a != model.ArchLlama {
		return nil, fmt.Errorf("%s \"llama3\" is supported for LlamaForCausalLM only (llama.cpp applies rope_freqs.weight to llama alone)", typKey)
	}
	if r.OriginalMaxPositionEmbeddings == nil {
		r.OriginalMaxPositionEmbeddings = c.OriginalMaxPositionEmbeddings
	}
	var p model.Llama3Rope
	for _, f := range []struct {
		name string
		v    *float64
		dst  *float64
	}{{"factor", r.Factor, &p.Factor}, {"low_freq_factor", r.LowFreqFactor, &p.LowFreqFactor},
		{"high_freq_factor", r.HighFreqFactor, &p.HighFreqFactor},
		{"original_max_position_embeddings", r.OriginalMaxPositionEmbeddings, &p.OriginalContext}} {
		if f.v == nil {
			return nil, fmt.Errorf("%s is llama3 but has no %q", key, f.name)
		}
		*f.dst = *f.v
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &p, nil
}

// hfArchs maps the transformers class to lmscore's architecture.
var hfArchs = map[string]model.Arch{
	"LlamaForCausalLM": model.ArchLlama,
	"Qwen2ForCausalLM": model.ArchQwen2,
	"GPT2LMHeadModel":  model.ArchGPT2,
	"Qwen3ForCausalLM": model.ArchQwen3,
}

func readHFConfig(path string) (*hfConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	var c hfConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("convert: %s: %v", path, err)
	}
	return &c, nil
}

func (c *hfConfig) arch(path string) (model.Arch, error) {
	if len(c.Architectures) != 1 {
		return 0, fmt.Errorf("convert: %s: \"architectures\" is %q, want one of LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GPT2LMHeadModel", path, c.Architectures)
	}
	a, ok := hfArchs[c.Architectures[0]]
	if !ok {
		return 0, fmt.Errorf("convert: %s: unsupported architecture %q (lmscore converts LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and GPT2LMHeadModel)", path, c.Architectures[0])
	}
	return a, nil
}

// tied reports whether the output matrix is the embedding, with the
// transformers default of each class.
func (c *hfConfig) tied(a model.Arch) bool {
	if c.TieWordEmbeddings != nil {
		return *c.TieWordEmbeddings
	}
	return a == model.ArchGPT2
}

// modelConfig turns config.json into lmscore's Config, refusing options
// the cores do not implement rather than ignoring them.
func (c *hfConfig) modelConfig(path string) (model.Config, error) {
	var cfg model.Config
	a, err := c.arch(path)
	if err != nil {
		return cfg, err
	}
	cfg.Arch = a
	fail := func(format string, args ...any) (model.Config, error) {
		return cfg, fmt.Errorf("convert: %s: %s", path, fmt.Sprintf(format, args...))
	}
	need := func(key string, p *int, dst *int) bool {
		if err != nil {
			return false
		}
		if p == nil {
			err = fmt.Errorf("convert: %s: missing %q", path, key)
			return false
		}
		*dst = *p
		return true
	}
	need("vocab_size", c.VocabSize, &cfg.NVocab)
	if a == model.ArchGPT2 {
		need("n_embd", c.NEmbd, &cfg.NEmbd)
		need("n_layer", c.NLayer, &cfg.NLayer)
		need("n_head", c.NHead, &cfg.NHead)
		cfg.NHeadKV = cfg.NHead
		switch {
		case c.NPositions != nil:
			cfg.NCtxTrain = *c.NPositions
		case c.NCtx != nil:
			cfg.NCtxTrain = *c.NCtx
		default:
			return fail("missing \"n_positions\"")
		}
		cfg.NFF = 4 * cfg.NEmbd
		if c.NInner != nil {
			cfg.NFF = *c.NInner
		}
		cfg.NormEps = 1e-5
		if c.LayerNormEpsilon != nil {
			cfg.NormEps = float32(*c.LayerNormEpsilon)
		}
		cfg.RopeType = model.RopeNone
		act := "gelu_new"
		if c.ActivationFunction != nil {
			act = *c.ActivationFunction
		}
		// lmscore's GELU is the tanh approximation GPT-2 was trained with.
		if act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu_fast" {
			return fail("activation_function %q is not supported (want gelu_new)", act)
		}
		if c.ScaleAttnByInverseLayerIdx != nil && *c.ScaleAttnByInverseLayerIdx {
			return fail("scale_attn_by_inverse_layer_idx is not supported")
		}
		if c.ReorderAndUpcastAttn != nil && *c.ReorderAndUpcastAttn {
			return fail("reorder_and_upcast_attn is not supported")
		}
		if c.ScaleAttnWeights != nil && !*c.ScaleAttnWeights {
			return fail("scale_attn_weights false is not supported")
		}
	} else {
		need("hidden_size", c.HiddenSize, &cfg.NEmbd)
		need("intermediate_size", c.IntermediateSize, &cfg.NFF)
		need("num_hidden_layers", c.NumHiddenLayers, &cfg.NLayer)
		need("num_attention_heads", c.NumAttentionHeads, &cfg.NHead)
		need("max_position_embeddings", c.MaxPositionEmbeddings, &cfg.NCtxTrain)
		if err != nil {
			return cfg, err
		}
		cfg.NHeadKV = cfg.NHead
		if c.NumKeyValueHeads != nil {
			cfg.NHeadKV = *c.NumKeyValueHeads
		}
		cfg.NormEps = 1e-6 // the LlamaConfig, Qwen2Config and Qwen3Config default
		if c.RMSNormEps != nil {
			cfg.NormEps = float32(*c.RMSNormEps)
		}
		cfg.RopeFreqBase = 10000
		if c.RopeTheta != nil {
			cfg.RopeFreqBase = float32(*c.RopeTheta)
		}
		if rp := c.RopeParameters; rp != nil && rp.RopeTheta != nil {
			cfg.RopeFreqBase = float32(*rp.RopeTheta)
		}
		if _, err := c.ropeScaling(a); err != nil {
			return fail("%v", err)
		}
		for i, lt := range c.LayerTypes {
			if lt != "full_attention" {
				return fail("layer_types[%d] is %q; lmscore supports full attention only", i, lt)
			}
		}
		cfg.RopeType = model.RopeNorm
		if a == model.ArchQwen2 || a == model.ArchQwen3 {
			cfg.RopeType = model.RopeNeox
		}
		// Qwen3 sets head_dim (128 with hidden_size 1024 and 16 heads);
		// transformers' Llama and Qwen2 take it too. Equal to
		// hidden_size/heads it is the default, spelled out.
		if c.HeadDim != nil && cfg.NHead > 0 && *c.HeadDim*cfg.NHead != cfg.NEmbd {
			cfg.NEmbdHead = *c.HeadDim
		}
		if c.HiddenAct != nil && *c.HiddenAct != "silu" {
			return fail("hidden_act %q is not supported (want silu)", *c.HiddenAct)
		}
		if a != model.ArchQwen2 && c.AttentionBias != nil && *c.AttentionBias {
			return fail("attention_bias is not supported for %s", a)
		}
		if c.MLPBias != nil && *c.MLPBias {
			return fail("mlp_bias is not supported")
		}
		if c.UseSlidingWindow != nil && *c.UseSlidingWindow {
			return fail("use_sliding_window is not supported")
		}
	}
	if err != nil {
		return cfg, err
	}
	if math.IsNaN(float64(cfg.NormEps)) {
		return fail("norm epsilon is NaN")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("convert: %s: %w", path, err)
	}
	return cfg, nil
}

// tokenizerHints is what config.json tells the tokenizer reader; nil
// without config.json. llama.cpp's converter prefers Llama's
// tokenizer.model to its tokenizer.json, and falls back to the
// architecture's pre-tokenizer where the tokenizer files name none.
func tokenizerHints(hc *hfConfig, arch model.Arch) *tokenizer.HFModelHints {
	if hc == nil {
		return nil
	}
	h := &tokenizer.HFModelHints{
		SentencePieceFirst: arch == model.ArchLlama,
		Pre:                "gpt-2",
		BOS:                tokenID(hc.BosTokenID),
		EOS:                tokenID(hc.EosTokenID),
		PAD:                tokenID(hc.PadTokenID),
	}
	switch arch {
	case model.ArchQwen2, model.ArchQwen3:
		h.Pre = "qwen2"
	case model.ArchLlama:
		h.Pre = "llama-bpe"
	}
	return h
}

// tokenID reads bos/eos/pad_token_id, which may be a number, a list (the
// first is taken) or null.
func tokenID(raw json.RawMessage) int {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return -1
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var list []int
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return list[0]
	}
	return -1
}

func fileExists(dir, name string) bool {
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && st.Mode().IsRegular()
}
