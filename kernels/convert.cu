// convert.cu — weight conversion at load time: GGML tensor types to fp32/bf16.
#include <cuda_fp16.h>

#include "device_util.cuh"
#include "lmscore.h"

namespace lmscore_cuda {
namespace {

// Element by element, for dense sources of any length (vectors need not
// be a multiple of 8 long); src_type is F32, F16 or BF16.
template <typename T>
__global__ void convert_dense_kernel(const void *src, int32_t src_type, int64_t n, T *dst) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v;
        switch (src_type) {
        case LMSCORE_TYPE_F32: v = ((const float *)src)[i]; break;
        case LMSCORE_TYPE_F16: v = __half2float(((const __half *)src)[i]); break;
        default: v = __bfloat162float(((const __nv_bfloat16 *)src)[i]); break;
        }
        dst[i] = from_f32<T>(v);
    }
}

} // namespace

cudaError_t convert_tensor(const void *src, int32_t src_type, int64_t ne0, int64_t n, void *dst,
                           DType dst_type, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (src_type == LMSCORE_TYPE_F32 || src_type == LMSCORE_TYPE_F16 || src_type == LMSCORE_TYPE_BF16) {
        LMSCORE_DISPATCH_DTYPE(dst_type, T,
            convert_dense_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(src, src_type, n, (T *)dst));
        return cudaGetLastError();
    }
    if (ne0 <= 0 || n % ne0 != 0) return cudaErrorInvalidValue;
    return dequantize_rows(src, src_type, ne0, n / ne0, dst, dst_type, stream);
}

} // namespace lmscore_cuda
