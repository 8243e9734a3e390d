// embed.cu — token (and learned position) embeddings into the fp32 residual stream.
#include "dequant.cuh"
#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

// x is (n_tokens, n_embd); one block per token.
template <typename T>
__global__ void embed_kernel(const int32_t *token_ids, const int32_t *positions, const T *tok,
                             const T *pos, int n_embd, float tok_scale, float *x) {
    const int t = blockIdx.x;
    const T *trow = tok + (int64_t)token_ids[t] * n_embd;
    const T *prow = pos ? pos + (int64_t)positions[t] * n_embd : nullptr;
    float *xrow = x + (int64_t)t * n_embd;
    for (int e = threadIdx.x; e < n_embd; e += blockDim.x) {
        float v = to_f32(trow[e]) * tok_scale;
        if (prow) v += to_f32(prow[e]);
        xrow[e] = v;
    }
}

// The same over a token table of block type B, 8 values per thread: only
// the rows looked up are dequantized. Each value is rounded to T first, so
// the sum is the one embed_kernel computes over the table converted to T.
template <typename B, typename T>
__global__ void embed_dequant_kernel(const int32_t *token_ids, const int32_t *positions, const uint8_t *tok,
                                     int64_t row_bytes, const T *pos, int n_embd, float tok_scale, float *x) {
    const int t = blockIdx.x;
    const uint8_t *trow = tok + (int64_t)token_ids[t] * row_bytes;
    const T *prow = pos ? pos + (int64_t)positions[t] * n_embd : nullptr;
    float *xrow = x + (int64_t)t * n_embd;
    for (int c = threadIdx.x * 8; c < n_embd; c += blockDim.x * 8) {
        float v[8];
        B::get8(trow + (c / B::kValues) * B::kBytes, c % B::kValues, v);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            float e = to_f32(from_f32<T>(v[k])) * tok_scale;
            if (prow) e += to_f32(prow[c + k]);
            xrow[c + k] = e;
        }
    }
}

} // namespace

cudaError_t embed(const int32_t *token_ids, const int32_t *positions, const void *tok_embd, int32_t tok_type,
                  const void *pos_embd, DType dtype, int n_tokens, int n_embd, float tok_scale, float *x,
                  cudaStream_t stream) {
    if (n_tokens == 0) return cudaSuccess;
    const int32_t own = dtype == DType::F32 ? LMSCORE_TYPE_F32 : LMSCORE_TYPE_BF16;
    if (tok_type == own) {
        LMSCORE_DISPATCH_DTYPE(dtype, T,
            embed_kernel<T><<<n_tokens, 256, 0, stream>>>(token_ids, positions, (const T *)tok_embd,
                                                          (const T *)pos_embd, n_embd, tok_scale, x));
        return cudaGetLastError();
    }
    const int64_t row_bytes = dequant_row_bytes(tok_type, n_embd);
    if (row_bytes < 0 || n_embd % 8 != 0) return cudaErrorInvalidValue;
    dispatch_type(tok_type, [&](auto blk) {
        using B = decltype(blk);
        LMSCORE_DISPATCH_DTYPE(dtype, T,
            embed_dequant_kernel<B, T><<<n_tokens, 256, 0, stream>>>(
                token_ids, positions, (const uint8_t *)tok_embd, row_bytes, (const T *)pos_embd, n_embd, tok_scale, x));
    });
    return cudaGetLastError();
}

} // namespace lmscore_cuda
