// norm.cu — RMSNorm and LayerNorm in fp32, optionally over a gathered set of rows.
#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

constexpr int kNormThreads = 256;

// One block per output row. Two passes over the input row (it stays in L1/L2):
// the mean first, then the centred second moment, which keeps LayerNorm's
// variance accurate when the mean is large.
template <typename T>
__global__ void __launch_bounds__(kNormThreads)
norm_kernel(NormKind kind, const float *x, const int32_t *rows, int n, const float *w,
            const float *b, float eps, T *out) {
    __shared__ float scratch[32];
    const int i = blockIdx.x;
    const float *xrow = x + (int64_t)(rows ? rows[i] : i) * n;
    T *orow = out + (int64_t)i * n;

    float mean = 0.f;
    if (kind == NormKind::Layer) {
        float s = 0.f;
        for (int e = threadIdx.x; e < n; e += blockDim.x) s += xrow[e];
        mean = block_sum(s, scratch) / (float)n;
    }
    float ss = 0.f;
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        const float d = xrow[e] - mean;
        ss += d * d;
    }
    const float inv = rsqrtf(block_sum(ss, scratch) / (float)n + eps);
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        float v = (xrow[e] - mean) * inv * w[e];
        if (b) v += b[e];
        orow[e] = from_f32<T>(v);
    }
}

} // namespace

cudaError_t norm(NormKind kind, const float *x, const int32_t *rows, int n_rows, int n,
                 const float *w, const float *b, float eps, void *out, DType dtype,
                 cudaStream_t stream) {
    if (n_rows == 0) return cudaSuccess;
    LMSCORE_DISPATCH_DTYPE(dtype, T,
        norm_kernel<T><<<n_rows, kNormThreads, 0, stream>>>(kind, x, rows, n, w, b, eps, (T *)out));
    return cudaGetLastError();
}

} // namespace lmscore_cuda
