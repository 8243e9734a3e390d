package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// HFModelHints is what a model's config.json adds to the tokenizer files
// of its Hugging Face folder.
type HFModelHints struct {
	// SentencePieceFirst prefers tokenizer.model to tokenizer.json, as
	// llama.cpp's converter does for Llama.
	SentencePieceFirst bool
	// Pre names the pre-tokenizer of a byte-level BPE whose tokenizer.json
	// names none that lmscore knows, or that comes as vocab.json and
	// merges.txt, which name none: the architecture's own.
	Pre string
	// BOS, EOS and PAD are config.json's ids, -1 when absent, for the
	// special tokens that no tokenizer file names.
	BOS, EOS, PAD int
}

// LoadHFFolder reads the tokenizer of a Hugging Face model folder,
// preferring what llama.cpp's converter prefers: SentencePiece's
// tokenizer.model (when hints.SentencePieceFirst), then tokenizer.json,
// then GPT-2's vocab.json and merges.txt (with added_tokens.json), then
// tokenizer.model. Special tokens and add_bos_token/add_eos_token come
// from tokenizer_config.json, then special_tokens_map.json, then the
// hints, as llama.cpp's SpecialVocab takes them. A nil hints stands for a
// folder without config.json: tokenizer.model first and GPT-2's
// pre-tokenizer where the files name none.
//
// Unlike LoadSentencePieceModel, a SentencePiece normalizer that folds
// runs of spaces is not an error here: the result is what llama.cpp's
// converter writes.
func LoadHFFolder(dir string, hints *HFModelHints) (*Vocab, error) {
	h := HFModelHints{SentencePieceFirst: true, Pre: "gpt-2", BOS: -1, EOS: -1, PAD: -1}
	if hints != nil {
		h = *hints
		if h.Pre == "" {
			h.Pre = "gpt-2"
		}
	}
	var v *Vocab
	var err error
	spm := fileExists(dir, "tokenizer.model")
	switch {
	case spm && h.SentencePieceFirst:
		v, _, err = readSentencePiece(filepath.Join(dir, "tokenizer.model"))
	case fileExists(dir, "tokenizer.json"):
		v, err = readHFTokenizerJSON(filepath.Join(dir, "tokenizer.json"), h.Pre)
	case fileExists(dir, "vocab.json") && fileExists(dir, "merges.txt"):
		added := ""
		if fileExists(dir, "added_tokens.json") {
			added = filepath.Join(dir, "added_tokens.json")
		}
		v, err = readVocabMerges(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"), added)
		if v != nil {
			v.Pre = h.Pre
		}
	case spm:
		v, _, err = readSentencePiece(filepath.Join(dir, "tokenizer.model"))
	default:
		return nil, fmt.Errorf("%s: no tokenizer (want tokenizer.json, vocab.json and merges.txt, or tokenizer.model)", dir)
	}
	if err != nil {
		return nil, err
	}
	if err := applyHFSpecialTokens(v, dir, &h); err != nil {
		return nil, err
	}
	return v, nil
}

// applyHFSpecialTokens takes the special ids and the add-BOS/EOS flags from
// tokenizer_config.json (names resolved in the vocabulary), then
// special_tokens_map.json, then config.json's ids (hints, may be nil), as
// llama.cpp's SpecialVocab does, and marks added special tokens as control
// tokens. A name absent from the vocabulary is passed over, as there.
func applyHFSpecialTokens(v *Vocab, dir string, hints *HFModelHints) error {
	var tc struct {
		AddBOS  *bool                   `json:"add_bos_token"`
		AddEOS  *bool                   `json:"add_eos_token"`
		Decoder map[string]hfAddedToken `json:"added_tokens_decoder"`
	}
	cfgNames, err := readJSONObject(dir, "tokenizer_config.json", &tc)
	if err != nil {
		return err
	}
	mapNames, err := readJSONObject(dir, "special_tokens_map.json", nil)
	if err != nil {
		return err
	}
	for idStr, a := range tc.Decoder {
		var id int
		if _, err := fmt.Sscan(idStr, &id); err == nil && id >= 0 && id < len(v.Tokens) && a.Special && v.Tokens[id] == a.Content {
			if v.Types[id] == TypeNormal || v.Types[id] == TypeUserDefined {
				v.Types[id] = TypeControl
			}
		}
	}
	specials := []struct {
		key    string
		id     *int32
		hinted int
	}{{"bos_token", &v.BOS, -1}, {"eos_token", &v.EOS, -1}, {"unk_token", &v.UNK, -1}, {"pad_token", &v.PAD, -1}}
	if hints != nil {
		specials[0].hinted, specials[1].hinted, specials[3].hinted = hints.BOS, hints.EOS, hints.PAD
	}
	for _, s := range specials {
		found := false
		for _, names := range []map[string]json.RawMessage{cfgNames, mapNames} {
			if name, ok := hfTokenName(names[s.key]); ok {
				if id := v.tokenID(name); id >= 0 {
					*s.id, found = id, true
					break
				}
			}
		}
		if !found && s.hinted >= 0 && s.hinted < len(v.Tokens) {
			*s.id = int32(s.hinted)
		}
	}
	for _, id := range []int32{v.BOS, v.EOS} {
		if id >= 0 && v.Types[id] == TypeNormal {
			v.Types[id] = TypeControl
		}
	}
	if v.UNK >= 0 && v.Types[v.UNK] == TypeNormal {
		v.Types[v.UNK] = TypeUnknown
	}
	if tc.AddBOS != nil {
		v.AddBOS = *tc.AddBOS
	}
	if tc.AddEOS != nil {
		v.AddEOS = *tc.AddEOS
	}
	return nil
}

// readJSONObject reads dir/name, when it exists, as an object by key and,
// when into is not nil, into it too. A missing file is no error.
func readJSONObject(dir, name string, into any) (map[string]json.RawMessage, error) {
	if !fileExists(dir, name) {
		return nil, nil
	}
	path := filepath.Join(dir, name)
	var m map[string]json.RawMessage
	if err := readJSONFile(path, &m); err != nil {
		return nil, err
	}
	if into != nil {
		if err := readJSONFile(path, into); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// hfTokenName reads a special token entry: a string, or an object with
// "content" (AddedToken), or null.
func hfTokenName(raw json.RawMessage) (string, bool) {
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

func fileExists(dir, name string) bool {
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && st.Mode().IsRegular()
}
