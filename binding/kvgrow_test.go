//go:build cgo

package binding

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"syscall"
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

// Growing the pool past the memory there is (here RLIMIT_DATA, which counts
// the writable KV memory, in a child process) is OUT_OF_MEMORY before the
// step computes anything, and the pool stays usable for a step within reach.
func TestKVGrowthOutOfMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses RLIMIT_DATA")
	}
	if os.Getenv("LMSCORE_KV_OOM_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKVGrowthOutOfMemory$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "LMSCORE_KV_OOM_CHILD=1")
		out, err := cmd.CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		return
	}
	const bs = 16
	m := smallModel(t, model.ArchLlama, model.TypeF32)
	rng := rand.New(rand.NewPCG(7, 8))
	x := randomTokens(rng, 21, m.Config.NVocab)
	e := openEngine(t, m, 1, bs, 200000, 64, 64) // a 1.6 GB ceiling of 8 KiB blocks
	step := func(blocks []int32) (*scheduler.Result, error) {
		b := newBuilder(bs)
		b.segment(x, 0, 20, blocks, x[1:21])
		var r scheduler.Result
		return &r, e.step.Run(e.kv, b.batch(), &r)
	}
	want, err := step([]int32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_DATA, &rl); err != nil {
		t.Fatal(err)
	}
	limit := uint64(256 << 20) // writable memory so far is far below; the far blocks need 1.6 GB
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: limit, Max: rl.Max}); err != nil {
		t.Fatal(err)
	}
	_, err = step([]int32{1, 199999})
	var be *Error
	if !errors.As(err, &be) || be.Status != StatusOutOfMemory {
		t.Fatalf("step naming block 199999 under a 256 MB data limit: %v, want OUT_OF_MEMORY", err)
	}
	t.Logf("%v", err)
	got, err := step([]int32{1, 2})
	if err != nil {
		t.Fatalf("the pool after a failed growth: %v", err)
	}
	for i := range want.LogProb {
		if math.Float32bits(got.LogProb[i]) != math.Float32bits(want.LogProb[i]) {
			t.Fatalf("row %d: %v after the failed growth, %v before", i, got.LogProb[i], want.LogProb[i])
		}
	}
}
