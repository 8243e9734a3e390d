package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// allSources are the reference vocabularies; tests skip those absent.
var allSources = []*vocabSource{srcStories, srcLlama2, srcMistral, srcGPT2, srcLlamaBPE, srcQwen2, srcDefault}

// TestDecodeRoundTrip checks Decode(Encode(s)) == s on the corpus for every
// vocabulary: byte-level BPE and byte fallback lose nothing, and Decode
// drops the dummy-prefix space Encode added. With BOS added the same holds.
func TestDecodeRoundTrip(t *testing.T) {
	strs, _ := readCorpus(t, "testdata", "strings.jsonl")
	for _, src := range allSources {
		t.Run(src.name, func(t *testing.T) {
			tok := src.get(t)
			for i, s := range strs {
				if got := string(tok.Decode(tok.Encode(s))); got != s {
					t.Fatalf("line %d: Decode(Encode(%s)) = %s", i+1, clip(s), clip(got))
				}
				if got := string(tok.Decode(tok.EncodeSpecial(s, true, false))); got != s {
					t.Fatalf("line %d: Decode(EncodeSpecial(%s, true, false)) = %s", i+1, clip(s), clip(got))
				}
			}
		})
	}
}

// TestTokenBytes checks what single tokens stand for.
func TestTokenBytes(t *testing.T) {
	t.Run("llama", func(t *testing.T) {
		tok := srcLlama2.get(t)
		v, _, _ := srcLlama2.load()
		id := func(text string) int32 { return int32(slices.Index(v.Tokens, text)) }
		for text, want := range map[string]string{"\u2581the": " the", "<0x0A>": "\n", "<s>": "<s>", "er": "er"} {
			if got := string(tok.TokenBytes(id(text))); got != want {
				t.Errorf("TokenBytes(%q) = %q, want %q", text, got, want)
			}
		}
		// Control tokens render as nothing in Decode.
		if got := string(tok.Decode([]int32{tok.BOS(), id("\u2581the"), tok.EOS()})); got != "the" {
			t.Errorf("Decode(BOS ▁the EOS) = %q, want \"the\"", got)
		}
	})
	t.Run("gpt2", func(t *testing.T) {
		tok := srcGPT2.get(t)
		v, _, _ := srcGPT2.load()
		id := func(text string) int32 { return int32(slices.Index(v.Tokens, text)) }
		for text, want := range map[string]string{"\u0120the": " the", "\u010a": "\n", "<|endoftext|>": "<|endoftext|>", "\u00c3\u00a9": "\u00e9"} {
			if got := string(tok.TokenBytes(id(text))); got != want {
				t.Errorf("TokenBytes(%q) = %q, want %q", text, got, want)
			}
		}
		if tok.TokenBytes(-1) != nil || tok.TokenBytes(int32(tok.VocabSize())) != nil {
			t.Error("TokenBytes of an id outside the vocabulary is not nil")
		}
		if got := string(tok.Decode([]int32{-5, id("\u0120the"), 1 << 30})); got != " the" {
			t.Errorf("Decode with out-of-range ids = %q, want \" the\"", got)
		}
	})
}

// TestConcurrentEncode encodes the corpus from several goroutines through
// one Tokenizer (sharing its word cache) and compares with a serial run.
// Run with -race to check the locking.
func TestConcurrentEncode(t *testing.T) {
	strs, _ := readCorpus(t, "testdata", "strings.jsonl")
	for _, src := range []*vocabSource{srcGPT2, srcLlama2} {
		t.Run(src.name, func(t *testing.T) {
			tok := src.get(t)
			want := make([][]int32, len(strs))
			for i, s := range strs {
				want[i] = tok.Encode(s)
			}
			var wg sync.WaitGroup
			errs := make(chan string, 8)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for k := range strs {
						i := (k*7 + g*13) % len(strs) // each goroutine its own order
						if got := tok.Encode(strs[i]); !slices.Equal(got, want[i]) {
							errs <- clip(strs[i])
							return
						}
					}
				}(g)
			}
			wg.Wait()
			close(errs)
			for s := range errs {
				t.Errorf("concurrent Encode(%s) differs from the serial one", s)
			}
		})
	}
}

// TestSpecialTokens checks llama.cpp's rules: user-defined tokens are
// matched in any text, control tokens only when special tokens are parsed,
// and the dummy space comes back after each special token.
func TestSpecialTokens(t *testing.T) {
	v := tinySPM()
	v.Tokens = append(v.Tokens, "<|user|>")
	v.Scores = append(v.Scores, 0)
	v.Types = append(v.Types, TypeUserDefined)
	user := int32(len(v.Tokens) - 1)
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		text       string
		add, parse bool
		want       []int32
		what       string
	}{
		{"a<|user|>ab", false, false, []int32{6, user, 8}, "user-defined token always matched; the text after it gets the space prefix"},
		{"a<s>a", false, false, []int32{6, 0, 4}, "control text is plain text: one unknown run"},
		{"a<s>a", false, true, []int32{6, 1, 6}, "parsed control token, then a prefixed run"},
		{"a", true, false, []int32{1, 6}, "BOS added"},
		{"", true, false, []int32{1}, "empty text with BOS"},
		{"", false, false, nil, "empty text"},
		{"<s>", false, true, []int32{1}, "a special token alone"},
	}
	for _, c := range cases {
		if got := tok.EncodeSpecial(c.text, c.add, c.parse); !slices.Equal(got, c.want) {
			t.Errorf("EncodeSpecial(%q, %v, %v) = %v, want %v (%s)", c.text, c.add, c.parse, got, c.want, c.what)
		}
	}
}

// TestUnknownCharacters checks a vocabulary without byte fallback against
// SentencePiece (tools/tokref/ref_sentencepiece.py unk): a run of characters
// it cannot encode is one unknown token.
func TestUnknownCharacters(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "expected", "spm-unknown.sentencepiece.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Reference string
		Pieces    []string
		Scores    []float32
		Types     []int32
		Cases     []struct {
			Text string
			IDs  []int32
		}
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	v := NewVocab(ModelLlama)
	v.Tokens, v.Scores, v.Types = ref.Pieces, ref.Scores, ref.Types
	v.UNK, v.BOS, v.EOS = 0, 1, 2
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q) = %v, %s gives %v", c.Text, got, ref.Reference, c.IDs)
		}
	}
}

// TestInvalidUTF8 checks that malformed text tokenizes as llama.cpp does:
// byte-level BPE reads each bad byte as U+FFFD, SentencePiece passes it to
// byte fallback.
func TestInvalidUTF8(t *testing.T) {
	t.Run("gpt2", func(t *testing.T) {
		tok := srcGPT2.get(t)
		if got, want := tok.Encode("a\xff\xfeb"), tok.Encode("a\uFFFD\uFFFDb"); !slices.Equal(got, want) {
			t.Errorf("Encode(a\\xff\\xfeb) = %v, want that of a\\uFFFD\\uFFFDb %v", got, want)
		}
	})
	t.Run("llama", func(t *testing.T) {
		tok := srcLlama2.get(t)
		got := tok.Encode("\xff")
		if !bytes.Equal(tok.Decode(got), []byte("\xff")) {
			t.Errorf("Encode(\\xff) = %v, which decodes to %q", got, tok.Decode(got))
		}
	})
}

func TestNewErrors(t *testing.T) {
	gpt := func(pre string) *Vocab {
		v := NewVocab(ModelGPT2)
		v.Tokens, v.Merges, v.Pre = []string{"a", "b", "ab"}, []string{"a b"}, pre
		return v
	}
	for _, c := range []struct {
		name string
		v    *Vocab
		want string
	}{
		{"nil", nil, "nil vocabulary"},
		{"no model", &Vocab{Tokens: []string{"a"}, BOS: -1, EOS: -1, UNK: -1, PAD: -1}, "no model name"},
		{"unknown model", func() *Vocab { v := tinySPM(); v.Model = "t5"; return v }(), `"t5"`},
		{"unknown pre-tokenizer", gpt("tekken"), `unsupported pre-tokenizer "tekken"`},
		{"no tokens", NewVocab(ModelLlama), "no tokens"},
		{"add_bos without BOS", func() *Vocab { v := tinySPM(); v.BOS = -1; return v }(), "no BOS"},
		{"merges in a llama vocabulary", func() *Vocab { v := tinySPM(); v.Merges = []string{"a b"}; return v }(), "merges by score"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.v)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v, want an error mentioning %s", err, c.want)
			}
		})
	}
	for _, pre := range []string{"", "default", "gpt-2", "llama-bpe", "llama3", "qwen2"} {
		if _, err := New(gpt(pre)); err != nil {
			t.Errorf("pre-tokenizer %q: %v", pre, err)
		}
	}
	// An empty token is renamed as llama.cpp does, without touching the caller's Vocab.
	v := tinySPM()
	v.Tokens[4] = ""
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	if v.Tokens[4] != "" || string(tok.TokenBytes(4)) != "[EMPTY_4]" {
		t.Errorf("empty token: caller's %q, tokenizer's %q", v.Tokens[4], tok.TokenBytes(4))
	}
}
