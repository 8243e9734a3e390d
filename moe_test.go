package lmscore

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// moeModels are the three kinds of mixture of experts: a Mixtral-like
// llama (4 experts, top 2, renormalized), a Qwen2-MoE (a gated shared
// expert, raw weights), a Qwen3-MoE (top 3 of 6, renormalized).
func moeModels(t *testing.T, typ model.TensorType) map[string]*model.Model {
	t.Helper()
	o := testmodel.Options{Seed: 41, NVocab: 97, NCtx: 128, Type: typ}
	return map[string]*model.Model{
		"mixtral": testmodel.MustMoE(model.ArchLlama, o, testmodel.Experts{N: 4, Used: 2, NFFExp: 72, Norm: true}),
		"qwen2moe": testmodel.MustMoE(model.ArchQwen2MoE, o,
			testmodel.Experts{N: 4, Used: 2, NFFExp: 40, Shared: 88}),
		"qwen3moe": testmodel.MustMoE(model.ArchQwen3MoE, o, testmodel.Experts{N: 6, Used: 3, NFFExp: 56, Norm: true}),
	}
}

// TestMetamorphicMoE: a token's experts see only the rows routed to them
// in its step, so which other tokens share the step must change nothing:
// scores with the prefix cache on and off, warm, shuffled, duplicated,
// under every block size, a tight KV budget, one token per step or a
// whole workload in one, and 1 or 3 threads are bitwise equal.
func TestMetamorphicMoE(t *testing.T) {
	for name, weights := range moeModels(t, model.TypeF32) {
		t.Run(name, func(t *testing.T) {
			reqs := randomRequests(7, weights.Config.NVocab, 50)
			base := openTest(t, weights, Options{Threads: 2, NoCache: true})
			want := scoreAll(t, base, reqs, ScoreOptions{})

			cached := openTest(t, weights, Options{Threads: 2})
			requireCachedBitwise(t, cached, reqs, want, rand.New(rand.NewPCG(3, 4)).Perm(len(reqs)))
			doubled := scoreAll(t, base, append(append([]Request{}, reqs...), reqs...), ScoreOptions{})
			requireBitwise(t, want, doubled[:len(reqs)], "duplicated, first copy")
			requireBitwise(t, want, doubled[len(reqs):], "duplicated, second copy")

			requireOptionsBitwise(t, weights, reqs, want, "block size",
				Options{Threads: 2, BlockSize: 1}, Options{Threads: 2, BlockSize: 7}, Options{Threads: 2, BlockSize: 64})
			requireOptionsBitwise(t, weights, reqs, want, "tight KV budget", Options{Threads: 2, BlockSize: 4, KVBlocks: 40})
			// 1: every step is one token, so each expert's product has one
			// row at most; 8192: the whole workload's unique tokens in one
			// step, the FFN's row chunks full and every expert's many.
			requireOptionsBitwise(t, weights, reqs, want, "max batch tokens",
				Options{Threads: 2, MaxBatchTokens: 1}, Options{Threads: 2, MaxBatchTokens: 8192})
			requireOptionsBitwise(t, weights, reqs, want, "threads", Options{Threads: 1}, Options{Threads: 3})
		})
	}
}

// TestQuantizedMoEScoresEqualDequantizedF32: quantized experts are
// dequantized inside the products, so the scores are bit for bit those of
// the same weights dequantized to F32, with or without the cache.
func TestQuantizedMoEScoresEqualDequantizedF32(t *testing.T) {
	for name, q := range moeModels(t, model.TypeQ8_0) {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, model.TypeQ8_0, q.Weights.Layers[0][model.FFNGateExps].Type)
			fw, err := q.Weights.Convert(model.TypeF32)
			require.NoError(t, err)
			reqs := randomRequests(8, q.Config.NVocab, 30)
			want := scoreAll(t, openTest(t, &model.Model{Config: q.Config, Weights: *fw}, Options{Threads: 2}), reqs, ScoreOptions{})
			qm := openTest(t, q, Options{Threads: 2})
			requireBitwise(t, want, scoreAll(t, qm, reqs, ScoreOptions{}), name+" vs dequantized F32")
			requireBitwise(t, want, scoreAll(t, qm, reqs, ScoreOptions{NoCache: true}), name+" cache off")
		})
	}
}
