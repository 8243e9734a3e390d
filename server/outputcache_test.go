package server

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/lmscore/lmscore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outputsOf fakes the outputs of tokens[from:]: token j's log-probability
// is -j, its top list {j: -j, ...}.
func outputsOf(tokens []int32, from, topN int) ([]float32, [][]lmscore.TokenLogProb) {
	var lps []float32
	var tops [][]lmscore.TokenLogProb
	for j := from; j < len(tokens); j++ {
		lps = append(lps, float32(-j))
		top := make([]lmscore.TokenLogProb, topN)
		for k := range top {
			top[k] = lmscore.TokenLogProb{Token: int32(j + k), LogProb: float32(-j - k)}
		}
		tops = append(tops, top)
	}
	return lps, tops
}

func TestOutputCacheLookupStore(t *testing.T) {
	c := newOutputCache(4, 1<<20)
	p := []int32{1, 10, 11, 12, 13, 14, 15, 16, 17, 18} // blocks [0,4) [4,8); 8, 9 partial
	assert.Empty(t, c.lookup(p, 0))
	lps, tops := outputsOf(p, 1, 2)
	c.store(p, 1, lps, tops, 2)

	got := c.lookup(p, 2)
	require.Len(t, got, 2, "the two full blocks")
	for j := 1; j < 8; j++ {
		e := got[j/4]
		assert.Equal(t, float32(-j), e.logprobs[j%4])
		assert.Equal(t, int32(j), e.top[j%4][0].Token)
	}
	assert.Empty(t, c.lookup(p, 3), "a top-3 request cannot use top-2 entries")

	// Another prompt sharing only the first block.
	q := []int32{1, 10, 11, 12, 99, 14, 15, 16, 17}
	assert.Len(t, c.lookup(q, 1), 1)
	// A prompt with the second block's tokens but another first block:
	// the chain keeps it apart.
	r := []int32{2, 10, 11, 12, 13, 14, 15, 16}
	assert.Empty(t, c.lookup(r, 0))

	// Storing the rest of q after its cached block chains onto it.
	lps, tops = outputsOf(q, 4, 1)
	c.store(q, 4, lps, tops, 1)
	got = c.lookup(q, 1)
	require.Len(t, got, 2)
	assert.Equal(t, float32(-5), got[1].logprobs[1])
	st := c.stats()
	assert.Equal(t, 3, st.Blocks)
	assert.Equal(t, int64(3), st.Stores)
}

func TestOutputCacheEviction(t *testing.T) {
	// Each block of 4 with top 0 takes 4*8+64 = 96 bytes: room for 3.
	c := newOutputCache(4, 300)
	var prompts [][]int32
	for i := range 5 {
		p := []int32{1, int32(100 + i), 2, 3}
		prompts = append(prompts, p)
		lps, tops := outputsOf(p, 1, 0)
		c.store(p, 1, lps, tops, 0)
		if i == 2 {
			// Touch the first: it becomes the most recently used.
			require.Len(t, c.lookup(prompts[0], 0), 1)
		}
	}
	st := c.stats()
	assert.Equal(t, 3, st.Blocks)
	assert.LessOrEqual(t, st.Bytes, int64(300))
	assert.Equal(t, int64(2), st.Evicted)
	assert.Len(t, c.lookup(prompts[0], 0), 1, "recently used: kept")
	assert.Empty(t, c.lookup(prompts[1], 0), "least recently used: evicted")
	assert.Empty(t, c.lookup(prompts[2], 0))
	assert.Len(t, c.lookup(prompts[4], 0), 1)
}

func TestOutputCacheCollision(t *testing.T) {
	c := newOutputCache(2, 1<<20)
	p := []int32{1, 2, 3, 4}
	lps, tops := outputsOf(p, 1, 0)
	c.store(p, 1, lps, tops, 0)
	// Forge a colliding key: another block stored under p's first key.
	key := c.blockKey(0, p[:2])
	c.entries[key].tokens = []int32{1, 7}
	assert.Empty(t, c.lookup(p, 0), "an entry whose tokens differ is never used")
}

// TestOutputCacheEndToEnd: a prompt whose prefix was echoed before is
// answered with the same numbers, while the model is asked only for the
// blocks after the cached ones; the numbers equal a server with the cache
// off.
func TestOutputCacheEndToEnd(t *testing.T) {
	fake := newFakeModel()
	var mu sync.Mutex
	var seen [][2]int // (context, continuation) lengths the model was asked for
	fake.onCall = func(n int, _ lmscore.ScoreOptions) {}
	wrapped := &recordingModel{fakeModel: fake, record: func(reqs []lmscore.Request) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range reqs {
			seen = append(seen, [2]int{len(r.ContextTokens), len(r.ContinuationTokens)})
		}
	}}
	ts := startServer(t, wrapped, Config{OutputBlockSize: 16})
	off := startServer(t, newFakeModel(), Config{OutputCacheBytes: -1})

	prefix := fake.tokens("A long few-shot prefix, shared by every question: Q: 1+1? A: 2.", true) // 64 tokens with BOS
	require.Len(t, prefix, 64)
	for i, q := range []string{" Q: 2+2? A: 4", " Q: 3+3? A: 6", " Q: 3+3? A: 6"} {
		p := slices.Concat(prefix, fake.tokens(q, false))
		body := map[string]any{"model": "fake", "prompt": p, "echo": true, "max_tokens": 1, "logprobs": 2}
		got := ts.complete(t, body)
		want := off.complete(t, body)
		assert.Equal(t, want.Choices, got.Choices, "request %d: the cache changes no number", i)
	}
	assert.Equal(t, [][2]int{{1, 77}, {64, 14}, {64, 14}}, seen,
		"the first request scores everything; later ones only what follows the cached 64-token prefix (the 13-token question is no full block)")

	// Echo without generation of a prompt made only of cached blocks needs
	// no model call at all.
	calls := fake.calls.Load()
	got := ts.complete(t, map[string]any{"model": "fake", "prompt": prefix, "echo": true, "max_tokens": 0, "logprobs": 1})
	want := off.complete(t, map[string]any{"model": "fake", "prompt": prefix, "echo": true, "max_tokens": 0, "logprobs": 1})
	assert.Equal(t, want.Choices, got.Choices)
	assert.Equal(t, calls, fake.calls.Load(), "served from the output cache alone")

	m := ts.metrics(t)
	assert.Equal(t, float64(3*63), m["lmscore_output_cache_hits_total"], "positions 1..63 of the prefix, for each request after the first")
	assert.Equal(t, float64(77+77+77+63), m["lmscore_tokens_total"], "what a cacheless engine would run")
	assert.Positive(t, m["lmscore_output_cache_blocks"])
}

// recordingModel passes calls to the fake and records the requests.
type recordingModel struct {
	*fakeModel
	record func([]lmscore.Request)
}

func (r *recordingModel) Score(ctx context.Context, reqs []lmscore.Request, opts lmscore.ScoreOptions) ([]lmscore.Result, lmscore.Stats, error) {
	r.record(reqs)
	return r.fakeModel.Score(ctx, reqs, opts)
}
