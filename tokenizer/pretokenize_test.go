package tokenizer

import (
	"slices"
	"testing"
)

func pieces(kind preKind, text string) []string {
	var rt runeText
	rt.load(text)
	s := splitter{t: &rt}
	s.split(kind, len(rt.r))
	var out []string
	lo := 0
	for _, hi := range s.ends {
		out = append(out, text[rt.off[lo]:rt.off[hi]])
		lo = hi
	}
	return out
}

// TestPreTokenizers spells out, on small inputs, what each regex does; the
// reference tests check the same splitters on the whole corpus.
func TestPreTokenizers(t *testing.T) {
	for _, c := range []struct {
		kind preKind
		text string
		want []string
	}{
		// gpt-2
		{preGPT2, "Hello world", []string{"Hello", " world"}},
		{preGPT2, "Hello  world", []string{"Hello", " ", " world"}},                 // \s+(?!\S) leaves the last space to the word
		{preGPT2, "I'm 42!", []string{"I", "'m", " 42", "!"}},                       // contractions, ' ?\p{N}+'
		{preGPT2, "'S", []string{"'", "S"}},                                         // case-sensitive contractions
		{preGPT2, "x   ", []string{"x", "   "}},                                     // trailing spaces stay together
		{preGPT2, "a\n\nb", []string{"a", "\n", "\n", "b"}},                         // newlines are plain \s
		{preGPT2, "  \tx", []string{"  ", "\t", "x"}},                               // only a space joins the next word
		{preGPT2, "3.14", []string{"3", ".", "14"}},                                 // ' ?[^\s\p{L}\p{N}]+'
		{preGPT2, "caf\u00e9 \u4e2d\u6587", []string{"caf\u00e9", " \u4e2d\u6587"}}, // \p{L} is Unicode
		// llama-bpe
		{preLlama3, "Hello world", []string{"Hello", " world"}},
		{preLlama3, "I'M 12345", []string{"I", "'M", " ", "123", "45"}}, // case-insensitive, \p{N}{1,3}
		{preLlama3, "$hello", []string{"$hello"}},                       // [^\r\n\p{L}\p{N}]?\p{L}+
		{preLlama3, "a.\n\nb", []string{"a", ".\n\n", "b"}},             // punctuation takes its newlines
		{preLlama3, "a \n \n b", []string{"a", " \n \n", " b"}},         // \s*[\r\n]+ ends at the last newline
		{preLlama3, "x  ", []string{"x", "  "}},
		// qwen2: single digits
		{preQwen2, "I'M 12345", []string{"I", "'M", " ", "1", "2", "3", "4", "5"}},
		// llama.cpp's default: punctuation runs, then gpt-2, then digit runs, then triples
		{preDefault, "a+b=12345", []string{"a", "+", "b", "=", "123", "45"}},
		{preDefault, "hello, world", []string{"hello", ",", " world"}},
		{preDefault, "x `y`", []string{"x", " `", "y", "`"}}, // the backtick is not in the punctuation class
		{preDefault, "abc123", []string{"abc", "123"}},
	} {
		if got := pieces(c.kind, c.text); !slices.Equal(got, c.want) {
			t.Errorf("pre %d, %q: %q, want %q", c.kind, c.text, got, c.want)
		}
	}
}
