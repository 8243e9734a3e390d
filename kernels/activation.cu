// activation.cu — the FFN's activations (gated: SwiGLU, GeGLU; ungated with
// bias: GELU tanh, GELU erf) and the residual add with bias.
#include <stdint.h>

#include <initializer_list>

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

// The 2D grid of the row kernels below: columns (kVec of them per thread where
// vec) over x, rows over y.
dim3 row_grid(int n_tokens, int n_cols, bool vec) {
    const int per = vec ? kVec : 1;
    return dim3((unsigned)((n_cols / per + kThreads - 1) / kThreads), (unsigned)(n_tokens < 65535 ? n_tokens : 65535));
}

// Whether a row width and the pointers allow the kVec-wide path for
// elements of `size` bytes.
bool vec_ok(int n_cols, size_t size, std::initializer_list<const void *> ptrs) {
    return n_cols % kVec == 0 && aligned(kVec * size, ptrs);
}

// A row kernel thread's bias values for its columns from col (kVec of them
// with VEC, one without), zeros where there is no bias.
template <bool VEC> __device__ __forceinline__ void load_bias(const float *bias, int col, float (&b)[kVec]) {
    b[0] = b[1] = b[2] = b[3] = 0.f;
    if (!bias) return;
    if (VEC) {
        const float4 b4 = load4(bias + col);
        b[0] = b4.x, b[1] = b4.y, b[2] = b4.z, b[3] = b4.w;
    } else {
        b[0] = bias[col];
    }
}

// The loop of every row kernel here: this thread's columns from c (kVec of
// them with VEC, one without) and their bias values (zeros without a bias),
// then each row t on the grid's y stride.
template <bool VEC, typename F>
__device__ __forceinline__ void each_row(int n_tokens, int n_cols, const float *bias, F &&body) {
    const int c = (blockIdx.x * kThreads + threadIdx.x) * (VEC ? kVec : 1);
    if (c >= n_cols) return;
    float b[kVec];
    load_bias<VEC>(bias, c, b);
    for (int t = blockIdx.y; t < n_tokens; t += gridDim.y) body((int64_t)t, c, b);
}

template <Activation A, typename T, bool VEC>
__global__ void __launch_bounds__(kThreads) gated_kernel(const T *gu, int n_tokens, int n_ff, T *out) {
    each_row<VEC>(n_tokens, n_ff, nullptr, [&](int64_t t, int f, const float (&)[kVec]) {
        const T *g = gu + t * 2 * n_ff + f, *u = g + n_ff;
        T *o = out + t * n_ff + f;
        if (VEC) {
            const float4 g4 = load4(g), u4 = load4(u);
            store4<T>(o, activate<A>(g4.x) * u4.x, activate<A>(g4.y) * u4.y, activate<A>(g4.z) * u4.z,
                      activate<A>(g4.w) * u4.w);
        } else {
            *o = from_f32<T>(activate<A>(to_f32(*g)) * to_f32(*u));
        }
    });
}

template <Activation A, typename T>
cudaError_t launch_gated(const T *gu, int n_tokens, int n_ff, T *out, cudaStream_t stream) {
    const bool vec = vec_ok(n_ff, sizeof(T), {gu, out});
    const dim3 grid = row_grid(n_tokens, n_ff, vec);
    if (vec)
        gated_kernel<A, T, true><<<grid, kThreads, 0, stream>>>(gu, n_tokens, n_ff, out);
    else
        gated_kernel<A, T, false><<<grid, kThreads, 0, stream>>>(gu, n_tokens, n_ff, out);
    return cudaGetLastError();
}

// up and out share the type T for the reason gated_kernel's do: the up GEMM
// writes the model's type, and the bias is added to its rounded sum in fp32.
// The same grid as gated_kernel, for the same reason: the flat version took
// a 64-bit `i % n_ff` per element and ran at a fifth of the bandwidth (as
// long as the up GEMM itself on gpt2-large). Per element the arithmetic is
// the flat version's, so the bits are too.
template <Activation A, typename T, bool VEC>
__global__ void __launch_bounds__(kThreads) bias_kernel(const T *up, const float *bias, int n_tokens, int n_ff, T *out) {
    each_row<VEC>(n_tokens, n_ff, bias, [&](int64_t t, int f, const float (&b)[kVec]) {
        const T *u = up + t * n_ff + f;
        T *o = out + t * n_ff + f;
        if (VEC) {
            const float4 u4 = load4(u);
            store4<T>(o, activate<A>(u4.x + b[0]), activate<A>(u4.y + b[1]), activate<A>(u4.z + b[2]),
                      activate<A>(u4.w + b[3]));
        } else {
            *o = from_f32<T>(activate<A>(to_f32(*u) + b[0]));
        }
    });
}

// The residual add, x += y + bias, on the same grid (it had the same
// per-element 64-bit modulo).
template <bool VEC>
__global__ void __launch_bounds__(kThreads) residual_kernel(float *x, const float *y, const float *bias, int n_tokens, int n) {
    each_row<VEC>(n_tokens, n, bias, [&](int64_t t, int e, const float (&b)[kVec]) {
        float *xr = x + t * n + e;
        const float *yr = y + t * n + e;
        if (VEC) {
            const float4 x4 = load4(xr), y4 = load4(yr);
            store4<float>(xr, x4.x + (y4.x + b[0]), x4.y + (y4.y + b[1]), x4.z + (y4.z + b[2]), x4.w + (y4.w + b[3]));
        } else {
            *xr += *yr + b[0];
        }
    });
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
        LMSCORE_DISPATCH_DTYPE(dtype, T, {
            const bool vec = vec_ok(n_ff, sizeof(T), {up, out}) && vec_ok(n_ff, sizeof(float), {bias});
            const dim3 grid = row_grid(n_tokens, n_ff, vec);
            if (vec)
                bias_kernel<A, T, true><<<grid, kThreads, 0, stream>>>((const T *)up, bias, n_tokens, n_ff, (T *)out);
            else
                bias_kernel<A, T, false><<<grid, kThreads, 0, stream>>>((const T *)up, bias, n_tokens, n_ff, (T *)out);
        }));
    return cudaGetLastError();
}

cudaError_t residual_add(float *x, const float *y, const float *bias, int n_tokens, int n, cudaStream_t stream) {
    const int64_t total = (int64_t)n_tokens * n;
    if (total == 0) return cudaSuccess;
    const bool vec = vec_ok(n, sizeof(float), {x, y, bias});
    const dim3 grid = row_grid(n_tokens, n, vec);
    if (vec)
        residual_kernel<true><<<grid, kThreads, 0, stream>>>(x, y, bias, n_tokens, n);
    else
        residual_kernel<false><<<grid, kThreads, 0, stream>>>(x, y, bias, n_tokens, n);
    return cudaGetLastError();
}

} // namespace lmscore_cuda
