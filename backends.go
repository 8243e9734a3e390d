package lmscore

import "github.com/lmscore/lmscore/binding"

// FindCUDALibrary returns the CUDA library that Open would load for
// Options.CUDALibrary = path: path itself when given, else
// $LMSCORE_CUDA_LIB, else liblmscore_cuda.so next to the executable. When
// there is no file there the error names the places it looked. A binary
// built without cgo has neither native core: the error then matches
// ErrNoCgo.
func FindCUDALibrary(path string) (string, error) {
	found, err := binding.FindCUDALib(path)
	return found, classify(err)
}
