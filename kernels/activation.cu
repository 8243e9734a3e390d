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

// Rows over blockIdx.y (grid-strided past 65535), columns over x: no 64-bit
// division per element, which made the flat version compute-bound at the
// FFN's widths. Each thread does kVec adjacent columns with one 16-byte
// (fp32) or 8-byte (bf16) load per operand when the row width and the
// pointers allow it (VEC), one otherwise; the arithmetic per element is the
// same either way. gu and out share the type T: the gate/up GEMM writes the
// model's type, so that a bf16 model's FFN moves half the bytes here (this
// kernel is bandwidth-bound: 4-5% of an 8B step in fp32).
constexpr int kVec = 4;

template <Activation A, typename T, bool VEC>
__global__ void __launch_bounds__(kThreads) gated_kernel(const T *gu, int n_tokens, int n_ff, T *out) {
    const int per = VEC ? kVec : 1;
    const int f = (blockIdx.x * kThreads + threadIdx.x) * per;
    if (f >= n_ff) return;
    for (int t = blockIdx.y; t < n_tokens; t += gridDim.y) {
        const T *g = gu + (int64_t)t * 2 * n_ff + f, *u = g + n_ff;
        T *o = out + (int64_t)t * n_ff + f;
        if (VEC) {
            const float4 g4 = load4(g), u4 = load4(u);
            store4<T>(o, activate<A>(g4.x) * u4.x, activate<A>(g4.y) * u4.y, activate<A>(g4.z) * u4.z,
                      activate<A>(g4.w) * u4.w);
        } else {
            *o = from_f32<T>(activate<A>(to_f32(*g)) * to_f32(*u));
        }
    }
}

template <Activation A, typename T>
cudaError_t launch_gated(const T *gu, int n_tokens, int n_ff, T *out, cudaStream_t stream) {
    const uintptr_t align = kVec * sizeof(T);
    const bool vec = n_ff % kVec == 0 && (reinterpret_cast<uintptr_t>(gu) | reinterpret_cast<uintptr_t>(out)) % align == 0;
    const int per = vec ? kVec : 1;
    const dim3 grid((unsigned)((n_ff / per + kThreads - 1) / kThreads), (unsigned)(n_tokens < 65535 ? n_tokens : 65535));
    if (vec)
        gated_kernel<A, T, true><<<grid, kThreads, 0, stream>>>(gu, n_tokens, n_ff, out);
    else
        gated_kernel<A, T, false><<<grid, kThreads, 0, stream>>>(gu, n_tokens, n_ff, out);
    return cudaGetLastError();
}

// up and out share the type T for the reason gated_kernel's do: the up GEMM
// writes the model's type, and the bias is added to its rounded sum in fp32.
template <Activation A, typename T>
__global__ void bias_kernel(const T *up, const float *bias, int64_t n_tokens, int n_ff, T *out) {
    const int64_t n = n_tokens * n_ff;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float x = to_f32(up[i]);
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

cudaError_t gated_activation(Activation act, const void *gu, int n_tokens, int n_ff, void *out, DType dtype,
                             cudaStream_t stream) {
    const int64_t n = (int64_t)n_tokens * n_ff;
    if (!known(act)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    LMSCORE_DISPATCH_ACTIVATION(act, A,
        LMSCORE_DISPATCH_DTYPE(dtype, T, return launch_gated<A, T>((const T *)gu, n_tokens, n_ff, (T *)out, stream)));
    return cudaErrorInvalidValue;
}

cudaError_t activation_bias(Activation act, const void *up, const float *bias, int n_tokens, int n_ff, void *out,
                            DType dtype, cudaStream_t stream) {
    const int64_t n = (int64_t)n_tokens * n_ff;
    if (!known(act)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    LMSCORE_DISPATCH_ACTIVATION(act, A,
        LMSCORE_DISPATCH_DTYPE(dtype, T,
            bias_kernel<A, T><<<grid_for(n, kThreads), kThreads, 0, stream>>>((const T *)up, bias, n_tokens, n_ff,
                                                                               (T *)out)));
    return cudaGetLastError();
}

cudaError_t residual_add(float *x, const float *y, const float *bias, int n_tokens, int n, cudaStream_t stream) {
    const int64_t total = (int64_t)n_tokens * n;
    if (total == 0) return cudaSuccess;
    residual_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(x, y, bias, n_tokens, n);
    return cudaGetLastError();
}

} // namespace lmscore_cuda
