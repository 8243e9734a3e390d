//go:build cgo

package binding

import (
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// builder assembles a scheduler.Batch by hand, the way the scheduler will:
// segments of consecutive positions, each with its block table.
type builder struct {
	bs int
	b  scheduler.Batch
}

func newBuilder(blockSize int) *builder {
	return &builder{bs: blockSize}
}

// segment adds tokens[from:to) of a sequence whose K/V lives in blocks
// (its whole table, in position order), writing each token's K/V. When
// targets is non-nil, token t gets an output row scoring targets[t-from].
// It returns the index of the segment's first output row.
func (bb *builder) segment(tokens []int32, from, to int, blocks []int32, targets []int32) int {
	b := &bb.b
	if len(b.SegTokenStart) == 0 {
		b.SegTokenStart = []int32{0}
		b.BlockIndptr = []int32{0}
	}
	firstOut := len(b.OutTokenIndex)
	for t := from; t < to; t++ {
		if targets != nil {
			b.OutTokenIndex = append(b.OutTokenIndex, int32(len(b.TokenIDs)))
			b.OutTarget = append(b.OutTarget, targets[t-from])
		}
		b.TokenIDs = append(b.TokenIDs, tokens[t])
		b.Positions = append(b.Positions, int32(t))
		b.Slots = append(b.Slots, blocks[t/bb.bs]*int32(bb.bs)+int32(t%bb.bs))
	}
	nBlocks := (to + bb.bs - 1) / bb.bs
	b.BlockIndices = append(b.BlockIndices, blocks[:nBlocks]...)
	b.SegTokenStart = append(b.SegTokenStart, int32(len(b.TokenIDs)))
	b.BlockIndptr = append(b.BlockIndptr, int32(len(b.BlockIndices)))
	return firstOut
}

// copyBlock schedules a copy of the first n slots of block src into dst.
func (bb *builder) copyBlock(src, dst int32, n int) {
	bb.b.CopySrc = append(bb.b.CopySrc, src)
	bb.b.CopyDst = append(bb.b.CopyDst, dst)
	bb.b.CopyTokens = append(bb.b.CopyTokens, int32(n))
}

func (bb *builder) batch() *scheduler.Batch { return &bb.b }

// blockAlloc hands out block ids in a shuffled order, so that sequences
// never sit in consecutive blocks by accident.
type blockAlloc struct{ free []int32 }

func newBlockAlloc(n int, rng *rand.Rand) *blockAlloc {
	a := &blockAlloc{free: make([]int32, n)}
	for i := range a.free {
		a.free[i] = int32(i)
	}
	if rng != nil {
		rng.Shuffle(n, func(i, j int) { a.free[i], a.free[j] = a.free[j], a.free[i] })
	}
	return a
}

func (a *blockAlloc) take(n int) []int32 {
	if n > len(a.free) {
		panic("test pool too small")
	}
	out := append([]int32(nil), a.free[:n]...)
	a.free = a.free[n:]
	return out
}

func blocksFor(n, bs int) int { return (n + bs - 1) / bs }

func randomTokens(rng *rand.Rand, n, vocab int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(rng.IntN(vocab))
	}
	return out
}

// engine is a model loaded on the CPU core with one KV pool and one step.
type engine struct {
	m    *Model
	kv   *KV
	step *Step
}

func openEngine(t testing.TB, m *model.Model, threads, blockSize, nBlocks, maxTokens, maxOutputs int) *engine {
	t.Helper()
	mod, err := OpenCPU(m, threads)
	if err != nil {
		t.Fatalf("OpenCPU: %v", err)
	}
	return engineOn(t, mod, blockSize, nBlocks, maxTokens, maxOutputs)
}

// engineOn gives an open model its KV pool and step, closed with the test.
func engineOn(t testing.TB, mod *Model, blockSize, nBlocks, maxTokens, maxOutputs int) *engine {
	t.Helper()
	kv, err := mod.NewKV(blockSize, nBlocks)
	if err != nil {
		t.Fatalf("NewKV: %v", err)
	}
	step, err := mod.NewStep(maxTokens, maxOutputs)
	if err != nil {
		t.Fatalf("NewStep: %v", err)
	}
	e := &engine{m: mod, kv: kv, step: step}
	t.Cleanup(func() { e.close(t) })
	return e
}

func (e *engine) close(t testing.TB) {
	for _, c := range []interface{ Close() error }{e.step, e.kv, e.m} {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

func (e *engine) run(t testing.TB, b *scheduler.Batch) *scheduler.Result {
	t.Helper()
	var r scheduler.Result
	if err := e.step.Run(e.kv, b, &r); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return &r
}

func smallModel(t testing.TB, arch model.Arch, typ model.TensorType) *model.Model {
	t.Helper()
	m, err := testmodel.New(testmodel.Options{Arch: arch, Seed: uint64(arch)*100 + uint64(typ), Type: typ, NCtx: 256})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
