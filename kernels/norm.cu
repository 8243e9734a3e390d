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

// norm_kernel for rows of n % 4 == 0 floats, at most kNormThreads * 4 * V:
// each thread keeps its V float4s of the row in registers, so the row is
// read from memory once (the two-pass kernel reads it two or three times)
// with 16-byte loads. The same statistics: the mean first, then the
// centred second moment; the sums group differently, and every row of a
// launch the same way, so a row's bits depend on nothing but the row.
template <typename T, int V>
__global__ void __launch_bounds__(kNormThreads)
norm_reg_kernel(NormKind kind, const float *x, const int32_t *rows, int n, const float *w, const float *b, float eps,
                T *out) {
    __shared__ float scratch[32];
    const int i = blockIdx.x, n4 = n / 4;
    const float4 *xrow = (const float4 *)(x + (int64_t)(rows ? rows[i] : i) * n);
    T *orow = out + (int64_t)i * n;
    float4 v[V];
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < V; ++j) {
        const int e = threadIdx.x + j * kNormThreads;
        v[j] = e < n4 ? xrow[e] : make_float4(0.f, 0.f, 0.f, 0.f);
        s += (v[j].x + v[j].y) + (v[j].z + v[j].w);
    }
    const float mean = kind == NormKind::Layer ? block_sum(s, scratch) / (float)n : 0.f;
    float ss = 0.f;
#pragma unroll
    for (int j = 0; j < V; ++j) {
        if (threadIdx.x + j * kNormThreads >= n4) continue; // padding is not centred data
        const float a = v[j].x - mean, bb = v[j].y - mean, c = v[j].z - mean, d = v[j].w - mean;
        ss += (a * a + bb * bb) + (c * c + d * d);
    }
    const float inv = rsqrtf(block_sum(ss, scratch) / (float)n + eps);
#pragma unroll
    for (int j = 0; j < V; ++j) {
        const int e = threadIdx.x + j * kNormThreads;
        if (e >= n4) continue;
        const float4 wv = ((const float4 *)w)[e];
        float4 o = make_float4((v[j].x - mean) * inv * wv.x, (v[j].y - mean) * inv * wv.y,
                               (v[j].z - mean) * inv * wv.z, (v[j].w - mean) * inv * wv.w);
        if (b) {
            const float4 bv = ((const float4 *)b)[e];
            o.x += bv.x, o.y += bv.y, o.z += bv.z, o.w += bv.w;
        }
        store4<T>(orow + 4 * e, o.x, o.y, o.z, o.w);
    }
}

// The register kernel for n, or false where it does not apply (n not a
// multiple of 4, a row wider than 16 float4s per thread, unaligned rows).
template <typename T>
bool launch_norm_reg(NormKind kind, const float *x, const int32_t *rows, int n_rows, int n, const float *w,
                     const float *b, float eps, T *out, cudaStream_t stream) {
    if (n % 4 != 0 || !aligned(16, {x, w, b, out})) return false;
    const int per = (n / 4 + kNormThreads - 1) / kNormThreads; // float4s per thread
#define LMSCORE_NORM_REG(VV)                                                                                               if (per <= VV) {                                                                                                           norm_reg_kernel<T, VV><<<n_rows, kNormThreads, 0, stream>>>(kind, x, rows, n, w, b, eps, out);                         return true;                                                                                                       }
    LMSCORE_NORM_REG(1)
    LMSCORE_NORM_REG(2)
    LMSCORE_NORM_REG(4)
    LMSCORE_NORM_REG(8)
    LMSCORE_NORM_REG(16)
#undef LMSCORE_NORM_REG
    return false;
}

// As norm_kernel (the same two passes; the register kernel, which most
// pre-norms now take, groups its sums differently, which nothing relies
// on), over y + bias, added into the residual x instead of written out: the
// normed output never goes through memory.
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
    LMSCORE_DISPATCH_DTYPE(dtype, T, {
        if (!launch_norm_reg<T>(kind, x, rows, n_rows, n, w, b, eps, (T *)out, stream))
            norm_kernel<T><<<n_rows, kNormThreads, 0, stream>>>(kind, x, rows, n, w, b, eps, (T *)out);
    });
    return cudaGetLastError();
}

} // namespace lmscore_cuda
