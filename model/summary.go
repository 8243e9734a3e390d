package model

import (
	"errors"
	"math"
	"strconv"

	"github.com/lmscore/lmscore/gguf"
)

// Summary describes a GGUF file for `lmscore inspect`. It is filled
// leniently, so that files lmscore cannot score with (a vocabulary-only
// file, an unsupported architecture or tensor type) are still described;
// Problem then says why FromGGUF would refuse the file.
type Summary struct {
	File         string   `json:"file"`
	GGUFVersion  uint32   `json:"gguf_version"`
	Architecture string   `json:"architecture"`
	Name         string   `json:"name,omitempty"`
	NLayer       int64    `json:"n_layer"`
	NEmbd        int64    `json:"n_embd"`
	NHead        int64    `json:"n_head"`
	NHeadKV      int64    `json:"n_head_kv"`
	NFF          int64    `json:"n_ff"`
	NVocab       int64    `json:"n_vocab"`
	NCtxTrain    int64    `json:"n_ctx_train"`
	RopeType     string   `json:"rope_type"`
	RopeFreqBase *float64 `json:"rope_freq_base"`
	NormEps      *float64 `json:"norm_eps"`
	OutputTied   bool     `json:"output_tied"`
	RopeScaled   bool     `json:"rope_freq_factors"` // rope_freqs.weight (Llama 3.1) or Phi-3's LongRoPE factors present

	// The family's options, as FromGGUF reads them (zero when the file's
	// hyperparameters cannot be read).
	NRot        int  `json:"n_rot,omitempty"`         // partial rotary; 0: the whole head
	NSWA        int  `json:"n_swa,omitempty"`         // sliding window
	NSWALayers  int  `json:"n_swa_layers,omitempty"`  // how many layers slide
	NExpert     int  `json:"n_expert,omitempty"`      // mixture of experts
	NExpertUsed int  `json:"n_expert_used,omitempty"` // experts per token
	Softcapped  bool `json:"softcapped,omitempty"`    // attention or final logit soft-capping

	Tokenizer TokenizerSummary `json:"tokenizer"`

	// FileType is general.file_type as llama.cpp names it (MOSTLY_Q4_K_M),
	// empty when the file has none; it only describes the file: each
	// tensor's own type is in Tensors.
	FileType    string          `json:"file_type,omitempty"`
	TensorCount int             `json:"tensor_count"`
	TensorTypes map[string]int  `json:"tensor_types"` // tensor count by type
	Tensors     []TensorSummary `json:"tensors"`
	TensorBytes int64           `json:"tensor_bytes"`
	ParamCount  int64           `json:"param_count"`
	FileBytes   int64           `json:"file_bytes"`

	Loadable bool   `json:"loadable"`
	Problem  string `json:"problem,omitempty"`
	// TensorParallel lists the splits of 2, 4 and 8 ranks the model allows
	// (--tensor-parallel; TensorParallelCheck).
	TensorParallel []int `json:"tensor_parallel,omitempty"`
}

// TensorSummary is one tensor of a Summary, in file order.
type TensorSummary struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"` // GGML's name: F32, Q4_K, IQ4_XS, ...
	Shape []int64 `json:"shape"`
	Bytes int64   `json:"bytes"`
}

// TokenizerSummary is the tokenizer part of a Summary; absent ids are null.
type TokenizerSummary struct {
	Model      string `json:"model"`
	Pre        string `json:"pre"`
	NTokens    int    `json:"n_tokens"`
	NMerges    int    `json:"n_merges"`
	HasScores  bool   `json:"has_scores"`
	BOS        *int64 `json:"bos_token_id"`
	EOS        *int64 `json:"eos_token_id"`
	UNK        *int64 `json:"unknown_token_id"`
	PAD        *int64 `json:"padding_token_id"`
	AddBOS     *bool  `json:"add_bos_token"`
	AddEOS     *bool  `json:"add_eos_token"`
	NByteTypes int    `json:"n_byte_tokens"` // tokens of type BYTE (6)
}

// Summarize describes f without requiring it to be loadable.
func Summarize(f *gguf.File) Summary {
	s := Summary{File: f.Name, GGUFVersion: f.Version, FileBytes: f.Size, TensorTypes: map[string]int{}}
	s.Architecture, _ = f.String("general.architecture")
	s.Name, _ = f.String("general.name")
	p := s.Architecture + "."
	geti := func(key string) int64 { n, _ := f.Int(p + key); return n }
	s.NLayer = geti("block_count")
	s.NEmbd = geti("embedding_length")
	s.NHead = geti("attention.head_count")
	s.NHeadKV = s.NHead
	if f.Has(p + "attention.head_count_kv") {
		s.NHeadKV = geti("attention.head_count_kv")
	}
	s.NFF = geti("feed_forward_length")
	s.NCtxTrain = geti("context_length")
	s.RopeType = "unknown"
	if a, err := ParseArch(s.Architecture); err == nil {
		s.RopeType = families[a].rope.String()
	}
	if x, ok := shortFloat(f, p+"rope.freq_base"); ok {
		s.RopeFreqBase = &x
	} else if s.RopeType == RopeNorm.String() || s.RopeType == RopeNeox.String() {
		x := 10000.0
		s.RopeFreqBase = &x
	}
	for _, key := range []string{"attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon"} {
		if x, ok := shortFloat(f, p+key); ok {
			s.NormEps = &x
			break
		}
	}

	t := &s.Tokenizer
	t.Model, _ = f.String("tokenizer.ggml.model")
	t.Pre, _ = f.String("tokenizer.ggml.pre")
	if toks, err := f.Strings("tokenizer.ggml.tokens"); err == nil {
		t.NTokens = len(toks)
	}
	if m, err := f.Strings("tokenizer.ggml.merges"); err == nil {
		t.NMerges = len(m)
	}
	t.HasScores = f.Has("tokenizer.ggml.scores")
	if types, err := f.Int32s("tokenizer.ggml.token_type"); err == nil {
		for _, ty := range types {
			if ty == 6 {
				t.NByteTypes++
			}
		}
	}
	for _, id := range []struct {
		key string
		dst **int64
	}{{"bos_token_id", &t.BOS}, {"eos_token_id", &t.EOS}, {"unknown_token_id", &t.UNK}, {"padding_token_id", &t.PAD}} {
		if n, err := f.Int("tokenizer.ggml." + id.key); err == nil {
			*id.dst = &n
		}
	}
	for _, b := range []struct {
		key string
		dst **bool
	}{{"add_bos_token", &t.AddBOS}, {"add_eos_token", &t.AddEOS}} {
		if v, err := f.Bool("tokenizer.ggml." + b.key); err == nil {
			*b.dst = &v
		}
	}

	s.TensorCount = len(f.Tensors)
	if v, err := f.Int("general.file_type"); err == nil && v >= 0 && v <= math.MaxUint32 {
		s.FileType = FileTypeName(uint32(v))
	}
	s.Tensors = make([]TensorSummary, 0, len(f.Tensors))
	for _, ti := range f.Tensors {
		s.Tensors = append(s.Tensors, TensorSummary{Name: ti.Name, Type: ti.Type.String(), Shape: ti.Dims, Bytes: ti.Size})
		s.TensorTypes[ti.Type.String()]++
		s.TensorBytes += ti.Size
		s.ParamCount += ti.NumElements()
	}
	if emb, ok := f.Tensor(NameTokEmbd); ok && len(emb.Dims) > 1 {
		s.NVocab = emb.Dims[1]
	} else if n, err := f.Int(p + "vocab_size"); err == nil {
		s.NVocab = n
	} else {
		s.NVocab = int64(t.NTokens)
	}
	_, hasOutput := f.Tensor(NameOutput)
	s.OutputTied = len(f.Tensors) > 0 && !hasOutput
	_, s.RopeScaled = f.Tensor(NameRopeFreqs)
	if _, long := f.Tensor(NameRopeFactorsLong); long {
		s.RopeScaled = true
	}
	if c, err := ConfigFromGGUF(f); err == nil || errors.Is(err, ErrVocabOnly) {
		s.NRot, s.NSWA, s.NExpert, s.NExpertUsed = c.NRot, c.NSWA, c.NExpert, c.NExpertUsed
		s.Softcapped = c.AttnSoftcap != 0 || c.FinalSoftcap != 0
		for l := 0; l < c.NLayer; l++ {
			if c.IsSliding(l) {
				s.NSWALayers++
			}
		}
	}

	// The returned Model is dropped unclosed: it would close f, which
	// belongs to the caller.
	if m, err := FromGGUF(f); err != nil {
		s.Problem = err.Error()
	} else {
		s.Loadable = true
		for _, n := range []int{2, 4, 8} {
			if TensorParallelCheck(m, n) == nil {
				s.TensorParallel = append(s.TensorParallel, n)
			}
		}
	}
	return s
}

// shortFloat reads a float key; a float32 is given as the shortest decimal
// that rounds to it (1e-05, not 9.999999747378752e-06).
func shortFloat(f *gguf.File, key string) (float64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	switch x := v.Any().(type) {
	case float32:
		r, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return r, true
	case float64:
		return x, true
	}
	return 0, false
}
