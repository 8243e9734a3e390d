package server

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cacheAcrossRequests sends n requests one at a time (each waits for the
// previous answer, so no two are ever batched together), all sharing a
// prefixLen-token prefix and each with its own suffixLen-token question, and
// checks in /metrics that the prefix was computed once: after the first
// request, each later one computes at most its own suffix plus the partial
// block at the end of the prefix (only full blocks are cached).
func cacheAcrossRequests(t *testing.T, model Scorer, blockSize, prefixLen, suffixLen, n int) {
	info := model.Info()
	require.GreaterOrEqual(t, info.NCtx, prefixLen+suffixLen+1, "the model's window must hold the prompt")
	ts := startServer(t, model, Config{})
	rng := rand.New(rand.NewPCG(7, 9))
	randomIDs := func(k int) []int32 {
		out := make([]int32, k)
		for i := range out {
			out[i] = 3 + rng.Int32N(int32(info.NVocab-3)) // past the special tokens
		}
		return out
	}
	prefix := append([]int32{info.BOS}, randomIDs(prefixLen-1)...)
	send := func() {
		p := append(append([]int32{}, prefix...), randomIDs(suffixLen)...)
		// lm-eval's shape: echo, max_tokens 1, logprobs 1.
		resp := ts.complete(t, map[string]any{"model": ts.srv.Name(), "prompt": [][]int32{p}, "echo": true, "max_tokens": 1, "logprobs": 1, "temperature": 0})
		require.Len(t, resp.Choices[0].Logprobs.TokenLogprobs, len(p)+1)
	}
	before := ts.metrics(t)
	send()
	first := ts.metrics(t)
	for range n - 1 {
		send()
	}
	after := ts.metrics(t)

	total := after["lmscore_tokens_total"] - before["lmscore_tokens_total"]
	computed := after["lmscore_tokens_computed_total"] - before["lmscore_tokens_computed_total"]
	reused := after["lmscore_tokens_reused_total"] - before["lmscore_tokens_reused_total"]
	firstComputed := first["lmscore_tokens_computed_total"] - before["lmscore_tokens_computed_total"]
	laterComputed := computed - firstComputed
	t.Logf("%d requests, %d-token prefix: tokens total %.0f, computed %.0f (first request %.0f, the %d others %.0f), reused %.0f, hit ratio %.4f",
		n, prefixLen, total, computed, firstComputed, n-1, laterComputed, reused, after["lmscore_cache_hit_ratio"])

	promptLen := prefixLen + suffixLen
	assert.Equal(t, float64(n*promptLen), total, "every prompt token is an input (the generated-token slot is a target)")
	assert.GreaterOrEqual(t, firstComputed, float64(prefixLen), "the first request computes the prefix")
	perLater := suffixLen + blockSize
	assert.LessOrEqual(t, laterComputed, float64((n-1)*perLater),
		"after the first request, each computes at most its suffix and the prefix's partial last block: the prefix is computed once")
	assert.GreaterOrEqual(t, reused, float64((n-1)*(prefixLen/blockSize*blockSize-1)), "each later request reuses the prefix's full blocks (their last token runs again for its logits)")
	assert.Equal(t, float64(n), after[`lmscore_score_calls_total`]-before[`lmscore_score_calls_total`], "one at a time: no batching helped")
	assert.Zero(t, model.CacheStats().BlocksUsed, "no blocks held between requests")
}

func TestCacheAcrossRequestsFake(t *testing.T) {
	cacheAcrossRequests(t, newFakeModel(), 16, 1000, 12, 200)
}
