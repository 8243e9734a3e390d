package tokenizer

import "fmt"

// Token types, numbered as llama.cpp numbers them (llama_token_type), which
// is what tokenizer.ggml.token_type holds in a GGUF file.
const (
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3 // BOS, EOS, ...: text only when special tokens are parsed
	TypeUserDefined int32 = 4 // added tokens: always matched in text, before the model runs
	TypeUnused      int32 = 5
	TypeByte        int32 = 6 // SentencePiece byte fallback, "<0x41>"
)

// Model names, the values of tokenizer.ggml.model that lmscore supports.
const (
	ModelLlama = "llama" // SentencePiece BPE with scores (Llama-2, Mistral, TinyLlama, stories260K)
	ModelGPT2  = "gpt2"  // byte-level BPE with merge ranks (GPT-2, Llama-3, Qwen2)
)

// Vocab mirrors the tokenizer metadata of a GGUF file (the tokenizer.ggml.*
// keys). It is plain data: build one by hand, with FromGGUF, or with one of
// the Load* functions, then pass it to New.
type Vocab struct {
	Model string // tokenizer.ggml.model: ModelLlama or ModelGPT2
	// Pre is tokenizer.ggml.pre, the pre-tokenizer of a gpt2 vocabulary:
	// "default" (or empty), "gpt-2", "llama-bpe" or "qwen2". Unused by llama.
	Pre    string
	Tokens []string  // by id; gpt2 tokens are in GPT-2's byte-to-unicode form ("Ġthe")
	Scores []float32 // by id; llama merges the highest score first. May be nil.
	Types  []int32   // by id, Type* values. Nil means every token is TypeNormal.
	Merges []string  // gpt2 only: "left right", highest priority first

	// Special token ids, -1 when absent.
	BOS, EOS, UNK, PAD int32

	AddBOS bool // tokenizer.ggml.add_bos_token: prepend BOS to a sequence
	AddEOS bool // tokenizer.ggml.add_eos_token: append EOS to a sequence

	// NoSpacePrefix mirrors tokenizer.ggml.add_space_prefix = false. A llama
	// vocabulary otherwise prepends one space to the text (SentencePiece's
	// add_dummy_prefix), so that a first word is tokenized as a mid-text one.
	NoSpacePrefix bool
}

// NewVocab returns an empty vocabulary of the given model with no special
// tokens (all ids -1), ready to be filled in.
func NewVocab(model string) *Vocab {
	return &Vocab{Model: model, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
}

// tokenType returns the type of token id, TypeNormal when Types is nil.
func (v *Vocab) tokenType(id int) int32 {
	if v.Types == nil {
		return TypeNormal
	}
	return v.Types[id]
}

// check reports the first structural problem of v: a bad model name, array
// lengths that disagree, an out-of-range special id.
func (v *Vocab) check() error {
	switch v.Model {
	case ModelLlama, ModelGPT2:
	case "":
		return fmt.Errorf("tokenizer: vocabulary has no model name (tokenizer.ggml.model)")
	default:
		return fmt.Errorf("tokenizer: unsupported tokenizer model %q (tokenizer.ggml.model); supported: %q, %q", v.Model, ModelLlama, ModelGPT2)
	}
	n := len(v.Tokens)
	if n == 0 {
		return fmt.Errorf("tokenizer: vocabulary has no tokens (tokenizer.ggml.tokens)")
	}
	if n > 1<<30 {
		return fmt.Errorf("tokenizer: vocabulary of %d tokens is too large", n)
	}
	if v.Scores != nil && len(v.Scores) < n {
		return fmt.Errorf("tokenizer: %d scores for %d tokens (tokenizer.ggml.scores)", len(v.Scores), n)
	}
	if v.Types != nil {
		if len(v.Types) < n {
			return fmt.Errorf("tokenizer: %d token types for %d tokens (tokenizer.ggml.token_type)", len(v.Types), n)
		}
		for i := 0; i < n; i++ {
			if t := v.Types[i]; t < 0 || t > TypeByte {
				return fmt.Errorf("tokenizer: token %d (%q) has unknown type %d (tokenizer.ggml.token_type)", i, v.Tokens[i], t)
			}
		}
	}
	for _, s := range []struct {
		name, key string
		id        int32
	}{
		{"BOS", "bos_token_id", v.BOS},
		{"EOS", "eos_token_id", v.EOS},
		{"UNK", "unknown_token_id", v.UNK},
		{"PAD", "padding_token_id", v.PAD},
	} {
		if s.id < -1 || int(s.id) >= n {
			return fmt.Errorf("tokenizer: %s id %d out of range for %d tokens (tokenizer.ggml.%s)", s.name, s.id, n, s.key)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return fmt.Errorf("tokenizer: add_bos_token is true but the vocabulary has no BOS token")
	}
	if v.AddEOS && v.EOS < 0 {
		return fmt.Errorf("tokenizer: add_eos_token is true but the vocabulary has no EOS token")
	}
	if v.Model == ModelLlama && len(v.Merges) > 0 {
		return fmt.Errorf("tokenizer: a %q vocabulary merges by score; it has %d merges, which only %q uses", ModelLlama, len(v.Merges), ModelGPT2)
	}
	if v.Model == ModelGPT2 && len(v.Merges) == 0 {
		return fmt.Errorf("tokenizer: a %q vocabulary needs merges (tokenizer.ggml.merges)", ModelGPT2)
	}
	return nil
}
