// Package convert imports models into lmscore's one file format, GGUF:
// llama2.c legacy checkpoints and Hugging Face folders (config.json,
// safetensors and a tokenizer). The output follows llama.cpp's converters
// (keys, tensor names, q/k layout, tokenizer metadata) so that llama.cpp
// loads it too.
package convert

import (
	"fmt"
	"strings"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
)

// Token types, numbered as llama.cpp (and SentencePiece) number them.
const (
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)

// Options control an import.
type Options struct {
	// Type of the matrices: "auto" (or empty) keeps the source's F32, F16
	// or BF16; "f32", "f16", "bf16" or "q8_0" converts. Vectors (norms,
	// biases) are always F32, and Q8_0 falls back to F16 for rows that are
	// not whole blocks, as llama.cpp's converter does.
	Type string
	// VocabOnly writes the tokenizer (and the hyperparameters, when there
	// is a config.json) but no tensors.
	VocabOnly bool
}

// parseType reads Options.Type; auto reports "keep the source type".
func parseType(s string) (typ model.TensorType, auto bool, err error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return model.TypeF32, true, nil
	case "f32":
		return model.TypeF32, false, nil
	case "f16":
		return model.TypeF16, false, nil
	case "bf16":
		return model.TypeBF16, false, nil
	case "q8_0":
		return model.TypeQ8_0, false, nil
	}
	return 0, false, fmt.Errorf("unknown tensor type %q (want auto, f32, f16, bf16 or q8_0)", s)
}

// vocab is a tokenizer in llama.cpp's GGUF terms.
type vocab struct {
	model  string // "llama" (SentencePiece) or "gpt2" (byte-level BPE)
	pre    string // pre-tokenizer name, gpt2 model only
	tokens []string
	scores []float32 // llama model only
	types  []int32
	merges []string // gpt2 model only, "left right"

	bos, eos, unk, pad int // -1: none
	addBOS, addEOS     *bool
	addSpacePrefix     *bool
}

func newVocab(modelName string) *vocab {
	return &vocab{model: modelName, bos: -1, eos: -1, unk: -1, pad: -1}
}

// find returns the id of a token text, -1 if absent.
func (v *vocab) find(text string) int {
	for i, t := range v.tokens {
		if t == text {
			return i
		}
	}
	return -1
}

// padTo grows the vocabulary to n entries with unused "[PAD{i}]" tokens,
// as llama.cpp's converter does when a model's embedding has more rows than
// its tokenizer has tokens.
func (v *vocab) padTo(n int) error {
	if len(v.tokens) > n {
		return fmt.Errorf("the tokenizer has %d tokens but the model's vocabulary is %d", len(v.tokens), n)
	}
	for i := len(v.tokens); i < n; i++ {
		v.tokens = append(v.tokens, fmt.Sprintf("[PAD%d]", i))
		v.types = append(v.types, TokenUnused)
		if v.scores != nil {
			v.scores = append(v.scores, -1000)
		}
	}
	return nil
}

func (v *vocab) check() error {
	if len(v.tokens) == 0 {
		return fmt.Errorf("the tokenizer has no tokens")
	}
	if len(v.types) != len(v.tokens) || (v.scores != nil && len(v.scores) != len(v.tokens)) {
		return fmt.Errorf("internal: %d tokens, %d types, %d scores", len(v.tokens), len(v.types), len(v.scores))
	}
	for _, id := range []struct {
		name string
		id   int
	}{{"bos", v.bos}, {"eos", v.eos}, {"unk", v.unk}, {"pad", v.pad}} {
		if id.id >= len(v.tokens) {
			return fmt.Errorf("the %s token id %d is outside the vocabulary of %d", id.name, id.id, len(v.tokens))
		}
	}
	return nil
}

// metadata is the tokenizer as llama.cpp's tokenizer.ggml.* keys, in the
// order llama.cpp's converter writes them.
func (v *vocab) metadata() []gguf.KV {
	var kvs []gguf.KV
	set := func(key string, x any) {
		val, err := gguf.ValueOf(x)
		if err != nil {
			panic(err) // only fixed-width types are passed below
		}
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + key, Value: val})
	}
	set("model", v.model)
	if v.pre != "" {
		set("pre", v.pre)
	}
	set("tokens", v.tokens)
	if v.scores != nil {
		set("scores", v.scores)
	}
	set("token_type", v.types)
	if v.merges != nil {
		set("merges", v.merges)
	}
	for _, id := range []struct {
		key string
		id  int
	}{{"bos_token_id", v.bos}, {"eos_token_id", v.eos}, {"unknown_token_id", v.unk}, {"padding_token_id", v.pad}} {
		if id.id >= 0 {
			set(id.key, uint32(id.id))
		}
	}
	if v.addBOS != nil {
		set("add_bos_token", *v.addBOS)
	}
	if v.addEOS != nil {
		set("add_eos_token", *v.addEOS)
	}
	if v.addSpacePrefix != nil {
		set("add_space_prefix", *v.addSpacePrefix)
	}
	return kvs
}

// isByteToken reports whether a piece is a SentencePiece byte-fallback
// token such as "<0x0A>".
func isByteToken(s string) bool {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return false
	}
	for _, c := range s[3:5] {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func boolPtr(b bool) *bool { return &b }
