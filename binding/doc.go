// Package binding is the thin Go layer over lmscore's C ABI
// (csrc/include/lmscore.h): a model loaded on a backend, a pool of paged KV
// blocks, and a step executor that runs one scheduler.Batch in one cgo call.
//
// Two backends implement the ABI: the CPU core (csrc/cpu), compiled into
// the binary by cgo, and the CUDA core, a shared library opened at run time
// (OpenCUDA). Every call goes through a table of function pointers, so both
// share this code.
//
// Handles are freed by Close; a finalizer frees a forgotten one. A KV pool
// or step keeps its model alive, and a model refuses to close while any of
// its pools or steps is open.
//
// Built without cgo (CGO_ENABLED=0), the package still compiles and every
// constructor returns ErrNoCgo.
package binding

//go:generate go run ./internal/gencsrchash
