// norm.cu — RMSNorm and LayerNorm in fp32, optionally over a gathered set of
// rows; the post-norm fused with its residual add; the plain fp32-to-storage
// copy where a model has no norm; and RMSNorm of each attention head (or of
// a whole projection) in place.
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

// As norm_kernel (the same two passes, so a post-norm's statistics round as
// a pre-norm's do), over y + bias, added into the residual x instead of
// written out: the normed output never goes through memory.
__global__ void __launch_bounds__(kNormThreads)
norm_residual_kernel(NormKind kind, const float *y, const float *y_bias, int n, const float *w, float eps,
                     float *x) {
    __shared__ float scratch[32];
    const int i = blockIdx.x;
    const float *yrow = y + (int64_t)i * n;
    float *xrow = x + (int64_t)i * n;
    auto in = [&](int e) { return y_bias ? yrow[e] + y_bias[e] : yrow[e]; };
    float mean = 0.f;
    if (kind == NormKind::Layer) {
        float s = 0.f;
        for (int e = threadIdx.x; e < n; e += blockDim.x) s += in(e);
        mean = block_sum(s, scratch) / (float)n;
    }
    float ss = 0.f;
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
        const float d = in(e) - mean;
        ss += d * d;
    }
    const float inv = rsqrtf(block_sum(ss, scratch) / (float)n + eps);
    for (int e = threadIdx.x; e < n; e += blockDim.x) xrow[e] += (in(e) - mean) * inv * w[e];
}

template <typename T> __global__ void store_kernel(const float *x, int64_t n, T *out) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = from_f32<T>(x[i]);
}

// One warp per head: a head is at most a few hundred values, too few to
// keep a block of norm_kernel's size busy.
constexpr int kHeadNormWarps = 4;

__global__ void __launch_bounds__(kHeadNormWarps * 32)
head_rms_norm_kernel(float *x, int n_rows, int row_stride, int col0, int n_heads, int head_dim, const float *w,
                     float eps) {
    const int r = blockIdx.x * kHeadNormWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= n_rows) return;
    float *v = x + (int64_t)(r / n_heads) * row_stride + col0 + (int64_t)(r % n_heads) * head_dim;
    float ss = 0.f;
    for (int e = lane; e < head_dim; e += 32) ss += v[e] * v[e];
    const float inv = rsqrtf(warp_sum(ss) / (float)head_dim + eps);
    for (int e = lane; e < head_dim; e += 32) v[e] = v[e] * inv * w[e];
}

} // namespace

cudaError_t head_rms_norm(float *x, int n_tokens, int row_stride, int col0, int n_heads, int head_dim,
                          const float *w, float eps, cudaStream_t stream) {
    const int64_t n_rows = (int64_t)n_tokens * n_heads;
    if (n_rows == 0) return cudaSuccess;
    if (n_rows > INT32_MAX) return cudaErrorInvalidValue;
    const unsigned blocks = (unsigned)((n_rows + kHeadNormWarps - 1) / kHeadNormWarps);
    head_rms_norm_kernel<<<blocks, kHeadNormWarps * 32, 0, stream>>>(x, (int)n_rows, row_stride, col0, n_heads,
                                                                    head_dim, w, eps);
    return cudaGetLastError();
}

cudaError_t norm_residual_add(NormKind kind, const float *y, const float *y_bias, int n_rows, int n,
                              const float *w, float eps, float *x, cudaStream_t stream) {
    if (n_rows == 0) return cudaSuccess;
    if (!w) return cudaErrorInvalidValue;
    norm_residual_kernel<<<n_rows, kNormThreads, 0, stream>>>(kind, y, y_bias, n, w, eps, x);
    return cudaGetLastError();
}

cudaError_t store_rows(const float *x, int64_t n, void *out, DType dtype, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    LMSCORE_DISPATCH_DTYPE(dtype, T, store_kernel<T><<<grid_for(n, kNormThreads), kNormThreads, 0, stream>>>(x, n, (T *)out));
    return cudaGetLastError();
}

cudaError_t norm(NormKind kind, const float *x, const int32_t *rows, int n_rows, int n,
                 const float *w, const float *b, float eps, void *out, DType dtype,
                 cudaStream_t stream) {
    if (n_rows == 0) return cudaSuccess;
    LMSCORE_DISPATCH_DTYPE(dtype, T,
        norm_kernel<T><<<n_rows, kNormThreads, 0, stream>>>(kind, x, rows, n, w, b, eps, (T *)out));
    return cudaGetLastError();
}

} // namespace lmscore_cuda
