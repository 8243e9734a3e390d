// device_util.cuh — conversions and reductions shared by the kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <initializer_list>

#include "kernels.h"

namespace lmscore_cuda {

// Storage types: every kernel reads and writes through these two, so one
// template body serves fp32 (the check mode) and bf16.
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// Four values stored with one 16-byte (fp32) or 8-byte (bf16) write; p
// aligned to it.
template <typename T> __device__ __forceinline__ void store4(T *p, float a, float b, float c, float d);
template <> __device__ __forceinline__ void store4<float>(float *p, float a, float b, float c, float d) {
    *(float4 *)p = make_float4(a, b, c, d);
}
template <> __device__ __forceinline__ void store4<__nv_bfloat16>(__nv_bfloat16 *p, float a, float b, float c, float d) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(a, b), hi = __floats2bfloat162_rn(c, d);
    uint2 u;
    u.x = *(const uint32_t *)&lo;
    u.y = *(const uint32_t *)&hi;
    *(uint2 *)p = u;
}

// Four values read with one 16-byte (fp32) or 8-byte (bf16) load; p
// aligned to it. The counterpart of store4.
__device__ __forceinline__ float4 load4(const float *p) { return *(const float4 *)p; }
__device__ __forceinline__ float4 load4(const __nv_bfloat16 *p) {
    const uint2 u = *(const uint2 *)p;
    const float2 lo = __bfloat1622float2(*(const __nv_bfloat162 *)&u.x),
                 hi = __bfloat1622float2(*(const __nv_bfloat162 *)&u.y);
    return make_float4(lo.x, lo.y, hi.x, hi.y);
}

// Whether every pointer is a multiple of `bytes` (null pointers count as
// aligned): the host's test before a vector path's wide loads and stores.
inline bool aligned(size_t bytes, std::initializer_list<const void *> ptrs) {
    uintptr_t any = 0;
    for (const void *p : ptrs) any |= reinterpret_cast<uintptr_t>(p);
    return any % bytes == 0;
}

// Grid-stride loop bounds for element-wise kernels: enough blocks to fill
// the device, never more than the work.
inline unsigned grid_for(int64_t n, int threads) {
    int64_t blocks = (n + threads - 1) / threads;
    if (blocks > 65535LL * 8) blocks = 65535LL * 8;
    return blocks < 1 ? 1u : (unsigned)blocks;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block; every thread gets the result. scratch holds 32 floats.
// Ends with a barrier so scratch can be reused at once.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int n_warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0.f;
    // Every thread sums the per-warp partials in the same order, so all see
    // the same value bit for bit.
    for (int w = 0; w < n_warps; ++w) total += scratch[w];
    __syncthreads();
    return total;
}

// Dispatch a storage type to a template: F(float{}) or F(bf16{}).
#define LMSCORE_DISPATCH_DTYPE(dtype, T, ...)                                  \
    do {                                                                       \
        if ((dtype) == ::lmscore_cuda::DType::F32) {                           \
            using T = float;                                                   \
            __VA_ARGS__;                                                       \
        } else {                                                               \
            using T = __nv_bfloat16;                                           \
            __VA_ARGS__;                                                       \
        }                                                                      \
    } while (0)

} // namespace lmscore_cuda
