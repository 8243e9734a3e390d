//go:build cgo

package binding

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// validBatch is one segment of 20 tokens in blocks 0 and 1 (block size 16)
// with two output rows; each case below breaks one thing.
func validBatch() *scheduler.Batch {
	bb := newBuilder(16)
	tokens := make([]int32, 20)
	for i := range tokens {
		tokens[i] = int32(i)
	}
	bb.segment(tokens, 0, 20, []int32{0, 1}, nil)
	bb.b.OutTokenIndex = []int32{3, 19}
	bb.b.OutTarget = []int32{4, 5}
	return bb.batch()
}

func TestRunRejectsBadBatches(t *testing.T) {
	m := smallModel(t, model.ArchLlama, model.TypeF32) // n_vocab 256, n_ctx 256
	e := openEngine(t, m, 2, 16, 4, 64, 8)
	cases := []struct {
		name  string
		edit  func(b *scheduler.Batch)
		inMsg string
	}{
		{"token id", func(b *scheduler.Batch) { b.TokenIDs[3] = 256 }, "token_ids[3] = 256"},
		{"negative token id", func(b *scheduler.Batch) { b.TokenIDs[0] = -1 }, "token_ids[0] = -1"},
		{"position past n_ctx", func(b *scheduler.Batch) {
			for i := range b.Positions {
				b.Positions[i] += 240
			}
		}, "positions[16] = 256"},
		{"slot outside pool", func(b *scheduler.Batch) { b.Slots[5] = 64 }, "slots[5] = 64"},
		{"slot off its block table", func(b *scheduler.Batch) { b.Slots[5] = 40 }, "slots[5] = 40"},
		{"slot written twice", func(b *scheduler.Batch) {
			b.BlockIndices[1] = 0 // positions 16..19 map onto 0..3 of block 0
			for i := 16; i < 20; i++ {
				b.Slots[i] = int32(i - 16)
			}
		}, "written by two tokens"},
		{"block id outside pool", func(b *scheduler.Batch) { b.BlockIndices[1] = 4 }, "block_indices[1] = 4"},
		{"block table too short", func(b *scheduler.Batch) {
			b.BlockIndices = b.BlockIndices[:1]
			b.BlockIndptr[1] = 1
		}, "holds 1 blocks"},
		{"positions not consecutive", func(b *scheduler.Batch) { b.Positions[7] = 9 }, "positions[7] = 9"},
		{"seg start not 0", func(b *scheduler.Batch) { b.SegTokenStart[0] = 1 }, "seg_token_start[0] = 1"},
		{"seg end not n_tokens", func(b *scheduler.Batch) { b.SegTokenStart[1] = 19 }, "seg_token_start[1] = 19"},
		{"copy source", func(b *scheduler.Batch) {
			b.CopySrc, b.CopyDst, b.CopyTokens = []int32{9}, []int32{2}, []int32{3}
		}, "copy_src[0] = 9"},
		{"copy tokens", func(b *scheduler.Batch) {
			b.CopySrc, b.CopyDst, b.CopyTokens = []int32{2}, []int32{3}, []int32{17}
		}, "copy_n_tokens[0] = 17"},
		{"output token index", func(b *scheduler.Batch) { b.OutTokenIndex[1] = 20 }, "out_token_index[1] = 20"},
		{"output target", func(b *scheduler.Batch) { b.OutTarget[0] = 300 }, "out_target[0] = 300"},
		{"too many outputs", func(b *scheduler.Batch) {
			for len(b.OutTokenIndex) < 9 {
				b.OutTokenIndex = append(b.OutTokenIndex, 0)
				b.OutTarget = append(b.OutTarget, 0)
			}
		}, "n_outputs 9"},
		{"top_n", func(b *scheduler.Batch) { b.TopN = 257 }, "top_n 257"},
		// Caught in Go, before the call: array lengths.
		{"short positions", func(b *scheduler.Batch) { b.Positions = b.Positions[:5] }, "positions"},
		{"indptr past indices", func(b *scheduler.Batch) { b.BlockIndptr[1] = 3 }, "BlockIndptr ends at 3"},
		{"copy lengths", func(b *scheduler.Batch) { b.CopySrc = []int32{0} }, "copy sources"},
		{"target lengths", func(b *scheduler.Batch) { b.OutTarget = b.OutTarget[:1] }, "targets"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := validBatch()
			c.edit(b)
			var r scheduler.Result
			err := e.step.Run(e.kv, b, &r)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("got %v, want ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), c.inMsg) {
				t.Errorf("message %q does not mention %q", err, c.inMsg)
			}
		})
	}
	// Too many tokens for the step.
	big := newBuilder(16)
	tokens := make([]int32, 65)
	big.segment(tokens, 0, 65, []int32{0, 1, 2, 3, 0}, nil)
	var r scheduler.Result
	if err := e.step.Run(e.kv, big.batch(), &r); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "n_tokens 65") {
		t.Errorf("65 tokens on a 64-token step: %v", err)
	}
	// The step is still usable after all of that.
	if err := e.step.Run(e.kv, validBatch(), &r); err != nil {
		t.Fatalf("valid batch after rejected ones: %v", err)
	}
}

// TestRejectedBatchLeavesPoolAlone: a batch that fails validation applies
// none of its block copies or K/V writes.
func TestRejectedBatchLeavesPoolAlone(t *testing.T) {
	m := smallModel(t, model.ArchQwen2, model.TypeF32)
	e := openEngine(t, m, 2, 16, 8, 128, 128)
	tokens := make([]int32, 50)
	targets := make([]int32, 50)
	for i := range tokens {
		tokens[i], targets[i] = int32(i*7%256), int32(i*13%256)
	}
	want := alone(t, e, tokens, targets, 16, nil)

	blocks := []int32{4, 5, 6, 7}
	bb := newBuilder(16)
	bb.segment(tokens, 0, 30, blocks, nil)
	e.run(t, bb.batch())
	// Would overwrite the prefix's blocks with block 0's K/V, and write its
	// own tokens over the prefix's slots, but one token id is bad.
	bad := newBuilder(16)
	bad.copyBlock(0, 4, 16)
	bad.copyBlock(0, 5, 14)
	garbage := make([]int32, 30)
	bad.segment(garbage, 0, 30, blocks, nil)
	bad.b.TokenIDs[29] = 9999
	var r scheduler.Result
	if err := e.step.Run(e.kv, bad.batch(), &r); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad batch: %v", err)
	}
	bb = newBuilder(16)
	bb.segment(tokens, 30, 50, blocks, targets[30:])
	sameBits(t, "after a rejected batch", e.run(t, bb.batch()).LogProb, want[30:])
}

func TestLoadErrors(t *testing.T) {
	base := func() *model.Model { return testmodel.Must(testmodel.Options{Arch: model.ArchLlama}) }
	cases := []struct {
		name   string
		edit   func(m *model.Model)
		target error
		inMsg  string
	}{
		{"wrong shape", func(m *model.Model) {
			w := m.Weights.Layers[1][model.WK]
			w.Shape[1] /= 2
			w.Data = w.Data[:len(w.Data)/2]
		}, ErrInvalidArgument, "blk.1.attn_k.weight: shape {64, 16}, want {64, 32}"},
		{"missing tensor", func(m *model.Model) { m.Weights.Layers[0][model.FFNGate] = nil }, ErrInvalidArgument, "blk.0.ffn_gate.weight: missing"},
		{"short data", func(m *model.Model) {
			m.Weights.OutputNorm.Data = m.Weights.OutputNorm.Data[:8]
		}, ErrInvalidArgument, "output_norm.weight: 8 bytes"},
		{"unsupported type", func(m *model.Model) { m.Weights.Layers[0][model.WO].Type = 16 }, ErrUnsupported, "attn_output.weight"}, // IQ2_XXS
		{"infinite scale", func(m *model.Model) {
			wo := m.Weights.Layers[0][model.WO]
			q, err := model.Quantize(model.TypeQ4_0, make([]float32, wo.Shape[0]*wo.Shape[1]))
			if err != nil {
				panic(err)
			}
			q[18*3+1] = 0xfc // block 3's d = -inf
			m.Weights.Layers[0][model.WO] = &model.Tensor{Name: wo.Name, Type: model.TypeQ4_0, Shape: wo.Shape, Data: q}
		}, ErrInvalidArgument, "blk.0.attn_output.weight: block 3 of Q4_0 has a non-finite scale"},
		{"bad head count", func(m *model.Model) { m.Config.NHead = 5 }, ErrInvalidArgument, "n_embd 64 is not a multiple of n_head 5"},
		{"unknown arch", func(m *model.Model) { m.Config.Arch = 99 }, ErrUnsupported, "unsupported architecture arch(99)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.edit(m)
			mod, err := OpenCPU(m, 1)
			if err == nil {
				mod.Close()
				t.Fatal("loaded")
			}
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.inMsg) {
				t.Errorf("got %v, want %v mentioning %q", err, c.target, c.inMsg)
			}
		})
	}
	if _, err := OpenCPU(nil, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil model: %v", err)
	}
}

func TestBadISAName(t *testing.T) {
	t.Setenv("LMSCORE_CPU_ISA", "sse9")
	_, err := OpenCPU(testmodel.Must(testmodel.Options{}), 1)
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "LMSCORE_CPU_ISA=sse9") {
		t.Errorf("LMSCORE_CPU_ISA=sse9: %v", err)
	}
}

func TestHandleLifetimes(t *testing.T) {
	m := smallModel(t, model.ArchGPT2, model.TypeF32)
	mod, err := OpenCPU(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	if mod.Backend() != "cpu" {
		t.Errorf("backend %q", mod.Backend())
	}
	bytes, err := mod.KVBlockBytes(16)
	// 2 layers x (K and V) x 4 KV heads x 16 head dims x 16 slots x 4 bytes
	if err != nil || bytes != 2*2*4*16*16*4 {
		t.Errorf("KVBlockBytes(16) = %d, %v", bytes, err)
	}
	if _, err := mod.KVBlockBytes(0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("KVBlockBytes(0): %v", err)
	}
	if _, err := mod.NewKV(16, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NewKV(16, 0): %v", err)
	}
	if _, err := mod.NewStep(0, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NewStep(0, 1): %v", err)
	}
	kv, err := mod.NewKV(16, 4)
	if err != nil {
		t.Fatal(err)
	}
	step, err := mod.NewStep(32, 32)
	if err != nil {
		t.Fatal(err)
	}
	if err := mod.Close(); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Errorf("closing a model with open children: %v", err)
	}
	other, err := OpenCPU(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	otherKV, err := other.NewKV(16, 4)
	if err != nil {
		t.Fatal(err)
	}
	var r scheduler.Result
	if err := step.Run(otherKV, validBatch(), &r); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("KV pool of another model: %v", err)
	}
	otherKV.Close()
	other.Close()

	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := step.Run(kv, validBatch(), &r); !errors.Is(err, ErrClosed) {
		t.Errorf("run on a closed pool: %v", err)
	}
	if err := step.Close(); err != nil {
		t.Fatal(err)
	}
	if err := step.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := mod.Close(); err != nil {
		t.Fatalf("close after children: %v", err)
	}
	if _, err := mod.NewStep(1, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("NewStep on a closed model: %v", err)
	}
}

func TestOpenCUDANotFound(t *testing.T) {
	m := smallModel(t, model.ArchLlama, model.TypeF32)
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.so")
	_, err := OpenCUDA(m, missing, PrecisionFP32, 0)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("explicit missing path: %v", err)
	}
	t.Setenv(CUDALibEnv, missing)
	if _, err := OpenCUDA(m, "", PrecisionFP32, 0); err == nil || !strings.Contains(err.Error(), "$"+CUDALibEnv) {
		t.Errorf("missing path in $%s: %v", CUDALibEnv, err)
	}
	t.Setenv(CUDALibEnv, "")
	if _, err := OpenCUDA(m, "", PrecisionFP32, 0); err == nil || !strings.Contains(err.Error(), "next to the executable") {
		t.Errorf("no library next to the test binary: %v", err)
	}
	notLib := filepath.Join(dir, CUDALibName)
	if err := os.WriteFile(notLib, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCUDA(m, notLib, PrecisionFP32, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a file that is not a library: %v", err)
	}
}
