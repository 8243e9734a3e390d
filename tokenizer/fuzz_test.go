package tokenizer

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzTokenizers are small built-in vocabularies of every model and
// pre-tokenizer, each complete over bytes (SentencePiece byte fallback, the
// 256 byte-level tokens), so that every text has a lossless encoding.
// roundTrip says whether Decode(Encode(s)) == s must hold for valid UTF-8
// (a normalizer rewrites the text).
func fuzzTokenizers(t testing.TB) map[string]struct {
	tok       *Tokenizer
	roundTrip bool
} {
	out := map[string]struct {
		tok       *Tokenizer
		roundTrip bool
	}{}
	add := func(name string, v *Vocab, roundTrip bool) {
		tok, err := New(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = struct {
			tok       *Tokenizer
			roundTrip bool
		}{tok, roundTrip}
	}

	// SentencePiece with byte fallback and a few merges, with and without
	// the dummy space prefix. The user-defined token only goes without it:
	// the prefix space is added again after each special token (as
	// llama.cpp does), and Decode drops only the first.
	spm := func(noPrefix bool) *Vocab {
		v := NewVocab(ModelLlama)
		v.Tokens = []string{"<unk>", "<s>", "</s>"}
		v.Types = []int32{TypeUnknown, TypeControl, TypeControl}
		for b := 0; b < 256; b++ {
			v.Tokens = append(v.Tokens, fmt.Sprintf("<0x%02X>", b))
			v.Types = append(v.Types, TypeByte)
		}
		pieces := []string{"\u2581", "a", "b", "e", "t", "h", "\u2581t", "he", "\u2581the", "ab", "\u2581a", "é", "日本"}
		if noPrefix {
			pieces = append(pieces, "<tool>")
		}
		for _, p := range pieces {
			v.Tokens = append(v.Tokens, p)
			typ := int32(TypeNormal)
			if p == "<tool>" {
				typ = TypeUserDefined
			}
			v.Types = append(v.Types, typ)
		}
		v.Scores = make([]float32, len(v.Tokens))
		for i := range v.Scores {
			v.Scores[i] = -float32(i % 17)
		}
		v.UNK, v.BOS, v.EOS = 0, 1, 2
		v.AddBOS = true
		v.NoSpacePrefix, v.SpacePrefixStated = noPrefix, true
		return v
	}
	add("spm", spm(false), true)
	add("spm-no-prefix", spm(true), true)

	// Byte-level BPE: the 256 byte tokens, some merges, two specials.
	bpe := func(pre, normalizer string) *Vocab {
		v := NewVocab(ModelGPT2)
		for b := 0; b < 256; b++ {
			v.Tokens = append(v.Tokens, string(byteToRune[b]))
		}
		sp, th := string(byteToRune[' ']), "th"
		v.Merges = []string{"t h", sp + " t", sp + "t h", "th e", sp + "th e", "a b", "Ã ©", sp + " " + sp}
		v.Tokens = append(v.Tokens, th, sp+"t", sp+"th", "the", sp+"the", "ab", "Ã©", sp+sp, "<|endoftext|>", "<|im_start|>")
		v.Types = make([]int32, len(v.Tokens))
		for i := range v.Types {
			v.Types[i] = TypeNormal
		}
		v.Types[len(v.Types)-2] = TypeControl
		v.Types[len(v.Types)-1] = TypeUserDefined
		v.BOS, v.EOS = int32(len(v.Tokens)-2), int32(len(v.Tokens)-2)
		v.Pre, v.Normalizer = pre, normalizer
		return v
	}
	for _, pre := range []string{"default", "gpt-2", "llama-bpe", "qwen2"} {
		add("bpe-"+pre, bpe(pre, ""), true)
	}
	add("bpe-qwen2-nfc", bpe("qwen2", NormalizerNFC), false)
	return out
}

// FuzzTokenizers: for every built-in vocabulary, any text encodes without
// a panic to ids inside the vocabulary, the same ids every time; valid
// UTF-8 decodes back to itself; EncodePair's two halves are in the
// vocabulary too.
func FuzzTokenizers(f *testing.F) {
	for _, s := range []string{"", " ", "the", " the theab", "Hello,  world!\n\n\t", "日本語 é e\u0301", "<s>a</s>",
		"<|endoftext|> <|im_start|>x", "<tool>a<tool>", "\xff\xfe", "  \u00a0 x", "123456789 'll 've", strings.Repeat("ab", 40)} {
		f.Add(s, " ab")
	}
	toks := fuzzTokenizers(f)
	f.Fuzz(func(t *testing.T, text, cont string) {
		for name, c := range toks {
			ids := c.tok.Encode(text)
			for _, id := range ids {
				if id < 0 || int(id) >= c.tok.VocabSize() {
					t.Fatalf("%s: Encode(%q) gave id %d outside the vocabulary of %d", name, text, id, c.tok.VocabSize())
				}
			}
			if again := c.tok.Encode(text); fmt.Sprint(again) != fmt.Sprint(ids) {
				t.Fatalf("%s: Encode(%q) is not deterministic: %v then %v", name, text, ids, again)
			}
			if c.roundTrip && utf8.ValidString(text) {
				if got := string(c.tok.Decode(ids)); got != text {
					t.Fatalf("%s: Decode(Encode(%q)) = %q (ids %v)", name, text, got, ids)
				}
			}
			special := c.tok.EncodeSpecial(text, true, true)
			for _, id := range special {
				if id < 0 || int(id) >= c.tok.VocabSize() {
					t.Fatalf("%s: EncodeSpecial(%q) gave id %d outside the vocabulary", name, text, id)
				}
			}
			ctx, contIDs := EncodePair(c.tok, text, cont)
			for _, id := range append(ctx, contIDs...) {
				if id < 0 || int(id) >= c.tok.VocabSize() {
					t.Fatalf("%s: EncodePair(%q, %q) gave id %d outside the vocabulary", name, text, cont, id)
				}
			}
		}
	})
}
