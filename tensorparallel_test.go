//go:build cgo

package lmscore

import (
	"math"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/stretchr/testify/require"
)

// TestTensorParallelScores: Options.TensorParallel on the CPU scores what the
// whole model scores within fp32 rounding, and keeps the cache's promise:
// cached and uncached, cold and warm, reordered, bitwise the same.
func TestTensorParallelScores(t *testing.T) {
	m := testmodel.Must(testmodel.Options{Arch: model.ArchLlama, Seed: 8, NVocab: 97, NCtx: 128, NHead: 8, NHeadKV: 4, NEmbd: 64, NFF: 128})
	reqs := randomRequests(12, 97, 60)
	whole := scoreAll(t, openTest(t, m, Options{Threads: 2}), reqs, ScoreOptions{})
	for _, size := range []int{2, 4} {
		tp := openTest(t, m, Options{Threads: 2, TensorParallel: size})
		require.Equal(t, size, tp.Options().TensorParallel)
		uncached := scoreAll(t, tp, reqs, ScoreOptions{NoCache: true})
		for i := range whole {
			for j, lp := range whole[i].TokenLogProbs {
				d := math.Abs(float64(uncached[i].TokenLogProbs[j]) - float64(lp))
				require.LessOrEqual(t, d, 1e-4*max(1, math.Abs(float64(lp))), "tp %d request %d token %d", size, i, j)
			}
		}
		perm := make([]int, len(reqs))
		for i := range perm {
			perm[i] = (i*37 + 11) % len(reqs)
		}
		requireCachedBitwise(t, tp, reqs, uncached, perm)
	}
}

// TestTensorParallelRefusals: a split the model does not allow, or a pool
// of split models, is an error that says why.
func TestTensorParallelRefusals(t *testing.T) {
	m := testmodel.Must(testmodel.Options{Arch: model.ArchLlama, Seed: 8, NVocab: 97, NCtx: 128}) // 4 heads, 2 KV heads
	_, err := open(m, "test", Options{TensorParallel: 4, KVMemory: 16 << 20})
	require.ErrorContains(t, err, "n_head_kv 2")
	_, err = open(m, "test", Options{TensorParallel: -1})
	require.ErrorContains(t, err, "tensor parallel -1")
	_, err = OpenPool("unused.gguf", Options{TensorParallel: 2}, []int{0, 1})
	require.ErrorContains(t, err, "split models")
}

// TestTensorParallelFamilies: every transformers fixture family that splits
// two ways (internal/hfcheck/testdata; the ones that do not say why) scores
// under --tensor-parallel 2 what the whole model scores, within fp32
// rounding, and bitwise cached vs uncached.
func TestTensorParallelFamilies(t *testing.T) {
	eachHFFixture(t, func(t *testing.T, name, _ string, w *model.Model) {
		if _, err := model.TensorParallelShard(w, 0, 2); err != nil {
			t.Skipf("does not split two ways: %v", err)
		}
		reqs := randomRequests(92, w.Config.NVocab, 40)
		whole := scoreAll(t, openTest(t, w, Options{Threads: 2, NoCache: true}), reqs, ScoreOptions{})
		tp := openTest(t, w, Options{Threads: 2, TensorParallel: 2})
		uncached := scoreAll(t, tp, reqs, ScoreOptions{NoCache: true})
		worst := 0.0
		for i := range whole {
			for j, lp := range whole[i].TokenLogProbs {
				d := math.Abs(float64(uncached[i].TokenLogProbs[j]) - float64(lp))
				require.LessOrEqual(t, d, 1e-4*max(1, math.Abs(float64(lp))), "request %d token %d", i, j)
				worst = max(worst, d)
			}
		}
		requireBitwise(t, uncached, scoreAll(t, tp, reqs, ScoreOptions{}), "cached vs uncached under a split")
		t.Logf("%s: max |dlogprob| %.3g against the whole model", name, worst)
	})
}
