package lmscore

import (
	"fmt"
	"slices"
	"sync"

	"github.com/lmscore/lmscore/internal/lru"
	"github.com/lmscore/lmscore/scheduler"
)

// OutputStore remembers the scored outputs of prompt blocks: for each full
// block of a prompt's tokens, each token's log-probability and the top-N
// list at its position. It is what makes the KV prefix cache pay for
// scoring every token of a prompt (lm-eval's loglikelihood through an
// echoing /v1/completions): KV blocks cached by an earlier call spare the
// K/V writes but not the forward pass, since every position needs its
// logits. With a store, the caller looks the prompt up, takes the outputs
// of its leading cached blocks as they are, and scores only the rest:
// context = the cached blocks (whose K/V the model finds in its pool),
// continuation = the remaining tokens; then it stores what it scored.
//
// Reuse is exact: the outputs at a position depend only on the tokens up to
// it, and on the CPU scores do not depend on batching or caching, so a
// stored output is bitwise what scoring again would give.
//
// Blocks are keyed by scheduler.AppendBlockHashes, the hashes under which
// the model's planner caches the same blocks' K/V (same chain, same
// namespace, when the block sizes agree). Each entry also keeps its parent's
// hash and its tokens and is used only if both match, so that a hash
// collision can never hand one prompt another's numbers. The least recently
// used blocks are evicted past the byte budget.
//
// An OutputStore is safe for concurrent use. A nil *OutputStore stores
// nothing and finds nothing.
type OutputStore struct {
	blockSize int
	budget    int64
	namespace scheduler.BlockHash

	mu     sync.Mutex
	index  map[scheduler.BlockHash]int32 // block hash → slot
	slots  []outputSlot
	unused []int32  // slots of removed entries, for reuse
	lru    lru.List // over slots; front: evicted first
	stats  OutputStoreStats
}

type outputSlot struct {
	key   scheduler.BlockHash
	block *OutputBlock // nil when unused
}

// OutputBlock holds one block's outputs. It is immutable once stored: a
// caller may keep using a block that is evicted meanwhile.
type OutputBlock struct {
	parent   scheduler.BlockHash // the previous block's hash, or the namespace
	tokens   []int32             // the block's tokens
	logprobs []float32           // per token; the prompt's token 0 has none (0 here)
	top      [][]TokenLogProb    // per token, nil when stored with top-N 0
	topN     int                 // length of each top list
	size     int64
}

// LogProb is the log-probability of the block's token k given the tokens
// before it (0 for a prompt's first token, which has none).
func (b *OutputBlock) LogProb(k int) float32 { return b.logprobs[k] }

// TopLogProbs is the top-N list at the block's token k, at least as long as
// the lookup asked for (nil when it asked for none and none was stored).
func (b *OutputBlock) TopLogProbs(k int) []TokenLogProb {
	if b.top == nil {
		return nil
	}
	return b.top[k]
}

// OutputStoreStats describe an OutputStore.
type OutputStoreStats struct {
	Blocks  int   // blocks held
	Bytes   int64 // bytes they take (an estimate: the arrays' sizes plus 64 per block)
	Budget  int64 // the budget Bytes stays within
	Hits    int64 // prompt positions whose outputs were found
	Stores  int64 // blocks stored
	Evicted int64 // blocks evicted to stay within the budget
}

// NewOutputStore returns an empty store of blocks of blockSize tokens,
// holding at most budgetBytes (0 or less: it stores nothing). namespace
// separates models, as scheduler.Options.Namespace does; for a *Model, use
// its NewOutputStore method, which takes the model's own.
func NewOutputStore(namespace string, blockSize int, budgetBytes int64) (*OutputStore, error) {
	if blockSize < 1 || blockSize > 1<<16 {
		return nil, fmt.Errorf("lmscore: output store block size %d out of range [1, 65536]", blockSize)
	}
	return &OutputStore{blockSize: blockSize, budget: budgetBytes, namespace: scheduler.NamespaceHash(namespace),
		index: map[scheduler.BlockHash]int32{}}, nil
}

// NewOutputStore returns an empty store for the outputs of this model's
// prompts, keyed by the block hashes its Score calls cache K/V under:
// blocks of blockSize tokens (0: the model's KV block size, which aligns the
// uncached rest of a prompt with the KV blocks), holding at most
// budgetBytes.
func (m *Model) NewOutputStore(blockSize int, budgetBytes int64) (*OutputStore, error) {
	if blockSize == 0 {
		blockSize = m.opts.BlockSize
	}
	return NewOutputStore(m.namespace(), blockSize, budgetBytes)
}

// BlockSize is the number of tokens per block.
func (s *OutputStore) BlockSize() int { return s.blockSize }

// Lookup returns the blocks of the prompt's leading full blocks that are
// stored with a top-N list of at least topN, in order: block i holds the
// outputs of tokens[i*BlockSize() : (i+1)*BlockSize()].
func (s *OutputStore) Lookup(tokens []int32, topN int) []*OutputBlock {
	if s == nil {
		return nil
	}
	hashes := scheduler.AppendBlockHashes(nil, s.namespace, tokens, s.blockSize)
	var out []*OutputBlock
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range hashes {
		id, ok := s.index[h]
		if !ok {
			break
		}
		e := s.slots[id].block
		if !e.matches(s.parent(hashes, i), tokens[i*s.blockSize:(i+1)*s.blockSize], topN) {
			break
		}
		s.lru.MoveToBack(id)
		out = append(out, e)
	}
	if len(out) > 0 {
		s.stats.Hits += int64(len(out)*s.blockSize - 1) // the prompt's first token has no output
	}
	return out
}

// Store keeps the full blocks of tokens given the outputs of tokens[from:]:
// logprobs[j-from] and top[j-from] (the first topN entries of it) are token
// j's; top may be nil when topN is 0. from is 1 for a prompt scored whole
// (its first token has no output), or the end of the blocks a Lookup
// returned: blocks before from are taken as stored already, and a block
// straddling from ends the store, as its first part may be gone.
func (s *OutputStore) Store(tokens []int32, from int, logprobs []float32, top [][]TokenLogProb, topN int) {
	if s == nil || s.budget <= 0 {
		return
	}
	hashes := scheduler.AppendBlockHashes(nil, s.namespace, tokens, s.blockSize)
	bs := s.blockSize
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range hashes {
		start := i * bs
		if start+bs <= from {
			continue // already stored (or not storable)
		}
		if start < from && from > 1 {
			// A block straddling from has outputs on both sides; its first
			// part came from the store and may be gone: skip it, and
			// everything after it, whose chain it is.
			return
		}
		parent, block := s.parent(hashes, i), tokens[start:start+bs]
		if id, ok := s.index[h]; ok && s.slots[id].block.matches(parent, block, topN) {
			s.lru.MoveToBack(id)
			continue
		}
		e := &OutputBlock{parent: parent, tokens: slices.Clone(block), topN: topN, logprobs: make([]float32, bs)}
		var topBacking []TokenLogProb
		if topN > 0 {
			// One allocation for the block's lists: a list each would pay
			// an allocation's rounding per token.
			e.top = make([][]TokenLogProb, bs)
			topBacking = make([]TokenLogProb, bs*topN)
		}
		for k := range bs {
			j := start + k
			if j < from {
				continue // the prompt's first token: no output
			}
			e.logprobs[k] = logprobs[j-from]
			if topN > 0 {
				e.top[k] = topBacking[k*topN : (k+1)*topN : (k+1)*topN]
				copy(e.top[k], top[j-from][:topN])
			}
		}
		e.size = outputBlockBytes(bs, topN)
		if id, ok := s.index[h]; ok {
			s.remove(id) // a shorter top-N list, or a collision: the newer wins
		}
		s.insert(h, e)
		s.stats.Stores++
		for s.stats.Bytes > s.budget && s.lru.Len() > 0 {
			s.remove(s.lru.Front())
			s.stats.Evicted++
		}
	}
}

// Stats describes the store now.
func (s *OutputStore) Stats() OutputStoreStats {
	if s == nil {
		return OutputStoreStats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Blocks, st.Budget = len(s.index), s.budget
	return st
}

// ---------------------------------------------------------------------------
// Internal.

// parent is the hash block i chains onto.
func (s *OutputStore) parent(hashes []scheduler.BlockHash, i int) scheduler.BlockHash {
	if i == 0 {
		return s.namespace
	}
	return hashes[i-1]
}

func (e *OutputBlock) matches(parent scheduler.BlockHash, tokens []int32, topN int) bool {
	return e.parent == parent && e.topN >= topN && slices.Equal(e.tokens, tokens)
}

func (s *OutputStore) insert(h scheduler.BlockHash, e *OutputBlock) {
	var id int32
	if n := len(s.unused); n > 0 {
		id, s.unused = s.unused[n-1], s.unused[:n-1]
	} else {
		id = int32(len(s.slots))
		s.slots = append(s.slots, outputSlot{})
		s.lru.Grow(len(s.slots))
	}
	s.slots[id] = outputSlot{key: h, block: e}
	s.index[h] = id
	s.lru.PushBack(id)
	s.stats.Bytes += e.size
}

func (s *OutputStore) remove(id int32) {
	sl := &s.slots[id]
	s.lru.Remove(id)
	delete(s.index, sl.key)
	s.stats.Bytes -= sl.block.size
	*sl = outputSlot{}
	s.unused = append(s.unused, id)
}

// outputBlockBytes is what one stored block takes on the heap, so that the
// byte budget bounds memory: the block itself with its slot and index entry
// (outputBlockOverhead), its tokens and log-probabilities, and for top-N
// lists a slice header per token plus the lists' one backing array.
func outputBlockBytes(blockSize, topN int) int64 {
	n := int64(blockSize)
	size := outputBlockOverhead + 4*n + 4*n
	if topN > 0 {
		size += 24*n + 8*n*int64(topN)
	}
	return size
}

// outputBlockOverhead: the OutputBlock struct (112 bytes in its size
// class), its slot (24) and its index map entry (about 40 with the map's
// own overhead).
const outputBlockOverhead = 176
