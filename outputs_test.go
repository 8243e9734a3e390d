package lmscore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/scheduler"
)

// outputsOf fakes the outputs of tokens[from:]: token j's log-probability
// is -j, its top list {j: -j, ...}.
func outputsOf(tokens []int32, from, topN int) ([]float32, [][]TokenLogProb) {
	var lps []float32
	var tops [][]TokenLogProb
	for j := from; j < len(tokens); j++ {
		lps = append(lps, float32(-j))
		top := make([]TokenLogProb, topN)
		for k := range top {
			top[k] = TokenLogProb{Token: int32(j + k), LogProb: float32(-j - k)}
		}
		tops = append(tops, top)
	}
	return lps, tops
}

func newTestStore(t *testing.T, blockSize int, budget int64) *OutputStore {
	t.Helper()
	s, err := NewOutputStore("test", blockSize, budget)
	require.NoError(t, err)
	return s
}

func TestOutputStoreLookupStore(t *testing.T) {
	c := newTestStore(t, 4, 1<<20)
	p := []int32{1, 10, 11, 12, 13, 14, 15, 16, 17, 18} // blocks [0,4) [4,8); 8, 9 partial
	assert.Empty(t, c.Lookup(p, 0))
	lps, tops := outputsOf(p, 1, 2)
	c.Store(p, 1, lps, tops, 2)

	got := c.Lookup(p, 2)
	require.Len(t, got, 2, "the two full blocks")
	for j := 1; j < 8; j++ {
		e := got[j/4]
		assert.Equal(t, float32(-j), e.LogProb(j%4))
		assert.Equal(t, int32(j), e.TopLogProbs(j % 4)[0].Token)
	}
	assert.Empty(t, c.Lookup(p, 3), "a top-3 request cannot use top-2 entries")

	// Another prompt sharing only the first block.
	q := []int32{1, 10, 11, 12, 99, 14, 15, 16, 17}
	assert.Len(t, c.Lookup(q, 1), 1)
	// A prompt with the second block's tokens but another first block:
	// the chain keeps it apart.
	r := []int32{2, 10, 11, 12, 13, 14, 15, 16}
	assert.Empty(t, c.Lookup(r, 0))

	// Storing the rest of q after its cached block chains onto it.
	lps, tops = outputsOf(q, 4, 1)
	c.Store(q, 4, lps, tops, 1)
	got = c.Lookup(q, 1)
	require.Len(t, got, 2)
	assert.Equal(t, float32(-5), got[1].LogProb(1))
	st := c.Stats()
	assert.Equal(t, 3, st.Blocks)
	assert.Equal(t, int64(3), st.Stores)
}

func TestOutputStoreEviction(t *testing.T) {
	// Room for 3 blocks of 4 with top 0, not 4.
	budget := 3*outputBlockBytes(4, 0) + outputBlockBytes(4, 0)/2
	c := newTestStore(t, 4, budget)
	var prompts [][]int32
	for i := range 5 {
		p := []int32{1, int32(100 + i), 2, 3}
		prompts = append(prompts, p)
		lps, tops := outputsOf(p, 1, 0)
		c.Store(p, 1, lps, tops, 0)
		if i == 2 {
			// Touch the first: it becomes the most recently used.
			require.Len(t, c.Lookup(prompts[0], 0), 1)
		}
	}
	st := c.Stats()
	assert.Equal(t, 3, st.Blocks)
	assert.LessOrEqual(t, st.Bytes, budget)
	assert.Equal(t, int64(2), st.Evicted)
	assert.Len(t, c.Lookup(prompts[0], 0), 1, "recently used: kept")
	assert.Empty(t, c.Lookup(prompts[1], 0), "least recently used: evicted")
	assert.Empty(t, c.Lookup(prompts[2], 0))
	assert.Len(t, c.Lookup(prompts[4], 0), 1)
	// The slots of evicted blocks are reused: never more than the three kept
	// and the one being stored.
	assert.Len(t, c.slots, 4)
}

func TestOutputStoreCollision(t *testing.T) {
	c := newTestStore(t, 2, 1<<20)
	p := []int32{1, 2, 3, 4}
	lps, tops := outputsOf(p, 1, 0)
	c.Store(p, 1, lps, tops, 0)
	// Forge a colliding key: another block stored under p's first key.
	key := scheduler.AppendBlockHashes(nil, c.namespace, p[:2], 2)[0]
	c.slots[c.index[key]].block.tokens = []int32{1, 7}
	assert.Empty(t, c.Lookup(p, 0), "an entry whose tokens differ is never used")
	// And one whose parent differs, for p's second block.
	c.slots[c.index[key]].block.tokens = []int32{1, 2}
	require.Len(t, c.Lookup(p, 0), 2)
	key = scheduler.AppendBlockHashes(nil, c.namespace, p, 2)[1]
	c.slots[c.index[key]].block.parent = scheduler.BlockHash{Hi: 1, Lo: 2}
	assert.Len(t, c.Lookup(p, 0), 1, "an entry whose parent differs is never used")
}

func TestOutputStoreOffAndNil(t *testing.T) {
	var none *OutputStore
	none.Store([]int32{1, 2}, 1, []float32{-1}, nil, 0)
	assert.Empty(t, none.Lookup([]int32{1, 2}, 0))
	assert.Equal(t, OutputStoreStats{}, none.Stats())

	off := newTestStore(t, 2, 0)
	off.Store([]int32{1, 2}, 1, []float32{-1}, nil, 0)
	assert.Empty(t, off.Lookup([]int32{1, 2}, 0))

	_, err := NewOutputStore("test", 0, 1)
	assert.Error(t, err)
}

// TestOutputStoreKeysAreThePlannersHashes: the blocks a model's Score call
// caches in its KV pool are the blocks its OutputStore keys by, for block
// sizes that do and do not divide the prompt; another model's namespace
// names other blocks.
func TestOutputStoreKeysAreThePlannersHashes(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 5, NVocab: 61, NCtx: 128})
	rng := rand.New(rand.NewPCG(2, 3))
	for _, bs := range []int{1, 16, 64} {
		for _, n := range []int{17, 37, 100} {
			t.Run(fmt.Sprintf("bs=%d/n=%d", bs, n), func(t *testing.T) {
				m := openTest(t, weights, Options{Threads: 1, BlockSize: bs})
				prompt := make([]int32, n)
				for i := range prompt {
					prompt[i] = rng.Int32N(61)
				}
				// Echo scoring's shape: the first token is the context of the rest.
				res, _, err := m.Score(context.Background(), []Request{{ContextTokens: prompt[:1], ContinuationTokens: prompt[1:]}}, ScoreOptions{TopN: 1})
				require.NoError(t, err)

				store, err := m.NewOutputStore(0, 1<<20)
				require.NoError(t, err)
				assert.Equal(t, bs, store.BlockSize())
				store.Store(prompt, 1, res[0].TokenLogProbs, res[0].TopLogProbs, 1)
				// The planner's inputs end before the last token, whose K/V
				// no position reads: a block ending there is stored, not cached.
				cachedBlocks := (n - 1) / bs
				// A block of only the first token, which has no output, is
				// not stored (so with blocks of 1 token nothing is found).
				firstStored := 0
				if bs == 1 {
					firstStored = 1
				}
				require.Equal(t, n/bs-firstStored, store.Stats().Blocks)

				pool := map[scheduler.BlockHash]bool{}
				for b := int32(1); b < int32(m.pool.NumBlocks()); b++ {
					if h := m.pool.Hash(b); !h.IsZero() {
						pool[h] = true
					}
				}
				assert.Len(t, pool, cachedBlocks)
				for i := firstStored; i < cachedBlocks; i++ {
					_, ok := store.index[store.slotKey(i, prompt)]
					assert.True(t, ok, "block %d stored", i)
					assert.True(t, pool[store.slotKey(i, prompt)], "block %d: the store's key is the KV pool's hash", i)
				}

				other, err := NewOutputStore("another model", bs, 1<<20)
				require.NoError(t, err)
				for i := range cachedBlocks {
					assert.False(t, pool[other.slotKey(i, prompt)], "block %d: another namespace names another block", i)
				}

				if bs == 1 {
					return
				}
				got := store.Lookup(prompt, 1)
				require.Len(t, got, n/bs)
				for j := 1; j < len(got)*bs; j++ {
					assert.Equal(t, res[0].TokenLogProbs[j-1], got[j/bs].LogProb(j%bs))
					assert.Equal(t, res[0].TopLogProbs[j-1], got[j/bs].TopLogProbs(j%bs))
				}
			})
		}
	}
}

// slotKey is the key of the prompt's block i (test helper).
func (s *OutputStore) slotKey(i int, prompt []int32) scheduler.BlockHash {
	return scheduler.AppendBlockHashes(nil, s.namespace, prompt, s.blockSize)[i]
}
