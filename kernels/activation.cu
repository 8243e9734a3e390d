// activation.cu — the FFN's activations (gated: SwiGLU, GeGLU; ungated with
// bias: GELU tanh, GELU erf) and the residual add with bias.
#include "device_util.cuh"

namespace lmscore_cuda {
namespace {

constexpr int kThreads = 256;

// The activation is a template parameter so each kernel body has one
// nonlinearity and no per-element branch.
template <Activation A> __device__ __forceinline__ float activate(float x) {
    if (A == Activation::Silu) return x / (1.f + expf(-x));
    if (A == Activation::GeluTanh) {
        // GPT-2's tanh approximation, as llama.cpp, HF "gelu_new" and
        // "gelu_pytorch_tanh" (Gemma) use.
        const float k = 0.7978845608028654f; // sqrt(2/pi)
        return 0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    // The exact GELU (GPT-NeoX's "gelu"), as torch's default.
    return 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
}

template <Activation A, typename T>
__global__ void gated_kernel(const float *gu, int64_t n_tokens, int n_ff, T *out) {
    const int64_t n = n_tokens * n_ff;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / n_ff, f = i % n_ff;
        const float g = gu[t * 2 * n_ff + f];
        const float u = gu[t * 2 * n_ff + n_ff + f];
        out[i] = from_f32<T>(activate<A>(g) * u);
    }
}

template <Activation A, typename T>
__global__ void bias_kernel(const float *up, const float *bias, int64_t n_tokens, int n_ff, T *out) {
    const int64_t n = n_tokens * n_ff;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float x = up[i];
        if (bias) x += bias[i % n_ff];
        out[i] = from_f32<T>(activate<A>(x));
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

#define LMSCORE_DISPATCH_ACTIVATION(act, A, ...)                               \
    do {                                                                       \
        if ((act) == Activation::Silu) {                                       \
            constexpr Activation A = Activation::Silu;                         \
            __VA_ARGS__;                                                       \
        } else if ((act) == Activation::GeluTanh) {                            \
            constexpr Activation A = Activation::GeluTanh;                     \
            __VA_ARGS__;                                                       \
        } else {                                                               \
            constexpr Activation A = Activation::GeluErf;                      \
            __VA_ARGS__;                                                       \
        }                                                                      \
    } while (0)

bool known(Activation a) { return a == Activation::Silu || a == Activation::GeluTanh || a == Activation::GeluErf; }

} // namespace

cudaError_t gated_activation(Activation act, const float *gu, int n_tokens, int n_ff, void *out, DType dtype,
                             cudaStream_t stream) {
    const int64_t n = (int64_t)n_tokens * n_ff;
    if (!known(act)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    LMSCORE_DISPATCH_ACTIVATION(act, A,
        LMSCORE_DISPATCH_DTYPE(dtype, T,
            gated_kernel<A, T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(gu, n_tokens, n_ff, (T *)out)));
    return cudaGetLastError();
}

cudaError_t activation_bias(Activation act, const float *up, const float *bias, int n_tokens, int n_ff, void *out,
                            DType dtype, cudaStream_t stream) {
    const int64_t n = (int64_t)n_tokens * n_ff;
    if (!known(act)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    LMSCORE_DISPATCH_ACTIVATION(act, A,
        LMSCORE_DISPATCH_DTYPE(dtype, T,
            bias_kernel<A, T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(up, bias, n_tokens, n_ff, (T *)out)));
    return cudaGetLastError();
}

cudaError_t residual_add(float *x, const float *y, const float *bias, int n_tokens, int n, cudaStream_t stream) {
    const int64_t total = (int64_t)n_tokens * n;
    if (total == 0) return cudaSuccess;
    residual_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(x, y, bias, n_tokens, n);
    return cudaGetLastError();
}

} // namespace lmscore_cuda
