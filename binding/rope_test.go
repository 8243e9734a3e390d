//go:build cgo

package binding

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// llama31Rope puts factors far from 1 in all three bands at head_dim 16,
// base 10000: pair wavelengths 2π·10000^(i/8) = 6.3, 19.9, 62.8, ...
// against bands at 32/4 = 8 and 32/1 = 32, so pair 0 keeps its speed, pair
// 1 is smoothed and pairs 2 to 7 turn 8 times slower. The original context
// of 32 is short, so that lengths 37 and 100 go past it.
var llama31Rope = model.Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 32}

func llama31Model(t *testing.T, tied bool, typ model.TensorType) *model.Model {
	t.Helper()
	m, err := testmodel.New(testmodel.Options{Seed: 31, NCtx: 128, TiedOutput: tied, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	if m.Weights.RopeFreqs, err = llama31Rope.RopeFreqsTensor(m.Config); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLlama3RopeAgainstReference: the CPU core with rope_freqs against the
// float64 reference, 1e-4 per log-probability as for every model in
// TestAgainstReference (fp32 rounding through two layers stays near 1e-6;
// the factors add one float64 division per pair, rounded once with the
// angle), with untied and tied (Llama 3.2-style) outputs, lengths 17, 37
// and 100 at block sizes 1, 16 and 64. The reference without the factors
// must differ by far more, or the test would not see them.
func TestLlama3RopeAgainstReference(t *testing.T) {
	for _, tied := range []bool{false, true} {
		t.Run(fmt.Sprintf("tied=%v", tied), func(t *testing.T) {
			m := llama31Model(t, tied, model.TypeF32)
			ref, err := reference.New(m)
			if err != nil {
				t.Fatal(err)
			}
			plainModel := *m
			plainModel.Weights.RopeFreqs = nil
			plain, err := reference.New(&plainModel)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(31, 1))
			for _, n := range []int{17, 37, 100} {
				tokens := randomTokens(rng, n, m.Config.NVocab)
				want, err := ref.LogProbs(tokens)
				if err != nil {
					t.Fatal(err)
				}
				unscaled, err := plain.LogProbs(tokens)
				if err != nil {
					t.Fatal(err)
				}
				targets := refTargets(rng, want, m.Config.NVocab)
				var moved float64
				for i, tg := range targets {
					moved = math.Max(moved, math.Abs(want[i][tg]-unscaled[i][tg]))
				}
				if moved < 1e-2 {
					t.Errorf("len %d: the factors move a log-probability by %.2g at most; want a test that sees them", n, moved)
				}
				for _, bs := range []int{1, 16, 64} {
					t.Run(fmt.Sprintf("len%d/bs%d", n, bs), func(t *testing.T) {
						e := openEngine(t, m, 2, bs, blocksFor(n, bs)+3, 128, 128)
						checkAgainstReference(t, e, want, tokens, targets, bs, rng)
					})
				}
			}
		})
	}
}

// TestLlama3RopeCacheInvariance: a sequence scored in one step and scored
// as a prefix of 23 tokens, then the rest reading the prefix's cached K/V,
// give the same bits: the rotation depends on the position alone.
func TestLlama3RopeCacheInvariance(t *testing.T) {
	m := llama31Model(t, true, model.TypeF32)
	for _, bs := range []int{1, 16} {
		t.Run(fmt.Sprintf("bs%d", bs), func(t *testing.T) {
			const n, split = 61, 23
			e := openEngine(t, m, 2, bs, 2*blocksFor(n, bs)+2, n, n)
			rng := rand.New(rand.NewPCG(7, uint64(bs)))
			tokens := randomTokens(rng, n, m.Config.NVocab)
			targets := randomTokens(rng, n, m.Config.NVocab)
			want := alone(t, e, tokens, targets, bs, rng)

			blocks := newBlockAlloc(e.kv.NumBlocks(), rng).take(blocksFor(n, bs))
			bb := newBuilder(bs)
			bb.segment(tokens, 0, split, blocks, targets[:split])
			got := append([]float32(nil), e.run(t, bb.batch()).LogProb...)
			bb = newBuilder(bs)
			bb.segment(tokens, split, n, blocks, targets[split:])
			got = append(got, e.run(t, bb.batch()).LogProb...)
			sameBits(t, "prefix cached", got, want)
		})
	}
}

// The core refuses factors it cannot use.
func TestLlama3RopeFreqsRejected(t *testing.T) {
	m := llama31Model(t, false, model.TypeF32)
	ff := append([]float32(nil), llama31Rope.FreqFactors(16, 10000)...)
	ff[3] = 0
	m.Weights.RopeFreqs.Data = model.EncodeF32(ff)
	_, err := OpenCPU(m, 1)
	if err == nil || !strings.Contains(err.Error(), "rope_freqs.weight: value 3 is 0, want a positive number") {
		t.Fatalf("got %v", err)
	}
}
