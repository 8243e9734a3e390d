//go:build cgo

package binding

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// The CPU pool allocates its memory in segments as steps first reach their
// blocks. A pool whose blocks lie far apart in a large ceiling (many
// segments, grown across steps, a block copied into a new segment) must
// score bitwise as a small pool that the first step fills at once.
func TestKVGrowthScoresBitwise(t *testing.T) {
	const bs = 16
	m := smallModel(t, model.ArchLlama, model.TypeF32)
	rng := rand.New(rand.NewPCG(5, 6))
	x := randomTokens(rng, 50, m.Config.NVocab)
	z := append(append([]int32(nil), x[:37]...), randomTokens(rng, 8, m.Config.NVocab)...)

	// Block ids of the same plan in the two pools: low and dense, or far
	// apart (block bytes are 8 KiB here, so a segment holds 512 blocks).
	small := []int32{1, 2, 3, 4, 5}
	far := []int32{1000, 5000, 100000, 150000, 199999}
	steps := func(ids []int32) []*scheduler.Batch {
		s1 := newBuilder(bs)
		s1.segment(x, 0, 37, ids[:3], x[1:38])
		s2 := newBuilder(bs)
		s2.segment(x, 37, 49, ids[:4], x[38:50])
		// z shares x's first 37 positions: block 3's first 5 slots are
		// copied into a block of its own before z writes position 37 on.
		s3 := newBuilder(bs)
		s3.copyBlock(ids[2], ids[4], 37%bs)
		s3.segment(z, 37, 44, []int32{ids[0], ids[1], ids[4]}, z[38:45])
		return []*scheduler.Batch{s1.batch(), s2.batch(), s3.batch()}
	}
	run := func(nBlocks int, ids []int32) [][]float32 {
		e := openEngine(t, m, 2, bs, nBlocks, 64, 64)
		var out [][]float32
		for _, b := range steps(ids) {
			out = append(out, append([]float32(nil), e.run(t, b).LogProb...))
		}
		return out
	}
	want := run(8, small)
	got := run(200000, far)
	for s := range want {
		if len(got[s]) != len(want[s]) {
			t.Fatalf("step %d: %d rows, want %d", s, len(got[s]), len(want[s]))
		}
		for i := range want[s] {
			if math.Float32bits(got[s][i]) != math.Float32bits(want[s][i]) {
				t.Errorf("step %d row %d: %v in the grown pool, %v in the small one", s, i, got[s][i], want[s][i])
			}
		}
	}
}
