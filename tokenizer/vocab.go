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
// the Load* functions, then pass it to New or write it with GGUFMetadata.
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
	// SpacePrefixStated says that the source states add_space_prefix (a
	// SentencePiece normalizer, llama2.c's export, the GGUF key), so that
	// GGUFMetadata writes the key. A tokenizer.json does not state it, and
	// the key is then left to the reader's default, as llama.cpp's
	// converter leaves it.
	SpacePrefixStated bool

	// Normalizer is applied to text between special tokens before the
	// pre-tokenizer: "" for none, NormalizerNFC (Qwen2 and Qwen3's
	// tokenizer.json). GGUF files hold it in KeyNormalizer, a key of
	// lmscore's own: llama.cpp applies no normalizer, and a file without the
	// key tokenizes as it does.
	Normalizer string
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

// tokenID returns the id of a token text, -1 if absent.
func (v *Vocab) tokenID(text string) int32 {
	for i, t := range v.Tokens {
		if t == text {
			return int32(i)
		}
	}
	return -1
}

// padToken is the text of an id no token file fills, as llama.cpp's
// converter names it.
func padToken(id int) string { return fmt.Sprintf("[PAD%d]", id) }

// PadTo grows the vocabulary to n entries with unused "[PAD{i}]" tokens,
// as llama.cpp's converter does when a model's embedding has more rows than
// its tokenizer has tokens.
func (v *Vocab) PadTo(n int) error {
	if len(v.Tokens) > n {
		return fmt.Errorf("the tokenizer has %d tokens but the model's vocabulary is %d", len(v.Tokens), n)
	}
	if v.Types == nil && n > len(v.Tokens) {
		v.Types = make([]int32, len(v.Tokens), n)
		for i := range v.Types {
			v.Types[i] = TypeNormal
		}
	}
	for i := len(v.Tokens); i < n; i++ {
		v.Tokens = append(v.Tokens, padToken(i))
		v.Types = append(v.Types, TypeUnused)
		if v.Scores != nil {
			v.Scores = append(v.Scores, -1000)
		}
	}
	return nil
}

// isByteToken reports whether text is a byte-fallback piece, "<0x41>".
func isByteToken(text string) bool {
	if len(text) != 6 || text[:3] != "<0x" || text[5] != '>' {
		return false
	}
	hex := func(c byte) bool { return ('0' <= c && c <= '9') || ('A' <= c && c <= 'F') }
	return hex(text[3]) && hex(text[4])
}

// checkShape reports what no GGUF file may hold: no tokens, arrays shorter
// than Tokens, a special id outside the vocabulary.
func (v *Vocab) checkShape() error {
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
	if v.Types != nil && len(v.Types) < n {
		return fmt.Errorf("tokenizer: %d token types for %d tokens (tokenizer.ggml.token_type)", len(v.Types), n)
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
	return nil
}

// check reports the first problem that keeps New from using v: a bad model
// name, checkShape's, an unknown token type, BOS or EOS added but absent,
// merges where the model has none or none where it needs them.
func (v *Vocab) check() error {
	switch v.Model {
	case ModelLlama, ModelGPT2:
	case "":
		return fmt.Errorf("tokenizer: vocabulary has no model name (tokenizer.ggml.model)")
	default:
		return fmt.Errorf("tokenizer: unsupported tokenizer model %q (tokenizer.ggml.model); supported: %q, %q", v.Model, ModelLlama, ModelGPT2)
	}
	if err := v.checkShape(); err != nil {
		return err
	}
	if v.Types != nil {
		for i, t := range v.Types[:len(v.Tokens)] {
			if t < 0 || t > TypeByte {
				return fmt.Errorf("tokenizer: token %d (%q) has unknown type %d (tokenizer.ggml.token_type)", i, v.Tokens[i], t)
			}
		}
	}
	if v.Normalizer != "" && v.Normalizer != NormalizerNFC {
		return fmt.Errorf("tokenizer: unsupported normalizer %q (%s); supported: %q", v.Normalizer, KeyNormalizer, NormalizerNFC)
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
