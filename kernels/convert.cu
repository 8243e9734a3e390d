// convert.cu — weight conversion at load time: GGML tensor types to fp32/bf16.
#include <cuda_fp16.h>

#include "device_util.cuh"
#include "lmscore.h"

namespace lmscore_cuda {
namespace {

// Q8_0: rows of ne0 values in blocks of 32; each block is an fp16 scale d
// followed by 32 int8 quants, 34 bytes, value = d * q.
__device__ __forceinline__ float load_q8_0(const uint8_t *src, int64_t ne0, int64_t i) {
    const int64_t row = i / ne0, col = i % ne0;
    const int64_t block = row * (ne0 / 32) + col / 32;
    const uint8_t *b = src + block * 34;
    __half d;
    memcpy(&d, b, sizeof d); // blocks are 2-byte aligned only
    return __half2float(d) * (float)(int8_t)b[2 + col % 32];
}

template <typename T>
__global__ void convert_kernel(const void *src, int32_t src_type, int64_t ne0, int64_t n, T *dst) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v;
        switch (src_type) {
        case LMSCORE_TYPE_F32: v = ((const float *)src)[i]; break;
        case LMSCORE_TYPE_F16: v = __half2float(((const __half *)src)[i]); break;
        case LMSCORE_TYPE_BF16: v = __bfloat162float(((const __nv_bfloat16 *)src)[i]); break;
        default: v = load_q8_0((const uint8_t *)src, ne0, i); break;
        }
        dst[i] = from_f32<T>(v);
    }
}

} // namespace

cudaError_t convert_tensor(const void *src, int32_t src_type, int64_t ne0, int64_t n, void *dst,
                           DType dst_type, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    LMSCORE_DISPATCH_DTYPE(dst_type, T,
        convert_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(src, src_type, ne0, n, (T *)dst));
    return cudaGetLastError();
}

} // namespace lmscore_cuda
