package tokenizer

import "fmt"

// spmModel is SentencePiece BPE (tokenizer.ggml.model "llama"): spaces are
// written "▁" (U+2581), the text starts as one symbol per UTF-8 character,
// and the adjacent pair whose concatenation is the highest-scoring token
// merges first (leftmost on ties) until no pair forms a token. A final
// symbol that is not a token becomes its bytes' <0xXX> tokens (byte
// fallback) or, in a vocabulary without them, one unknown token per run of
// such symbols, as SentencePiece does. This is both SentencePiece's
// algorithm and llama.cpp's llm_tokenizer_spm_session.
type spmModel struct {
	toID   map[string]int32
	scores []float32
	// byteTok is the token of each byte: "<0xXX>", else (as llama.cpp
	// falls back) the one-byte token; -1 when neither exists.
	byteTok [256]int32
	unk     int32
	prefix  bool // prepend a space to each run of text (add_space_prefix)
}

const spmSpace = "\u2581"

func newSPMModel(v *Vocab) (*spmModel, error) {
	m := &spmModel{
		toID:   make(map[string]int32, len(v.Tokens)),
		scores: make([]float32, len(v.Tokens)),
		unk:    v.UNK,
		prefix: !v.NoSpacePrefix,
	}
	if v.Scores != nil {
		copy(m.scores, v.Scores)
	}
	for i, t := range v.Tokens {
		m.toID[t] = int32(i)
	}
	for b := range m.byteTok {
		m.byteTok[b] = -1
		if id, ok := m.toID[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteTok[b] = id
		} else if id, ok := m.toID[string([]byte{byte(b)})]; ok {
			m.byteTok[b] = id
		}
	}
	return m, nil
}

type spmSymbol struct {
	start, n   int32 // bytes of the escaped text; n == 0 once merged away
	prev, next int32
}

type spmPair struct {
	score       float32
	left, right int32
	size        int32 // bytes of the pair when found
}

// before orders the queue: highest score first, then leftmost.
func (p spmPair) before(o spmPair) bool {
	return p.score > o.score || (p.score == o.score && p.left < o.left)
}

type spmWork struct {
	syms  []spmSymbol
	queue []spmPair
	buf   []byte
}

// encode appends the tokens of one run of raw text (between special
// tokens). prefix says whether this run gets the dummy space: llama.cpp adds
// it at the start of the text and after each special token.
func (m *spmModel) encode(dst []int32, text string, prefix bool, w *spmWork) []int32 {
	buf := w.buf[:0]
	if prefix && m.prefix {
		buf = append(buf, spmSpace...)
	}
	for i := 0; i < len(text); i++ {
		if text[i] == ' ' {
			buf = append(buf, spmSpace...)
		} else {
			buf = append(buf, text[i])
		}
	}
	w.buf = buf
	if len(buf) == 0 {
		return dst
	}
	// Map lookups below use string(buf[a:b]), which Go does not copy.
	s := buf

	// One symbol per UTF-8 character, its length read from the lead byte
	// alone as llama.cpp does, so that invalid UTF-8 passes through to the
	// byte fallback unchanged.
	syms := w.syms[:0]
	for off := 0; off < len(s); {
		n := min(utf8LenFromLead(s[off]), len(s)-off)
		syms = append(syms, spmSymbol{start: int32(off), n: int32(n), prev: int32(len(syms) - 1), next: int32(len(syms) + 1)})
		off += n
	}
	syms[len(syms)-1].next = -1

	q := w.queue[:0]
	push := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		text := s[syms[l].start : syms[r].start+syms[r].n]
		if id, ok := m.toID[string(text)]; ok {
			q = heapPush(q, spmPair{score: m.scores[id], left: l, right: r, size: int32(len(text))})
		}
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		push(i-1, i)
	}
	for len(q) > 0 {
		var p spmPair
		p, q = heapPop(q)
		l, r := &syms[p.left], &syms[p.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != p.size {
			continue // stale: a side was merged away or has grown
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = p.left
		}
		push(l.prev, p.left)
		push(p.left, l.next)
	}
	w.syms, w.queue = syms, q

	prevUnknown := false
	for i := int32(0); i != -1; i = syms[i].next {
		piece := s[syms[i].start : syms[i].start+syms[i].n]
		if id, ok := m.toID[string(piece)]; ok {
			dst = append(dst, id)
			prevUnknown = false
			continue
		}
		for j := 0; j < len(piece); j++ {
			if id := m.byteTok[piece[j]]; id >= 0 {
				dst = append(dst, id)
				prevUnknown = false
			} else if m.unk >= 0 && !prevUnknown {
				dst = append(dst, m.unk)
				prevUnknown = true
			}
		}
	}
	return dst
}

// utf8LenFromLead is the length of a UTF-8 sequence judged by its first byte
// only (llama.cpp's unicode_len_utf8); continuation bytes count as 1.
func utf8LenFromLead(c byte) int {
	switch {
	case c < 0xC0:
		return 1
	case c < 0xE0:
		return 2
	case c < 0xF0:
		return 3
	}
	return 4
}
