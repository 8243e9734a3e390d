package scheduler

import (
	"fmt"

	"github.com/lmscore/lmscore/internal/lru"
)

// NullBlock is the reserved block id 0: never handed out, so that a zeroed
// block table entry can never alias live K/V.
const NullBlock int32 = 0

const noBlock int32 = -1

// BlockPool is the bookkeeping of the KV cache, after vLLM's BlockPool: a
// fixed array of blocks with reference counts; the free blocks linked by
// block id in LRU order (head: evicted first); full
// blocks registered under their chained hash so that a later call with the
// same prefix finds them. The K/V memory itself lives in the native core,
// indexed by the same block ids (lmscore_kv_init with NumBlocks blocks).
//
// Blocks never handed out stay off the free list, behind a frontier that
// moves up one id at a time. The cores map their K/V memory up to the
// highest block id a step uses, so when a block is first touched decides
// the memory, and two policies serve two uses:
//   - by default a new block is taken only when no free block (empty or
//     cached) is left: the memory stays at the most blocks ever referenced
//     at once (the live high-water mark), and cached prefixes are kept only
//     within the pool the work has grown to. Right for a call that is the
//     whole job (the CLI's score, a benchmark's cold runs).
//   - with Retain, an empty free block is reused first, then a new block,
//     and only then a cached one is evicted: the pool grows up to its size
//     to keep prefixes for later calls (a server, whose clients send the
//     choices of one question in different calls).
//
// One pool serves many planning calls in sequence (a server keeps one for
// its lifetime); it is not safe for concurrent use, and the steps of a call
// must be executed, in order, before the next call's steps. If execution
// fails part-way, the cached contents can no longer be trusted: call Reset.
type BlockPool struct {
	blockSize int32
	blocks    []poolBlock
	// Free list, the shared intrusive LRU (front: reused first) over block
	// ids, so that a hit on a cached free block unlinks it in O(1).
	free          lru.List
	numCachedFree int
	// untouched is the lowest block id never handed out; the ids from it to
	// the end are free and empty but not on the free list.
	untouched int32
	// cached maps a registered hash's low half to its block; the block
	// stores the whole hash, so a lookup checks the high half too and a
	// collision of low halves (chance 2^-64 per pair) costs a miss, never a
	// false hit.
	cached    blockIndex
	evictions int64
	evicted   evictedSet

	// OnEvict, when set, is called with each block whose cached content is
	// dropped to make room (tests pin the eviction order with it).
	OnEvict func(block int32)
	// Retain takes an untouched block before evicting a cached one (see
	// BlockPool). Set it before the first plan; it may change between calls.
	Retain bool
}

type poolBlock struct {
	ref  int32
	hash BlockHash
}

// NewBlockPool returns a pool of numBlocks blocks of blockSize token slots,
// block 0 reserved, all others free and empty.
func NewBlockPool(numBlocks, blockSize int) (*BlockPool, error) {
	if blockSize < 1 || blockSize > 1<<16 {
		return nil, fmt.Errorf("block pool: block size %d out of range [1, 65536]", blockSize)
	}
	if numBlocks < 2 {
		return nil, fmt.Errorf("block pool: %d blocks: need at least 2 (block 0 is reserved)", numBlocks)
	}
	if int64(numBlocks)*int64(blockSize) > 1<<31-1 {
		return nil, fmt.Errorf("block pool: %d blocks of %d slots overflow the int32 slot ids of the ABI", numBlocks, blockSize)
	}
	p := &BlockPool{blockSize: int32(blockSize), blocks: make([]poolBlock, numBlocks)}
	p.Reset()
	return p, nil
}

// Reset forgets every cached prefix and reference: all blocks but the null
// block become free, empty and untouched, handed out again in id order.
func (p *BlockPool) Reset() {
	p.cached = newBlockIndex(len(p.blocks))
	p.free.Reset(len(p.blocks))
	p.numCachedFree = 0
	p.untouched = 1
	p.evicted = newEvictedSet(len(p.blocks))
	clear(p.blocks)
}

// BlockSize is the number of token slots per block.
func (p *BlockPool) BlockSize() int { return int(p.blockSize) }

// NumBlocks is the size of the block array, the null block included: the
// n_blocks to give lmscore_kv_init.
func (p *BlockPool) NumBlocks() int { return len(p.blocks) }

// Usable is the number of blocks that can hold K/V (all but the null block).
func (p *BlockPool) Usable() int { return len(p.blocks) - 1 }

// NumUsed counts the blocks referenced by a plan in progress.
func (p *BlockPool) NumUsed() int { return p.Usable() - p.NumFree() }

// NumFree counts the unreferenced blocks, cached or empty, touched or not.
func (p *BlockPool) NumFree() int { return p.free.Len() + p.numUntouched() }

// NumTouched counts the blocks ever handed out since the last Reset: the
// high-water mark of blocks referenced at once, which bounds the K/V memory
// the cores map.
func (p *BlockPool) NumTouched() int { return int(p.untouched) - 1 }

func (p *BlockPool) numUntouched() int { return len(p.blocks) - int(p.untouched) }

// NumCachedFree counts the unreferenced blocks that still hold a cached prefix.
func (p *BlockPool) NumCachedFree() int { return p.numCachedFree }

// Evictions counts the cached blocks dropped to make room since creation.
func (p *BlockPool) Evictions() int64 { return p.evictions }

// RefCount returns a block's reference count.
func (p *BlockPool) RefCount(block int32) int { return int(p.blocks[block].ref) }

// Hash returns the hash a block is registered under (zero if none).
func (p *BlockPool) Hash(block int32) BlockHash { return p.blocks[block].hash }

// FreeOrder lists the free blocks from the next to be handed out to the
// last: the free list with the untouched blocks, in id order, after it or
// (with Retain) after its empty blocks.
func (p *BlockPool) FreeOrder() []int32 {
	out := make([]int32, 0, p.NumFree())
	untouched := func() {
		for b := p.untouched; b < int32(len(p.blocks)); b++ {
			out = append(out, b)
		}
	}
	done := false
	for b := p.free.Front(); b != lru.None; b = p.free.Next(b) {
		if p.Retain && !done && !p.blocks[b].hash.IsZero() {
			untouched()
			done = true
		}
		out = append(out, b)
	}
	if !done {
		untouched()
	}
	return out
}

// ---------------------------------------------------------------------------
// Used by the planner.

// allocate takes the least recently used free block, dropping its cached
// content if it has any, with one reference; an untouched block when the
// free list is empty or, with Retain, holds only cached blocks (see
// BlockPool). ok is false when every block is referenced.
func (p *BlockPool) allocate() (block int32, ok bool) {
	b := p.free.Front()
	fresh := p.untouched < int32(len(p.blocks))
	if fresh && (b == lru.None || p.Retain && !p.blocks[b].hash.IsZero()) {
		b = p.untouched
		p.untouched++
		p.blocks[b].ref = 1
		return b, true
	}
	if b == lru.None {
		return noBlock, false
	}
	p.unlink(b)
	if h := p.blocks[b].hash; !h.IsZero() {
		p.cached.remove(h.Lo, b)
		p.blocks[b].hash = BlockHash{}
		p.evictions++
		p.evicted.add(h)
		if p.OnEvict != nil {
			p.OnEvict(b)
		}
	}
	p.blocks[b].ref = 1
	return b, true
}

// lookup returns the block cached under h with one more reference, taking
// it off the free list if it was there.
func (p *BlockPool) lookup(h BlockHash) (block int32, ok bool) {
	b := p.cached.get(h.Lo)
	if b == 0 || p.blocks[b].hash != h {
		return noBlock, false
	}
	if p.free.Contains(b) {
		p.unlink(b)
	}
	p.blocks[b].ref++
	return b, true
}

// has reports whether a block is cached under h, without touching it.
func (p *BlockPool) has(h BlockHash) bool {
	b := p.cached.get(h.Lo)
	return b != 0 && p.blocks[b].hash == h
}

// register records that block (referenced, being filled by the plan) will
// hold the full block hashed h. With checkEvicted, it reports whether h was
// evicted from this pool lately, i.e. whether this content is being
// computed again.
func (p *BlockPool) register(block int32, h BlockHash, checkEvicted bool) (recomputed bool) {
	if checkEvicted {
		if p.cached.get(h.Lo) != 0 {
			// A block the caller could have hit, or a collision of low
			// halves: leave this one unregistered (simply not cached).
			return false
		}
	}
	// Without checkEvicted the caller knows the pool has never seen the
	// block's predecessor, hence not the block: skip the probe. Should a
	// low half collide anyway, the index forgets the older block, which then
	// is merely never hit (lookups compare the whole hash).
	p.blocks[block].hash = h
	p.cached.put(h.Lo, block)
	return checkEvicted && p.evicted.remove(h)
}

func (p *BlockPool) retain(block int32) { p.blocks[block].ref++ }

// abandon undoes a plan that stopped part-way: the hashes it registered
// are forgotten (their blocks may never have been written) and every
// reference is dropped (the pool serves one plan at a time, so they are
// all that plan's).
func (p *BlockPool) abandon(registered []int32) {
	for _, b := range registered {
		pb := &p.blocks[b]
		if pb.hash.IsZero() {
			continue // evicted since
		}
		p.cached.remove(pb.hash.Lo, b)
		if p.free.Contains(b) {
			// Empty now: reuse it before any block that holds a prefix.
			p.unlink(b)
			pb.hash = BlockHash{}
			p.pushHead(b)
		} else {
			pb.hash = BlockHash{}
		}
	}
	for b := int32(1); b < int32(len(p.blocks)); b++ {
		if p.blocks[b].ref > 0 {
			p.blocks[b].ref = 1
			p.release(b)
		}
	}
}

// release drops one reference. A block nobody references goes on the free
// list: at the tail (evicted last) if it holds a cached prefix, at the head
// (reused first) if it holds nothing worth keeping.
func (p *BlockPool) release(block int32) {
	pb := &p.blocks[block]
	if pb.ref <= 0 {
		panic(fmt.Sprintf("scheduler: block %d released more often than referenced", block)) // a planner bug, never input
	}
	pb.ref--
	if pb.ref > 0 {
		return
	}
	if pb.hash.IsZero() {
		p.pushHead(block)
	} else {
		p.pushTail(block)
	}
}

func (p *BlockPool) pushTail(b int32) {
	p.free.PushBack(b)
	p.countFree(b, 1)
}

func (p *BlockPool) pushHead(b int32) {
	p.free.PushFront(b)
	p.countFree(b, 1)
}

func (p *BlockPool) unlink(b int32) {
	p.free.Remove(b)
	p.countFree(b, -1)
}

func (p *BlockPool) countFree(b int32, d int) {
	if !p.blocks[b].hash.IsZero() {
		p.numCachedFree += d
	}
}

// evictedSet remembers the hashes of recently evicted blocks, so that
// computing one of them again can be counted as a recomputation. It only
// feeds a statistic, so it is a direct-mapped table of low hash halves, two
// slots per pool block (at least 4096): O(1) without a map's overhead (it sees every
// eviction), bounded memory over a server's lifetime, and a rare slot
// collision merely forgets one eviction (the count errs low, never high).
type evictedSet struct {
	slots []uint64
	mask  uint64
}

func newEvictedSet(n int) evictedSet {
	size := 1 << 12 // small pools evict often: remember more than twice them
	for size < 2*n {
		size <<= 1
	}
	return evictedSet{slots: make([]uint64, size), mask: uint64(size - 1)}
}

func (s *evictedSet) add(h BlockHash) {
	s.slots[h.Lo&s.mask] = h.Lo | 1 // 0 marks an empty slot
}

func (s *evictedSet) remove(h BlockHash) bool {
	i := h.Lo & s.mask
	if s.slots[i] != h.Lo|1 {
		return false
	}
	s.slots[i] = 0
	return true
}
