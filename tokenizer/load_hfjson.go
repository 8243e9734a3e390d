package tokenizer

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// LoadHFTokenizerJSON reads a Hugging Face tokenizer.json with a BPE model,
// and beside it tokenizer_config.json and special_tokens_map.json when
// present (special tokens, add_bos_token, add_eos_token), as LoadHFFolder
// does. Two kinds are recognised:
//
//   - SentencePiece-style BPE (byte_fallback, or spaces written "▁":
//     Llama-2, Mistral): a llama vocabulary. Such files keep merges
//     instead of scores; a token's score is minus the rank of the first
//     merge that produces it, which orders merges as the file does
//     (converters list a token's merges together, by the token's
//     SentencePiece score).
//   - byte-level BPE (GPT-2, Llama-3, Qwen2): a gpt2 vocabulary whose
//     pre-tokenizer is named from the file's split regex; an unknown one is
//     an error that quotes it. An NFC normalizer (Qwen2, Qwen3) becomes
//     Vocab.Normalizer; other normalizers are not applied.
//
// BOS is the first special token of the post-processor's template (alone or
// in a Sequence, as Llama 3 has it), added unless tokenizer_config.json says
// otherwise. A SentencePiece-style file without a Prepend normalizer or a
// prepending Metaspace (Gemma) has no space prefix.
//
// Added tokens become control tokens when marked special, user-defined
// otherwise; ids that no token uses become unused "[PAD{id}]" tokens.
func LoadHFTokenizerJSON(path string) (*Vocab, error) {
	v, err := readHFTokenizerJSON(path, "")
	if err != nil {
		return nil, err
	}
	if err := applyHFSpecialTokens(v, filepath.Dir(path), nil); err != nil {
		return nil, err
	}
	return v, nil
}

// hfAddedToken is an entry of tokenizer.json's added_tokens (and of
// tokenizer_config.json's added_tokens_decoder, which has no id field).
type hfAddedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

type hfTokenizerJSON struct {
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        json.RawMessage `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		IgnoreMerges bool            `json:"ignore_merges"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

// readHFTokenizerJSON reads tokenizer.json alone. defaultPre names the
// pre-tokenizer of a byte-level file whose own is none that lmscore knows;
// with "" that is an error.
func readHFTokenizerJSON(path, defaultPre string) (*Vocab, error) {
	return parseFile(path, func(raw []byte) (*Vocab, error) { return parseHFTokenizerJSON(raw, defaultPre) })
}

func parseHFTokenizerJSON(raw []byte, defaultPre string) (*Vocab, error) {
	var j hfTokenizerJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, err
	}
	// Files from before tokenizers wrote the type have merges and no type.
	if j.Model.Type != "BPE" && !(j.Model.Type == "" && len(j.Model.Merges) > 0) {
		return nil, fmt.Errorf("tokenizer model type %q is not supported (BPE only)", j.Model.Type)
	}
	var vocab map[string]int
	if err := json.Unmarshal(j.Model.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("model.vocab: %w", err)
	}
	merges, err := parseHFMerges(j.Model.Merges)
	if err != nil {
		return nil, fmt.Errorf("model.merges: %w", err)
	}
	spmStyle := j.Model.ByteFallback || strings.Contains(string(j.Normalizer), spmSpace) ||
		strings.Contains(string(j.Normalizer), `\u2581`) || strings.Contains(string(j.PreTokenizer), "Metaspace")
	v := NewVocab(ModelGPT2)
	if spmStyle {
		v.Model = ModelLlama
	}
	if err := v.fillByID(vocab, j.AddedTokens); err != nil {
		return nil, err
	}
	if spmStyle {
		v.Scores = make([]float32, len(v.Tokens))
		rank := map[string]int{}
		for r, m := range merges {
			l, rgt, _ := strings.Cut(m, " ")
			if _, seen := rank[l+rgt]; !seen {
				rank[l+rgt] = r
			}
		}
		for i, t := range v.Tokens {
			if r, ok := rank[t]; ok {
				v.Scores[i] = float32(-r) // rank 0 scores 0, not -0
			}
			if v.Types[i] == TypeNormal && isByteToken(t) {
				v.Types[i] = TypeByte
			}
		}
		if j.Model.UnkToken != nil {
			if id := v.tokenID(*j.Model.UnkToken); id >= 0 {
				v.UNK, v.Types[id] = id, TypeUnknown
			}
		}
		v.AddBOS = true
		// Without a normalizer or pre-tokenizer that prepends "▁" (Gemma's
		// only replaces spaces) there is no dummy prefix, and the GGUF key
		// must say so, as llama.cpp's converter writes it for Gemma.
		if !hfPrependsSpace(j.Normalizer, j.PreTokenizer) {
			v.NoSpacePrefix, v.SpacePrefixStated = true, true
		}
	} else {
		v.Merges = merges
		if hfNormalizerNFC(j.Normalizer) {
			v.Normalizer = NormalizerNFC
		}
		v.Pre, err = hfPreName(j.PreTokenizer)
		if err == nil && v.Pre == "llama-bpe" && !j.Model.IgnoreMerges {
			// Llama 3's regex over a vocabulary merged in full: cl100k's
			// (OLMo 2), which llama.cpp's converter names dbrx.
			v.Pre = "dbrx"
		}
		if err != nil {
			if defaultPre == "" {
				return nil, err
			}
			v.Pre = defaultPre
		}
	}
	// A post-processor template that starts with a special token names BOS
	// and says it is added; the tokenizer_config.json keys, read after,
	// take precedence.
	if name, ok := hfTemplateBOS(j.PostProcessor); ok {
		if id := v.tokenID(name); id >= 0 {
			v.BOS, v.AddBOS = id, true
		}
	}
	return v, nil
}

// hfTemplateBOS is the special token a post-processor's single-sequence
// template starts with: a TemplateProcessing, alone or in a Sequence
// (Llama 3's follows a ByteLevel).
func hfTemplateBOS(raw json.RawMessage) (string, bool) {
	var post struct {
		Type       string            `json:"type"`
		Processors []json.RawMessage `json:"processors"`
		Single     []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
		} `json:"single"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &post) != nil {
		return "", false
	}
	if post.Type == "Sequence" {
		for _, p := range post.Processors {
			if name, ok := hfTemplateBOS(p); ok {
				return name, true
			}
		}
		return "", false
	}
	if len(post.Single) > 0 && post.Single[0].SpecialToken != nil {
		return post.Single[0].SpecialToken.ID, true
	}
	return "", false
}

// hfNormalizerNFC reports whether a normalizer is NFC, alone or in a
// Sequence (Qwen2, Qwen3).
func hfNormalizerNFC(raw json.RawMessage) bool {
	var n struct {
		Type        string            `json:"type"`
		Normalizers []json.RawMessage `json:"normalizers"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &n) != nil {
		return false
	}
	if n.Type == "Sequence" {
		for _, sub := range n.Normalizers {
			if hfNormalizerNFC(sub) {
				return true
			}
		}
	}
	return n.Type == "NFC"
}

// hfPrependsSpace reports whether a SentencePiece-style tokenizer.json adds
// the dummy "▁" prefix: a Prepend normalizer (Llama-2, Mistral), or a
// Metaspace pre-tokenizer that prepends (add_prefix_space, or a
// prepend_scheme other than "never"), alone or in a Sequence.
func hfPrependsSpace(normalizer, preTokenizer json.RawMessage) bool {
	type step struct {
		Type           string            `json:"type"`
		Prepend        string            `json:"prepend"`
		AddPrefixSpace *bool             `json:"add_prefix_space"`
		PrependScheme  string            `json:"prepend_scheme"`
		Normalizers    []json.RawMessage `json:"normalizers"`
		Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	}
	var walk func(raw json.RawMessage) bool
	walk = func(raw json.RawMessage) bool {
		var s step
		if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
			return false
		}
		switch s.Type {
		case "Prepend":
			return s.Prepend == spmSpace
		case "Metaspace":
			if s.PrependScheme != "" {
				return s.PrependScheme != "never"
			}
			return s.AddPrefixSpace == nil || *s.AddPrefixSpace
		case "Sequence":
			for _, sub := range append(s.Normalizers, s.Pretokenizers...) {
				if walk(sub) {
					return true
				}
			}
		}
		return false
	}
	return walk(normalizer) || walk(preTokenizer)
}

// fillByID lays out the vocabulary by id: base tokens normal, added ones
// control when special and user-defined otherwise. Ids the files do not
// use become unused "[PAD{id}]" tokens, as llama.cpp's converter makes them.
func (v *Vocab) fillByID(base map[string]int, added []hfAddedToken) error {
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
	v.Tokens = make([]string, n)
	v.Types = make([]int32, n)
	set := make([]bool, n)
	for t, id := range base {
		if id < 0 {
			return fmt.Errorf("token %q has negative id %d", t, id)
		}
		if set[id] && v.Tokens[id] != t {
			return fmt.Errorf("tokens %q and %q share id %d", v.Tokens[id], t, id)
		}
		v.Tokens[id], v.Types[id], set[id] = t, TypeNormal, true
	}
	for _, a := range added {
		if a.ID < 0 {
			return fmt.Errorf("added token %q has negative id %d", a.Content, a.ID)
		}
		if set[a.ID] && v.Tokens[a.ID] != a.Content {
			return fmt.Errorf("added token %q reuses id %d of %q", a.Content, a.ID, v.Tokens[a.ID])
		}
		v.Tokens[a.ID], set[a.ID] = a.Content, true
		v.Types[a.ID] = TypeUserDefined
		if a.Special {
			v.Types[a.ID] = TypeControl
		}
	}
	for i := range v.Tokens {
		if !set[i] {
			v.Tokens[i], v.Types[i] = padToken(i), TypeUnused
		}
	}
	return nil
}

// parseHFMerges accepts both encodings tokenizers has used: "a b" strings
// and ["a", "b"] pairs. No merges is an empty list, not nil, so that a gpt2
// vocabulary still writes its (empty) merges key.
func parseHFMerges(raw json.RawMessage) ([]string, error) {
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

// The split regexes of the byte-level pre-tokenizers lmscore implements, as
// tokenizer.json files spell them, by llama.cpp's name for each.
var hfPreRegex = map[string]string{
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "llama-bpe",
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:      "qwen2",
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`:                                          "gpt-2",
}

// hfPreName names llama.cpp's pre-tokenizer (tokenizer.ggml.pre) from a
// tokenizer.json pre_tokenizer: a ByteLevel that splits by its own regex
// is GPT-2's; in a Sequence, a Split on a known regex names its model.
// llama.cpp's converter identifies the pre-tokenizer by hashing the
// tokenization of a probe text, which needs the tokenizers library;
// matching the regex reaches the same names for these models.
func hfPreName(raw json.RawMessage) (string, error) {
	type preTokenizer struct {
		Type      string `json:"type"`
		UseRegex  *bool  `json:"use_regex"`
		AddPrefix bool   `json:"add_prefix_space"`
		Pattern   struct {
			Regex string `json:"Regex"`
		} `json:"pattern"`
		Pretokenizers []json.RawMessage `json:"pretokenizers"`
	}
	byteLevelGPT2 := func(p preTokenizer) bool {
		return p.Type == "ByteLevel" && !p.AddPrefix && (p.UseRegex == nil || *p.UseRegex)
	}
	var p preTokenizer
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("pre_tokenizer: %w", err)
	}
	if byteLevelGPT2(p) {
		return "gpt-2", nil
	}
	unknownSplit := ""
	if p.Type == "Sequence" {
		for _, raw := range p.Pretokenizers {
			var s preTokenizer
			if json.Unmarshal(raw, &s) != nil {
				continue
			}
			if s.Type == "Split" {
				if name, ok := hfPreRegex[s.Pattern.Regex]; ok {
					return name, nil
				}
				unknownSplit = s.Pattern.Regex
			}
			if byteLevelGPT2(s) {
				return "gpt-2", nil
			}
		}
	}
	if unknownSplit != "" {
		return "", fmt.Errorf("pre_tokenizer splits with a regex lmscore does not implement: %q", unknownSplit)
	}
	return "", fmt.Errorf("unsupported pre_tokenizer %s", raw)
}
