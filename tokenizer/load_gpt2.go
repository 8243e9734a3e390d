package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// LoadGPT2Files reads OpenAI's GPT-2 vocabulary files: encoder.json (token
// text -> id) and vocab.bpe (a "#version" line, then one merge per line,
// highest priority first). The result is a gpt2 vocabulary with the gpt-2
// pre-tokenizer; <|endoftext|> is a control token and both BOS and EOS, and
// no BOS is added (GPT-2 was trained without one).
func LoadGPT2Files(encoderJSON, vocabBPE string) (*Vocab, error) {
	raw, err := os.ReadFile(encoderJSON)
	if err != nil {
		return nil, err
	}
	var enc map[string]int
	if err := json.Unmarshal(raw, &enc); err != nil {
		return nil, fmt.Errorf("%s: %w", encoderJSON, err)
	}
	tokens, err := tokensByID(enc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", encoderJSON, err)
	}
	bpe, err := os.ReadFile(vocabBPE)
	if err != nil {
		return nil, err
	}
	v := NewVocab(ModelGPT2)
	v.Pre = "gpt-2"
	v.Tokens = tokens
	v.Types = make([]int32, len(tokens))
	for i, t := range tokens {
		v.Types[i] = TypeNormal
		if t == "<|endoftext|>" {
			v.Types[i] = TypeControl
			v.BOS, v.EOS = int32(i), int32(i)
		}
	}
	for i, line := range strings.Split(string(bpe), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || (i == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		v.Merges = append(v.Merges, line)
	}
	return v, nil
}

// tokensByID inverts a text -> id map whose ids must be exactly 0..n-1.
func tokensByID(m map[string]int) ([]string, error) {
	tokens := make([]string, len(m))
	filled := make([]bool, len(m))
	for t, id := range m {
		if id < 0 || id >= len(m) {
			return nil, fmt.Errorf("token %q has id %d, outside 0..%d", t, id, len(m)-1)
		}
		if filled[id] {
			return nil, fmt.Errorf("id %d is given to two tokens, %q and %q", id, tokens[id], t)
		}
		tokens[id], filled[id] = t, true
	}
	return tokens, nil
}
