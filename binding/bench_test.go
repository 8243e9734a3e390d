//go:build cgo

package binding

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// benchShape is the forward-step benchmark's model: llama, 6 layers, 512
// wide, 8 heads of 64, a 32000-token vocabulary, F32 weights.
var benchShape = testmodel.Options{
	Arch: model.ArchLlama, Seed: 1, NLayer: 6, NEmbd: 512, NHead: 8, NHeadKV: 8, NFF: 1376,
	NVocab: 32000, NCtx: 4096, Type: model.TypeF32,
}

// benchStep is a 2048-token step: nSeq sequences of 2048/nSeq tokens from
// position 0, each scoring its last outPerSeq tokens.
func benchStep(nSeq, outPerSeq, bs int, vocab int) *scheduler.Batch {
	rng := rand.New(rand.NewPCG(1, 1))
	per := 2048 / nSeq
	bb := newBuilder(bs)
	next := int32(0)
	for s := 0; s < nSeq; s++ {
		tokens := randomTokens(rng, per, vocab)
		blocks := make([]int32, blocksFor(per, bs))
		for i := range blocks {
			blocks[i] = next
			next++
		}
		targets := randomTokens(rng, per, vocab)
		first := bb.segment(tokens, 0, per, blocks, nil)
		_ = first
		for t := per - outPerSeq; t < per; t++ {
			bb.b.OutTokenIndex = append(bb.b.OutTokenIndex, int32(s*per+t))
			bb.b.OutTarget = append(bb.b.OutTarget, targets[t])
		}
	}
	return bb.batch()
}

// matmulFlops counts the multiply-adds (x2) of the matrix products a step
// runs: QKV for every token in every layer; the output projection and the
// FFN for every token in every layer but the last, where only the tokens
// with output rows go on; and the LM head for the output rows.
func matmulFlops(cfg model.Config, tokens, outputs int) float64 {
	e, ff, kv := float64(cfg.NEmbd), float64(cfg.NFF), float64(cfg.NHeadKV*cfg.HeadDim())
	qkv := e * (e + 2*kv)
	rest := e*e + e*2*ff + ff*e
	layers := float64(cfg.NLayer)
	n, o := float64(tokens), float64(outputs)
	return 2 * (n*qkv*layers + n*rest*(layers-1) + o*rest + o*e*float64(cfg.NVocab))
}

// BenchmarkForwardStep runs one 2048-token step and reports tokens/s and
// the matrix products' GFLOP/s (their FLOPs over the whole step's time,
// attention and everything else included, so a lower bound on the GEMM's
// own rate). seqs=8: 8 sequences of 256 tokens, the last 64 of each
// scored; seqs=1: one sequence of 2048, its last 512 scored (attention
// over long contexts weighs more there).
//
//	go test ./binding -run '^$' -bench ForwardStep -benchtime 5x
func BenchmarkForwardStep(b *testing.B) {
	for _, c := range []struct{ seqs, outPerSeq int }{{8, 64}, {1, 512}} {
		for _, threads := range []int{0, 1} {
			b.Run(fmt.Sprintf("seqs=%d/threads=%d", c.seqs, threads), func(b *testing.B) {
				m := testmodel.Must(benchShape)
				const bs = 16
				e := openEngine(b, m, threads, bs, 2048/bs+8, 2048, 512)
				batch := benchStep(c.seqs, c.outPerSeq, bs, m.Config.NVocab)
				var r scheduler.Result
				if err := e.step.Run(e.kv, batch, &r); err != nil { // warm-up: page in scratch
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := e.step.Run(e.kv, batch, &r); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(batch.NumTokens())/sec, "tokens/s")
				b.ReportMetric(matmulFlops(m.Config, batch.NumTokens(), batch.NumOutputs())/sec/1e9, "matmul-GFLOP/s")
			})
		}
	}
}

// benchQ4KM is a mix in the manner of llama-quantize's Q4_K_M: Q6_K for
// the output matrix and for attn_v and ffn_down of every other layer, Q4_K
// elsewhere.
func benchQ4KM(name string, _ [2]int64) model.TensorType {
	var layer int
	var role string
	if _, err := fmt.Sscanf(name, "blk.%d.%s", &layer, &role); err == nil &&
		(role == "attn_v.weight" || role == "ffn_down.weight") && layer%2 == 0 {
		return model.TypeQ6_K
	}
	if name == model.NameOutput {
		return model.TypeQ6_K
	}
	return model.TypeQ4_K
}

// BenchmarkQuantizedStep compares F32, Q8_0, Q4_K and a Q4_K_M-like mix of
// one shape (benchShape with an n_ff of whole K-quant super-blocks) on a
// 2048-token step (8 sequences) and a 64-token one (1 sequence, all
// scored), where dequantizing weights weighs most against the multiply.
//
//	go test ./binding -run '^$' -bench QuantizedStep -benchtime 3x
func BenchmarkQuantizedStep(b *testing.B) {
	shape := benchShape
	shape.NFF = 1536
	f32 := testmodel.Must(shape)
	for _, c := range []struct {
		name   string
		typeOf func(string, [2]int64) model.TensorType
	}{
		{"F32", func(string, [2]int64) model.TensorType { return model.TypeF32 }},
		{"Q8_0", func(string, [2]int64) model.TensorType { return model.TypeQ8_0 }},
		{"Q4_K", func(string, [2]int64) model.TensorType { return model.TypeQ4_K }},
		{"Q4_K_M", benchQ4KM},
	} {
		w, err := f32.Weights.QuantizeWeights(1, c.typeOf)
		if err != nil {
			b.Fatal(err)
		}
		m := &model.Model{Config: f32.Config, Weights: *w}
		name := c.name
		for _, c := range []struct{ tokens, seqs, out int }{{2048, 8, 64}, {64, 1, 64}} {
			b.Run(fmt.Sprintf("%s/tokens=%d", name, c.tokens), func(b *testing.B) {
				const bs = 16
				e := openEngine(b, m, 0, bs, 2048/bs+8, 2048, 512)
				var batch *scheduler.Batch
				if c.tokens == 2048 {
					batch = benchStep(c.seqs, c.out, bs, m.Config.NVocab)
				} else {
					rng := rand.New(rand.NewPCG(2, 2))
					bb := newBuilder(bs)
					tokens := randomTokens(rng, c.tokens, m.Config.NVocab)
					bb.segment(tokens, 0, c.tokens, alloc(blocksFor(c.tokens, bs)), randomTokens(rng, c.tokens, m.Config.NVocab))
					batch = bb.batch()
				}
				var r scheduler.Result
				if err := e.step.Run(e.kv, batch, &r); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := e.step.Run(e.kv, batch, &r); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(float64(batch.NumTokens())/sec, "tokens/s")
			})
		}
	}
}

func alloc(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}
