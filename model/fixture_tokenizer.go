package model

import (
	"fmt"

	"github.com/lmscore/lmscore/gguf"
)

// FixtureTokenizer returns tokenizer.ggml.* metadata for a synthetic
// vocabulary of n tokens (n >= 259), so that a GGUF of random weights also
// loads in llama.cpp: a SentencePiece-style ("llama") vocabulary of <unk>,
// <s>, </s>, the 256 byte-fallback tokens <0x00>..<0xFF>, then pieces
// "▁p259", "▁p260", ... with descending scores. It tokenizes nothing
// usefully; it exists for fixtures that are scored by token id.
func FixtureTokenizer(n int) ([]gguf.KV, error) {
	if n < 259 {
		return nil, fmt.Errorf("model: a fixture tokenizer needs at least 259 tokens (3 control + 256 bytes), not %d", n)
	}
	tokens := make([]string, n)
	scores := make([]float32, n)
	types := make([]int32, n)
	tokens[0], tokens[1], tokens[2] = "<unk>", "<s>", "</s>"
	types[0], types[1], types[2] = 2, 3, 3 // UNKNOWN, CONTROL, CONTROL
	for b := 0; b < 256; b++ {
		tokens[3+b], types[3+b] = fmt.Sprintf("<0x%02X>", b), 6 // BYTE
	}
	for i := 259; i < n; i++ {
		tokens[i], scores[i], types[i] = fmt.Sprintf("▁p%d", i), float32(259-i), 1
	}
	var kvs []gguf.KV
	for _, kv := range []struct {
		key string
		v   any
	}{
		{"tokenizer.ggml.model", "llama"}, {"tokenizer.ggml.tokens", tokens}, {"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types}, {"tokenizer.ggml.bos_token_id", uint32(1)},
		{"tokenizer.ggml.eos_token_id", uint32(2)}, {"tokenizer.ggml.unknown_token_id", uint32(0)},
		{"tokenizer.ggml.add_bos_token", true}, {"tokenizer.ggml.add_eos_token", false},
	} {
		v, err := gguf.ValueOf(kv.v)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, gguf.KV{Key: kv.key, Value: v})
	}
	return kvs, nil
}
