package binding

import (
	"errors"
	"fmt"
)

// Status is an lmscore_status code.
type Status int32

// Values match lmscore_status in lmscore.h.
const (
	StatusOK              Status = 0
	StatusInvalidArgument Status = 1
	StatusUnsupported     Status = 2
	StatusOutOfMemory     Status = 3
	StatusDevice          Status = 4
	StatusInternal        Status = 5
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusInvalidArgument:
		return "invalid argument"
	case StatusUnsupported:
		return "unsupported"
	case StatusOutOfMemory:
		return "out of memory"
	case StatusDevice:
		return "device error"
	case StatusInternal:
		return "internal error"
	}
	return fmt.Sprintf("status(%d)", int32(s))
}

// Error is a failed ABI call: its status, the operation and the native
// core's message.
type Error struct {
	Status  Status
	Op      string // e.g. "step run"
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("lmscore %s: %s", e.Op, e.Status)
	}
	return fmt.Sprintf("lmscore %s: %s: %s", e.Op, e.Status, e.Message)
}

// Is matches the sentinels below by status: errors.Is(err, ErrOutOfMemory).
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Op == "" && t.Message == "" && t.Status == e.Status
}

// Sentinels for errors.Is.
var (
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	ErrUnsupported     = &Error{Status: StatusUnsupported}
	ErrOutOfMemory     = &Error{Status: StatusOutOfMemory}
	ErrDevice          = &Error{Status: StatusDevice}
	ErrInternal        = &Error{Status: StatusInternal}
)

// ErrClosed is returned by methods of a closed handle.
var ErrClosed = errors.New("lmscore: handle is closed")

// ErrNoCgo is returned by every constructor of a binary built without cgo.
var ErrNoCgo = errors.New("lmscore: built without cgo: the native cores need CGO_ENABLED=1 and a C/C++ compiler (gcc and g++)")

// Precision selects the CUDA core's arithmetic; the CPU core is fp32 only.
type Precision int32

// Values match lmscore_precision in lmscore.h.
const (
	PrecisionFP32 Precision = 0
	PrecisionBF16 Precision = 1
)

// CUDALibName is the file OpenCUDA looks for next to the executable.
const CUDALibName = "liblmscore_cuda.so"

// CUDALibEnv names the environment variable that points OpenCUDA at the library.
const CUDALibEnv = "LMSCORE_CUDA_LIB"
