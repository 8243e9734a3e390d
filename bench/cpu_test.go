package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// TestCPUTypeOf: each -types name gives the tensor types its doc promises,
// and an unknown name is an error naming the known ones.
func TestCPUTypeOf(t *testing.T) {
	cfg := testmodel.Must(DefaultCPUModel).Config
	layer := model.LayerTensorName(0, model.FFNDown)
	for _, c := range []struct {
		typ                  string
		output, layer, embed model.TensorType
	}{
		{"f32", model.TypeF32, model.TypeF32, model.TypeF32},
		{"q8_0", model.TypeQ8_0, model.TypeQ8_0, model.TypeQ8_0},
		{"q4_k", model.TypeQ6_K, model.TypeQ4_K, model.TypeQ4_K},
	} {
		typeOf, err := cpuTypeOf(cfg, c.typ)
		require.NoError(t, err)
		shape := [2]int64{int64(cfg.NEmbd), int64(cfg.NVocab)}
		require.Equal(t, c.output, typeOf(model.NameOutput, shape), c.typ)
		require.Equal(t, c.embed, typeOf(model.NameTokEmbd, shape), c.typ)
		require.Equal(t, c.layer, typeOf(layer, [2]int64{int64(cfg.NFF), int64(cfg.NEmbd)}), c.typ)
	}
	_, err := cpuTypeOf(cfg, "q3_k")
	require.ErrorContains(t, err, "q4_k_m")
}

// TestPairedRatios: ratios repeat by repeat, sorted, so that the median
// and range come from one slice.
func TestPairedRatios(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	r := pairedRatios(ms(30, 10, 40), ms(20, 10, 80))
	require.Equal(t, []float64{0.5, 1, 1.5}, r)
	require.Equal(t, 1.0, medianOf(r))
}

// TestRunCPUTypes: a tiny run of two types gives a row per workload and
// type, F32's ratios exactly 1, and scores equal cached and uncached.
func TestRunCPUTypes(t *testing.T) {
	o := CPUOptions{Scale: 0.0005, Repeats: 1, Threads: 1, Types: []string{"f32", "q4_k"},
		Model: testmodel.Options{Arch: model.ArchLlama, Seed: 3, NLayer: 1, NEmbd: 256, NHead: 4, NHeadKV: 2,
			NFF: 256, NVocab: 256, NCtx: 2048}}
	var out bytes.Buffer
	rows, err := RunCPU(context.Background(), o, &out)
	require.NoError(t, err)
	require.Len(t, rows, 4)
	for i, r := range rows {
		require.Equal(t, o.Types[i%2], r.Type)
		require.True(t, r.BitwiseEqual, "%s %s", r.Workload, r.Type)
		require.Positive(t, r.NoCacheVsF32.Wall)
		require.Positive(t, r.UniqueTokens)
		require.LessOrEqual(t, r.UniqueTokens, r.TotalTokens)
		require.Equal(t, rows[2*(i/2)].UniqueTokens, r.UniqueTokens, "the types share the workload")
		if r.Type == "f32" {
			require.Equal(t, VsF32{1, 1, 1, 1}, r.NoCacheVsF32)
			require.Equal(t, VsF32{1, 1, 1, 1}, r.CacheVsF32)
		}
	}
	require.Contains(t, out.String(), "Against F32")
}
