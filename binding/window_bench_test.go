//go:build cgo

package binding

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/model"
)

// BenchmarkSlidingWindow scores one 4096-token sequence in one step on a
// narrow model, where attention is most of the work, with full attention
// and with windows: a sliding layer skips every key block before its
// window, so the cost of a token's attention stops growing with its
// position. Reports ns per token.
func BenchmarkSlidingWindow(b *testing.B) {
	const n = 4096
	for _, window := range []int{0, 512, 64} {
		b.Run(fmt.Sprintf("n_swa=%d", window), func(b *testing.B) {
			cfg := model.Config{Arch: model.ArchLlama, NVocab: 256, NEmbd: 128, NLayer: 2, NHead: 4, NHeadKV: 4, NFF: 256,
				NCtxTrain: n, RopeType: model.RopeNorm, RopeFreqBase: 1e4, NormEps: 1e-5, NSWA: window}
			w, err := model.RandomWeights(cfg, 1, model.TypeF32)
			if err != nil {
				b.Fatal(err)
			}
			const bs = 64
			e := openEngine(b, &model.Model{Config: cfg, Weights: *w}, 0, bs, blocksFor(n, bs), n, 1)
			tokens := randomTokens(rand.New(rand.NewPCG(1, 2)), n, cfg.NVocab)
			bb := newBuilder(bs)
			blocks := make([]int32, blocksFor(n, bs))
			for i := range blocks {
				blocks[i] = int32(i)
			}
			bb.segment(tokens, 0, n, blocks, nil)
			bb.b.OutTokenIndex, bb.b.OutTarget = []int32{n - 1}, []int32{0}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.run(b, bb.batch())
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
		})
	}
}
