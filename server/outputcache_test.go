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

// The store's own tests (lookup, store, eviction, collisions) are the root
// package's outputs_test.go; these check how the server uses it.

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
