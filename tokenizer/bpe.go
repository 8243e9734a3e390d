package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// bpeModel is byte-level BPE with merge ranks (tokenizer.ggml.model "gpt2"),
// computed the way llama.cpp's llm_tokenizer_bpe_session does: a piece's
// bytes start as one symbol each; the adjacent pair of lowest merge rank,
// leftmost first, merges until no pair has a rank; a final symbol that is a
// token is output as such, any other as the tokens of its single bytes.
//
// The work is on symbol ids, not strings: ids below len(Tokens) are tokens,
// ids above are "virtual" symbols for merge parts and results the vocabulary
// lacks (a malformed vocabulary still tokenizes as llama.cpp would).
type bpeModel struct {
	pre          preKind
	ignoreMerges bool // llama-bpe: a piece that is a whole token is output as is

	nTokens  int32
	symText  []string             // byte-level text of each symbol, tokens then virtual ones
	byteSym  [256]int32           // the symbol of each single byte
	ranks    *pairTable           // (left, right) -> merge rank
	mergedTo []int32              // merge rank -> symbol of the merged pair
	rawToID  map[string]int32     // raw bytes -> token, for tokens in the byte-level alphabet
	asciiTok [utf8.RuneSelf]int32 // token whose text is one ASCII byte, or -1

	noCache bool // benchmarks of BPE itself turn the word cache off
}

func newBPEModel(v *Vocab, pre preKind) (*bpeModel, error) {
	m := &bpeModel{
		pre:          pre,
		ignoreMerges: pre == preLlama3,
		nTokens:      int32(len(v.Tokens)),
		symText:      append([]string(nil), v.Tokens...),
		rawToID:      make(map[string]int32, len(v.Tokens)),
	}
	textToSym := make(map[string]int32, len(v.Tokens)+len(v.Merges))
	for i, t := range v.Tokens {
		textToSym[t] = int32(i)
		if raw, ok := decodeByteLevel(t); ok {
			m.rawToID[string(raw)] = int32(i)
		}
	}
	for c := range m.asciiTok {
		m.asciiTok[c] = -1
		if id, ok := textToSym[string(rune(c))]; ok {
			m.asciiTok[c] = id
		}
	}
	sym := func(text string) int32 {
		if id, ok := textToSym[text]; ok {
			return id
		}
		id := int32(len(m.symText))
		m.symText = append(m.symText, text)
		textToSym[text] = id
		return id
	}
	for b := 0; b < 256; b++ {
		m.byteSym[b] = sym(string(byteToRune[b]))
	}
	m.ranks = newPairTable(len(v.Merges))
	m.mergedTo = make([]int32, 0, len(v.Merges))
	for i, merge := range v.Merges {
		// llama.cpp splits at the first space after the first byte, so that a
		// merge of a space token (" ", in vocabularies without byte-level
		// text) still parses.
		sp := strings.IndexByte(merge[min(1, len(merge)):], ' ')
		if sp < 0 {
			return nil, fmt.Errorf("tokenizer: merge %d %q has no space between its two parts (tokenizer.ggml.merges)", i, merge)
		}
		sp += min(1, len(merge))
		left, right := merge[:sp], merge[sp+1:]
		if !m.ranks.add(pairKey(sym(left), sym(right)), int32(len(m.mergedTo))) {
			continue // the first rank wins, as in llama.cpp's bpe_ranks.emplace
		}
		m.mergedTo = append(m.mergedTo, sym(left+right))
	}
	return m, nil
}

// encodePiece appends the tokens of one pre-token piece (raw bytes).
func (m *bpeModel) encodePiece(dst []int32, piece string, w *bpeWork) []int32 {
	if !m.noCache {
		if ids, ok := w.cache.get(piece); ok {
			return append(dst, ids...)
		}
	}
	start := len(dst)
	if m.ignoreMerges || len(piece) == 1 {
		if id, ok := m.rawToID[piece]; ok {
			return append(dst, id) // too cheap to cache
		}
	}
	dst = m.merge(dst, piece, w)
	if !m.noCache {
		w.cache.put(piece, dst[start:])
	}
	return dst
}

// bpeSymbol is one symbol of a piece being merged, in a linked list.
type bpeSymbol struct {
	sym        int32
	prev, next int32 // indexes into the piece's symbols; -1 at the ends
	rank       int32 // mergeShort: rank of the pair (this, next)
}

// bpePair is a candidate merge of two adjacent symbols.
type bpePair struct {
	rank        int32
	left, right int32 // indexes of the symbols
	lsym, rsym  int32 // their symbols when the pair was found
}

// before orders the queue: lowest rank first, then leftmost.
func (p bpePair) before(o bpePair) bool {
	return p.rank < o.rank || (p.rank == o.rank && p.left < o.left)
}

// bpeWork is scratch space reused across pieces.
type bpeWork struct {
	syms  []bpeSymbol
	queue []bpePair
	cache wordCache
}

func (m *bpeModel) rank(a, b int32) (int32, bool) {
	return m.ranks.get(pairKey(a, b))
}

func (m *bpeModel) merge(dst []int32, piece string, w *bpeWork) []int32 {
	syms := w.syms[:0]
	for i := 0; i < len(piece); i++ {
		syms = append(syms, bpeSymbol{sym: m.byteSym[piece[i]], prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[len(syms)-1].next = -1

	if len(syms) <= 16 {
		m.mergeShort(syms)
	} else {
		m.mergeLong(syms, w)
	}
	w.syms = syms

	for i := int32(0); i != -1; i = syms[i].next {
		s := syms[i].sym
		if s < m.nTokens {
			dst = append(dst, s)
			continue
		}
		// Not a token: llama.cpp outputs the tokens of the single bytes of
		// its byte-level text, which only ASCII ones can be.
		text := m.symText[s]
		for j := 0; j < len(text); j++ {
			if c := text[j]; c < utf8.RuneSelf && m.asciiTok[c] >= 0 {
				dst = append(dst, m.asciiTok[c])
			}
		}
	}
	return dst
}

// mergeShort merges a short piece by scanning all pairs each round: the same
// order as the heap (lowest rank, then leftmost), without its overhead. Each
// symbol keeps the rank of the pair it starts, so a merge looks up only the
// two pairs it changes.
func (m *bpeModel) mergeShort(syms []bpeSymbol) {
	const none = int32(1<<31 - 1)
	pairRank := func(i int32) int32 {
		if n := syms[i].next; n != -1 {
			if r, ok := m.rank(syms[i].sym, syms[n].sym); ok {
				return r
			}
		}
		return none
	}
	for i := range syms {
		syms[i].rank = pairRank(int32(i))
	}
	for {
		best, bestRank := int32(-1), none
		for i := int32(0); i != -1; i = syms[i].next {
			if syms[i].rank < bestRank {
				best, bestRank = i, syms[i].rank
			}
		}
		if best < 0 {
			return
		}
		right := syms[best].next
		syms[best].sym = m.mergedTo[bestRank]
		syms[best].next = syms[right].next
		if n := syms[right].next; n != -1 {
			syms[n].prev = best
		}
		syms[best].rank = pairRank(best)
		if p := syms[best].prev; p != -1 {
			syms[p].rank = pairRank(p)
		}
	}
}

// mergeLong merges with a priority queue, for long pieces where a scan per
// merge would be quadratic. Index 0 is always the head of the list: merges
// only ever remove the right symbol of a pair.
func (m *bpeModel) mergeLong(syms []bpeSymbol, w *bpeWork) {
	q := w.queue[:0]
	push := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		if rank, ok := m.rank(syms[l].sym, syms[r].sym); ok {
			q = heapPush(q, bpePair{rank: rank, left: l, right: r, lsym: syms[l].sym, rsym: syms[r].sym})
		}
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		push(i-1, i)
	}
	const dead = -2 // prev of a symbol merged into its left neighbour
	for len(q) > 0 {
		var p bpePair
		p, q = heapPop(q)
		l, r := &syms[p.left], &syms[p.right]
		// Stale: one side was merged away or has grown since.
		if r.prev == dead || l.prev == dead || l.next != p.right || l.sym != p.lsym || r.sym != p.rsym {
			continue
		}
		l.sym = m.mergedTo[p.rank]
		l.next = r.next
		if r.next != -1 {
			syms[r.next].prev = p.left
		}
		r.prev = dead
		push(l.prev, p.left)
		push(p.left, l.next)
	}
	w.queue = q
}

// wordCache remembers the tokens of recent pieces. Natural text repeats its
// words, so most pieces skip BPE. Each pooled scratch space has its own
// cache, so concurrent Encode calls share no lock (a shared, locked cache
// spent a quarter of the time in its lock); it is emptied when full, which
// bounds its memory.
type wordCache struct {
	spans map[string]uint64 // piece -> offset<<32 | count, into ids
	ids   []int32
}

const (
	cacheMaxEntries = 1 << 15
	cacheMaxPiece   = 64 // longer pieces are rare enough not to cache
)

func (c *wordCache) get(piece string) ([]int32, bool) {
	if len(piece) > cacheMaxPiece || c.spans == nil {
		return nil, false
	}
	span, ok := c.spans[piece]
	if !ok {
		return nil, false
	}
	off := span >> 32
	return c.ids[off : off+span&0xFFFFFFFF], true
}

func (c *wordCache) put(piece string, ids []int32) {
	if len(piece) > cacheMaxPiece {
		return
	}
	if c.spans == nil || len(c.spans) >= cacheMaxEntries {
		c.spans = make(map[string]uint64, 1024)
		c.ids = c.ids[:0]
	}
	// The key is copied: the piece is a slice of the caller's text.
	c.spans[strings.Clone(piece)] = uint64(len(c.ids))<<32 | uint64(len(ids))
	c.ids = append(c.ids, ids...)
}
