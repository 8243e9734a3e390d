package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoadHFTokenizerJSON reads a Hugging Face tokenizer.json with a BPE model,
// and tokenizer_config.json beside it when present (BOS, EOS, add_bos_token,
// add_eos_token). Two kinds are recognised:
//
//   - SentencePiece-style BPE (byte_fallback, spaces written "▁": Llama-2,
//     Mistral): a llama vocabulary. Such files keep merges instead of
//     scores; a token's score is minus the rank of the first merge that
//     produces it, which orders merges as the file does (converters list a
//     token's merges together, by the token's SentencePiece score).
//   - byte-level BPE (GPT-2, Llama-3, Qwen2): a gpt2 vocabulary whose
//     pre-tokenizer is named from the file's split regex; an unknown regex
//     is an error that quotes it.
//
// Added tokens become control tokens when marked special, user-defined
// otherwise.
func LoadHFTokenizerJSON(path string) (*Vocab, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := parseHFTokenizerJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	if cfg, err := os.ReadFile(cfgPath); err == nil {
		if err := applyHFConfig(v, cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", cfgPath, err)
		}
	}
	return v, nil
}

type hfTokenizerJSON struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type         string            `json:"type"`
		Vocab        map[string]int    `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		ByteFallback bool              `json:"byte_fallback"`
		IgnoreMerges bool              `json:"ignore_merges"`
	} `json:"model"`
}

// The split regexes of the byte-level pre-tokenizers lmscore implements, as
// tokenizer.json files spell them.
var hfPreRegex = map[string]string{
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "llama-bpe",
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:      "qwen2",
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`:                                          "gpt-2",
}

func parseHFTokenizerJSON(raw []byte) (*Vocab, error) {
	var j hfTokenizerJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, err
	}
	if j.Model.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer model type %q is not BPE", j.Model.Type)
	}
	all := make(map[string]int, len(j.Model.Vocab)+len(j.AddedTokens))
	for t, id := range j.Model.Vocab {
		all[t] = id
	}
	for _, a := range j.AddedTokens {
		if old, ok := all[a.Content]; ok && old != a.ID {
			return nil, fmt.Errorf("added token %q has id %d but the vocabulary gives it %d", a.Content, a.ID, old)
		}
		all[a.Content] = a.ID
	}
	tokens, err := tokensByID(all)
	if err != nil {
		return nil, err
	}
	merges := make([]string, len(j.Model.Merges))
	for i, m := range j.Model.Merges {
		// Older files write "a b", newer ones ["a", "b"].
		var s string
		if err := json.Unmarshal(m, &s); err == nil {
			merges[i] = s
			continue
		}
		var pair []string
		if err := json.Unmarshal(m, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("merge %d is neither \"a b\" nor [\"a\", \"b\"]: %s", i, m)
		}
		merges[i] = pair[0] + " " + pair[1]
	}

	spmStyle := j.Model.ByteFallback || strings.Contains(string(j.Normalizer), "\u2581") ||
		strings.Contains(string(j.Normalizer), `\u2581`) || strings.Contains(string(j.PreTokenizer), "Metaspace")
	var v *Vocab
	if spmStyle {
		v = NewVocab(ModelLlama)
		v.Tokens = tokens
		v.Scores = make([]float32, len(tokens))
		scored := make([]bool, len(tokens))
		for i, m := range merges {
			id, ok := all[strings.Replace(m, " ", "", 1)]
			if ok && !scored[id] {
				v.Scores[id], scored[id] = -float32(i), true
			}
		}
	} else {
		pre, err := hfPreName(j.PreTokenizer)
		if err != nil {
			return nil, err
		}
		v = NewVocab(ModelGPT2)
		v.Pre = pre
		v.Tokens = tokens
		v.Merges = merges
	}
	v.Types = make([]int32, len(tokens))
	for i, t := range tokens {
		switch {
		case spmStyle && isByteToken(t):
			v.Types[i] = TypeByte
		default:
			v.Types[i] = TypeNormal
		}
	}
	unk := ""
	for _, a := range j.AddedTokens {
		if a.Special {
			v.Types[a.ID] = TypeControl
		} else {
			v.Types[a.ID] = TypeUserDefined
		}
		if a.Content == "<unk>" {
			unk = a.Content
		}
	}
	if unk != "" {
		v.UNK = int32(all[unk])
		v.Types[v.UNK] = TypeUnknown
	}
	// Without tokenizer_config.json, a template that starts with a special
	// token names BOS and says it is added.
	var post struct {
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
		} `json:"single"`
	}
	if len(j.PostProcessor) > 0 && json.Unmarshal(j.PostProcessor, &post) == nil && len(post.Single) > 0 && post.Single[0].SpecialToken != nil {
		if id, ok := all[post.Single[0].SpecialToken.ID]; ok {
			v.BOS, v.AddBOS = int32(id), true
		}
	}
	return v, nil
}

// hfPreName names a byte-level pre-tokenizer from its tokenizer.json form.
func hfPreName(raw json.RawMessage) (string, error) {
	var p struct {
		Type          string `json:"type"`
		UseRegex      *bool  `json:"use_regex"`
		AddPrefix     bool   `json:"add_prefix_space"`
		Pretokenizers []struct {
			Type    string `json:"type"`
			Pattern struct {
				Regex string `json:"Regex"`
			} `json:"pattern"`
			UseRegex  *bool `json:"use_regex"`
			AddPrefix bool  `json:"add_prefix_space"`
		} `json:"pretokenizers"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("pre_tokenizer: %w", err)
	}
	switch {
	case p.Type == "ByteLevel" && !p.AddPrefix && (p.UseRegex == nil || *p.UseRegex):
		return "gpt-2", nil
	case p.Type == "Sequence" && len(p.Pretokenizers) == 2 && p.Pretokenizers[0].Type == "Split" &&
		p.Pretokenizers[1].Type == "ByteLevel" && !p.Pretokenizers[1].AddPrefix &&
		p.Pretokenizers[1].UseRegex != nil && !*p.Pretokenizers[1].UseRegex:
		re := p.Pretokenizers[0].Pattern.Regex
		if name, ok := hfPreRegex[re]; ok {
			return name, nil
		}
		return "", fmt.Errorf("pre_tokenizer splits with a regex lmscore does not implement: %q", re)
	}
	return "", fmt.Errorf("unsupported pre_tokenizer %s", raw)
}

// applyHFConfig reads BOS, EOS and whether they are added from a
// tokenizer_config.json.
func applyHFConfig(v *Vocab, raw []byte) error {
	var c struct {
		BOS    json.RawMessage `json:"bos_token"`
		EOS    json.RawMessage `json:"eos_token"`
		AddBOS *bool           `json:"add_bos_token"`
		AddEOS *bool           `json:"add_eos_token"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	byText := func(m json.RawMessage) (int32, error) {
		if len(m) == 0 || string(m) == "null" {
			return -1, nil
		}
		var s string
		if json.Unmarshal(m, &s) != nil {
			var o struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(m, &o); err != nil {
				return -1, fmt.Errorf("special token %s is neither a string nor {\"content\": ...}", m)
			}
			s = o.Content
		}
		for i, t := range v.Tokens {
			if t == s {
				return int32(i), nil
			}
		}
		return -1, fmt.Errorf("special token %q is not in the vocabulary", s)
	}
	// Absent keys keep what tokenizer.json said.
	if len(c.BOS) > 0 {
		id, err := byText(c.BOS)
		if err != nil {
			return err
		}
		v.BOS = id
	}
	if len(c.EOS) > 0 {
		id, err := byText(c.EOS)
		if err != nil {
			return err
		}
		v.EOS = id
	}
	if c.AddBOS != nil {
		v.AddBOS = *c.AddBOS
	}
	if c.AddEOS != nil {
		v.AddEOS = *c.AddEOS
	}
	return nil
}
