package tokenizer

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/gguf"
)

// writeVocabGGUF writes v's GGUFMetadata, with extra's keys set over it
// (or deleted, when nil), into an in-memory GGUF file and parses it back.
func writeVocabGGUF(t *testing.T, v *Vocab, extra map[string]any) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	w.Set("general.architecture", "llama")
	kvs, err := v.GGUFMetadata()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		w.Set(kv.Key, kv.Value)
	}
	for k, x := range extra {
		if x == nil {
			w.Delete(k)
		} else {
			w.Set(k, x)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.ParseBytes(buf.Bytes(), "test.gguf")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFromGGUFRoundTrip writes each reference vocabulary as GGUF metadata,
// reads it back with FromGGUF and checks that nothing is lost: the same
// special tokens and flags, and the same ids on the whole corpus.
func TestFromGGUFRoundTrip(t *testing.T) {
	strs, _ := readCorpus(t, "testdata", "strings.jsonl")
	for _, src := range []*vocabSource{srcStories, srcLlama2, srcGPT2, srcLlamaBPE, srcMistral} {
		t.Run(src.name, func(t *testing.T) {
			want := src.get(t)
			v, skip, err := src.load()
			if skip != "" || err != nil {
				t.Fatalf("reload: %s %v", skip, err)
			}
			got, err := FromGGUF(writeVocabGGUF(t, v, nil))
			if err != nil {
				t.Fatal(err)
			}
			if got.BOS() != want.BOS() || got.EOS() != want.EOS() || got.AddBOS() != want.AddBOS() ||
				got.AddEOS() != want.AddEOS() || got.VocabSize() != want.VocabSize() || got.Model() != want.Model() {
				t.Fatalf("FromGGUF: bos %d eos %d add %v/%v size %d %s; want bos %d eos %d add %v/%v size %d %s",
					got.BOS(), got.EOS(), got.AddBOS(), got.AddEOS(), got.VocabSize(), got.Model(),
					want.BOS(), want.EOS(), want.AddBOS(), want.AddEOS(), want.VocabSize(), want.Model())
			}
			for i, s := range strs {
				if a, b := got.Encode(s), want.Encode(s); !slices.Equal(a, b) {
					t.Fatalf("line %d %s: from GGUF %v, from the vocabulary %v", i+1, clip(s), clipIDs(a), clipIDs(b))
				}
			}
		})
	}
}

// TestFromGGUFReferenceFiles reads the GGUF files that Python's gguf
// package wrote for the llama.cpp reference (tools/tokref/gen.sh) and checks
// the ids llama.cpp gave for them.
func TestFromGGUFReferenceFiles(t *testing.T) {
	dir := filepath.Join("..", ".cache", "tokref")
	for _, name := range []string{"gpt2-gpt-2", "gpt2-llama-bpe", "gpt2-qwen2", "gpt2-default", "stories260K", "llama2"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".gguf")
			if fileMissing(path) {
				t.Skipf("%s is absent; run tools/tokref/gen.sh to write it", path)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tok, err := FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, corpus := range []string{"strings.jsonl", "strings_edge.jsonl"} {
				strs, sum := readCorpus(t, "testdata", corpus)
				fixture := name + ".llama.cpp.jsonl"
				if corpus != "strings.jsonl" {
					fixture = name + ".llama.cpp.edge.jsonl"
				}
				_, want := readExpected(t, filepath.Join("testdata", "expected", fixture), sum, len(strs))
				for i, s := range strs {
					if got := tok.Encode(s); !slices.Equal(got, want[i]) {
						t.Fatalf("%s line %d %s:\n got %v\nwant %v", corpus, i+1, clip(s), clipIDs(got), clipIDs(want[i]))
					}
				}
			}
		})
	}
}

// tinySPM is a small SentencePiece vocabulary that needs no external data.
func tinySPM() *Vocab {
	v := NewVocab(ModelLlama)
	v.Tokens = []string{"<unk>", "<s>", "</s>", "\u2581", "a", "b", "\u2581a", "ab", "\u2581ab", "<0x0A>"}
	v.Scores = []float32{0, 0, 0, -1, -1, -1, -2, -3, -4, 0}
	v.Types = []int32{TypeUnknown, TypeControl, TypeControl, 1, 1, 1, 1, 1, 1, TypeByte}
	v.UNK, v.BOS, v.EOS = 0, 1, 2
	v.AddBOS = true
	return v
}

func TestFromGGUFDefaults(t *testing.T) {
	v := tinySPM()
	// Without the special-token keys, a llama vocabulary gets llama.cpp's
	// defaults: BOS 1, EOS 2, UNK 0, BOS added, a space prefix.
	f := writeVocabGGUF(t, v, map[string]any{KeyBOS: nil, KeyEOS: nil, KeyUNK: nil, KeyAddBOS: nil, KeyAddEOS: nil})
	got, err := VocabFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.BOS != 1 || got.EOS != 2 || got.UNK != 0 || got.PAD != -1 || !got.AddBOS || got.AddEOS || got.NoSpacePrefix {
		t.Errorf("llama defaults: %+v", got)
	}
	// add_space_prefix = false turns the dummy prefix off.
	f = writeVocabGGUF(t, v, map[string]any{KeyAddSpacePrefix: false})
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if ids := tok.Encode("ab"); !slices.Equal(ids, []int32{7}) {
		t.Errorf("no space prefix: Encode(\"ab\") = %v, want [7] (\"ab\", not \"▁ab\")", ids)
	}
	// With it (the default), "ab" is "▁ab".
	tok, err = FromGGUF(writeVocabGGUF(t, v, nil))
	if err != nil {
		t.Fatal(err)
	}
	if ids := tok.Encode("ab"); !slices.Equal(ids, []int32{8}) {
		t.Errorf("space prefix: Encode(\"ab\") = %v, want [8]", ids)
	}
}

func TestFromGGUFErrors(t *testing.T) {
	gpt := NewVocab(ModelGPT2)
	gpt.Tokens = []string{"a", "b", "ab"}
	gpt.Merges = []string{"a b"}
	gpt.Pre = "gpt-2"
	for _, c := range []struct {
		name  string
		v     *Vocab
		extra map[string]any
		want  string // a substring of the error
	}{
		{"no tokenizer", tinySPM(), map[string]any{KeyModel: nil}, "tokenizer.ggml.model"},
		{"unknown model", tinySPM(), map[string]any{KeyModel: "bert"}, `"bert"`},
		{"unknown pre-tokenizer", gpt, map[string]any{KeyPre: "falcon"}, `"falcon"`},
		{"no merges", gpt, map[string]any{KeyMerges: nil}, "merges"},
		{"bad merge", gpt, map[string]any{KeyMerges: []string{"ab"}}, `merge 0 "ab"`},
		{"scores of the wrong type", tinySPM(), map[string]any{KeyScores: "high"}, KeyScores},
		{"BOS out of range", tinySPM(), map[string]any{KeyBOS: uint32(99)}, KeyBOS},
		{"too few scores", tinySPM(), map[string]any{KeyScores: []float32{1}}, "1 scores for 10 tokens"},
		{"duplicate token", tinySPM(), map[string]any{KeyTokens: []string{"<unk>", "<s>", "</s>", "a", "a", "b", "c", "d", "e", "f"}}, `duplicate token "a"`},
		{"bad token type", tinySPM(), map[string]any{KeyTokenType: []int32{2, 3, 3, 1, 1, 1, 1, 1, 1, 9}}, "unknown type 9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromGGUF(writeVocabGGUF(t, c.v, c.extra))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %s", err, c.want)
			}
		})
	}
}
