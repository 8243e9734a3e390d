package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func readPairs(t *testing.T) ([][2]string, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "pairs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]string
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var p [2]string
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatalf("testdata/pairs.jsonl:%d: %v", i+1, err)
		}
		pairs = append(pairs, p)
	}
	return pairs, sha256Hex(raw)
}

// TestEncodePairReference compares EncodePair with lm-evaluation-harness's
// own pair logic (tools/tokref/ref_pairs.py) run over reference encoders.
func TestEncodePairReference(t *testing.T) {
	for _, c := range []struct {
		fixture string
		src     *vocabSource
	}{
		{"pairs.llama2.jsonl", srcLlama2},
		{"pairs.stories260K.jsonl", srcStories},
		{"pairs.mistral.jsonl", srcMistral},
		{"pairs.gpt2.jsonl", srcGPT2},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			tok := c.src.get(t)
			pairs, sum := readPairs(t)
			h, want := readFixture[[2][]int32](t, filepath.Join("testdata", "expected", c.fixture), sum, len(pairs), "pairs")
			bad := 0
			for i, p := range pairs {
				ctx, cont := EncodePair(tok, p[0], p[1])
				if !slices.Equal(ctx, want[i][0]) || !slices.Equal(cont, want[i][1]) {
					if bad < 5 {
						t.Errorf("pair %d (%s, %s):\n got %v | %v\nwant %v | %v", i+1, clip(p[0]), clip(p[1]),
							clipIDs(ctx), clipIDs(cont), clipIDs(want[i][0]), clipIDs(want[i][1]))
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d pairs differ from %s", bad, len(pairs), h.Reference)
			}
		})
	}
}

// TestEncodePairRules checks the rules on a small hand-made vocabulary,
// where every expected id can be read off the vocabulary below.
func TestEncodePairRules(t *testing.T) {
	// A SentencePiece vocabulary: "▁a", "▁b" and "▁▁" are whole tokens.
	v := NewVocab(ModelLlama)
	v.Tokens = []string{"<unk>", "<s>", "</s>", "\u2581", "a", "b", "\u2581a", "\u2581b", "\u2581\u2581", "\n"}
	v.Scores = []float32{0, 0, 0, -1, -1, -1, -2, -2, -3, -1}
	v.Types = []int32{TypeUnknown, TypeControl, TypeControl, 1, 1, 1, 1, 1, 1, 1}
	v.UNK, v.BOS, v.EOS = 0, 1, 2
	v.AddBOS = true
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ctx, cont         string
		wantCtx, wantCont []int32
	}{
		// Plain: BOS, then the context; the continuation's own tokens.
		{"a", " b", []int32{1, 6}, []int32{7}},
		// The context's trailing space joins the continuation.
		{"a ", "b", []int32{1, 6}, []int32{7}},
		// Two trailing spaces: "▁▁" would merge with... nothing, "▁b" wins
		// for the last; the first space is its own token.
		{"a  ", "b", []int32{1, 6}, []int32{3, 7}},
		// A newline is whitespace too.
		{"a\n", "b", []int32{1, 6}, []int32{9, 5}},
		// Empty context: BOS alone, the continuation encoded by itself (with
		// the dummy-prefix space).
		{"", "a", []int32{1}, []int32{6}},
		// A context of whitespace only is an empty one; its whitespace
		// becomes the continuation's.
		{"  ", "a", []int32{1}, []int32{8, 6}},
		// An empty continuation has no tokens.
		{"a", "", []int32{1, 6}, nil},
	}
	for _, c := range cases {
		ctx, cont := EncodePair(tok, c.ctx, c.cont)
		if !slices.Equal(ctx, c.wantCtx) || !slices.Equal(cont, c.wantCont) {
			t.Errorf("EncodePair(%q, %q) = %v, %v; want %v, %v", c.ctx, c.cont, ctx, cont, c.wantCtx, c.wantCont)
		}
	}

	// Without BOS in the vocabulary, EOS is the prefix token, and a
	// non-empty context gets no prefix.
	v2 := *v
	v2.BOS, v2.AddBOS = -1, false
	tok2, err := New(&v2)
	if err != nil {
		t.Fatal(err)
	}
	if ctx, _ := EncodePair(tok2, "", "a"); !slices.Equal(ctx, []int32{2}) {
		t.Errorf("no BOS: empty context = %v, want [2] (EOS)", ctx)
	}
	if ctx, _ := EncodePair(tok2, "a", "b"); !slices.Equal(ctx, []int32{6}) {
		t.Errorf("no BOS: context = %v, want [6]", ctx)
	}
}
