//go:build cgo

package binding

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// openTP is openEngine for a model split over size ranks.
func openTP(t testing.TB, m *model.Model, threads, size, blockSize, nBlocks, maxTokens int) *engine {
	t.Helper()
	mod, err := OpenCPUTensorParallel(m, threads, size)
	if err != nil {
		t.Fatalf("OpenCPUTensorParallel(%d): %v", size, err)
	}
	if mod.TensorParallel() != size {
		t.Fatalf("TensorParallel() = %d, want %d", mod.TensorParallel(), size)
	}
	return engineOn(t, mod, blockSize, nBlocks, maxTokens, maxTokens)
}

// tpModel is a dense model whose heads, KV heads and FFN split 2 and 4 ways.
func tpModel(t testing.TB, arch model.Arch, typ model.TensorType) *model.Model {
	t.Helper()
	kv := 4
	if arch == model.ArchGPT2 {
		kv = 8 // no grouped-query attention
	}
	m, err := testmodel.New(testmodel.Options{Arch: arch, Seed: 40 + uint64(arch), Type: typ, NHead: 8, NHeadKV: kv, NEmbd: 128, NFF: 256, NCtx: 256})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// twoSteps scores three sequences in one step, then continues the first
// from its cached K/V in a second step (a partial block copied too), and
// returns every output row in order.
func twoSteps(t *testing.T, e *engine, rng *rand.Rand, vocab int) []float32 {
	t.Helper()
	const bs = 16
	alloc := newBlockAlloc(e.kv.NumBlocks(), nil)
	seqs := [][]int32{randomTokens(rng, 70, vocab), randomTokens(rng, 33, vocab), randomTokens(rng, 5, vocab)}
	first := alloc.take(blocksFor(70, bs))
	bb := newBuilder(bs)
	bb.segment(seqs[0], 0, 40, first, randomTokens(rng, 40, vocab))
	bb.segment(seqs[1], 0, 33, alloc.take(blocksFor(33, bs)), randomTokens(rng, 33, vocab))
	bb.segment(seqs[2], 0, 5, alloc.take(1), randomTokens(rng, 5, vocab))
	got := append([]float32(nil), e.run(t, bb.batch()).LogProb...)
	// The first sequence again from position 40, after a copy of its
	// partial block (positions 32..39) into a fresh one.
	own := alloc.take(blocksFor(70, bs) - 2)
	table := append(append([]int32(nil), first[:2]...), own...)
	bb = newBuilder(bs)
	bb.copyBlock(first[2], own[0], 40%bs)
	bb.segment(seqs[0], 40, 70, table, randomTokens(rng, 30, vocab))
	return append(got, e.run(t, bb.batch()).LogProb...)
}

// TestTensorParallelMatchesWhole: a model split 2 and 4 ways scores what the
// whole model scores, within fp32 rounding (the ranks' partial sums add in
// another order than one product's), on every dense family, over two steps
// that reuse cached K/V and copy a block.
func TestTensorParallelMatchesWhole(t *testing.T) {
	for _, arch := range testmodel.Arches {
		for _, typ := range []model.TensorType{model.TypeF32, model.TypeQ8_0} {
			m := tpModel(t, arch, typ)
			rng := rand.New(rand.NewPCG(3, uint64(arch)))
			whole := twoSteps(t, openEngine(t, m, 2, 16, 64, 256, 256), rng, m.Config.NVocab)
			for _, size := range []int{2, 4} {
				t.Run(fmt.Sprintf("%s/%s/tp%d", arch, typ, size), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(3, uint64(arch)))
					got := twoSteps(t, openTP(t, m, 2, size, 16, 64, 256), rng, m.Config.NVocab)
					if len(got) != len(whole) {
						t.Fatalf("%d rows, want %d", len(got), len(whole))
					}
					worst := 0.0
					for i := range got {
						d := math.Abs(float64(got[i]) - float64(whole[i]))
						// fp32 sums in another order: a few ulps of the
						// hidden state, ~1e-6 in a log-probability here.
						if math.IsNaN(d) || d > 1e-4*max(1, math.Abs(float64(whole[i]))) {
							t.Errorf("row %d: %.7g, whole model %.7g", i, got[i], whole[i])
						}
						worst = max(worst, d)
					}
					t.Logf("%d rows, max |dlogprob| %.3g against the whole model", len(got), worst)
				})
			}
		}
	}
}

// TestTensorParallelBatchInvariance: split models keep the core's promise:
// a sequence scores the same bits alone and among others, and after its
// prefix in an earlier step (each rank's sum is per row, in rank order).
func TestTensorParallelBatchInvariance(t *testing.T) {
	m := tpModel(t, model.ArchLlama, model.TypeF32)
	const bs, n = 16, 61
	e := openTP(t, m, 2, 2, bs, 128, 512)
	rng := rand.New(rand.NewPCG(9, 9))
	tokens := randomTokens(rng, n, m.Config.NVocab)
	targets := randomTokens(rng, n, m.Config.NVocab)
	want := alone(t, e, tokens, targets, bs, rng)

	alloc := newBlockAlloc(e.kv.NumBlocks(), rng)
	bb := newBuilder(bs)
	bb.segment(randomTokens(rng, 30, m.Config.NVocab), 0, 30, alloc.take(2), randomTokens(rng, 30, m.Config.NVocab))
	first := bb.segment(tokens, 0, n, alloc.take(blocksFor(n, bs)), targets)
	bb.segment(randomTokens(rng, 7, m.Config.NVocab), 0, 7, alloc.take(1), nil)
	r := e.run(t, bb.batch())
	sameBits(t, "among others", r.LogProb[first:first+n], want)
	// Every rank computes the same rows, bit for bit: the sums are rank-ordered.
	for i, pr := range e.step.peerRes {
		sameBits(t, fmt.Sprintf("rank %d against rank 0", i+1), pr.LogProb, r.LogProb)
	}

	alloc = newBlockAlloc(e.kv.NumBlocks(), rng)
	blocks := alloc.take(blocksFor(n, bs))
	bb = newBuilder(bs)
	bb.segment(tokens, 0, 40, blocks, nil)
	e.run(t, bb.batch())
	bb = newBuilder(bs)
	bb.segment(tokens, 40, n, blocks, targets[40:])
	sameBits(t, "after its prefix in an earlier step", e.run(t, bb.batch()).LogProb, want[40:])
}

// TestTensorParallelErrors: splits the model does not allow are refused
// with the reason, and a bad batch fails on every rank without breaking
// the group: the next step scores as before.
func TestTensorParallelErrors(t *testing.T) {
	llama := smallModel(t, model.ArchLlama, model.TypeF32) // 4 heads, 2 KV heads
	for _, c := range []struct {
		name string
		m    *model.Model
		size int
		want string
	}{
		{"kv heads", llama, 4, "n_head_kv 2"},
		{"experts", testmodel.MustMoE(model.ArchQwen3MoE, testmodel.Options{Seed: 1}, testmodel.Experts{N: 4, Used: 2}), 2, "mixture of experts"},
		{"quant block", func() *model.Model {
			m, err := testmodel.New(testmodel.Options{Arch: model.ArchLlama, Seed: 2, Type: model.TypeQ8_0, NHeadKV: 4})
			if err != nil {
				t.Fatal(err)
			}
			return m // head_dim 16: a quarter of the output projection's 64 columns cuts a Q8_0 block
		}(), 4, "blocks of 32"},
		{"size", llama, 0, "want at least 1"},
	} {
		_, err := OpenCPUTensorParallel(c.m, 1, c.size)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}

	m := tpModel(t, model.ArchQwen2, model.TypeF32)
	e := openTP(t, m, 2, 2, 16, 32, 64)
	rng := rand.New(rand.NewPCG(4, 4))
	tokens := randomTokens(rng, 20, m.Config.NVocab)
	targets := randomTokens(rng, 20, m.Config.NVocab)
	before := alone(t, e, tokens, targets, 16, rng)
	bb := newBuilder(16)
	bb.segment(tokens, 0, 20, []int32{3, 4}, targets)
	bad := bb.batch()
	bad.TokenIDs[5] = int32(m.Config.NVocab) // out of the vocabulary
	var r scheduler.Result
	if err := e.step.Run(e.kv, bad, &r); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("a bad batch: error %v, want one naming the token", err)
	}
	sameBits(t, "after a failed step", alone(t, e, tokens, targets, 16, rng), before)
}

// TestTensorParallelConcurrentUse: runs on two Steps of one split model at
// once each score their own batch (the group's run lock: unlocked, rank 0
// of one run met rank 1 of the other inside the core), and closing a Step
// while it runs neither hangs nor crashes.
func TestTensorParallelConcurrentUse(t *testing.T) {
	m := tpModel(t, model.ArchLlama, model.TypeF32)
	mod, err := OpenCPUTensorParallel(m, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := m.Config.NVocab
	type lane struct {
		s    *Step
		kv   *KV
		b    *scheduler.Batch
		want scheduler.Result
	}
	var lanes [2]*lane
	for i, n := range []int{3, 200} {
		kv, err := mod.NewKV(16, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer kv.Close()
		s, err := mod.NewStep(256, 256)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		bb := newBuilder(16)
		bb.segment(randomTokens(rng, n, vocab), 0, n, newBlockAlloc(64, nil).take(blocksFor(n, 16)), randomTokens(rng, n, vocab))
		lanes[i] = &lane{s: s, kv: kv, b: bb.batch()}
		if err := s.Run(kv, lanes[i].b, &lanes[i].want); err != nil {
			t.Fatal(err)
		}
	}
	within(t, 60*time.Second, "two lanes of runs", func() {
		var wg sync.WaitGroup
		for _, l := range lanes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r scheduler.Result
				for i := 0; i < 40; i++ {
					if err := l.s.Run(l.kv, l.b, &r); err != nil {
						t.Errorf("run %d: %v", i, err)
						return
					}
					for j := range r.LogProb {
						if math.Float32bits(r.LogProb[j]) != math.Float32bits(l.want.LogProb[j]) {
							t.Errorf("run %d, row %d: another batch's bits", i, j)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	})

	b := lanes[0].b
	for i := 0; i < 300; i++ {
		s, err := mod.NewStep(256, 256)
		if err != nil {
			t.Fatal(err)
		}
		within(t, 20*time.Second, fmt.Sprintf("Run and Close at once, iteration %d", i), func() {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				var r scheduler.Result
				if err := s.Run(lanes[0].kv, b, &r); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("run: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				for k := rng.IntN(2000); k > 0; k-- {
					runtime.Gosched()
				}
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			wg.Wait()
		})
	}
}

// TestTensorParallelOneRankFails drives the ranks by hand, one with a bad
// batch: both calls fail (the good rank's error names the bad one), and the
// next step scores as before.
func TestTensorParallelOneRankFails(t *testing.T) {
	m := tpModel(t, model.ArchLlama, model.TypeF32)
	e := openTP(t, m, 2, 2, 16, 64, 256)
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := m.Config.NVocab
	tokens, targets := randomTokens(rng, 20, vocab), randomTokens(rng, 20, vocab)
	batch := func(bad bool) *scheduler.Batch {
		bb := newBuilder(16)
		bb.segment(tokens, 0, 20, []int32{3, 4}, targets)
		if bad {
			bb.b.TokenIDs[5] = int32(vocab)
		}
		return bb.batch()
	}
	want := e.run(t, batch(false)).LogProb
	for _, badRank := range []int{0, 1} {
		var errs [2]error
		within(t, 20*time.Second, "ranks with different batches", func() {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				var r scheduler.Result
				e.step.mu.Lock()
				e.kv.mu.Lock()
				errs[0] = e.step.runLocked(e.kv, batch(badRank == 0), &r, nil, time.Time{})
				e.kv.mu.Unlock()
				e.step.mu.Unlock()
			}()
			go func() {
				defer wg.Done()
				var r scheduler.Result
				errs[1] = e.step.peers[0].run(e.kv.peers[0], batch(badRank == 1), &r, nil)
			}()
			wg.Wait()
		})
		for rank, err := range errs {
			want := "token"
			if rank != badRank {
				want = fmt.Sprintf("rank %d failed", badRank)
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("bad rank %d: rank %d's error %v, want one naming %q", badRank, rank, err, want)
			}
		}
		sameBits(t, "after a rank failed", e.run(t, batch(false)).LogProb, want)
	}
}

// within fails the test if f does not return in d (a hang in the core).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: no return in %v", what, d)
	}
}

// TestTensorParallelGroupOutlivesRanks: the group is freed with rank 0,
// after every rank, never by a peer's Close (lmscore.h: the group outlives
// its ranks' models).
func TestTensorParallelGroupOutlivesRanks(t *testing.T) {
	m := tpModel(t, model.ArchLlama, model.TypeF32)
	mod, err := OpenCPUTensorParallel(m, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	g := mod.tp
	if err := mod.peers[0].Close(); err != nil {
		t.Fatal(err)
	}
	if g.ptr == nil {
		t.Fatal("rank 1's Close freed the group while ranks 0, 2 and 3 are loaded")
	}
	if err := mod.Close(); err != nil {
		t.Fatal(err)
	}
	if g.ptr != nil || mod.peers != nil {
		t.Fatal("rank 0's Close left the group or its peers")
	}
}
