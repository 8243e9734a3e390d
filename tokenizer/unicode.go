package tokenizer

import "unicode"

// Character classes of the pre-tokenizer regexes: \p{L}, \p{N} and \s.
//
// llama.cpp, the reference for GGUF vocabularies, generates its tables with
// Python's regex module: \p{L} and \p{N} are the Unicode general categories
// L* and N*, and \s is the White_Space property (U+0009-U+000D, U+0020,
// U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
// U+3000). Go's unicode tables give the same sets; they are at Unicode 15.0
// while llama.cpp's are at 15.1, whose only new letters are CJK Unified
// Ideographs Extension I, added below so that the two agree.

type charClass uint8

const (
	classOther charClass = iota // anything else: punctuation, symbols, marks, controls, unassigned
	classLetter
	classNumber
	classSpace
)

// asciiClass holds the class of each ASCII byte, the hot path.
var asciiClass = func() (t [128]charClass) {
	for c := 0; c < 128; c++ {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			t[c] = classLetter
		case '0' <= c && c <= '9':
			t[c] = classNumber
		case c == ' ', '\t' <= c && c <= '\r':
			t[c] = classSpace
		default:
			t[c] = classOther
		}
	}
	return t
}()

func classOf(r rune) charClass {
	if r < 128 {
		return asciiClass[r]
	}
	switch {
	case unicode.IsLetter(r), 0x2EBF0 <= r && r <= 0x2EE5D:
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.Is(unicode.White_Space, r):
		return classSpace
	}
	return classOther
}

// isPunctuation is \p{P} (Unicode category P*), used by the "default"
// pre-tokenizer only.
func isPunctuation(r rune) bool { return unicode.IsPunct(r) }

// asciiLower lowercases ASCII letters only. llama.cpp's case-insensitive
// contractions ('S, 'LL) compare the lowercase mapping with ASCII letters,
// and no non-ASCII code point lowercases to s, t, r, e, v, m, l or d.
func asciiLower(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + ('a' - 'A')
	}
	return r
}
