package scheduler

import (
	"math/rand/v2"
	"testing"
)

// metaICLRequests generates a MetaICL-shaped workload: per task, 16
// demonstrations of about 60 tokens joined by a newline token, then
// questions (20-80 tokens) each scored against 3 options of 1-5 tokens
// shared by the task. The options of one question share its context slice,
// as a scorer's requests would.
func metaICLRequests(seed uint64, tasks, questions int) []Request {
	rng := rand.New(rand.NewPCG(seed, 16))
	const vocab, newline = 32000, 13
	toks := func(n int) []int32 {
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(100 + rng.IntN(vocab-100))
		}
		return s
	}
	var reqs []Request
	for task := 0; task < tasks; task++ {
		var demos []int32
		for d := 0; d < 16; d++ {
			demos = append(demos, toks(40+rng.IntN(41))...)
			demos = append(demos, newline)
		}
		options := [][]int32{toks(1 + rng.IntN(5)), toks(1 + rng.IntN(5)), toks(1 + rng.IntN(5))}
		for q := 0; q < questions; q++ {
			ctx := make([]int32, 0, len(demos)+81)
			ctx = append(append(append(ctx, demos...), toks(20+rng.IntN(61))...), newline)
			for _, opt := range options {
				reqs = append(reqs, Request{Context: ctx, Continuation: opt})
			}
		}
	}
	return reqs
}

// TestMetaICL: on the full workload (20 tasks x 1000 questions x 3 options),
// a loose budget computes exactly the unique tokens, and a KV budget of 1/20
// of the unique tokens' blocks still completes. Both plans are executed by
// the simulator. -short runs 100 questions per task.
func TestMetaICL(t *testing.T) {
	questions := 1000
	if testing.Short() {
		questions = 100
	}
	reqs := metaICLRequests(1, 20, questions)
	const bs = 16
	opts := Options{MaxBatchTokens: 4096, Namespace: "metaicl"}
	pr, err := probe(reqs, bs, opts)
	if err != nil {
		t.Fatal(err)
	}
	uniqueBlocks := int((pr.UniqueTokens + bs - 1) / bs)
	for _, tc := range []struct {
		name    string
		kv      int
		minFill float64 // of the token budget, averaged over the steps
	}{
		// Room for the whole trie: nothing is ever evicted.
		{"loose", 2 * uniqueBlocks, 0.95},
		{"1/20", uniqueBlocks / 20, 0.9},
		// The least memory with which every unique token is computed once:
		// one path at a time, so packing suffers.
		{"no-recompute minimum", pr.KVBlocksNoRecompute, 0},
	} {
		pool, err := NewBlockPool(tc.kv, bs)
		if err != nil {
			t.Fatal(err)
		}
		sim := newSimulator(pool)
		sim.fullChain = false // O(depth) per segment is too slow here; the writes and the segment's own reads are still checked
		res, err := sim.run(pool, reqs, opts, false)
		if err != nil {
			t.Fatalf("%s (kv %d): %v", tc.name, tc.kv, err)
		}
		s := res.stats
		t.Logf("%s: kv=%d requests=%d total=%d unique=%d computed=%d recomputed=%d copied=%d in-place=%d steps=%d (%.0f tokens/step) segments=%d peak=%d evictions=%d",
			tc.name, tc.kv, s.Requests, s.TotalTokens, s.UniqueTokens, s.PlannedComputedTokens, s.RecomputedTokens,
			s.CopiedBlocks, s.InPlaceBlocks, s.Steps, float64(s.PlannedComputedTokens)/float64(s.Steps), s.Segments, s.PeakLiveBlocks, s.Evictions)
		if tc.kv >= pr.KVBlocksNoRecompute && s.PlannedComputedTokens != s.UniqueTokens {
			t.Fatalf("loose budget: planned_computed_tokens %d != unique_tokens %d", s.PlannedComputedTokens, s.UniqueTokens)
		}
		if s.PeakLiveBlocks > tc.kv-1 {
			t.Fatalf("peak %d over budget %d", s.PeakLiveBlocks, tc.kv-1)
		}
		// Packing: with memory to spare, steps are only short of the token
		// budget where dependencies forced one closed.
		if fill := float64(s.PlannedComputedTokens) / float64(s.Steps*opts.MaxBatchTokens); fill < tc.minFill {
			t.Errorf("%s: steps only %.0f%% full on average", tc.name, 100*fill)
		}
	}
}
