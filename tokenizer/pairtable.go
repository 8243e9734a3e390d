package tokenizer

import "math/bits"

// pairTable maps a pair of symbols to its merge rank: an open-addressing
// hash table with linear probing. Rank lookups are the inner loop of BPE,
// and this is several times faster than a Go map with uint64 keys.
type pairTable struct {
	keys  []uint64 // left<<32 | right; emptyPair where free
	ranks []int32
	shift uint // 64 - log2(len(keys))
}

const emptyPair = ^uint64(0) // symbol ids are below 2^31, so no pair is this

func pairKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

func newPairTable(n int) *pairTable {
	size := 16
	for size < 2*n {
		size *= 2
	}
	t := &pairTable{keys: make([]uint64, size), ranks: make([]int32, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
	for i := range t.keys {
		t.keys[i] = emptyPair
	}
	return t
}

func (t *pairTable) slot(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> t.shift }

// add inserts key with rank unless key is present; it reports whether it did.
func (t *pairTable) add(key uint64, rank int32) bool {
	mask := uint64(len(t.keys) - 1)
	for i := t.slot(key); ; i = (i + 1) & mask {
		switch t.keys[i] {
		case key:
			return false
		case emptyPair:
			t.keys[i], t.ranks[i] = key, rank
			return true
		}
	}
}

func (t *pairTable) get(key uint64) (int32, bool) {
	mask := uint64(len(t.keys) - 1)
	for i := t.slot(key); ; i = (i + 1) & mask {
		switch t.keys[i] {
		case key:
			return t.ranks[i], true
		case emptyPair:
			return 0, false
		}
	}
}
