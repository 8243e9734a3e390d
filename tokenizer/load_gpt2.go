package tokenizer

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// LoadGPT2Files reads OpenAI's GPT-2 vocabulary files: encoder.json (token
// text -> id) and vocab.bpe (a "#version" line, then one merge per line,
// highest priority first), the files Hugging Face names vocab.json and
// merges.txt. The result is a gpt2 vocabulary with the gpt-2
// pre-tokenizer; <|endoftext|> is a control token and both BOS and EOS, and
// no BOS is added (GPT-2 was trained without one).
func LoadGPT2Files(encoderJSON, vocabBPE string) (*Vocab, error) {
	v, err := readVocabMerges(encoderJSON, vocabBPE, "")
	if err != nil {
		return nil, err
	}
	v.Pre = "gpt-2"
	if id := v.tokenID("<|endoftext|>"); id >= 0 {
		v.Types[id] = TypeControl
		v.BOS, v.EOS = id, id
	}
	return v, nil
}

// readVocabMerges reads a GPT-2 vocabulary (text -> id), its merges and,
// unless addedPath is "", added tokens (text -> id) as
// user-defined tokens. The pre-tokenizer is left to the caller: the files
// do not name one.
func readVocabMerges(vocabPath, mergesPath, addedPath string) (*Vocab, error) {
	var base map[string]int
	if err := readJSONFile(vocabPath, &base); err != nil {
		return nil, err
	}
	var added []hfAddedToken
	if addedPath != "" {
		var m map[string]int
		if err := readJSONFile(addedPath, &m); err != nil {
			return nil, err
		}
		for t, id := range m {
			added = append(added, hfAddedToken{ID: id, Content: t})
		}
	}
	v := NewVocab(ModelGPT2)
	if err := v.fillByID(base, added); err != nil {
		return nil, fmt.Errorf("%s: %w", vocabPath, err)
	}
	mb, err := os.ReadFile(mergesPath)
	if err != nil {
		return nil, err
	}
	v.Merges = []string{}
	sc := bufio.NewScanner(bytes.NewReader(mb))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimRight(sc.Text(), "\r")
		if t == "" || (line == 1 && strings.HasPrefix(t, "#version")) {
			continue
		}
		l, r, ok := strings.Cut(t, " ")
		if !ok || l == "" || r == "" || strings.Contains(r, " ") {
			return nil, fmt.Errorf("%s:%d: want two tokens separated by one space, got %q", mergesPath, line, t)
		}
		v.Merges = append(v.Merges, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", mergesPath, err)
	}
	return v, nil
}
