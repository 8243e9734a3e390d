package server

import (
	"container/list"
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/lmscore/lmscore"
)

// outputCache remembers the scored outputs of prompt positions: for each
// full block of a prompt's tokens, each token's log-probability and the
// top-N list at its position. It is what makes the KV prefix cache pay for
// echo scoring. An echo request asks for the log-probability of every
// prompt token, so every position needs its logits: KV blocks cached by an
// earlier request spare the K/V writes but not the forward pass (the engine
// runs such tokens "logit-only"). The outputs at a position depend only on
// the tokens up to it, so the outputs of a prefix already scored are reused
// as they are, and the model is asked only for the rest: context = the
// cached blocks (whose KV the engine finds in its pool), continuation = the
// remaining tokens. On the CPU the outputs are bitwise what a fresh
// computation gives (the engine's scores do not depend on batching or
// caching), so reuse changes no number.
//
// Entries are keyed by a chained hash of the prompt through the block's end
// and checked against their parent key and tokens, so that a hash collision
// cannot hand one prompt another's numbers. Least recently used entries are
// evicted past the byte budget.
type outputCache struct {
	blockSize int
	budget    int64
	seed      maphash.Seed

	mu      sync.Mutex
	entries map[uint64]*outputEntry
	lru     list.List // front: most recently used
	bytes   int64
	hits    int64 // positions served from the cache
	stores  int64 // blocks stored
	evicted int64 // blocks evicted
}

// outputEntry holds one block's outputs. It is immutable once stored: a
// lookup may keep using an entry that is evicted meanwhile.
type outputEntry struct {
	key, parent uint64
	tokens      []int32   // the block's tokens
	logprobs    []float32 // per token; the prompt's token 0 has none (0 here)
	top         [][]lmscore.TokenLogProb
	topN        int // length of each top list
	elem        *list.Element
	size        int64
}

func newOutputCache(blockSize int, budget int64) *outputCache {
	return &outputCache{blockSize: blockSize, budget: budget, seed: maphash.MakeSeed(), entries: map[uint64]*outputEntry{}}
}

// blockKey chains the block's tokens onto its parent's key.
func (c *outputCache) blockKey(parent uint64, tokens []int32) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], parent)
	h.Write(buf[:])
	for _, t := range tokens {
		binary.LittleEndian.PutUint32(buf[:4], uint32(t))
		h.Write(buf[:4])
	}
	return h.Sum64()
}

// lookup returns the entries of the prompt's leading full blocks that are
// cached with a top-N list of at least topN, in order.
func (c *outputCache) lookup(tokens []int32, topN int) []*outputEntry {
	if c == nil {
		return nil
	}
	var out []*outputEntry
	var parent uint64
	c.mu.Lock()
	defer c.mu.Unlock()
	for start := 0; start+c.blockSize <= len(tokens); start += c.blockSize {
		block := tokens[start : start+c.blockSize]
		key := c.blockKey(parent, block)
		e, ok := c.entries[key]
		if !ok || e.parent != parent || e.topN < topN || !slices.Equal(e.tokens, block) {
			break
		}
		c.lru.MoveToFront(e.elem)
		out = append(out, e)
		parent = key
	}
	if len(out) > 0 {
		c.hits += int64(len(out)*c.blockSize - 1) // the prompt's first token has no output
	}
	return out
}

// store caches the full blocks of tokens from block index firstBlock on,
// given the outputs of tokens[from:]: logprobs[j-from] and top[j-from] are
// token j's. Outputs for tokens before from must come from cached blocks,
// which is how the chain's keys are rebuilt.
func (c *outputCache) store(tokens []int32, from int, logprobs []float32, top [][]lmscore.TokenLogProb, topN int) {
	if c == nil || c.budget <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var parent uint64
	for start := 0; start+c.blockSize <= len(tokens); start += c.blockSize {
		block := tokens[start : start+c.blockSize]
		key := c.blockKey(parent, block)
		if start+c.blockSize <= from {
			parent = key // already cached (or not storable): only chain
			continue
		}
		if start < from && from > 1 {
			// A block straddling from has outputs on both sides; its
			// first part came from the cache and may be gone: skip it,
			// and everything after it, whose chain it is.
			return
		}
		if e, ok := c.entries[key]; ok && e.topN >= topN && e.parent == parent && slices.Equal(e.tokens, block) {
			c.lru.MoveToFront(e.elem)
			parent = key
			continue
		}
		e := &outputEntry{key: key, parent: parent, tokens: slices.Clone(block), topN: topN,
			logprobs: make([]float32, c.blockSize)}
		if topN > 0 {
			e.top = make([][]lmscore.TokenLogProb, c.blockSize)
		}
		for k := range c.blockSize {
			j := start + k
			if j < from {
				continue // the prompt's first token: no output
			}
			e.logprobs[k] = logprobs[j-from]
			if topN > 0 {
				e.top[k] = slices.Clone(top[j-from][:topN])
			}
		}
		e.size = int64(c.blockSize)*(4+4+int64(topN)*8) + 64
		if old, ok := c.entries[key]; ok {
			c.remove(old)
		}
		c.entries[key] = e
		e.elem = c.lru.PushFront(e)
		c.bytes += e.size
		c.stores++
		for c.bytes > c.budget && c.lru.Len() > 0 {
			c.remove(c.lru.Back().Value.(*outputEntry))
			c.evicted++
		}
		parent = key
	}
}

func (c *outputCache) remove(e *outputEntry) {
	c.lru.Remove(e.elem)
	delete(c.entries, e.key)
	c.bytes -= e.size
}

type outputCacheStats struct {
	Blocks                int
	Bytes, Budget         int64
	Hits, Stores, Evicted int64
}

func (c *outputCache) stats() outputCacheStats {
	if c == nil {
		return outputCacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return outputCacheStats{Blocks: len(c.entries), Bytes: c.bytes, Budget: c.budget, Hits: c.hits, Stores: c.stores, Evicted: c.evicted}
}
