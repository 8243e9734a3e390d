// embed.cu — token (and learned position) embeddings into the fp32 residual stream.
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

} // namespace

cudaError_t embed(const int32_t *token_ids, const int32_t *positions, const void *tok_embd,
                  const void *pos_embd, DType dtype, int n_tokens, int n_embd, float tok_scale, float *x,
                  cudaStream_t stream) {
    if (n_tokens == 0) return cudaSuccess;
    LMSCORE_DISPATCH_DTYPE(dtype, T,
        embed_kernel<T><<<n_tokens, 256, 0, stream>>>(token_ids, positions, (const T *)tok_embd,
                                                      (const T *)pos_embd, n_embd, tok_scale, x));
    return cudaGetLastError();
}

} // namespace lmscore_cuda
