package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// Pre-tokenizers of byte-level BPE vocabularies: they cut text into pieces
// ("words") that BPE then encodes independently. Each is a hand-written
// equivalent of a regex with lookahead, which Go's regexp lacks, and follows
// llama.cpp's own splitters (unicode.cpp) wherever those differ from a
// textbook regex engine, because llama.cpp is the reference for GGUF files.
//
//	gpt-2:     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//	llama-bpe: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	qwen2:     the same as llama-bpe with \p{N} (one digit per piece)
//	dbrx:      llama-bpe's regex without its ignore_merges (cl100k-based
//	           vocabularies such as OLMo 2's, as llama.cpp names them)
//	default:   llama.cpp's fallback for a missing or "default" name: four
//	           regexes applied in turn, each splitting the pieces of the last:
//	           [\p{P}\$\+<=>\^~\|]+, then gpt-2's, then \p{N}+, then [0-9][0-9][0-9]

// preKind selects a pre-tokenizer.
type preKind uint8

const (
	preDefault preKind = iota
	preGPT2
	preLlama3
	preQwen2
	preDBRX // llama3's split; BPE merges every piece (no ignore_merges)
)

// preKindOf maps tokenizer.ggml.pre to a pre-tokenizer. llama.cpp treats a
// missing name as "default"; the llama-bpe aliases are llama.cpp's too.
func preKindOf(name string) (preKind, error) {
	switch name {
	case "", "default":
		return preDefault, nil
	case "gpt-2", "olmo", "mpt": // one regex in llama.cpp's llama-vocab.cpp
		return preGPT2, nil
	case "dbrx":
		return preDBRX, nil
	case "llama-bpe", "llama3", "llama-v3":
		return preLlama3, nil
	case "qwen2":
		return preQwen2, nil
	}
	return 0, fmt.Errorf("tokenizer: unsupported pre-tokenizer %q (tokenizer.ggml.pre); supported: \"default\", \"gpt-2\" (\"olmo\", \"mpt\"), \"llama-bpe\", \"qwen2\", \"dbrx\"", name)
}

// classNone is the class of a position outside the piece being split;
// llama.cpp gives such positions no flags at all, which is neither \s nor
// [^\s\p{L}\p{N}].
const classNone charClass = 255

// runeText is text decoded once into code points, for random access.
type runeText struct {
	r   []rune
	cls []charClass
	off []int // byte offset of each code point, plus len(text) at the end
	lo  int   // the piece being split is [lo, hi) in code points
	hi  int
}

func (t *runeText) load(text string) {
	t.r, t.cls, t.off = t.r[:0], t.cls[:0], t.off[:0]
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			t.r = append(t.r, rune(c))
			t.cls = append(t.cls, asciiClass[c])
			t.off = append(t.off, i)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		t.r = append(t.r, r)
		t.cls = append(t.cls, classOf(r))
		t.off = append(t.off, i)
		i += n
	}
	t.off = append(t.off, len(text))
}

// class is the class of code point i, classNone outside [lo, hi).
func (t *runeText) class(i int) charClass {
	if i < t.lo || i >= t.hi {
		return classNone
	}
	return t.cls[i]
}

// cp is code point i, -1 outside [lo, hi).
func (t *runeText) cp(i int) rune {
	if i < t.lo || i >= t.hi {
		return -1
	}
	return t.r[i]
}

// splitter appends the end (in code points) of each piece of [lo, hi).
type splitter struct {
	t    *runeText
	ends []int
	prev int
}

func (s *splitter) add(end int) {
	if end > s.prev {
		s.ends = append(s.ends, end)
	}
	s.prev = end
}

// isContractionS reports whether r (already lowercased when the regex is
// case-insensitive) completes a one-letter contraction: 's 't 'm 'd.
func isContraction1(r rune) bool { return r == 's' || r == 't' || r == 'm' || r == 'd' }

// isContraction2 reports whether a, b complete 're 've 'll.
func isContraction2(a, b rune) bool {
	return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')
}

// contraction is the length in code points of the contraction ('s 't 're
// 've 'm 'll 'd) that starts at pos, or 0 if none does. GPT-2's regex is
// case-sensitive and Llama-3's is not, hence fold.
// The quote test is split off so that it inlines into the splitters' hot
// loops and only an apostrophe pays for a call.
func (t *runeText) contraction(pos int, fold bool) int {
	if t.r[pos] != '\'' {
		return 0
	}
	return t.contractionAfterQuote(pos, fold)
}

func (t *runeText) contractionAfterQuote(pos int, fold bool) int {
	if pos+1 >= t.hi {
		return 0
	}
	n1 := t.r[pos+1]
	if fold {
		n1 = asciiLower(n1)
	}
	if isContraction1(n1) {
		return 2
	}
	if pos+2 >= t.hi {
		return 0
	}
	n2 := t.r[pos+2]
	if fold {
		n2 = asciiLower(n2)
	}
	if isContraction2(n1, n2) {
		return 3
	}
	return 0
}

// spaceRunEnd is where the piece starting at pos ends when both splitters'
// earlier alternatives failed and n spaces start there: \s+(?!\S) leaves
// the last space of a run before a non-space to start the next piece
// (" word"), \s+ takes a run that reaches the end, and anything else is a
// piece of one code point.
func (t *runeText) spaceRunEnd(pos, n int) int {
	if n > 1 && pos+n < t.hi {
		return pos + n - 1
	}
	if n > 0 {
		return pos + n
	}
	return pos + 1
}

// splitGPT2 splits [lo, hi) with GPT-2's regex, as llama.cpp's
// unicode_regex_split_custom_gpt2 does.
func (s *splitter) splitGPT2(lo, hi int) {
	t := s.t
	t.lo, t.hi = lo, hi
	s.prev = lo
	for pos := lo; pos < hi; {
		c := t.r[pos]
		cl := t.cls[pos]

		// 's|'t|'re|'ve|'m|'ll|'d
		if n := t.contraction(pos, false); n > 0 {
			pos += n
			s.add(pos)
			continue
		}

		cl2 := cl
		if c == ' ' {
			cl2 = t.class(pos + 1)
		}
		// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional space
		// then a run of one class.
		if cl2 == classLetter || cl2 == classNumber || cl2 == classOther {
			if c == ' ' {
				pos++
			}
			for t.class(pos) == cl2 {
				pos++
			}
			s.add(pos)
			continue
		}

		n := 0
		for t.class(pos+n) == classSpace {
			n++
		}
		pos = t.spaceRunEnd(pos, n)
		s.add(pos)
	}
}

// splitLlama3 splits [lo, hi) with Llama-3's regex, as llama.cpp's
// unicode_regex_split_custom_llama3 does; maxDigits is 3 for llama-bpe and 1
// for qwen2 (whose \p{N} llama.cpp runs through std::regex with the same
// result).
func (s *splitter) splitLlama3(lo, hi, maxDigits int) {
	t := s.t
	t.lo, t.hi = lo, hi
	s.prev = lo
	for pos := lo; pos < hi; {
		c := t.r[pos]
		cl := t.cls[pos]

		// (?i:'s|'t|'re|'ve|'m|'ll|'d)
		if n := t.contraction(pos, true); n > 0 {
			pos += n
			s.add(pos)
			continue
		}

		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !(c == '\r' || c == '\n' || cl == classNumber) {
			if cl == classLetter || t.class(pos+1) == classLetter {
				pos++
				for t.class(pos) == classLetter {
					pos++
				}
				s.add(pos)
				continue
			}
		}

		// \p{N}{1,maxDigits}
		if cl == classNumber {
			start := pos
			for t.class(pos) == classNumber {
				pos++
				if pos-start >= maxDigits {
					s.add(pos)
					start = pos
				}
			}
			s.add(pos)
			continue
		}

		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'. llama.cpp tests the class of the
		// character after the space but the presence of the current one, so
		// a lone space at the very end is taken here, as a piece of its own.
		cl2 := cl
		if c == ' ' {
			cl2 = t.class(pos + 1)
		}
		if cl2 != classSpace && cl2 != classLetter && cl2 != classNumber {
			if c == ' ' {
				pos++
			}
			for t.class(pos) == classOther {
				pos++
			}
			for r := t.cp(pos); r == '\r' || r == '\n'; r = t.cp(pos) {
				pos++
			}
			s.add(pos)
			continue
		}

		n := 0
		lastNewline := 0 // one past the last \r or \n of the run; 0 if none
		for t.class(pos+n) == classSpace {
			if r := t.r[pos+n]; r == '\r' || r == '\n' {
				lastNewline = pos + n + 1
			}
			n++
		}
		// \s*[\r\n]+
		if lastNewline > 0 {
			pos = lastNewline
			s.add(pos)
			continue
		}
		pos = t.spaceRunEnd(pos, n)
		s.add(pos)
	}
}

// splitRuns splits [lo, hi) into maximal runs where in is true and the gaps
// between them: what a regex "[...]+" does when both its matches and the
// text between them become pieces, as in llama.cpp's std::regex path.
func (s *splitter) splitRuns(lo, hi int, in func(r rune, cl charClass) bool) {
	t := s.t
	s.prev = lo
	for pos := lo; pos < hi; {
		want := in(t.r[pos], t.cls[pos])
		for pos < hi && in(t.r[pos], t.cls[pos]) == want {
			pos++
		}
		s.add(pos)
	}
}

// splitTriples splits [lo, hi) at each leftmost, non-overlapping match of
// [0-9][0-9][0-9] (ASCII digits only, as std::wregex has it).
func (s *splitter) splitTriples(lo, hi int) {
	t := s.t
	s.prev = lo
	isDigit := func(i int) bool { return '0' <= t.r[i] && t.r[i] <= '9' }
	for pos := lo; pos+3 <= hi; {
		if isDigit(pos) && isDigit(pos+1) && isDigit(pos+2) {
			s.add(pos)
			pos += 3
			s.add(pos)
			continue
		}
		pos++
	}
	s.add(hi)
}

// isDefaultPunct is the class of llama.cpp's first "default" regex,
// [\p{P}\$\+<=>\^~\|]: its collapsed form keeps every ASCII punctuation or
// symbol but the backtick, and non-ASCII code points of category P.
func isDefaultPunct(r rune, cl charClass) bool {
	if r < 128 {
		return cl == classOther && r > ' ' && r != 0x7f && r != '`'
	}
	return cl != classSpace && isPunctuation(r)
}

func isNumberClass(_ rune, cl charClass) bool { return cl == classNumber }

// split cuts text into pieces and appends each piece's end, in code points.
func (s *splitter) split(kind preKind, n int) {
	s.ends = s.ends[:0]
	switch kind {
	case preGPT2:
		s.splitGPT2(0, n)
	case preLlama3, preDBRX:
		s.splitLlama3(0, n, 3)
	case preQwen2:
		s.splitLlama3(0, n, 1)
	case preDefault:
		s.splitRuns(0, n, isDefaultPunct)
		s.refine(func(lo, hi int) { s.splitGPT2(lo, hi) })
		s.refine(func(lo, hi int) { s.splitRuns(lo, hi, isNumberClass) })
		s.refine(s.splitTriples)
	}
}

// refine splits every current piece again with f.
func (s *splitter) refine(f func(lo, hi int)) {
	pieces := append([]int(nil), s.ends...)
	s.ends = s.ends[:0]
	lo := 0
	for _, hi := range pieces {
		f(lo, hi)
		lo = hi
	}
}
