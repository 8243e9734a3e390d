// dequant.cu — rows of any GGML type to fp32 or bf16 on the device: in bf16
// runs each quantized weight just before its GEMM, into the step's scratch
// (step.cpp); at load, every block type the run keeps dense (convert.cu).
#include "dequant.cuh"
#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

// 8 values to dst; vec: dst is 16-byte aligned, so one or two vector stores.
__device__ __forceinline__ void store8(float *dst, const float *v, bool vec) {
    if (vec) {
        ((float4 *)dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
        ((float4 *)dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
#pragma unroll
        for (int k = 0; k < 8; ++k) dst[k] = v[k];
    }
}

__device__ __forceinline__ void store8(__nv_bfloat16 *dst, const float *v, bool vec) {
    if (vec) {
        uint4 u;
        __nv_bfloat162 h[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) h[k] = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
        memcpy(&u, h, sizeof u);
        *(uint4 *)dst = u;
    } else {
#pragma unroll
        for (int k = 0; k < 8; ++k) dst[k] = __float2bfloat16_rn(v[k]);
    }
}

// dst (n_rows, 8 groups_per_row) of T = src, n_rows rows of row_bytes
// bytes in block type B. One thread per 8 consecutive values, so a warp
// covers 256 values: one K-quant block, or 8 legacy blocks.
template <typename B, typename T>
__global__ void dequant_rows_kernel(const uint8_t *src, int64_t row_bytes, int64_t groups_per_row, int64_t n_groups,
                                    T *dst, bool vec) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_groups;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / groups_per_row, c = (i - r * groups_per_row) * 8;
        float v[8];
        B::get8(src + r * row_bytes + (c / B::kValues) * B::kBytes, (int)(c % B::kValues), v);
        store8(dst + r * groups_per_row * 8 + c, v, vec);
    }
}

} // namespace

bool dequant_supports(int32_t type) {
    return dispatch_type(type, [](auto) {});
}

int64_t dequant_row_bytes(int32_t type, int64_t ne0) {
    int64_t bytes = -1;
    dispatch_type(type, [&](auto blk) {
        using B = decltype(blk);
        if (ne0 >= 0 && ne0 % B::kValues == 0) bytes = ne0 / B::kValues * B::kBytes;
    });
    return bytes;
}

cudaError_t dequantize_rows(const void *src, int32_t type, int64_t ne0, int64_t n_rows, void *dst, DType dst_type,
                            cudaStream_t stream) {
    const int64_t row_bytes = dequant_row_bytes(type, ne0);
    if (row_bytes < 0 || ne0 % 8 != 0 || n_rows < 0) return cudaErrorInvalidValue;
    const int64_t groups = ne0 / 8 * n_rows;
    if (groups == 0) return cudaSuccess;
    const bool vec = (uintptr_t)dst % 16 == 0;
    dispatch_type(type, [&](auto blk) {
        using B = decltype(blk);
        LMSCORE_DISPATCH_DTYPE(dst_type, T,
            dequant_rows_kernel<B, T><<<grid_for(groups, 256), 256, 0, stream>>>(
                (const uint8_t *)src, row_bytes, ne0 / 8, groups, (T *)dst, vec));
    });
    return cudaGetLastError();
}

} // namespace lmscore_cuda
