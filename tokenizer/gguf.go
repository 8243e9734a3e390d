package tokenizer

import (
	"errors"
	"fmt"

	"github.com/lmscore/lmscore/gguf"
)

// GGUF metadata keys of the tokenizer, as llama.cpp names them.
const (
	KeyModel          = "tokenizer.ggml.model"
	KeyPre            = "tokenizer.ggml.pre"
	KeyTokens         = "tokenizer.ggml.tokens"
	KeyScores         = "tokenizer.ggml.scores"
	KeyTokenType      = "tokenizer.ggml.token_type"
	KeyMerges         = "tokenizer.ggml.merges"
	KeyBOS            = "tokenizer.ggml.bos_token_id"
	KeyEOS            = "tokenizer.ggml.eos_token_id"
	KeyUNK            = "tokenizer.ggml.unknown_token_id"
	KeyPAD            = "tokenizer.ggml.padding_token_id"
	KeyAddBOS         = "tokenizer.ggml.add_bos_token"
	KeyAddEOS         = "tokenizer.ggml.add_eos_token"
	KeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"

	// KeyNormalizer is lmscore's own (Vocab.Normalizer), written only when
	// there is a normalizer.
	KeyNormalizer = "tokenizer.lmscore.normalizer"
)

// FromGGUF builds the tokenizer a GGUF file describes.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	v, err := VocabFromGGUF(f)
	if err != nil {
		return nil, err
	}
	tok, err := New(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	return tok, nil
}

// VocabFromGGUF reads the tokenizer.ggml.* keys of f. Absent keys take
// llama.cpp's defaults: a llama vocabulary has BOS 1, EOS 2 and UNK 0, adds
// BOS and a space prefix; a gpt2 vocabulary adds BOS only with the
// llama-bpe pre-tokenizer. One deviation: llama.cpp gives a gpt2 vocabulary
// without BOS/EOS keys the id 11 for both (Falcon's newline); here they
// stay absent (-1).
func VocabFromGGUF(f *gguf.File) (*Vocab, error) {
	fail := func(key string, err error) error {
		if errors.Is(err, gguf.ErrKeyNotFound) {
			return fmt.Errorf("tokenizer: %s: no %s: the file has no tokenizer", f.Name, key)
		}
		return fmt.Errorf("tokenizer: %w", err)
	}
	model, err := f.String(KeyModel)
	if err != nil {
		return nil, fail(KeyModel, err)
	}
	v := NewVocab(model)
	if f.Has(KeyPre) {
		if v.Pre, err = f.String(KeyPre); err != nil {
			return nil, fail(KeyPre, err)
		}
	}
	if v.Tokens, err = f.Strings(KeyTokens); err != nil {
		return nil, fail(KeyTokens, err)
	}
	if f.Has(KeyScores) {
		// llama.cpp also accepts integer scores.
		if v.Scores, err = f.Float32s(KeyScores); err != nil {
			ints, ierr := f.Int32s(KeyScores)
			if ierr != nil {
				return nil, fail(KeyScores, err)
			}
			v.Scores = make([]float32, len(ints))
			for i, s := range ints {
				v.Scores[i] = float32(s)
			}
		}
	}
	if f.Has(KeyTokenType) {
		if v.Types, err = f.Int32s(KeyTokenType); err != nil {
			return nil, fail(KeyTokenType, err)
		}
	}
	if f.Has(KeyMerges) {
		if v.Merges, err = f.Strings(KeyMerges); err != nil {
			return nil, fail(KeyMerges, err)
		}
	}

	if model == ModelLlama {
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS = true
	}
	if model == ModelGPT2 {
		if kind, err := preKindOf(v.Pre); err == nil && kind == preLlama3 {
			v.AddBOS = true
		}
	}
	for _, s := range []struct {
		key string
		id  *int32
	}{{KeyBOS, &v.BOS}, {KeyEOS, &v.EOS}, {KeyUNK, &v.UNK}, {KeyPAD, &v.PAD}} {
		if !f.Has(s.key) {
			// A default outside a small vocabulary is dropped, as llama.cpp does.
			if int(*s.id) >= len(v.Tokens) {
				*s.id = -1
			}
			continue
		}
		id, err := f.Int(s.key)
		if err != nil {
			return nil, fail(s.key, err)
		}
		if id < 0 || id >= int64(len(v.Tokens)) {
			return nil, fmt.Errorf("tokenizer: %s: %s is %d, outside the %d tokens", f.Name, s.key, id, len(v.Tokens))
		}
		*s.id = int32(id)
	}
	for _, s := range []struct {
		key string
		b   *bool
	}{{KeyAddBOS, &v.AddBOS}, {KeyAddEOS, &v.AddEOS}} {
		if f.Has(s.key) {
			if *s.b, err = f.Bool(s.key); err != nil {
				return nil, fail(s.key, err)
			}
		}
	}
	if f.Has(KeyAddSpacePrefix) && model == ModelLlama {
		add, err := f.Bool(KeyAddSpacePrefix)
		if err != nil {
			return nil, fail(KeyAddSpacePrefix, err)
		}
		v.NoSpacePrefix, v.SpacePrefixStated = !add, true
	}
	if f.Has(KeyNormalizer) {
		if v.Normalizer, err = f.String(KeyNormalizer); err != nil {
			return nil, fail(KeyNormalizer, err)
		}
	}
	return v, nil
}

// GGUFMetadata is v as tokenizer.ggml.* keys, in the order llama.cpp's
// converter writes them, which VocabFromGGUF reads back. Absent parts (no
// pre-tokenizer, scores, types or merges; ids of -1; an unstated space
// prefix) write no key. add_bos_token and add_eos_token are always written,
// so that a reader's defaults cannot change what v says.
func (v *Vocab) GGUFMetadata() ([]gguf.KV, error) {
	if err := v.checkShape(); err != nil {
		return nil, err
	}
	var kvs []gguf.KV
	var err error
	set := func(key string, x any) {
		val, verr := gguf.ValueOf(x)
		if verr != nil && err == nil {
			err = fmt.Errorf("tokenizer: %s: %w", key, verr)
		}
		kvs = append(kvs, gguf.KV{Key: key, Value: val})
	}
	set(KeyModel, v.Model)
	if v.Pre != "" {
		set(KeyPre, v.Pre)
	}
	set(KeyTokens, v.Tokens)
	if v.Scores != nil {
		set(KeyScores, v.Scores[:len(v.Tokens)])
	}
	if v.Types != nil {
		set(KeyTokenType, v.Types[:len(v.Tokens)])
	}
	if v.Merges != nil {
		set(KeyMerges, v.Merges)
	}
	for _, s := range []struct {
		key string
		id  int32
	}{{KeyBOS, v.BOS}, {KeyEOS, v.EOS}, {KeyUNK, v.UNK}, {KeyPAD, v.PAD}} {
		if s.id >= 0 {
			set(s.key, uint32(s.id))
		}
	}
	set(KeyAddBOS, v.AddBOS)
	set(KeyAddEOS, v.AddEOS)
	if v.SpacePrefixStated {
		set(KeyAddSpacePrefix, !v.NoSpacePrefix)
	}
	if v.Normalizer != "" {
		set(KeyNormalizer, v.Normalizer)
	}
	if err != nil {
		return nil, err
	}
	return kvs, nil
}
