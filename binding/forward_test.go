//go:build cgo

package binding

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// refTargets picks a target per position: the reference's argmax on even
// positions (so that greedy flags are exercised both ways), a random token
// on odd ones.
func refTargets(rng *rand.Rand, ref [][]float64, vocab int) []int32 {
	out := make([]int32, len(ref))
	for i := range ref {
		if i%2 == 0 {
			out[i] = int32(reference.Argmax(ref[i]))
		} else {
			out[i] = int32(rng.IntN(vocab))
		}
	}
	return out
}

// nearTie reports whether the row's best and second-best log-probabilities
// are within tol, where fp32 and float64 may disagree on the argmax.
func nearTie(row []float64, tol float64) bool {
	best := reference.Argmax(row)
	for i, v := range row {
		if i != best && row[best]-v < tol {
			return true
		}
	}
	return false
}

// checkAgainstReference scores tokens as one sequence on the engine (its
// blocks scattered through the pool) and compares every position with the
// float64 reference.
func checkAgainstReference(t *testing.T, e *engine, ref [][]float64, tokens, targets []int32, bs int, rng *rand.Rand) {
	t.Helper()
	n := len(tokens)
	alloc := newBlockAlloc(e.kv.NumBlocks(), rng)
	bb := newBuilder(bs)
	bb.segment(tokens, 0, n, alloc.take(blocksFor(n, bs)), targets)
	r := e.run(t, bb.batch())
	var worst float64
	for i := 0; i < n; i++ {
		want := ref[i][targets[i]]
		got := float64(r.LogProb[i])
		if d := math.Abs(got - want); d > worst {
			worst = d
		}
		if d := math.Abs(got - want); d > 1e-4 || math.IsNaN(got) {
			t.Errorf("position %d target %d: logprob %.7f, reference %.7f (|Δ| %.2g > 1e-4)", i, targets[i], got, want, d)
		}
		wantGreedy := int(targets[i]) == reference.Argmax(ref[i])
		if r.IsGreedy[i] != wantGreedy && !nearTie(ref[i], 1e-4) {
			t.Errorf("position %d target %d: greedy %v, reference %v", i, targets[i], r.IsGreedy[i], wantGreedy)
		}
	}
	t.Logf("max |Δ logprob| = %.3g over %d positions", worst, n)
}

// TestAgainstReference: the CPU core against the float64 reference for
// every architecture and weight type, sequence lengths 1, 17, 37 and 100,
// block sizes 1, 16 and 64.
func TestAgainstReference(t *testing.T) {
	for _, arch := range testmodel.Arches {
		for _, typ := range testmodel.Types {
			t.Run(fmt.Sprintf("%s/%s", arch, typ), func(t *testing.T) {
				m := smallModel(t, arch, typ)
				ref, err := reference.New(m)
				if err != nil {
					t.Fatal(err)
				}
				engines := map[int]*engine{}
				for _, bs := range []int{1, 16, 64} {
					engines[bs] = openEngine(t, m, 2, bs, blocksFor(100, bs)+3, 128, 128)
				}
				rng := rand.New(rand.NewPCG(uint64(arch), uint64(typ)))
				for _, n := range []int{1, 17, 37, 100} {
					tokens := randomTokens(rng, n, m.Config.NVocab)
					want, err := ref.LogProbs(tokens)
					if err != nil {
						t.Fatal(err)
					}
					targets := refTargets(rng, want, m.Config.NVocab)
					for _, bs := range []int{1, 16, 64} {
						t.Run(fmt.Sprintf("len%d/bs%d", n, bs), func(t *testing.T) {
							checkAgainstReference(t, engines[bs], want, tokens, targets, bs, rng)
						})
					}
				}
			})
		}
	}
}

// TestEveryISAAgainstReference runs the scalar and AVX2 paths too (the
// default picks the best one the CPU has), where this CPU supports them.
func TestEveryISAAgainstReference(t *testing.T) {
	for _, isa := range []string{"scalar", "avx2", "avx512"} {
		t.Run(isa, func(t *testing.T) {
			t.Setenv("LMSCORE_CPU_ISA", isa)
			for _, arch := range testmodel.Arches {
				m := smallModel(t, arch, model.TypeF32)
				mod, err := OpenCPU(m, 2)
				if err != nil {
					if os.Getenv("LMSCORE_CPU_ISA") == isa && isUnsupported(err) {
						t.Skipf("%s: %v", isa, err)
					}
					t.Fatal(err)
				}
				mod.Close()
				ref, err := reference.New(m)
				if err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(3, uint64(arch)))
				tokens := randomTokens(rng, 37, m.Config.NVocab)
				want, err := ref.LogProbs(tokens)
				if err != nil {
					t.Fatal(err)
				}
				targets := refTargets(rng, want, m.Config.NVocab)
				e := openEngine(t, m, 2, 16, 8, 64, 64)
				t.Run(arch.String(), func(t *testing.T) {
					checkAgainstReference(t, e, want, tokens, targets, 16, rng)
				})
			}
		})
	}
}

func isUnsupported(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == StatusUnsupported
}

// TestOddShapes: widths that are not multiples of the vector or panel
// sizes (partial GEMM panels, partial vectors in attention), an odd block
// size, and a query-head group larger than one attention tile.
func TestOddShapes(t *testing.T) {
	shapes := []testmodel.Options{
		{NEmbd: 40, NHead: 4, NHeadKV: 2, NFF: 72, NVocab: 250},
		{NEmbd: 48, NHead: 6, NHeadKV: 1, NFF: 100, NVocab: 77},
		{NEmbd: 80, NHead: 40, NHeadKV: 1, NFF: 64, NVocab: 100, Arch: model.ArchLlama}, // 40 query heads share one KV head
		{NEmbd: 36, NHead: 2, NHeadKV: 2, NFF: 50, NVocab: 129, TiedOutput: true},
		{NEmbd: 96, NHead: 3, NHeadKV: 1, NFF: 1100, NVocab: 64}, // K blocked in the down projection
	}
	for si, shape := range shapes {
		arches := testmodel.Arches
		if shape.Arch != 0 {
			arches = []model.Arch{shape.Arch}
		}
		for _, arch := range arches {
			o := shape
			o.Arch, o.Seed, o.NCtx = arch, uint64(si), 128
			if arch == model.ArchGPT2 {
				o.NHeadKV = o.NHead
			}
			t.Run(fmt.Sprintf("shape%d/%s", si, arch), func(t *testing.T) {
				m, err := testmodel.New(o)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := reference.New(m)
				if err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(uint64(si), uint64(arch)))
				tokens := randomTokens(rng, 45, m.Config.NVocab)
				want, err := ref.LogProbs(tokens)
				if err != nil {
					t.Fatal(err)
				}
				targets := refTargets(rng, want, m.Config.NVocab)
				for _, bs := range []int{5, 16} {
					e := openEngine(t, m, 3, bs, blocksFor(45, bs)+2, 64, 64)
					checkAgainstReference(t, e, want, tokens, targets, bs, rng)
				}
			})
		}
	}
}
