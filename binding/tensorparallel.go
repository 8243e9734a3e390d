//go:build cgo

package binding

// #include "backend.h"
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// tpGroup owns a core's lmscore_tp_group. Every rank's Model points at it,
// so its finalizer runs only after theirs: the group outlives its ranks.
type tpGroup struct {
	be   *backend
	ptr  *C.lmscore_tp_group
	size int
	// runMu makes the split's runs one at a time: each is a call on every
	// rank, and the ranks pair up inside the core.
	runMu sync.Mutex
}

func newTPGroup(be *backend, size int) (*tpGroup, error) {
	var buf errBuf
	var ptr *C.lmscore_tp_group
	st := C.lmscore_go_tp_group_create(be.vt, C.int32_t(clampInt32(size)), &ptr, buf.ptr(), errBufSize)
	if err := buf.err("tensor-parallel group", st); err != nil {
		return nil, err
	}
	g := &tpGroup{be: be, ptr: ptr, size: size}
	runtime.SetFinalizer(g, (*tpGroup).free)
	return g, nil
}

func (g *tpGroup) free() {
	if g.ptr != nil {
		C.lmscore_go_tp_group_free(g.be.vt, g.ptr)
		g.ptr = nil
	}
	runtime.SetFinalizer(g, nil)
}

// OpenCPUTensorParallel loads m on the CPU core split over size ranks
// (lmscore.h's lmscore_tp_group; model.TensorParallelShard makes each
// rank's shard), the threads shared out among them. The returned Model and
// the KV pools and steps made from it span every rank: a KV block is a
// block on each rank (KVBlockBytes sums them), and a step runs each batch
// on every rank at once, returning rank 0's results (every rank's are the
// same bits). size 1 is OpenCPU.
func OpenCPUTensorParallel(m *model.Model, threads, size int) (*Model, error) {
	if size == 1 {
		return OpenCPU(m, threads)
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return openTensorParallel(cpuBackend, m, size, func(int) C.lmscore_backend_params {
		return cpuParams(max(1, threads/size))
	})
}

// OpenCUDATensorParallel is OpenCUDA split over size ranks, rank r on
// devices[r]. The CUDA core answers whether it splits models (today it
// does not: its error says so).
func OpenCUDATensorParallel(m *model.Model, libPath string, precision Precision, devices []int) (*Model, error) {
	if len(devices) == 1 {
		return OpenCUDA(m, libPath, precision, devices[0])
	}
	be, err := cudaBackend(libPath)
	if err != nil {
		return nil, err
	}
	return openTensorParallel(be, m, len(devices), func(r int) C.lmscore_backend_params {
		return cudaParams(be, precision, devices[r])
	})
}

func openTensorParallel(be *backend, m *model.Model, size int, params func(rank int) C.lmscore_backend_params) (*Model, error) {
	if size < 1 {
		return nil, &Error{Status: StatusInvalidArgument, Op: "model load", Message: fmt.Sprintf("tensor parallel %d: want at least 1", size)}
	}
	if m == nil {
		return nil, &Error{Status: StatusInvalidArgument, Op: "model load", Message: "nil model"}
	}
	// The group first: a core that does not split models (or not this
	// many ranks) says so before any weight is copied.
	g, err := newTPGroup(be, size)
	if err != nil {
		return nil, err
	}
	// One rank's shard at a time, loaded and then dropped, so that the
	// copied columns of at most one shard are alive at once. Rank 0's shard
	// meets every rule a split has (all ranks' dimensions are alike), so a
	// split the model does not allow is refused before anything loads.
	ranks := make([]*Model, 0, size)
	for r := 0; r < size; r++ {
		rm, err := openRank(be, m, r, size, g, params(r))
		if err != nil {
			for _, o := range ranks {
				o.Close()
			}
			g.free()
			return nil, err
		}
		ranks = append(ranks, rm)
	}
	lead := ranks[0]
	lead.peers = ranks[1:]
	lead.ownsTP = true
	return lead, nil
}

func openRank(be *backend, m *model.Model, rank, size int, g *tpGroup, p C.lmscore_backend_params) (*Model, error) {
	shard, err := model.TensorParallelShard(m, rank, size)
	if err != nil {
		return nil, &Error{Status: StatusUnsupported, Op: "model load", Message: err.Error()}
	}
	p.tp_group = g.ptr
	p.tp_rank = C.int32_t(rank)
	rm, err := open(be, shard, p)
	if err != nil {
		return nil, fmt.Errorf("tensor parallel rank %d: %w", rank, err)
	}
	rm.cfg = m.Config // callers see the whole model
	rm.tp = g
	return rm, nil
}

// TensorParallel is the number of ranks the model is split over (1: whole).
func (m *Model) TensorParallel() int { return 1 + len(m.peers) }

// closePeers closes the other ranks' models and then, on rank 0, the
// group, once every rank's handle is gone.
func (m *Model) closePeers() error {
	var errs []error
	for _, p := range m.peers {
		errs = append(errs, p.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.peers = nil
	if m.ownsTP {
		m.tp.free()
		m.ownsTP = false
	}
	return nil
}

// peerBlockBytes adds the other ranks' share of a KV block.
func (m *Model) peerBlockBytes(blockSize int) (int64, error) {
	var sum int64
	for _, p := range m.peers {
		b, err := p.KVBlockBytes(blockSize)
		if err != nil {
			return 0, err
		}
		sum += b
	}
	return sum, nil
}

// newPeerKVs makes the other ranks' pools for kv.
func (m *Model) newPeerKVs(kv *KV) error {
	for _, p := range m.peers {
		pk, err := p.NewKV(kv.blockSize, kv.nBlocks)
		if err != nil {
			return err
		}
		kv.peers = append(kv.peers, pk)
	}
	return nil
}

// newPeerSteps makes the other ranks' steps for s.
func (m *Model) newPeerSteps(s *Step) error {
	for _, p := range m.peers {
		ps, err := p.NewStep(s.maxTokens, s.maxOutputs)
		if err != nil {
			return err
		}
		s.peers = append(s.peers, ps)
	}
	s.peerRes = make([]scheduler.Result, len(s.peers))
	return nil
}

// runSplit runs b on every rank at once and fills r with rank 0's rows.
// The ranks meet inside the core, so either every rank's call starts or
// none does: the group's run lock makes the split's runs one at a time (two
// would pair one's rank 0 with the other's rank 1), and every rank's step
// and pool are locked, and checked open, before any rank enters C (a rank
// refused in Go would leave the others waiting in C). Locks go in rank
// order, steps before pools within a rank, as Close takes them.
func (s *Step) runSplit(kv *KV, b *scheduler.Batch, r *scheduler.Result, t *RunTimes, start time.Time) error {
	if len(kv.peers) != len(s.peers) {
		return &Error{Status: StatusInvalidArgument, Op: "step run", Message: "the KV pool spans another number of ranks"}
	}
	g := s.m.tp
	g.runMu.Lock()
	defer g.runMu.Unlock()
	steps := append([]*Step{s}, s.peers...)
	kvs := append([]*KV{kv}, kv.peers...)
	for i := range steps {
		steps[i].mu.Lock()
		defer steps[i].mu.Unlock()
		kvs[i].mu.Lock()
		defer kvs[i].mu.Unlock()
		if steps[i].ptr == nil || kvs[i].ptr == nil {
			return ErrClosed
		}
	}
	errs := make([]error, len(s.peers))
	var wg sync.WaitGroup
	for i, p := range s.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.runLocked(kv.peers[i], b, &s.peerRes[i], nil, time.Time{})
		}()
	}
	err := s.runLocked(kv, b, r, t, start)
	wg.Wait()
	if err != nil {
		return err
	}
	for i, e := range errs {
		if e != nil {
			return fmt.Errorf("tensor parallel rank %d: %w", i+1, e)
		}
	}
	return nil
}
