package lmscore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

func TestCachingComputesEachUniqueTokenOnce(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	reqs := randomRequests(11, 97, 80)
	m := openTest(t, weights, Options{Threads: 2})

	_, off, err := m.Score(context.Background(), reqs, ScoreOptions{NoCache: true})
	require.NoError(t, err)
	assert.Equal(t, off.TotalTokens, off.ComputedTokens, "no cache computes every input token")

	_, on, err := m.Score(context.Background(), reqs, ScoreOptions{})
	require.NoError(t, err)
	assert.Equal(t, off.TotalTokens, on.TotalTokens)
	assert.Less(t, on.UniqueTokens, on.TotalTokens, "the requests share prefixes")
	// Every unique token once; fully cached contexts still rerun their last
	// position for its logits, which is all that may exceed UniqueTokens.
	assert.GreaterOrEqual(t, on.ComputedTokens, on.UniqueTokens)
	assert.Equal(t, int64(0), on.RecomputedTokens)

	_, warm, err := m.Score(context.Background(), reqs, ScoreOptions{})
	require.NoError(t, err)
	// Only full blocks are cached (as in vLLM): partial tails are computed again.
	assert.Less(t, warm.ComputedTokens, on.ComputedTokens, "a second call reads the prefix cache")
	assert.Positive(t, warm.ReusedTokens)
}

func TestScoreStreamsResultsAsTheyComplete(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	reqs := randomRequests(12, 97, 50)
	m := openTest(t, weights, Options{Threads: 2, MaxBatchTokens: 64})
	var streamed []Result
	var steps int
	res, st, err := m.Score(context.Background(), reqs, ScoreOptions{
		OnResult:   func(r Result) error { streamed = append(streamed, r); return nil },
		OnProgress: func(Progress) { steps++ },
	})
	require.NoError(t, err)
	require.Len(t, streamed, len(reqs))
	assert.Equal(t, st.Steps, steps)
	assert.Greater(t, steps, 1)
	seen := map[int]bool{}
	for _, r := range streamed {
		assert.False(t, seen[r.Index], "request %d delivered twice", r.Index)
		seen[r.Index] = true
		assert.Equal(t, res[r.Index].TokenLogProbs, r.TokenLogProbs)
		assert.Equal(t, res[r.Index].LogProb, r.LogProb)
	}
}

func TestScoreResultFields(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 4, NVocab: 50, NCtx: 16})
	m := openTest(t, weights, Options{Threads: 1})
	long := make([]int32, 20)
	for i := range long {
		long[i] = int32(1 + i)
	}
	reqs := []Request{
		{ID: "a", ContextTokens: []int32{1, 2, 3}, ContinuationTokens: []int32{4, 5}},
		{ID: "one-token-context", ContextTokens: []int32{2}, ContinuationTokens: []int32{7}},
		{ID: "long", ContextTokens: long, ContinuationTokens: []int32{9, 10}},
	}
	res, _, err := m.Score(context.Background(), reqs, ScoreOptions{TopN: 3})
	require.NoError(t, err)
	assert.Equal(t, 2, res[0].NTokens)
	assert.InDelta(t, float64(res[0].TokenLogProbs[0])+float64(res[0].TokenLogProbs[1]), res[0].LogProb, 0)
	assert.False(t, res[0].Truncated)
	assert.True(t, res[2].Truncated, "22 tokens do not fit a 16-token window")
	for _, r := range res {
		require.Len(t, r.TopLogProbs, r.NTokens)
		for j, top := range r.TopLogProbs {
			require.Len(t, top, 3)
			assert.GreaterOrEqual(t, top[0].LogProb, top[1].LogProb)
			assert.GreaterOrEqual(t, top[0].LogProb, r.TokenLogProbs[j], "the best beats the target")
			assert.LessOrEqual(t, top[0].LogProb, float32(0))
		}
	}
	// Greedy continuation: the top-1 token at each position.
	greedy := []int32{res[0].TopLogProbs[0][0].Token}
	res2, _, err := m.Score(context.Background(), []Request{{ContextTokens: []int32{1, 2, 3}, ContinuationTokens: greedy}}, ScoreOptions{})
	require.NoError(t, err)
	assert.True(t, res2[0].IsGreedy)
	assert.Equal(t, res[0].TopLogProbs[0][0].LogProb, res2[0].TokenLogProbs[0])
}

func TestScoreRejectsBadRequests(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 4, NVocab: 50, NCtx: 64})
	m := openTest(t, weights, Options{Threads: 1})
	cases := map[string]Request{
		"outside the vocabulary of 50":   {ContextTokens: []int32{1}, ContinuationTokens: []int32{50}},
		"token id -1":                    {ContextTokens: []int32{-1}, ContinuationTokens: []int32{5}},
		"empty continuation":             {Context: "hello"},
		"text requests need a tokenizer": {Context: "hello", Continuation: " world"},
		"no BOS or EOS token":            {ContinuationTokens: []int32{5}},
	}
	for want, r := range cases {
		r.ID = "bad"
		_, _, err := m.Score(context.Background(), []Request{{ContextTokens: []int32{1}, ContinuationTokens: []int32{2}}, r}, ScoreOptions{})
		var re *RequestError
		require.ErrorAs(t, err, &re, want)
		assert.Equal(t, 1, re.Index)
		assert.Contains(t, err.Error(), `request "bad" (#1)`)
		assert.Contains(t, err.Error(), want)
		assert.ErrorContains(t, m.Check(r), want)
	}
}

func TestScoreCancellationLeavesModelUsable(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 6, NVocab: 97, NCtx: 128})
	reqs := randomRequests(13, 97, 60)
	m := openTest(t, weights, Options{Threads: 2, MaxBatchTokens: 32})
	want := scoreAll(t, m, reqs, ScoreOptions{NoCache: true})

	ctx, cancel := context.WithCancel(context.Background())
	var delivered int
	_, _, err := m.Score(ctx, reqs, ScoreOptions{OnResult: func(Result) error {
		delivered++
		if delivered == 5 {
			cancel()
		}
		return nil
	}})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, m.CacheStats().BlocksUsed, "an abandoned plan releases every block")
	requireBitwise(t, want, scoreAll(t, m, reqs, ScoreOptions{}), "after a cancelled call")

	stop := errors.New("stop here")
	_, _, err = m.Score(context.Background(), reqs, ScoreOptions{OnResult: func(Result) error { return stop }})
	require.ErrorIs(t, err, stop)
	requireBitwise(t, want, scoreAll(t, m, reqs, ScoreOptions{}), "after a callback error")
}

func TestKVBudgetTooSmallForOneRequest(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 6, NVocab: 97, NCtx: 128})
	m := openTest(t, weights, Options{Threads: 1, BlockSize: 4, KVBlocks: 4})
	long := make([]int32, 60)
	for i := range long {
		long[i] = 5
	}
	_, _, err := m.Score(context.Background(), []Request{{ID: "big", ContextTokens: long, ContinuationTokens: []int32{1}}}, ScoreOptions{})
	var be *BudgetError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 15*m.blockBytes, be.Need, "60 tokens in blocks of 4")
	assert.Contains(t, err.Error(), `request "big"`)
	assert.Contains(t, err.Error(), "KV blocks")
	// Still usable for what fits.
	_, _, err = m.Score(context.Background(), []Request{{ContextTokens: []int32{1, 2}, ContinuationTokens: []int32{3}}}, ScoreOptions{})
	require.NoError(t, err)
}

func TestOpenRejectsBadOptions(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 6})
	for want, o := range map[string]Options{
		`unknown backend "tpu"`:   {Backend: "tpu"},
		`unknown precision "fp8"`: {Precision: "fp8"},
		"block size 0: want 1":    {BlockSize: -1},
		"holds no block":          {KVMemory: 10},
	} {
		if o.BlockSize == -1 {
			o.BlockSize = 0
			o.BlockSize--
		}
		_, err := open(weights, "t", o)
		if want == "block size 0: want 1" {
			assert.ErrorContains(t, err, "block size -1")
			continue
		}
		assert.ErrorContains(t, err, want)
	}
	_, err := open(&model.Model{Config: weights.Config}, "t", Options{KVMemory: 1 << 20})
	assert.Error(t, err, "a model without weights does not load")
}

func TestNormBytesLeaveOutTheDelimiter(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 4, NVocab: 50, NCtx: 64})
	m := openTest(t, weights, Options{Threads: 1})
	res, _, err := m.Score(context.Background(), []Request{
		{ContextTokens: []int32{1}, ContinuationTokens: []int32{2, 3}, Continuation: " Paris"},
	}, ScoreOptions{})
	require.NoError(t, err)
	assert.Equal(t, 6, res[0].NBytes)
	assert.Equal(t, 5, res[0].NormBytes, "lm-eval-harness divides by len(choice), without the space")
}

// TestRetainCache: the same requests scored twice. Without RetainCache the
// pool touches no more blocks than one call holds at once, and the second
// call recomputes; with it the pool grows to keep the prefixes and the
// second call reuses them. The scores are the same bits either way.
func TestRetainCache(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 8, NVocab: 97, NCtx: 128})
	reqs := randomRequests(21, 97, 60)
	var first []Result
	var secondComputed [2]int64 // without, with RetainCache
	for i, retain := range []bool{false, true} {
		m := openTest(t, weights, Options{Threads: 2, MaxBatchTokens: 64, RetainCache: retain})
		a, sa, err := m.Score(context.Background(), reqs, ScoreOptions{})
		require.NoError(t, err)
		touched := m.CacheStats().BlocksTouched
		b, sb, err := m.Score(context.Background(), reqs, ScoreOptions{})
		require.NoError(t, err)
		requireBitwise(t, a, b, "second call")
		if first == nil {
			first = a
		}
		requireBitwise(t, first, a, "retain and not")
		secondComputed[i] = sb.ComputedTokens
		if retain {
			assert.Greater(t, sb.ReusedTokens, sa.ReusedTokens, "the second call reuses the retained prefixes")
			assert.Less(t, sb.ComputedTokens, sa.ComputedTokens)
			assert.Less(t, sb.ComputedTokens, secondComputed[0], "retaining saves work over not")
			assert.Greater(t, m.CacheStats().BlocksTouched, sa.PeakKVBlocks, "the pool grew past the live mark to retain")
		} else {
			assert.Equal(t, touched, sa.PeakKVBlocks, "touched blocks are the live high-water mark")
			assert.Equal(t, touched, m.CacheStats().BlocksTouched, "a second call of the same work maps nothing more")
		}
	}
}
