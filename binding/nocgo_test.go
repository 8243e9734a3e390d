//go:build !cgo

package binding

import (
	"errors"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
)

// TestNoCgo: built with CGO_ENABLED=0, every constructor says why it
// cannot work instead of failing to compile.
func TestNoCgo(t *testing.T) {
	m := testmodel.Must(testmodel.Options{})
	if _, err := OpenCPU(m, 0); !errors.Is(err, ErrNoCgo) {
		t.Errorf("OpenCPU: %v", err)
	}
	if _, err := OpenCUDA(m, "", PrecisionFP32, 0); !errors.Is(err, ErrNoCgo) {
		t.Errorf("OpenCUDA: %v", err)
	}
	if _, err := FindCUDALib(""); !errors.Is(err, ErrNoCgo) {
		t.Errorf("FindCUDALib: %v", err)
	}
}
