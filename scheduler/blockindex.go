package scheduler

// blockIndex maps the low half of a registered block hash to its block: an
// open-addressing table with linear probing and backward-shift deletion,
// sized once to twice the pool (load at most one half, as every entry is a
// distinct block). It replaces a Go map because a plan of millions of new
// blocks touches it for every block it fills and every cached block it
// evicts; a flat table of 16-byte slots keyed by already-uniform bits costs
// one cache miss per operation and allocates nothing.
type blockIndex struct {
	slots []indexSlot
	mask  uint64
	n     int
}

type indexSlot struct {
	lo    uint64
	block int32 // 0 (the null block, never registered) marks an empty slot
}

func newBlockIndex(numBlocks int) blockIndex {
	size := 2
	for size < 2*numBlocks {
		size <<= 1
	}
	return blockIndex{slots: make([]indexSlot, size), mask: uint64(size - 1)}
}

// get returns the block registered under lo, or 0.
func (x *blockIndex) get(lo uint64) int32 {
	for i := lo & x.mask; ; i = (i + 1) & x.mask {
		s := &x.slots[i]
		if s.block == 0 || s.lo == lo {
			return s.block
		}
	}
}

// put registers block under lo. Should lo be present (two hashes with the
// same low half), the newer block takes the entry and the older one is
// merely no longer found: the table never holds more entries than blocks.
func (x *blockIndex) put(lo uint64, block int32) {
	i := lo & x.mask
	for x.slots[i].block != 0 && x.slots[i].lo != lo {
		i = (i + 1) & x.mask
	}
	if x.slots[i].block == 0 {
		x.n++
	}
	x.slots[i] = indexSlot{lo: lo, block: block}
}

// remove drops lo if it maps to block.
func (x *blockIndex) remove(lo uint64, block int32) {
	i := lo & x.mask
	for {
		s := x.slots[i]
		if s.block == 0 {
			return
		}
		if s.lo == lo {
			if s.block != block {
				return
			}
			break
		}
		i = (i + 1) & x.mask
	}
	// Backward shift: pull later entries of the probe run into the hole
	// unless their home slot lies cyclically after it.
	for j := (i + 1) & x.mask; x.slots[j].block != 0; j = (j + 1) & x.mask {
		home := x.slots[j].lo & x.mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = indexSlot{}
	x.n--
}

func (x *blockIndex) len() int { return x.n }
