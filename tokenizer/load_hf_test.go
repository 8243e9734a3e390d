package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// hfFolder writes files (name -> JSON value, or string for raw text) into
// a new folder.
func hfFolder(t *testing.T, files map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	for name, x := range files {
		b, ok := x.(string)
		if !ok {
			raw, err := json.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			b = string(raw)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const testLlama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// byteLevelJSON is a tokenizer.json of a byte-level BPE with the given
// pre_tokenizer, "<|bos|>" added at id 5 and id 4 unused.
func byteLevelJSON(pre any) map[string]any {
	return map[string]any{
		"added_tokens":  []map[string]any{{"id": 5, "content": "<|bos|>", "special": true}},
		"pre_tokenizer": pre,
		"model": map[string]any{"type": "BPE", "vocab": map[string]int{"a": 0, "b": 1, "ab": 2, "Ġ": 3},
			"merges": [][]string{{"a", "b"}}, "ignore_merges": true}, // as Llama 3's
	}
}

func llama3Pre() any {
	return map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": testLlama3Regex}},
		map[string]any{"type": "ByteLevel", "use_regex": false, "add_prefix_space": false}}}
}

func TestHFTokenizerJSONByteLevel(t *testing.T) {
	tj := byteLevelJSON(llama3Pre())
	tj["post_processor"] = map[string]any{"type": "TemplateProcessing", "single": []any{
		map[string]any{"SpecialToken": map[string]any{"id": "<|bos|>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}}}
	dir := hfFolder(t, map[string]any{"tokenizer.json": tj})
	v, err := LoadHFTokenizerJSON(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Model != ModelGPT2 || v.Pre != "llama-bpe" || !slices.Equal(v.Merges, []string{"a b"}) {
		t.Fatalf("model %q pre %q merges %q", v.Model, v.Pre, v.Merges)
	}
	// The unused id 4 is padded; the template names BOS and adds it.
	if v.Tokens[4] != "[PAD4]" || v.Types[4] != TypeUnused || v.Types[5] != TypeControl || v.BOS != 5 || !v.AddBOS {
		t.Fatalf("tokens %q types %v BOS %d add %v", v.Tokens, v.Types, v.BOS, v.AddBOS)
	}
	// tokenizer_config.json's keys win over the template.
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"add_bos_token": false, "eos_token": {"content": "<|bos|>"}}`), 0o644)
	if v, err = LoadHFTokenizerJSON(filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	if v.AddBOS || v.EOS != 5 {
		t.Fatalf("add BOS %v, EOS %d", v.AddBOS, v.EOS)
	}
}

func TestHFTokenizerJSONPreTokenizers(t *testing.T) {
	for _, c := range []struct {
		name string
		pre  any
		want string // a name, or a substring of the error
	}{
		{"byte level", map[string]any{"type": "ByteLevel", "add_prefix_space": false}, "gpt-2"},
		{"qwen2 split", map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": strings.Replace(testLlama3Regex, `\p{N}{1,3}`, `\p{N}`, 1)}},
			map[string]any{"type": "ByteLevel", "use_regex": false}}}, "qwen2"},
		{"llama3 split", llama3Pre(), "llama-bpe"},
		// The same split over a vocabulary merged in full (OLMo 2's cl100k).
		{"cl100k split", llama3Pre(), "dbrx"},
		{"prefix space", map[string]any{"type": "ByteLevel", "add_prefix_space": true}, "unsupported pre_tokenizer"},
		{"unknown split", map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\d+`}},
			map[string]any{"type": "ByteLevel", "use_regex": false}}}, `splits with a regex lmscore does not implement: "\\d+"`},
		{"none", nil, "unsupported pre_tokenizer null"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tj := byteLevelJSON(c.pre)
			if c.want == "dbrx" {
				delete(tj["model"].(map[string]any), "ignore_merges")
			}
			dir := hfFolder(t, map[string]any{"tokenizer.json": tj})
			v, err := LoadHFTokenizerJSON(filepath.Join(dir, "tokenizer.json"))
			switch {
			case err != nil && !strings.Contains(err.Error(), c.want):
				t.Fatalf("got %v, want %q", err, c.want)
			case err == nil && v.Pre != c.want:
				t.Fatalf("pre %q, want %q", v.Pre, c.want)
			}
			// A folder with a model's hints falls back to its architecture's.
			v, err = LoadHFFolder(dir, &HFModelHints{Pre: "qwen2", BOS: -1, EOS: -1, PAD: -1})
			if err != nil {
				t.Fatal(err)
			}
			want := c.want
			if strings.Contains(c.want, " ") {
				want = "qwen2"
			}
			if v.Pre != want {
				t.Errorf("folder: pre %q, want %q", v.Pre, want)
			}
		})
	}
}

func TestHFTokenizerJSONSentencePiece(t *testing.T) {
	// An old file: no model type, "a b" merges, Metaspace instead of
	// byte_fallback; the first merge that makes a token gives its score.
	dir := hfFolder(t, map[string]any{"tokenizer.json": map[string]any{
		"added_tokens":  []map[string]any{{"id": 0, "content": "<unk>", "special": true}},
		"pre_tokenizer": map[string]any{"type": "Metaspace", "replacement": "▁"},
		"model": map[string]any{"unk_token": "<unk>", "vocab": map[string]int{"<unk>": 0, "<0x41>": 1, "▁": 2, "a": 3, "▁a": 4},
			"merges": []string{"▁ a", "▁ a"}},
	}})
	v, err := LoadHFTokenizerJSON(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Model != ModelLlama || v.Merges != nil || v.UNK != 0 || !v.AddBOS || v.SpacePrefixStated {
		t.Fatalf("%+v", v)
	}
	if !slices.Equal(v.Types, []int32{TypeUnknown, TypeByte, TypeNormal, TypeNormal, TypeNormal}) || !slices.Equal(v.Scores, []float32{0, 0, 0, 0, 0}) {
		t.Fatalf("types %v scores %v", v.Types, v.Scores)
	}
}

func TestHFTokenizerJSONErrors(t *testing.T) {
	bpe := func(vocab map[string]int, merges any, added ...map[string]any) map[string]any {
		return map[string]any{"added_tokens": added, "pre_tokenizer": map[string]any{"type": "ByteLevel"},
			"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": merges}}
	}
	for _, c := range []struct {
		name  string
		files map[string]any
		want  string
	}{
		{"not json", map[string]any{"tokenizer.json": "{"}, "tokenizer.json: unexpected end of JSON input"},
		{"unigram", map[string]any{"tokenizer.json": map[string]any{"model": map[string]any{"type": "Unigram"}}}, `tokenizer model type "Unigram" is not supported (BPE only)`},
		{"vocab a list", map[string]any{"tokenizer.json": map[string]any{"model": map[string]any{"type": "BPE", "vocab": []int{1}}}}, "model.vocab: "},
		{"merge of three", map[string]any{"tokenizer.json": bpe(map[string]int{"a": 0}, [][]string{{"a", "b", "c"}})}, "model.merges: merge 0 has 3 parts"},
		{"negative id", map[string]any{"tokenizer.json": bpe(map[string]int{"a": -1}, []string{})}, `token "a" has negative id -1`},
		{"shared id", map[string]any{"tokenizer.json": bpe(map[string]int{"a": 0}, []string{}, map[string]any{"id": 0, "content": "b"})}, `added token "b" reuses id 0 of "a"`},
		{"sparse", map[string]any{"tokenizer.json": bpe(map[string]int{"a": 5000}, []string{})}, "token ids up to 5000 for 1 tokens: the vocabulary is too sparse"},
		{"bad config", map[string]any{"tokenizer.json": bpe(map[string]int{"a": 0}, []string{}), "tokenizer_config.json": "[1]"}, "tokenizer_config.json: json: cannot unmarshal array"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := hfFolder(t, c.files)
			_, err := LoadHFTokenizerJSON(filepath.Join(dir, "tokenizer.json"))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("got %v\nwant %q, naming the file", err, c.want)
			}
		})
	}
}

func TestHFFolder(t *testing.T) {
	gpt2 := map[string]any{
		"vocab.json":        map[string]int{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3},
		"merges.txt":        "#version: 0.2\na b\r\n\n",
		"added_tokens.json": map[string]int{"<|pad|>": 4},
		"special_tokens_map.json": map[string]any{"eos_token": "<|endoftext|>", "bos_token": map[string]any{"content": "<|endoftext|>"},
			"pad_token": "<|not there|>"},
	}
	v, err := LoadHFFolder(hfFolder(t, gpt2), &HFModelHints{Pre: "qwen2", BOS: 0, EOS: 0, PAD: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Names beat config.json's ids; a name not in the vocabulary falls back
	// to them.
	if v.Pre != "qwen2" || !slices.Equal(v.Merges, []string{"a b"}) || v.BOS != 3 || v.EOS != 3 || v.PAD != 4 || v.AddBOS ||
		!slices.Equal(v.Types, []int32{TypeNormal, TypeNormal, TypeNormal, TypeControl, TypeUserDefined}) {
		t.Fatalf("%+v", v)
	}
	// LoadGPT2Files reads the same two files, with GPT-2's own specials.
	dir := hfFolder(t, gpt2)
	g, err := LoadGPT2Files(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Pre != "gpt-2" || len(g.Tokens) != 4 || g.BOS != 3 || g.EOS != 3 || g.Types[3] != TypeControl || g.AddBOS {
		t.Fatalf("%+v", g)
	}

	// tokenizer.model comes first for Llama and without config.json,
	// tokenizer.json first otherwise.
	both := map[string]any{"tokenizer.model": string(tinySentencePiece(nil, nil)), "tokenizer.json": byteLevelJSON(llama3Pre())}
	for _, c := range []struct {
		hints *HFModelHints
		want  string
	}{{nil, ModelLlama}, {&HFModelHints{SentencePieceFirst: true}, ModelLlama}, {&HFModelHints{BOS: -1, EOS: -1, PAD: -1}, ModelGPT2}} {
		v, err := LoadHFFolder(hfFolder(t, both), c.hints)
		if err != nil || v.Model != c.want {
			t.Errorf("hints %+v: %v, %v; want %s", c.hints, v, err, c.want)
		}
	}

	for _, c := range []struct {
		name  string
		files map[string]any
		want  string
	}{
		{"empty", nil, "no tokenizer (want tokenizer.json, vocab.json and merges.txt, or tokenizer.model)"},
		{"merges alone", map[string]any{"merges.txt": "a b\n"}, "no tokenizer"},
		{"bad merge", map[string]any{"vocab.json": map[string]int{"a": 0}, "merges.txt": "#version: 0.2\na b\nab\n"}, `merges.txt:3: want two tokens separated by one space, got "ab"`},
		{"bad added tokens", map[string]any{"vocab.json": map[string]int{"a": 0}, "merges.txt": "", "added_tokens.json": "[]"}, "added_tokens.json: json: cannot unmarshal array"},
		{"bad special tokens map", map[string]any{"tokenizer.json": byteLevelJSON(nil), "special_tokens_map.json": "{"}, "special_tokens_map.json: unexpected end of JSON input"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := hfFolder(t, c.files)
			_, err := LoadHFFolder(dir, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("got %v\nwant %q, naming the folder", err, c.want)
			}
		})
	}
}

// GGUFMetadata and VocabFromGGUF are inverses on what the readers make.
func TestGGUFMetadataRoundTrip(t *testing.T) {
	folders := map[string]map[string]any{
		"sentencepiece": {"tokenizer.model": string(tinySentencePiece(nil, spProto(nil).varint(spNormDummyPrefix, 0).varint(spNormExtraSpaces, 0)))},
		"byte level":    {"tokenizer.json": byteLevelJSON(llama3Pre()), "tokenizer_config.json": map[string]any{"add_eos_token": true, "eos_token": "<|bos|>"}},
	}
	for name, files := range folders {
		t.Run(name, func(t *testing.T) {
			v, err := LoadHFFolder(hfFolder(t, files), nil)
			if err != nil {
				t.Fatal(err)
			}
			f := writeVocabGGUF(t, v, nil)
			got, err := VocabFromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("read back\n%+v\nwrote\n%+v", got, v)
			}
		})
	}
	bad := NewVocab(ModelLlama)
	bad.Tokens, bad.BOS = []string{"a"}, 1
	if _, err := bad.GGUFMetadata(); err == nil || !strings.Contains(err.Error(), "BOS id 1 out of range for 1 tokens") {
		t.Errorf("got %v", err)
	}
}

// TestHFTokenizerJSONFamilyRules checks, on small files, the three rules the
// real Llama 3.1, Qwen3 and Gemma 3 files need (TestFamilyReferenceIDs
// checks the real ones): a TemplateProcessing inside a Sequence post-processor
// names BOS; an NFC normalizer is kept, also through GGUF; a
// SentencePiece-style file whose normalizer only replaces spaces has no
// space prefix, and GGUF says so.
func TestHFTokenizerJSONFamilyRules(t *testing.T) {
	tj := byteLevelJSON(llama3Pre())
	tj["normalizer"] = map[string]any{"type": "NFC"}
	tj["post_processor"] = map[string]any{"type": "Sequence", "processors": []any{
		map[string]any{"type": "ByteLevel", "add_prefix_space": true},
		map[string]any{"type": "TemplateProcessing", "single": []any{
			map[string]any{"SpecialToken": map[string]any{"id": "<|bos|>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}}}}}
	v, err := LoadHFTokenizerJSON(filepath.Join(hfFolder(t, map[string]any{"tokenizer.json": tj}), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v.BOS != 5 || !v.AddBOS || v.Normalizer != NormalizerNFC {
		t.Fatalf("BOS %d add %v normalizer %q", v.BOS, v.AddBOS, v.Normalizer)
	}
	g, err := VocabFromGGUF(writeVocabGGUF(t, v, nil))
	if err != nil || g.Normalizer != NormalizerNFC {
		t.Fatalf("from GGUF: normalizer %q, %v", g.Normalizer, err)
	}
	v.Normalizer = "nfkc"
	if _, err := New(v); err == nil || !strings.Contains(err.Error(), "nfkc") {
		t.Fatalf("an unknown normalizer: %v", err)
	}

	spm := func(normalizer any) *Vocab {
		t.Helper()
		dir := hfFolder(t, map[string]any{"tokenizer.json": map[string]any{
			"normalizer":   normalizer,
			"added_tokens": []map[string]any{{"id": 4, "content": "<s>", "special": true}},
			"post_processor": map[string]any{"type": "TemplateProcessing", "single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}}},
			"model": map[string]any{"type": "BPE", "byte_fallback": true, "vocab": map[string]int{"<unk>": 0, "▁": 1, "a": 2, "▁a": 3},
				"merges": []string{"▁ a"}},
		}})
		v, err := LoadHFTokenizerJSON(filepath.Join(dir, "tokenizer.json"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	replace := map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"}
	gemma := spm(replace)
	if !gemma.NoSpacePrefix || !gemma.SpacePrefixStated {
		t.Fatalf("Gemma-like: no prefix %v stated %v", gemma.NoSpacePrefix, gemma.SpacePrefixStated)
	}
	for _, v := range []*Vocab{gemma, must(VocabFromGGUF(writeVocabGGUF(t, gemma, nil)))} {
		if tok := must(New(v)); !slices.Equal(tok.Encode("a a"), []int32{2, 3}) {
			t.Fatalf("Gemma-like a a: %v", tok.Encode("a a"))
		}
	}
	mistral := spm(map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "Prepend", "prepend": "▁"}, replace}})
	if mistral.NoSpacePrefix || mistral.SpacePrefixStated {
		t.Fatalf("Mistral-like: no prefix %v stated %v", mistral.NoSpacePrefix, mistral.SpacePrefixStated)
	}
	if tok := must(New(mistral)); !slices.Equal(tok.Encode("a a"), []int32{3, 3}) {
		t.Fatalf("Mistral-like a a: %v", tok.Encode("a a"))
	}
}

func must[T any](x T, err error) T {
	if err != nil {
		panic(err)
	}
	return x
}
