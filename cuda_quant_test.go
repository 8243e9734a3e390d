package lmscore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/model"
)

// TestCUDAQuantized runs on the GPU machine (it skips without the CUDA
// library): for every quantized type and the Q4_K_M-like mix, the CUDA core
// on the quantized weights, through binding/ as lmscore uses it.
//   - bf16: bitwise the scores of the same weights dequantized to F32 and
//     loaded in bf16 (both end as the dequantized values rounded once to
//     bf16, multiplied by the same fixed GEMM plans), cached or not, and
//     within the bf16 bound of the CPU core's scores of the quantized file
//     (the dequantized truth);
//   - fp32: within 1e-3 of the CPU core.
func TestCUDAQuantized(t *testing.T) {
	lib := cudaLib(t)
	base := quantTestModel(5)
	reqs := randomRequests(23, base.Config.NVocab, 40)
	groups := mcGroups(reqs)
	for _, c := range quantCases() {
		t.Run(c.name, func(t *testing.T) {
			qw, err := base.Weights.QuantizeWeights(9, c.typeOf)
			require.NoError(t, err)
			fw, err := qw.Convert(model.TypeF32)
			require.NoError(t, err)
			qm := &model.Model{Config: base.Config, Weights: *qw}
			fm := &model.Model{Config: base.Config, Weights: *fw}
			want := scoreAll(t, openTest(t, qm, Options{Threads: 2, NoCache: true}), reqs, ScoreOptions{})
			floor := bf16Floor(t, fm, reqs)
			bound := bf16Bound(floor)

			gq := openTest(t, qm, Options{Backend: "cuda", CUDALibrary: lib, Precision: "bf16", BlockSize: 16})
			gf := openTest(t, fm, Options{Backend: "cuda", CUDALibrary: lib, Precision: "bf16", BlockSize: 16})
			cached := scoreAll(t, gq, reqs, ScoreOptions{})
			uncached := scoreAll(t, gq, reqs, ScoreOptions{NoCache: true})
			requireBitwise(t, scoreAll(t, gf, reqs, ScoreOptions{NoCache: true}), uncached, c.name+" bf16: quantized vs dequantized F32")
			requireBitwise(t, uncached, cached, c.name+" bf16: cached vs uncached")
			d := compare(want, cached)
			t.Logf("%s bf16 vs CPU: max %.2e mean %.4f (bf16 storage alone %.4f, bound %.4f)", c.name, d.max, d.mean, floor, bound)
			assert.LessOrEqual(t, d.mean, bound, "bf16 vs CPU, mean")
			predictionsAgree(t, groups, want, cached, 0.1, c.name+" bf16")

			g32 := openTest(t, qm, Options{Backend: "cuda", CUDALibrary: lib, Precision: "fp32", BlockSize: 16})
			d32 := compare(want, scoreAll(t, g32, reqs, ScoreOptions{}))
			t.Logf("%s fp32 vs CPU: max %.2e mean %.2e", c.name, d32.max, d32.mean)
			assert.LessOrEqual(t, d32.max, 1e-3, "fp32 vs CPU")
		})
	}
}
