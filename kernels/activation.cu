// activation.cu — SwiGLU, GELU (tanh) with bias, and the residual add with bias.
#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void swiglu_kernel(const float *gu, int64_t n_tokens, int n_ff, T *out) {
    const int64_t n = n_tokens * n_ff;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / n_ff, f = i % n_ff;
        const float g = gu[t * 2 * n_ff + f];
        const float u = gu[t * 2 * n_ff + n_ff + f];
        out[i] = from_f32<T>(g / (1.f + expf(-g)) * u);
    }
}

template <typename T>
__global__ void gelu_bias_kernel(const float *up, const float *bias, int64_t n_tokens, int n_ff, T *out) {
    const int64_t n = n_tokens * n_ff;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float x = up[i];
        if (bias) x += bias[i % n_ff];
        // GPT-2's tanh approximation, as llama.cpp and the HF "gelu_new" use.
        const float k = 0.7978845608028654f; // sqrt(2/pi)
        out[i] = from_f32<T>(0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x))));
    }
}

__global__ void residual_kernel(float *x, const float *y, const float *bias, int64_t n_tokens, int n) {
    const int64_t total = n_tokens * n;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (bias) v += bias[i % n];
        x[i] += v;
    }
}

} // namespace

cudaError_t swiglu(const float *gu, int n_tokens, int n_ff, void *out, DType dtype, cudaStream_t stream) {
    const int64_t n = (int64_t)n_tokens * n_ff;
    if (n == 0) return cudaSuccess;
    LMSCORE_DISPATCH_DTYPE(dtype, T,
        swiglu_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(gu, n_tokens, n_ff, (T *)out));
    return cudaGetLastError();
}

cudaError_t gelu_bias(const float *up, const float *bias, int n_tokens, int n_ff, void *out, DType dtype,
                      cudaStream_t stream) {
    const int64_t n = (int64_t)n_tokens * n_ff;
    if (n == 0) return cudaSuccess;
    LMSCORE_DISPATCH_DTYPE(dtype, T,
        gelu_bias_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(up, bias, n_tokens, n_ff, (T *)out));
    return cudaGetLastError();
}

cudaError_t residual_add(float *x, const float *y, const float *bias, int n_tokens, int n, cudaStream_t stream) {
    const int64_t total = (int64_t)n_tokens * n;
    if (total == 0) return cudaSuccess;
    residual_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(x, y, bias, n_tokens, n);
    return cudaGetLastError();
}

} // namespace lmscore_cuda
