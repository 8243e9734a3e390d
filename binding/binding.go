//go:build cgo

package binding

/*
#cgo CXXFLAGS: -std=c++17 -O3 -fvisibility=hidden -DNDEBUG
#cgo CFLAGS: -O2 -fvisibility=hidden
#cgo LDFLAGS: -lpthread -ldl -lm -lstdc++
#include <stdlib.h>
#include "backend.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// errBufSize bounds the native core's message copied back per call.
const errBufSize = 1024

type errBuf [errBufSize]C.char

func (b *errBuf) ptr() *C.char { return &b[0] }

func (b *errBuf) err(op string, st C.lmscore_status) error {
	if st == C.LMSCORE_STATUS_OK {
		return nil
	}
	return &Error{Status: Status(st), Op: op, Message: C.GoString(&b[0])}
}

// backend is one implementation of the ABI: a table of its entry points.
type backend struct {
	vt   *C.lmscore_backend
	name string
}

var cpuBackend = &backend{vt: C.lmscore_go_cpu_backend(), name: "cpu"}

// Model is a model loaded on a backend.
type Model struct {
	be  *backend
	cfg model.Config

	mu       sync.Mutex
	ptr      *C.lmscore_model
	children int // open KV pools and steps

	// Tensor parallelism (tensorparallel.go): this model is a rank of tp;
	// on rank 0, peers are ranks 1 and up and ownsTP frees the group after
	// them. nil for a whole model.
	tp     *tpGroup
	peers  []*Model
	ownsTP bool
}

// OpenCPU loads m on the CPU core with the given number of worker threads
// (<= 0: one per core). The weights are copied (and converted to fp32), so
// m's tensor data need only stay valid during the call.
func OpenCPU(m *model.Model, threads int) (*Model, error) {
	return open(cpuBackend, m, cpuParams(threads))
}

// cpuParams are the CPU core's defaults with the thread count set (fp32:
// the only arithmetic it has).
func cpuParams(threads int) C.lmscore_backend_params {
	p := C.lmscore_backend_default_params()
	p.n_threads = C.int32_t(clampInt32(threads))
	p.precision = C.int32_t(PrecisionFP32)
	return p
}

func open(be *backend, m *model.Model, params C.lmscore_backend_params) (*Model, error) {
	if m == nil {
		return nil, &Error{Status: StatusInvalidArgument, Op: "model load", Message: "nil model"}
	}
	cfg := m.Config
	if cfg.NLayer <= 0 || cfg.NLayer > math.MaxInt32/int(model.LayerRoleCount) || len(m.Weights.Layers) != cfg.NLayer {
		return nil, &Error{Status: StatusInvalidArgument, Op: "model load",
			Message: fmt.Sprintf("model has %d layers of weights for n_layer %d", len(m.Weights.Layers), cfg.NLayer)}
	}
	desc := (*C.lmscore_model_desc)(C.calloc(1, C.sizeof_lmscore_model_desc))
	if desc == nil {
		return nil, &Error{Status: StatusOutOfMemory, Op: "model load", Message: "allocating the model description"}
	}
	defer C.free(unsafe.Pointer(desc))
	nTensors := cfg.NLayer * int(model.LayerRoleCount)
	layers := (*C.lmscore_tensor)(C.calloc(C.size_t(nTensors), C.sizeof_lmscore_tensor))
	if layers == nil {
		return nil, &Error{Status: StatusOutOfMemory, Op: "model load", Message: "allocating the layer table"}
	}
	defer C.free(unsafe.Pointer(layers))

	// The tensor data may be Go memory: pinned, its address may sit in C
	// memory for the duration of the call. (Pinning mmap'd data is a no-op.)
	var pin runtime.Pinner
	defer pin.Unpin()
	set := func(dst *C.lmscore_tensor, t *model.Tensor) error {
		if t == nil {
			return nil
		}
		rowBytes, err := t.Type.RowBytes(t.Shape[0])
		if err != nil {
			return &Error{Status: StatusUnsupported, Op: "model load", Message: fmt.Sprintf("tensor %s: %v", t.Name, err)}
		}
		if t.Shape[0] <= 0 || t.Shape[1] <= 0 || int64(len(t.Data)) != rowBytes*t.Shape[1] {
			return &Error{Status: StatusInvalidArgument, Op: "model load",
				Message: fmt.Sprintf("tensor %s: %d bytes of data for %s shape %v", t.Name, len(t.Data), t.Type, t.Shape)}
		}
		if err := model.CheckBlocks(t.Type, t.Data); err != nil {
			return &Error{Status: StatusInvalidArgument, Op: "model load", Message: fmt.Sprintf("tensor %s: %v", t.Name, err)}
		}
		pin.Pin(&t.Data[0])
		dst.data = unsafe.Pointer(&t.Data[0])
		dst._type = C.int32_t(t.Type)
		dst.ne[0] = C.int64_t(t.Shape[0])
		dst.ne[1] = C.int64_t(t.Shape[1])
		return nil
	}
	if err := fillFeatures(desc, cfg); err != nil {
		return nil, err
	}
	if cfg.SWALayers != nil {
		flags := (*C.uint8_t)(C.calloc(C.size_t(max(cfg.NLayer, 1)), 1))
		if flags == nil {
			return nil, &Error{Status: StatusOutOfMemory, Op: "model load", Message: "allocating the sliding-layer flags"}
		}
		defer C.free(unsafe.Pointer(flags))
		sliding := unsafe.Slice((*uint8)(unsafe.Pointer(flags)), cfg.NLayer) // calloc'd: all 0
		for l := range sliding {
			if cfg.IsSliding(l) {
				sliding[l] = 1
			}
		}
		desc.swa_layers = flags
	}
	desc.n_vocab = C.int32_t(clampInt32(cfg.NVocab))
	desc.n_embd = C.int32_t(clampInt32(cfg.NEmbd))
	desc.n_layer = C.int32_t(cfg.NLayer)
	desc.n_head = C.int32_t(clampInt32(cfg.NHead))
	desc.n_head_kv = C.int32_t(clampInt32(cfg.NHeadKV))
	desc.head_dim = C.int32_t(clampInt32(cfg.NEmbdHead))
	desc.n_ff = C.int32_t(clampInt32(cfg.NFF))
	desc.n_ctx_train = C.int32_t(clampInt32(cfg.NCtxTrain))
	desc.rope_type = C.int32_t(cfg.RopeType)
	desc.rope_freq_base = C.float(cfg.RopeFreqBase)
	desc.norm_eps = C.float(cfg.NormEps)
	w := &m.Weights
	for _, p := range []struct {
		dst *C.lmscore_tensor
		t   *model.Tensor
	}{{&desc.tok_embd, w.TokEmbd}, {&desc.pos_embd, w.PosEmbd}, {&desc.output_norm, w.OutputNorm},
		{&desc.output_norm_b, w.OutputNormB}, {&desc.output, w.Output}, {&desc.rope_freqs, w.RopeFreqs}} {
		if err := set(p.dst, p.t); err != nil {
			return nil, err
		}
	}
	table := unsafe.Slice(layers, nTensors)
	for l := range w.Layers {
		for r, t := range w.Layers[l] {
			if err := set(&table[l*int(model.LayerRoleCount)+r], t); err != nil {
				return nil, err
			}
		}
	}
	desc.layers = layers

	var buf errBuf
	var ptr *C.lmscore_model
	st := C.lmscore_go_model_load(be.vt, desc, params, &ptr, buf.ptr(), errBufSize)
	if err := buf.err("model load", st); err != nil {
		return nil, err
	}
	mod := &Model{be: be, cfg: cfg, ptr: ptr}
	runtime.SetFinalizer(mod, (*Model).finalize)
	return mod, nil
}

// Backend names the core the model runs on: "cpu" or "cuda".
func (m *Model) Backend() string { return m.be.name }

// Config is the configuration the model was loaded with.
func (m *Model) Config() model.Config { return m.cfg }

// Close frees the model. It fails while KV pools or steps made from it
// are still open.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ptr == nil {
		return m.closePeers() // again, after a peer refused to close
	}
	if m.children > 0 {
		return fmt.Errorf("lmscore: model close: %d KV pools or steps still open", m.children)
	}
	C.lmscore_go_model_free(m.be.vt, m.ptr)
	m.ptr = nil
	runtime.SetFinalizer(m, nil)
	return m.closePeers()
}

func (m *Model) finalize() {
	// Unreachable: its pools and steps, which reference it, are gone too.
	if m.ptr != nil {
		C.lmscore_go_model_free(m.be.vt, m.ptr)
		m.ptr = nil
	}
}

// acquire returns the live handle and counts a new child, or ErrClosed.
func (m *Model) acquire() (*C.lmscore_model, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ptr == nil {
		return nil, ErrClosed
	}
	m.children++
	return m.ptr, nil
}

func (m *Model) release() {
	m.mu.Lock()
	m.children--
	m.mu.Unlock()
}

// ProfileReport returns the core's phase profile of this model as
// lmscore_profile_report writes it (lmscore.h): a JSON object, with
// "enabled": false unless a step was made with LMSCORE_PROFILE=1.
func (m *Model) ProfileReport() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ptr == nil {
		return nil, ErrClosed
	}
	// Two calls at most: a report of a few dozen phases fits the first.
	size := C.size_t(16 << 10)
	for {
		buf := (*C.char)(C.malloc(size))
		if buf == nil {
			return nil, &Error{Status: StatusOutOfMemory, Op: "profile report", Message: "allocating the report buffer"}
		}
		var eb errBuf
		var needed C.size_t
		st := C.lmscore_go_profile_report(m.be.vt, m.ptr, buf, size, &needed, eb.ptr(), errBufSize)
		if err := eb.err("profile report", st); err != nil {
			C.free(unsafe.Pointer(buf))
			return nil, err
		}
		if needed <= size {
			out := C.GoBytes(unsafe.Pointer(buf), C.int(needed-1)) // without the NUL
			C.free(unsafe.Pointer(buf))
			return out, nil
		}
		C.free(unsafe.Pointer(buf))
		size = needed
	}
}

// KVBlockBytes is the memory one KV block of blockSize tokens takes on
// this backend (all layers, K and V).
func (m *Model) KVBlockBytes(blockSize int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ptr == nil {
		return 0, ErrClosed
	}
	var buf errBuf
	var out C.int64_t
	st := C.lmscore_go_kv_block_bytes(m.be.vt, m.ptr, C.int32_t(clampInt32(blockSize)), &out, buf.ptr(), errBufSize)
	if err := buf.err("kv block bytes", st); err != nil {
		return 0, err
	}
	peers, err := m.peerBlockBytes(blockSize)
	return int64(out) + peers, err
}

// KV is a pool of paged KV blocks: nBlocks blocks of blockSize slots, for
// every layer. The scheduler owns the allocation of block ids.
type KV struct {
	m         *Model
	blockSize int
	nBlocks   int
	peers     []*KV // the other tensor-parallel ranks' pools

	mu  sync.Mutex
	ptr *C.lmscore_kv
}

// NewKV allocates a pool of nBlocks blocks of blockSize token slots.
func (m *Model) NewKV(blockSize, nBlocks int) (*KV, error) {
	mp, err := m.acquire()
	if err != nil {
		return nil, err
	}
	var buf errBuf
	var ptr *C.lmscore_kv
	st := C.lmscore_go_kv_init(m.be.vt, mp, C.int32_t(clampInt32(blockSize)), C.int32_t(clampInt32(nBlocks)), &ptr, buf.ptr(), errBufSize)
	if err := buf.err("kv init", st); err != nil {
		m.release()
		return nil, err
	}
	kv := &KV{m: m, blockSize: blockSize, nBlocks: nBlocks, ptr: ptr}
	runtime.SetFinalizer(kv, (*KV).Close)
	if err := m.newPeerKVs(kv); err != nil {
		kv.Close()
		return nil, err
	}
	return kv, nil
}

// BlockSize is the number of token slots per block.
func (kv *KV) BlockSize() int { return kv.blockSize }

// NumBlocks is the number of blocks in the pool.
func (kv *KV) NumBlocks() int { return kv.nBlocks }

// Close frees the pool.
func (kv *KV) Close() error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.ptr == nil {
		return nil
	}
	C.lmscore_go_kv_free(kv.m.be.vt, kv.ptr)
	kv.ptr = nil
	kv.m.release()
	runtime.SetFinalizer(kv, nil)
	var errs []error
	for _, p := range kv.peers {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// Step runs batches of up to maxTokens tokens and maxOutputs output rows.
// Its methods are safe for concurrent use, but steps on one model run one
// at a time.
type Step struct {
	m          *Model
	maxTokens  int
	maxOutputs int
	peers      []*Step            // the other tensor-parallel ranks' steps
	peerRes    []scheduler.Result // their results, which equal this rank's

	mu  sync.Mutex
	ptr *C.lmscore_step
}

// NewStep sizes a step executor's scratch space once.
func (m *Model) NewStep(maxTokens, maxOutputs int) (*Step, error) {
	mp, err := m.acquire()
	if err != nil {
		return nil, err
	}
	var buf errBuf
	var ptr *C.lmscore_step
	st := C.lmscore_go_step_init(m.be.vt, mp, C.int32_t(clampInt32(maxTokens)), C.int32_t(clampInt32(maxOutputs)), &ptr, buf.ptr(), errBufSize)
	if err := buf.err("step init", st); err != nil {
		m.release()
		return nil, err
	}
	s := &Step{m: m, maxTokens: maxTokens, maxOutputs: maxOutputs, ptr: ptr}
	runtime.SetFinalizer(s, (*Step).Close)
	if err := m.newPeerSteps(s); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// MaxTokens is the largest number of tokens one Run takes.
func (s *Step) MaxTokens() int { return s.maxTokens }

// MaxOutputs is the largest number of output rows one Run takes.
func (s *Step) MaxOutputs() int { return s.maxOutputs }

// Close frees the step.
func (s *Step) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr == nil {
		return nil
	}
	s.free()
	runtime.SetFinalizer(s, nil)
	var errs []error
	for _, p := range s.peers {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

func (s *Step) free() {
	C.lmscore_go_step_free(s.m.be.vt, s.ptr)
	s.ptr = nil
	s.m.release()
}

// RunTimes splits one Run's host time: building the C descriptors (result
// slices sized, Go memory pinned, pointers set) and the cgo call itself,
// the core's work included.
type RunTimes struct {
	Prepare, Call time.Duration
}

// Run executes one batch against kv and fills r, resizing its slices to
// the batch's output rows. It is one cgo call; the native core validates
// every index before it touches the pool.
func (s *Step) Run(kv *KV, b *scheduler.Batch, r *scheduler.Result) error {
	return s.run(kv, b, r, nil)
}

// RunTimed is Run, recording where its time went in t (the profiler's
// host side; Run itself reads no clock).
func (s *Step) RunTimed(kv *KV, b *scheduler.Batch, r *scheduler.Result, t *RunTimes) error {
	return s.run(kv, b, r, t)
}

func (s *Step) run(kv *KV, b *scheduler.Batch, r *scheduler.Result, t *RunTimes) error {
	var start time.Time
	if t != nil {
		start = time.Now()
	}
	if kv == nil || b == nil || r == nil {
		return &Error{Status: StatusInvalidArgument, Op: "step run", Message: "nil KV pool, batch or result"}
	}
	if kv.m != s.m {
		return &Error{Status: StatusInvalidArgument, Op: "step run", Message: "the KV pool belongs to another model"}
	}
	if err := checkLengths(b); err != nil {
		return err
	}
	if len(s.peers) > 0 {
		return s.runSplit(kv, b, r, t, start)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return s.runLocked(kv, b, r, t, start)
}

// runLocked is one cgo call: this rank's step, its locks held.
func (s *Step) runLocked(kv *KV, b *scheduler.Batch, r *scheduler.Result, t *RunTimes, start time.Time) error {
	if s.ptr == nil || kv.ptr == nil {
		return ErrClosed
	}

	nOut := b.NumOutputs()
	topN := int(b.TopN)
	r.LogProb = resize(r.LogProb, nOut)
	r.IsGreedy = resize(r.IsGreedy, nOut)
	if topN > 0 && topN <= s.m.cfg.NVocab {
		r.TopIDs = resize(r.TopIDs, nOut*topN)
		r.TopLogProbs = resize(r.TopLogProbs, nOut*topN)
	} else {
		r.TopIDs, r.TopLogProbs = r.TopIDs[:0], r.TopLogProbs[:0]
	}

	// The descriptors are fresh Go values holding pinned Go pointers, which
	// cgo allows. (Keeping them in C memory across calls would not do: the
	// next call's pointer stores would run write barriers over the stale
	// pointers of the last one, to objects the GC may have freed.)
	var pin runtime.Pinner
	defer pin.Unpin()
	var batch C.lmscore_batch
	cb := &batch
	cb.n_tokens = C.int32_t(len(b.TokenIDs))
	cb.token_ids = pinInt32(&pin, b.TokenIDs)
	cb.positions = pinInt32(&pin, b.Positions)
	cb.slots = pinInt32(&pin, b.Slots)
	cb.n_segments = C.int32_t(b.NumSegments())
	cb.seg_token_start = pinInt32(&pin, b.SegTokenStart)
	cb.block_indptr = pinInt32(&pin, b.BlockIndptr)
	cb.block_indices = pinInt32(&pin, b.BlockIndices)
	cb.n_copies = C.int32_t(len(b.CopySrc))
	cb.copy_src = pinInt32(&pin, b.CopySrc)
	cb.copy_dst = pinInt32(&pin, b.CopyDst)
	cb.copy_n_tokens = pinInt32(&pin, b.CopyTokens)
	cb.n_outputs = C.int32_t(nOut)
	cb.out_token_index = pinInt32(&pin, b.OutTokenIndex)
	cb.out_target = pinInt32(&pin, b.OutTarget)
	cb.top_n = C.int32_t(b.TopN)

	var result C.lmscore_batch_result
	cr := &result
	if nOut > 0 {
		pin.Pin(&r.LogProb[0])
		cr.logprob = (*C.float)(unsafe.Pointer(&r.LogProb[0]))
		// A Go bool is one byte holding 0 or 1, exactly what the ABI writes.
		pin.Pin(&r.IsGreedy[0])
		cr.is_greedy = (*C.uint8_t)(unsafe.Pointer(&r.IsGreedy[0]))
		if len(r.TopIDs) > 0 {
			pin.Pin(&r.TopIDs[0])
			cr.top_ids = (*C.int32_t)(unsafe.Pointer(&r.TopIDs[0]))
			pin.Pin(&r.TopLogProbs[0])
			cr.top_logprobs = (*C.float)(unsafe.Pointer(&r.TopLogProbs[0]))
		}
	}

	var buf errBuf
	var called time.Time
	if t != nil {
		called = time.Now()
		t.Prepare = called.Sub(start)
	}
	st := C.lmscore_go_step_run(s.m.be.vt, s.ptr, kv.ptr, cb, cr, buf.ptr(), errBufSize)
	if t != nil {
		t.Call = time.Since(called)
	}
	return buf.err("step run", st)
}

// checkLengths checks what the C side cannot: that every array is as long
// as the counts it is read by.
func checkLengths(b *scheduler.Batch) error {
	bad := func(format string, args ...any) error {
		return &Error{Status: StatusInvalidArgument, Op: "step run", Message: "batch: " + fmt.Sprintf(format, args...)}
	}
	n := len(b.TokenIDs)
	if n > math.MaxInt32 {
		return bad("%d tokens exceed the int32 range", n)
	}
	if len(b.Positions) != n || len(b.Slots) != n {
		return bad("%d token ids, %d positions and %d slots: want equal lengths", n, len(b.Positions), len(b.Slots))
	}
	if len(b.SegTokenStart) != len(b.BlockIndptr) {
		return bad("%d entries in SegTokenStart and %d in BlockIndptr: want n_segments+1 each", len(b.SegTokenStart), len(b.BlockIndptr))
	}
	if len(b.SegTokenStart) == 1 {
		return bad("SegTokenStart has 1 entry: want none or n_segments+1 with n_segments >= 1")
	}
	if len(b.BlockIndptr) > 0 && int(b.BlockIndptr[len(b.BlockIndptr)-1]) != len(b.BlockIndices) {
		return bad("BlockIndptr ends at %d but BlockIndices holds %d", b.BlockIndptr[len(b.BlockIndptr)-1], len(b.BlockIndices))
	}
	if len(b.BlockIndptr) == 0 && len(b.BlockIndices) != 0 {
		return bad("BlockIndices holds %d entries but there are no segments", len(b.BlockIndices))
	}
	if len(b.CopyDst) != len(b.CopySrc) || len(b.CopyTokens) != len(b.CopySrc) {
		return bad("%d copy sources, %d destinations and %d token counts: want equal lengths", len(b.CopySrc), len(b.CopyDst), len(b.CopyTokens))
	}
	if len(b.OutTarget) != len(b.OutTokenIndex) {
		return bad("%d output token indices and %d targets: want equal lengths", len(b.OutTokenIndex), len(b.OutTarget))
	}
	if b.TopN < 0 {
		return bad("TopN %d is negative", b.TopN)
	}
	return nil
}

func pinInt32(pin *runtime.Pinner, s []int32) *C.int32_t {
	if len(s) == 0 {
		return nil
	}
	pin.Pin(&s[0])
	return (*C.int32_t)(unsafe.Pointer(&s[0]))
}

func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// clampInt32 maps out-of-range sizes to values the native core rejects
// with a clear message instead of letting them wrap around.
func clampInt32(v int) int32 {
	if v > math.MaxInt32 {
		return math.MaxInt32
	}
	if v < math.MinInt32 {
		return math.MinInt32
	}
	return int32(v)
}
