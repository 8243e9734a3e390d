//go:build cgo

package binding

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// The tests in this file demand bitwise equality: the same token must get
// the same float32 bits whatever shares its step, wherever its K/V sits
// and whether its prefix was computed now or earlier.

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d results, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("%s: row %d: %.9g (%#08x), want %.9g (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// invarianceCase is one model and block size for the equivalence runs.
type invarianceCase struct {
	arch model.Arch
	typ  model.TensorType
	bs   int
}

func invarianceCases() []invarianceCase {
	var cs []invarianceCase
	for _, arch := range testmodel.Arches {
		for _, bs := range []int{1, 16, 64} {
			cs = append(cs, invarianceCase{arch, model.TypeF32, bs})
		}
	}
	// One quantized model: dequantized weights take the same paths.
	return append(cs, invarianceCase{model.ArchQwen2, model.TypeQ8_0, 16})
}

// alone scores all positions of tokens in one step of one segment.
func alone(t *testing.T, e *engine, tokens, targets []int32, bs int, rng *rand.Rand) []float32 {
	alloc := newBlockAlloc(e.kv.NumBlocks(), rng)
	bb := newBuilder(bs)
	bb.segment(tokens, 0, len(tokens), alloc.take(blocksFor(len(tokens), bs)), targets)
	return e.run(t, bb.batch()).LogProb
}

func TestBatchInvariance(t *testing.T) {
	for _, c := range invarianceCases() {
		t.Run(fmt.Sprintf("%s/%s/bs%d", c.arch, c.typ, c.bs), func(t *testing.T) {
			m := smallModel(t, c.arch, c.typ)
			const n = 61 // 40 of context, then continuation
			nBlocks := 60 * blocksFor(90, c.bs)
			e := openEngine(t, m, 2, c.bs, nBlocks, 51*90, 51*90)
			rng := rand.New(rand.NewPCG(11, uint64(c.bs)))
			tokens := randomTokens(rng, n, m.Config.NVocab)
			targets := randomTokens(rng, n, m.Config.NVocab)
			want := alone(t, e, tokens, targets, c.bs, rng)

			t.Run("with50others", func(t *testing.T) {
				alloc := newBlockAlloc(nBlocks, rng)
				bb := newBuilder(c.bs)
				pos := rng.IntN(51)
				var first int
				for i := 0; i < 51; i++ {
					if i == pos {
						first = bb.segment(tokens, 0, n, alloc.take(blocksFor(n, c.bs)), targets)
						continue
					}
					l := 1 + rng.IntN(89)
					other := randomTokens(rng, l, m.Config.NVocab)
					bb.segment(other, 0, l, alloc.take(blocksFor(l, c.bs)), randomTokens(rng, l, m.Config.NVocab))
				}
				r := e.run(t, bb.batch())
				sameBits(t, "with 50 others", r.LogProb[first:first+n], want)
			})

			// The prefix computed in an earlier step, its blocks reused:
			// a prefix that ends on a block boundary and one that does not.
			for _, p := range []int{c.bs * (40 / c.bs), 40} {
				if p == 0 || p >= n {
					continue
				}
				t.Run(fmt.Sprintf("prefix%d", p), func(t *testing.T) {
					alloc := newBlockAlloc(nBlocks, rng)
					blocks := alloc.take(blocksFor(n, c.bs))
					bb := newBuilder(c.bs)
					bb.segment(tokens, 0, p, blocks, nil)
					e.run(t, bb.batch())
					bb = newBuilder(c.bs)
					bb.segment(tokens, p, n, blocks, targets[p:])
					r := e.run(t, bb.batch())
					sameBits(t, "after an earlier prefix", r.LogProb, want[p:])
				})
			}

			// The prefix computed by another sequence in an earlier step; this
			// one shares its full blocks and copies the partial tail block,
			// either in the step that computes the rest (tailcopy) or in a
			// step of its own, with no tokens (copyOnlyStep).
			for _, copyAlone := range []bool{false, true} {
				if c.bs == 1 {
					break
				}
				name, what := "tailcopy", "after a tail-block copy"
				if copyAlone {
					name, what = "copyOnlyStep", "after a copy-only step"
				}
				t.Run(name, func(t *testing.T) {
					const p = 40
					if p%c.bs == 0 {
						t.Skip("prefix ends on a block boundary")
					}
					alloc := newBlockAlloc(nBlocks, rng)
					first := alloc.take(blocksFor(p, c.bs))
					bb := newBuilder(c.bs)
					bb.segment(tokens, 0, p, first, nil)
					e.run(t, bb.batch())
					full := p / c.bs
					own := alloc.take(blocksFor(n, c.bs) - full)
					blocks := append(append([]int32(nil), first[:full]...), own...)
					bb = newBuilder(c.bs)
					bb.copyBlock(first[full], own[0], p%c.bs)
					if copyAlone {
						if r := e.run(t, bb.batch()); len(r.LogProb) != 0 {
							t.Fatalf("a copy-only step returned %d rows", len(r.LogProb))
						}
						bb = newBuilder(c.bs)
					}
					bb.segment(tokens, p, n, blocks, targets[p:])
					sameBits(t, what, e.run(t, bb.batch()).LogProb, want[p:])
				})
			}

			// The prefix and two branches in one step (ABI 5: copies run
			// after each layer's K/V writes): the first branch copies the
			// prefix's partial block, which this step writes, and the
			// second copies the first's partial block in turn (a chain).
			t.Run("copiesInTheirStep", func(t *testing.T) {
				const p, q = 40, 43 // the first branch is positions [p, q)
				if p%c.bs == 0 || q/c.bs != p/c.bs {
					t.Skip("needs both branch points inside one block")
				}
				alloc := newBlockAlloc(nBlocks, rng)
				first := alloc.take(blocksFor(p, c.bs))
				full := p / c.bs
				own1 := alloc.take(1)
				own2 := alloc.take(blocksFor(n, c.bs) - full)
				bb := newBuilder(c.bs)
				bb.segment(tokens, 0, p, first, nil)
				bb.copyBlock(first[full], own1[0], p%c.bs)
				o1 := bb.segment(tokens, p, q, append(append([]int32(nil), first[:full]...), own1...), targets[p:q])
				bb.copyBlock(own1[0], own2[0], q%c.bs)
				o2 := bb.segment(tokens, q, n, append(append([]int32(nil), first[:full]...), own2...), targets[q:])
				r := e.run(t, bb.batch())
				sameBits(t, "first branch, its copy in its prefix's step", r.LogProb[o1:o2], want[p:q])
				sameBits(t, "second branch, copying the first's copy", r.LogProb[o2:], want[q:])
			})

			// The last context token recomputed for its logits only (slot -1):
			// its K/V is already in the pool.
			t.Run("recomputedLast", func(t *testing.T) {
				const p = 40
				alloc := newBlockAlloc(nBlocks, rng)
				blocks := alloc.take(blocksFor(n, c.bs))
				bb := newBuilder(c.bs)
				bb.segment(tokens, 0, p, blocks, nil)
				e.run(t, bb.batch())
				bb = newBuilder(c.bs)
				bb.segment(tokens, p-1, n, blocks, targets[p-1:])
				bb.b.Slots[0] = -1
				r := e.run(t, bb.batch())
				sameBits(t, "with the last context token recomputed", r.LogProb, want[p-1:])
			})

			// Split in six steps at odd places (single tokens too), each step also carrying
			// unrelated sequences.
			t.Run("chunked", func(t *testing.T) {
				alloc := newBlockAlloc(nBlocks, rng)
				blocks := alloc.take(blocksFor(n, c.bs))
				var got []float32
				cuts := []int{0, 1, 2, 7, 33, 34, n}
				for i := 0; i+1 < len(cuts); i++ {
					bb := newBuilder(c.bs)
					l := 1 + rng.IntN(30)
					other := randomTokens(rng, l, m.Config.NVocab)
					bb.segment(other, 0, l, alloc.take(blocksFor(l, c.bs)), nil)
					first := bb.segment(tokens, cuts[i], cuts[i+1], blocks, targets[cuts[i]:cuts[i+1]])
					r := e.run(t, bb.batch())
					got = append(got, r.LogProb[first:]...)
				}
				sameBits(t, "in six steps", got, want)
			})
		})
	}
}

// TestPagingLayout: the same sequence in consecutive blocks and scattered
// over non-consecutive ones scores bitwise the same.
func TestPagingLayout(t *testing.T) {
	for _, arch := range testmodel.Arches {
		for _, bs := range []int{1, 16, 64} {
			t.Run(fmt.Sprintf("%s/bs%d", arch, bs), func(t *testing.T) {
				m := smallModel(t, arch, model.TypeF32)
				const n = 100
				nBlocks := 3 * blocksFor(n, bs)
				e := openEngine(t, m, 2, bs, nBlocks, n, n)
				rng := rand.New(rand.NewPCG(5, uint64(bs)))
				tokens := randomTokens(rng, n, m.Config.NVocab)
				targets := randomTokens(rng, n, m.Config.NVocab)
				consecutive := newBlockAlloc(nBlocks, nil).take(blocksFor(n, bs))
				bb := newBuilder(bs)
				bb.segment(tokens, 0, n, consecutive, targets)
				want := e.run(t, bb.batch()).LogProb

				// Every other block, backwards: never two neighbours in order.
				var scattered []int32
				for b := nBlocks - 1; b >= 0 && len(scattered) < blocksFor(n, bs); b -= 2 {
					scattered = append(scattered, int32(b))
				}
				bb = newBuilder(bs)
				bb.segment(tokens, 0, n, scattered, targets)
				sameBits(t, "scattered blocks", e.run(t, bb.batch()).LogProb, want)
			})
		}
	}
}

// TestThreadCountInvariance: 1, 2 and 3 worker threads give the same bits
// (the work is split over outputs, never over a reduction).
func TestThreadCountInvariance(t *testing.T) {
	for _, arch := range testmodel.Arches {
		t.Run(arch.String(), func(t *testing.T) {
			m := smallModel(t, arch, model.TypeF32)
			rng := rand.New(rand.NewPCG(9, uint64(arch)))
			tokens := randomTokens(rng, 77, m.Config.NVocab)
			targets := randomTokens(rng, 77, m.Config.NVocab)
			var want []float32
			for _, threads := range []int{1, 2, 3} {
				e := openEngine(t, m, threads, 16, 8, 128, 128)
				got := alone(t, e, tokens, targets, 16, nil)
				if want == nil {
					want = got
					continue
				}
				sameBits(t, fmt.Sprintf("%d threads", threads), got, want)
			}
		})
	}
}

// TestTopN: the top-n rows are the n largest log-probabilities, in order,
// the target's own log-probability among them when it is the argmax.
func TestTopN(t *testing.T) {
	m := smallModel(t, model.ArchLlama, model.TypeF32)
	e := openEngine(t, m, 2, 16, 8, 64, 64)
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := randomTokens(rng, 20, m.Config.NVocab)
	targets := randomTokens(rng, 20, m.Config.NVocab)
	bb := newBuilder(16)
	bb.segment(tokens, 0, 20, []int32{3, 5}, targets)
	b := bb.batch()
	b.TopN = int32(m.Config.NVocab) // the whole distribution, sorted
	var r scheduler.Result
	if err := e.step.Run(e.kv, b, &r); err != nil {
		t.Fatal(err)
	}
	V := m.Config.NVocab
	for i := range targets {
		ids := r.TopIDs[i*V : (i+1)*V]
		lps := r.TopLogProbs[i*V : (i+1)*V]
		seen := make([]bool, V)
		var sum float64
		for j := range ids {
			if seen[ids[j]] {
				t.Fatalf("row %d: id %d twice", i, ids[j])
			}
			seen[ids[j]] = true
			sum += math.Exp(float64(lps[j]))
			if j > 0 && lps[j] > lps[j-1] {
				t.Fatalf("row %d: not sorted at %d", i, j)
			}
			if ids[j] == targets[i] && lps[j] != r.LogProb[i] {
				t.Errorf("row %d: target log-prob %g in top-n, %g as the target", i, lps[j], r.LogProb[i])
			}
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Errorf("row %d: probabilities sum to %g", i, sum)
		}
		if r.IsGreedy[i] != (ids[0] == targets[i] || lps[0] == r.LogProb[i]) {
			t.Errorf("row %d: greedy %v but the top id is %d (target %d)", i, r.IsGreedy[i], ids[0], targets[i])
		}
	}
	// A shorter top-n is a prefix of the full ordering.
	b.TopN = 5
	var r5 scheduler.Result
	if err := e.step.Run(e.kv, b, &r5); err != nil {
		t.Fatal(err)
	}
	for i := range targets {
		for j := 0; j < 5; j++ {
			if r5.TopIDs[i*5+j] != r.TopIDs[i*V+j] {
				t.Fatalf("row %d: top-5 %v differs from the full order", i, r5.TopIDs[i*5:i*5+5])
			}
		}
	}
}
