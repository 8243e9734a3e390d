package lmscore

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// randomRequests draws token requests that share prefixes at every level:
// a few "task" prefixes, several questions per task, several choices per
// question, with lengths that are not multiples of any block size.
func randomRequests(seed uint64, vocab, n int) []Request {
	rng := rand.New(rand.NewPCG(seed, 99))
	toks := func(k int) []int32 {
		t := make([]int32, k)
		for i := range t {
			t[i] = int32(1 + rng.IntN(vocab-1))
		}
		return t
	}
	var reqs []Request
	tasks := [][]int32{toks(37), toks(17), toks(1)}
	for len(reqs) < n {
		task := tasks[rng.IntN(len(tasks))]
		q := append(append([]int32{}, task...), toks(1+rng.IntN(23))...)
		for c := 0; c < 1+rng.IntN(4) && len(reqs) < n; c++ {
			reqs = append(reqs, Request{ContextTokens: q, ContinuationTokens: toks(1 + rng.IntN(6))})
		}
	}
	return reqs
}

// minKVBlocks asks the planner for the smallest KV budget (in blocks, the
// null block included) with which the requests can be scored.
func minKVBlocks(t *testing.T, reqs []Request, blockSize, maxLen int) int {
	t.Helper()
	sreqs := make([]scheduler.Request, len(reqs))
	for i, r := range reqs {
		sreqs[i] = scheduler.Request{Context: r.ContextTokens, Continuation: r.ContinuationTokens}
	}
	st, err := scheduler.Plan(nil, sreqs, scheduler.Options{BlockSize: blockSize, MaxBatchTokens: 2048, MaxLen: maxLen})
	require.NoError(t, err)
	require.Greater(t, st.KVBlocksNoRecompute, st.KVBlocksMin, "the minimum budget must force recomputation")
	return st.KVBlocksMin
}

func openTest(t *testing.T, m *model.Model, o Options) *Model {
	t.Helper()
	if o.KVMemory == 0 && o.KVBlocks == 0 {
		o.KVMemory = 16 << 20 // the 1 GiB default is for real models
	}
	sm, err := open(m, "test", o)
	require.NoError(t, err)
	t.Cleanup(func() { sm.Close() })
	return sm
}

func scoreAll(t *testing.T, m *Model, reqs []Request, so ScoreOptions) []Result {
	t.Helper()
	res, _, err := m.Score(context.Background(), reqs, so)
	require.NoError(t, err)
	require.Len(t, res, len(reqs))
	return res
}

// requireBitwise compares every per-token log-probability bit for bit.
func requireBitwise(t *testing.T, want, got []Result, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		require.Equal(t, want[i].TokenLogProbs, got[i].TokenLogProbs, "%s: request %d", what, i)
		require.Equal(t, want[i].LogProb, got[i].LogProb, "%s: request %d", what, i)
		require.Equal(t, want[i].IsGreedy, got[i].IsGreedy, "%s: request %d", what, i)
	}
}

// metamorphicModels are the models the metamorphic suite runs on: one per
// dense family of the first version, one with sliding-window layers
// (Gemma 3's mix of local and global layers, a window of 6 that the
// requests' lengths of up to 40 tokens go far past) and one mixture of
// experts (Qwen2-MoE: top-2 of 4 with a gated shared expert).
func metamorphicModels() []struct {
	name    string
	weights *model.Model
	seed    uint64
} {
	type entry = struct {
		name    string
		weights *model.Model
		seed    uint64
	}
	var out []entry
	for _, arch := range []model.Arch{model.ArchLlama, model.ArchQwen2, model.ArchGPT2, model.ArchQwen3} {
		out = append(out, entry{arch.String(), testmodel.Must(testmodel.Options{Arch: arch, Seed: 5, NVocab: 97, NCtx: 128}), uint64(arch)})
	}
	swa := baseConfig(model.ArchGemma3, model.RopeNeox)
	swa.NVocab, swa.NCtxTrain = 97, 128
	swa.NSWA, swa.SWALayers = 6, []bool{true, true, false}
	swa.RopeFreqBaseSWA = 1000
	w, err := model.RandomWeights(swa, 5, model.TypeF32)
	if err != nil {
		panic(err)
	}
	out = append(out, entry{"gemma3-sliding-window", &model.Model{Config: swa, Weights: *w}, 21})
	moe := testmodel.MustMoE(model.ArchQwen2MoE, testmodel.Options{Seed: 5, NVocab: 97, NCtx: 128}, testmodel.Experts{N: 4, Used: 2})
	out = append(out, entry{"qwen2moe-experts", moe, 22})
	return out
}

// requireCachedBitwise: m, with its prefix cache, scores reqs exactly as
// want (their scores without the cache) on a cold and on a warm cache, and
// with the requests reordered by perm.
func requireCachedBitwise(t *testing.T, m *Model, reqs []Request, want []Result, perm []int) {
	t.Helper()
	requireBitwise(t, want, scoreAll(t, m, reqs, ScoreOptions{}), "cache on vs off")
	// The second call reads the prefix cache the first one filled.
	requireBitwise(t, want, scoreAll(t, m, reqs, ScoreOptions{}), "warm cache")
	shuffled := make([]Request, len(reqs))
	for i, p := range perm {
		shuffled[i] = reqs[p]
	}
	got := scoreAll(t, m, shuffled, ScoreOptions{})
	unshuffled := make([]Result, len(reqs))
	for i, p := range perm {
		unshuffled[p] = got[i]
	}
	requireBitwise(t, want, unshuffled, "shuffled")
}

// requireOptionsBitwise: a model opened with each of opts scores reqs
// exactly as want.
func requireOptionsBitwise(t *testing.T, weights *model.Model, reqs []Request, want []Result, what string, opts ...Options) {
	t.Helper()
	for _, o := range opts {
		requireBitwise(t, want, scoreAll(t, openTest(t, weights, o), reqs, ScoreOptions{}), what)
	}
}

func TestMetamorphicCPU(t *testing.T) {
	for _, mm := range metamorphicModels() {
		t.Run(mm.name, func(t *testing.T) {
			weights := mm.weights
			reqs := randomRequests(mm.seed, 97, 60)
			base := openTest(t, weights, Options{Threads: 2, NoCache: true})
			want := scoreAll(t, base, reqs, ScoreOptions{})

			cached := openTest(t, weights, Options{Threads: 2})
			requireCachedBitwise(t, cached, reqs, want, rand.New(rand.NewPCG(1, 2)).Perm(len(reqs)))

			doubled := scoreAll(t, cached, append(append([]Request{}, reqs...), reqs...), ScoreOptions{})
			requireBitwise(t, want, doubled[:len(reqs)], "duplicated, first copy")
			requireBitwise(t, want, doubled[len(reqs):], "duplicated, second copy")

			requireOptionsBitwise(t, weights, reqs, want, "block size",
				Options{Threads: 2, BlockSize: 1}, Options{Threads: 2, BlockSize: 7},
				Options{Threads: 2, BlockSize: 16}, Options{Threads: 2, BlockSize: 64})
			requireOptionsBitwise(t, weights, reqs, want, "tight KV budget", Options{Threads: 2, BlockSize: 4, KVBlocks: 40})
			// The smallest budget that completes at all: branch points recompute
			// their shared tail instead of copying it, and blocks are evicted.
			minBlocks := minKVBlocks(t, reqs, 4, 128)
			requireOptionsBitwise(t, weights, reqs, want, "minimum KV budget", Options{Threads: 2, BlockSize: 4, KVBlocks: minBlocks})
			requireOptionsBitwise(t, weights, reqs, want, "max batch tokens",
				Options{Threads: 2, MaxBatchTokens: 64}, Options{Threads: 2, MaxBatchTokens: 8192})
		})
	}
}

// The same pairs on the real stories260K model, in text form, through its
// own tokenizer (skips when ../shared is absent).
func TestMetamorphicStories260K(t *testing.T) {
	path := storiesGGUF(t)
	texts := []string{
		"Once upon a time, there was a little girl named Lily.",
		"Once upon a time, there was a little boy named Tom. He liked to play.",
		"Tom was very hungry, so he asked his mom for",
		"One day, she saw a big, red ball in the park. She wanted",
	}
	conts := []string{" park.", " spoon.", " some food.", " a big rock.", " to play with it.", " the", " cat"}
	var reqs []Request
	for i, ctx := range texts {
		for j := 0; j < 3+i; j++ {
			reqs = append(reqs, Request{Context: ctx, Continuation: conts[(i+j)%len(conts)]})
		}
	}
	open := func(o Options) *Model {
		if o.KVMemory == 0 && o.KVBlocks == 0 {
			o.KVMemory = 16 << 20
		}
		m, err := Open(path, o)
		require.NoError(t, err)
		t.Cleanup(func() { m.Close() })
		return m
	}
	want := scoreAll(t, open(Options{NoCache: true}), reqs, ScoreOptions{})
	cached := open(Options{})
	requireBitwise(t, want, scoreAll(t, cached, reqs, ScoreOptions{}), "cache on vs off")
	requireBitwise(t, want, scoreAll(t, cached, reqs, ScoreOptions{}), "warm cache")
	rev := make([]Request, len(reqs))
	for i := range reqs {
		rev[len(reqs)-1-i] = reqs[i]
	}
	got := scoreAll(t, cached, append(rev, rev...), ScoreOptions{})
	for i := range reqs {
		requireBitwise(t, want[i:i+1], got[len(reqs)-1-i:len(reqs)-i], "reversed and duplicated")
		requireBitwise(t, want[i:i+1], got[2*len(reqs)-1-i:2*len(reqs)-i], "reversed and duplicated, second copy")
	}
	for _, bs := range []int{1, 16, 64} {
		requireBitwise(t, want, scoreAll(t, open(Options{BlockSize: bs}), reqs, ScoreOptions{}), "block size")
	}
	requireBitwise(t, want, scoreAll(t, open(Options{BlockSize: 4, KVBlocks: 12}), reqs, ScoreOptions{}), "tight KV budget")
	for _, mbt := range []int{64, 8192} {
		requireBitwise(t, want, scoreAll(t, open(Options{MaxBatchTokens: mbt}), reqs, ScoreOptions{}), "max batch tokens")
	}
}
