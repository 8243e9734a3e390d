//go:build !cgo

package binding

import (
	"time"

	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// Model is a model loaded on a backend. Without cgo none can be made.
type Model struct{}

// KV is a pool of paged KV blocks. Without cgo none can be made.
type KV struct{}

// Step runs batches. Without cgo none can be made.
type Step struct{}

// OpenCPU returns ErrNoCgo: the CPU core is C++ compiled by cgo.
func OpenCPU(m *model.Model, threads int) (*Model, error) { return nil, ErrNoCgo }

// OpenCUDA returns ErrNoCgo: loading the CUDA library needs cgo.
func OpenCUDA(m *model.Model, libPath string, precision Precision, device int) (*Model, error) {
	return nil, ErrNoCgo
}

// FindCUDALib returns ErrNoCgo.
func FindCUDALib(libPath string) (string, error) { return "", ErrNoCgo }

// OpenCPUTensorParallel returns ErrNoCgo.
func OpenCPUTensorParallel(m *model.Model, threads, size int) (*Model, error) { return nil, ErrNoCgo }

// OpenCUDATensorParallel returns ErrNoCgo.
func OpenCUDATensorParallel(m *model.Model, libPath string, precision Precision, devices []int) (*Model, error) {
	return nil, ErrNoCgo
}

func (m *Model) TensorParallel() int { return 1 }

func (m *Model) Backend() string                           { return "" }
func (m *Model) Config() model.Config                      { return model.Config{} }
func (m *Model) Close() error                              { return nil }
func (m *Model) KVBlockBytes(blockSize int) (int64, error) { return 0, ErrNoCgo }
func (m *Model) NewKV(blockSize, nBlocks int) (*KV, error) { return nil, ErrNoCgo }
func (m *Model) NewStep(maxTokens, maxOutputs int) (*Step, error) {
	return nil, ErrNoCgo
}
func (kv *KV) BlockSize() int   { return 0 }
func (kv *KV) NumBlocks() int   { return 0 }
func (kv *KV) Close() error     { return nil }
func (s *Step) MaxTokens() int  { return 0 }
func (s *Step) MaxOutputs() int { return 0 }
func (s *Step) Close() error    { return nil }
func (s *Step) Run(kv *KV, b *scheduler.Batch, r *scheduler.Result) error {
	return ErrNoCgo
}
func (s *Step) RunTimed(kv *KV, b *scheduler.Batch, r *scheduler.Result, t *RunTimes) error {
	return ErrNoCgo
}
func (m *Model) ProfileReport() ([]byte, error) { return nil, ErrNoCgo }

// RunTimes splits one Run's host time (see the cgo build).
type RunTimes struct {
	Prepare, Call time.Duration
}
