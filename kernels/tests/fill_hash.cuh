// fill_hash.cuh — pseudo-random values in [-a, a) written on the device from
// a counter hash, so that the 1B-model shapes (the LM head's weights are
// 263M values) need no host generation or upload. For gemm_test.cu and
// gemm_sweep.cu; throughput.cpp makes the same values on the host.
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>

#include "kernels.h"

namespace lmscore_test {

static __global__ void fill_hash_kernel(void *p, lmscore_cuda::DType t, size_t n, float a, uint64_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        const float v = ((float)(x >> 40) / (float)(1ull << 24) * 2.f - 1.f) * a;
        if (t == lmscore_cuda::DType::F32)
            ((float *)p)[i] = v;
        else
            ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    }
}

// n values of type t at p.
inline cudaError_t fill_hash(void *p, lmscore_cuda::DType t, size_t n, float a, uint64_t seed, cudaStream_t stream = 0) {
    fill_hash_kernel<<<1024, 256, 0, stream>>>(p, t, n, a, seed);
    return cudaGetLastError();
}

} // namespace lmscore_test
