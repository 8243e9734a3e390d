//go:build cgo

package binding

/*
#include <stdlib.h>
#include "backend.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"github.com/lmscore/lmscore/model"
)

var (
	cudaMu       sync.Mutex
	cudaBackends = map[string]*backend{} // by resolved path; libraries stay loaded
)

// FindCUDALib resolves where the CUDA library is: libPath if given, else
// $LMSCORE_CUDA_LIB, else liblmscore_cuda.so next to the executable. It
// fails with the places it looked when there is no file there.
func FindCUDALib(libPath string) (string, error) {
	var tried []string
	candidates := []struct{ path, why string }{}
	if libPath != "" {
		candidates = append(candidates, struct{ path, why string }{libPath, "the path given"})
	} else {
		if env := os.Getenv(CUDALibEnv); env != "" {
			candidates = append(candidates, struct{ path, why string }{env, "$" + CUDALibEnv})
		} else if exe, err := os.Executable(); err == nil {
			candidates = append(candidates, struct{ path, why string }{filepath.Join(filepath.Dir(exe), CUDALibName), "next to the executable"})
		}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c.path); err == nil && !st.IsDir() {
			abs, err := filepath.Abs(c.path)
			if err != nil {
				return c.path, nil
			}
			return abs, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%s)", c.path, c.why))
	}
	return "", &Error{Status: StatusUnsupported, Op: "cuda open",
		Message: fmt.Sprintf("CUDA library not found: tried %v; build it with `make cuda`, then pass its path or set %s", tried, CUDALibEnv)}
}

// OpenCUDA loads m on the CUDA core from the library found by FindCUDALib,
// computing in the given precision on the given device ordinal.
func OpenCUDA(m *model.Model, libPath string, precision Precision, device int) (*Model, error) {
	be, err := cudaBackend(libPath)
	if err != nil {
		return nil, err
	}
	return open(be, m, cudaParams(be, precision, device))
}

// cudaBackend is the CUDA library FindCUDALib finds for libPath, opened.
func cudaBackend(libPath string) (*backend, error) {
	path, err := FindCUDALib(libPath)
	if err != nil {
		return nil, err
	}
	return openBackend(path)
}

// cudaParams are be's defaults with the precision and device ordinal set.
func cudaParams(be *backend, precision Precision, device int) C.lmscore_backend_params {
	p := C.lmscore_go_default_params(be.vt)
	p.device = C.int32_t(clampInt32(device))
	p.precision = C.int32_t(precision)
	return p
}

func openBackend(path string) (*backend, error) {
	cudaMu.Lock()
	defer cudaMu.Unlock()
	if be, ok := cudaBackends[path]; ok {
		return be, nil
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var buf errBuf
	vt := C.lmscore_go_open_backend(cpath, buf.ptr(), errBufSize)
	if vt == nil {
		return nil, &Error{Status: StatusUnsupported, Op: "cuda open", Message: C.GoString(buf.ptr())}
	}
	be := &backend{vt: vt, name: C.GoString(C.lmscore_go_backend_name(vt))}
	cudaBackends[path] = be
	return be, nil
}
