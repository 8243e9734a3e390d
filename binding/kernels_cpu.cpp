//go:build cgo

// The per-instruction-set kernels of the CPU core, in their own unit so
// that their target options stay apart from the rest (see core_cpu.cpp).
#include "../csrc/cpu/kernels_scalar.cpp"
#include "../csrc/cpu/kernels_avx2.cpp"
#include "../csrc/cpu/kernels_avx512.cpp"
