package convert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lmscore/lmscore/model"
)

// readHFTokenizer finds the folder's tokenizer, preferring what llama.cpp's
// converter prefers: SentencePiece's tokenizer.model for Llama, then
// tokenizer.json, then GPT-2's vocab.json + merges.txt.
func readHFTokenizer(dir string, hc *hfConfig, arch model.Arch) (*vocab, error) {
	var v *vocab
	var err error
	spm := fileExists(dir, "tokenizer.model")
	switch {
	case spm && (hc == nil || arch == model.ArchLlama):
		v, err = readSentencePiece(filepath.Join(dir, "tokenizer.model"))
	case fileExists(dir, "tokenizer.json"):
		v, err = readTokenizerJSON(filepath.Join(dir, "tokenizer.json"), arch)
	case fileExists(dir, "vocab.json") && fileExists(dir, "merges.txt"):
		v, err = readVocabMerges(dir, arch)
	case spm:
		v, err = readSentencePiece(filepath.Join(dir, "tokenizer.model"))
	default:
		return nil, fmt.Errorf("convert: %s: no tokenizer (want tokenizer.json, vocab.json and merges.txt, or tokenizer.model)", dir)
	}
	if err != nil {
		return nil, err
	}
	if err := applySpecialTokens(v, dir, hc); err != nil {
		return nil, err
	}
	return v, nil
}

type addedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

// readTokenizerJSON reads a Hugging Face tokenizers BPE model. With
// byte_fallback it is a SentencePiece BPE converted to tokenizers (Llama,
// Mistral): written as llama.cpp's "llama" model with scores that rank
// each merged piece by its merge (-rank), which is the order SentencePiece
// merges in. Otherwise it is a byte-level BPE (GPT-2, Qwen2, Llama 3):
// llama.cpp's "gpt2" model with its merges.
func readTokenizerJSON(path string, arch model.Arch) (*vocab, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	var tj struct {
		AddedTokens  []addedToken    `json:"added_tokens"`
		PreTokenizer json.RawMessage `json:"pre_tokenizer"`
		Model        struct {
			Type         string          `json:"type"`
			Vocab        json.RawMessage `json:"vocab"`
			Merges       json.RawMessage `json:"merges"`
			ByteFallback bool            `json:"byte_fallback"`
			UnkToken     *string         `json:"unk_token"`
		} `json:"model"`
	}
	if err := json.Unmarshal(b, &tj); err != nil {
		return nil, fmt.Errorf("convert: %s: %v", path, err)
	}
	if tj.Model.Type != "BPE" && !(tj.Model.Type == "" && len(tj.Model.Merges) > 0) {
		return nil, fmt.Errorf("convert: %s: tokenizer model type %q is not supported (BPE only)", path, tj.Model.Type)
	}
	var vocabMap map[string]int
	if err := json.Unmarshal(tj.Model.Vocab, &vocabMap); err != nil {
		return nil, fmt.Errorf("convert: %s: model.vocab: %v", path, err)
	}
	merges, err := parseMerges(tj.Model.Merges)
	if err != nil {
		return nil, fmt.Errorf("convert: %s: model.merges: %v", path, err)
	}
	kind := "gpt2"
	if tj.Model.ByteFallback {
		kind = "llama"
	}
	v := newVocab(kind)
	if err := v.fill(vocabMap, tj.AddedTokens); err != nil {
		return nil, fmt.Errorf("convert: %s: %v", path, err)
	}
	if kind == "llama" {
		v.scores = make([]float32, len(v.tokens))
		rank := map[string]int{}
		for r, m := range merges {
			l, rgt, _ := strings.Cut(m, " ")
			if _, seen := rank[l+rgt]; !seen {
				rank[l+rgt] = r
			}
		}
		for i, t := range v.tokens {
			if r, ok := rank[t]; ok {
				v.scores[i] = float32(-r) // not -0
			}
			if v.types[i] == TokenNormal && isByteToken(t) {
				v.types[i] = TokenByte
			}
		}
		if tj.Model.UnkToken != nil {
			if id := v.find(*tj.Model.UnkToken); id >= 0 {
				v.unk = id
				v.types[id] = TokenUnknown
			}
		}
	} else {
		v.merges = merges
		v.pre = detectPre(tj.PreTokenizer, arch)
	}
	return v, nil
}

// fill lays out the vocabulary by id; ids the files do not use become
// unused "[PAD{i}]" tokens, as llama.cpp's converter makes them.
func (v *vocab) fill(base map[string]int, added []addedToken) error {
	n := 0
	for _, id := range base {
		n = max(n, id+1)
	}
	for _, a := range added {
		n = max(n, a.ID+1)
	}
	if n > 2*(len(base)+len(added))+1024 {
		return fmt.Errorf("token ids up to %d for %d tokens: the vocabulary is too sparse to be real", n-1, len(base)+len(added))
	}
	v.tokens = make([]string, n)
	v.types = make([]int32, n)
	set := make([]bool, n)
	for t, id := range base {
		if id < 0 {
			return fmt.Errorf("token %q has negative id %d", t, id)
		}
		if set[id] && v.tokens[id] != t {
			return fmt.Errorf("tokens %q and %q share id %d", v.tokens[id], t, id)
		}
		v.tokens[id], v.types[id], set[id] = t, TokenNormal, true
	}
	for _, a := range added {
		if a.ID < 0 {
			return fmt.Errorf("added token %q has negative id %d", a.Content, a.ID)
		}
		if set[a.ID] && v.tokens[a.ID] != a.Content {
			return fmt.Errorf("added token %q reuses id %d of %q", a.Content, a.ID, v.tokens[a.ID])
		}
		v.tokens[a.ID], set[a.ID] = a.Content, true
		v.types[a.ID] = TokenUserDefined
		if a.Special {
			v.types[a.ID] = TokenControl
		}
	}
	for i := range v.tokens {
		if !set[i] {
			v.tokens[i], v.types[i] = fmt.Sprintf("[PAD%d]", i), TokenUnused
		}
	}
	return nil
}

// parseMerges accepts both encodings tokenizers has used: "a b" strings and
// ["a", "b"] pairs.
func parseMerges(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return []string{}, nil
	}
	var s []string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, err
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("merge %d has %d parts", i, len(p))
		}
		out[i] = p[0] + " " + p[1]
	}
	return out, nil
}

// Pre-tokenizer regexes of the byte-level BPE tokenizers llama.cpp names.
const (
	gpt2Regex  = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	qwen2Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	llama3Rx   = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// detectPre names llama.cpp's pre-tokenizer (tokenizer.ggml.pre) from the
// tokenizer.json pre_tokenizer: plain ByteLevel is GPT-2's regex; a Split
// on a known regex names its model. llama.cpp's converter identifies the
// pre-tokenizer by hashing the tokenization of a probe text, which needs the
// tokenizers library; matching the regex reaches the same names for these
// models. An unknown pre-tokenizer falls back to the architecture's own.
func detectPre(raw json.RawMessage, arch model.Arch) string {
	type preTok struct {
		Type     string `json:"type"`
		UseRegex *bool  `json:"use_regex"`
		Pattern  struct {
			Regex  string `json:"Regex"`
			String string `json:"String"`
		} `json:"pattern"`
		Pretokenizers []json.RawMessage `json:"pretokenizers"`
	}
	var p preTok
	if json.Unmarshal(raw, &p) == nil {
		regexName := func(r string) string {
			switch r {
			case gpt2Regex:
				return "gpt-2"
			case qwen2Regex:
				return "qwen2"
			case llama3Rx:
				return "llama-bpe"
			}
			return ""
		}
		if p.Type == "ByteLevel" && (p.UseRegex == nil || *p.UseRegex) {
			return "gpt-2"
		}
		if p.Type == "Sequence" {
			for _, sub := range p.Pretokenizers {
				var s preTok
				if json.Unmarshal(sub, &s) == nil && s.Type == "Split" {
					if name := regexName(s.Pattern.Regex); name != "" {
						return name
					}
				}
				if json.Unmarshal(sub, &s) == nil && s.Type == "ByteLevel" && (s.UseRegex == nil || *s.UseRegex) {
					return "gpt-2"
				}
			}
		}
	}
	switch arch {
	case model.ArchQwen2:
		return "qwen2"
	case model.ArchLlama:
		return "llama-bpe"
	}
	return "gpt-2"
}

// readVocabMerges reads GPT-2's original vocab.json and merges.txt (and
// added_tokens.json when present).
func readVocabMerges(dir string, arch model.Arch) (*vocab, error) {
	vpath := filepath.Join(dir, "vocab.json")
	b, err := os.ReadFile(vpath)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	var base map[string]int
	if err := json.Unmarshal(b, &base); err != nil {
		return nil, fmt.Errorf("convert: %s: %v", vpath, err)
	}
	var added []addedToken
	if fileExists(dir, "added_tokens.json") {
		apath := filepath.Join(dir, "added_tokens.json")
		ab, err := os.ReadFile(apath)
		if err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
		var m map[string]int
		if err := json.Unmarshal(ab, &m); err != nil {
			return nil, fmt.Errorf("convert: %s: %v", apath, err)
		}
		for t, id := range m {
			added = append(added, addedToken{ID: id, Content: t})
		}
	}
	v := newVocab("gpt2")
	if err := v.fill(base, added); err != nil {
		return nil, fmt.Errorf("convert: %s: %v", vpath, err)
	}
	mpath := filepath.Join(dir, "merges.txt")
	mb, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	v.merges = []string{}
	sc := bufio.NewScanner(bytes.NewReader(mb))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimRight(sc.Text(), "\r")
		if t == "" || (line == 1 && strings.HasPrefix(t, "#version")) {
			continue
		}
		l, r, ok := strings.Cut(t, " ")
		if !ok || l == "" || r == "" || strings.Contains(r, " ") {
			return nil, fmt.Errorf("convert: %s:%d: want two tokens separated by one space, got %q", mpath, line, t)
		}
		v.merges = append(v.merges, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("convert: %s: %v", mpath, err)
	}
	v.pre = detectPre(nil, arch)
	if arch == 0 || arch == model.ArchGPT2 {
		v.pre = "gpt-2"
	}
	return v, nil
}

// applySpecialTokens takes the special ids and the add-BOS/EOS flags from
// tokenizer_config.json (names resolved in the vocabulary), then
// special_tokens_map.json, then config.json's ids, as llama.cpp's
// SpecialVocab does, and marks added special tokens as control tokens.
func applySpecialTokens(v *vocab, dir string, hc *hfConfig) error {
	var tc struct {
		AddBOS  *bool                 `json:"add_bos_token"`
		AddEOS  *bool                 `json:"add_eos_token"`
		Decoder map[string]addedToken `json:"added_tokens_decoder"`
	}
	readNames := func(name string) (map[string]json.RawMessage, error) {
		if !fileExists(dir, name) {
			return nil, nil
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("convert: %s: %v", path, err)
		}
		if name == "tokenizer_config.json" {
			if err := json.Unmarshal(b, &tc); err != nil {
				return nil, fmt.Errorf("convert: %s: %v", path, err)
			}
		}
		return m, nil
	}
	cfgNames, err := readNames("tokenizer_config.json")
	if err != nil {
		return err
	}
	mapNames, err := readNames("special_tokens_map.json")
	if err != nil {
		return err
	}
	for idStr, a := range tc.Decoder {
		var id int
		if _, err := fmt.Sscan(idStr, &id); err == nil && id >= 0 && id < len(v.tokens) && a.Special && v.tokens[id] == a.Content {
			if v.types[id] == TokenNormal || v.types[id] == TokenUserDefined {
				v.types[id] = TokenControl
			}
		}
	}
	specials := []struct {
		key string
		id  *int
		cfg json.RawMessage
	}{{"bos_token", &v.bos, nil}, {"eos_token", &v.eos, nil}, {"unk_token", &v.unk, nil}, {"pad_token", &v.pad, nil}}
	if hc != nil {
		specials[0].cfg, specials[1].cfg, specials[3].cfg = hc.BosTokenID, hc.EosTokenID, hc.PadTokenID
	}
	for _, s := range specials {
		found := false
		for _, names := range []map[string]json.RawMessage{cfgNames, mapNames} {
			if name, ok := tokenName(names[s.key]); ok {
				if id := v.find(name); id >= 0 {
					*s.id, found = id, true
					break
				}
			}
		}
		if !found {
			if id := tokenID(s.cfg); id >= 0 && id < len(v.tokens) {
				*s.id = id
			}
		}
	}
	for _, id := range []int{v.bos, v.eos} {
		if id >= 0 && v.types[id] == TokenNormal {
			v.types[id] = TokenControl
		}
	}
	if v.unk >= 0 && v.types[v.unk] == TokenNormal {
		v.types[v.unk] = TokenUnknown
	}
	if v.addBOS == nil {
		v.addBOS = boolPtr(v.model == "llama")
	}
	if v.addEOS == nil {
		v.addEOS = boolPtr(false)
	}
	if tc.AddBOS != nil {
		v.addBOS = tc.AddBOS
	}
	if tc.AddEOS != nil {
		v.addEOS = tc.AddEOS
	}
	return nil
}

// tokenName reads a special token entry: a string, or an object with
// "content" (AddedToken), or null.
func tokenName(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, s != ""
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Content != "" {
		return obj.Content, true
	}
	return "", false
}
