// Portable kernels: one lane, plain C++. The path for CPUs without AVX2
// and for other architectures; also a check on the vector paths, since
// its matrix products use the same fused chains (std::fma).
#include "kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common.hpp"
#include "exp_poly.hpp"
#include "quant.hpp"

namespace lmscore {
namespace scalar {

struct Vec {
    using R = float;
    static constexpr int W = 1;
    static inline R zero() { return 0.0f; }
    static inline R set1(float x) { return x; }
    static inline R load(const float *p) { return *p; }
    static inline void store(float *p, R v) { *p = v; }
    static inline R load_n(const float *, int) { return 0.0f; } // n is always W here
    static inline void store_n(float *, R, int) {}
    static inline R fma(R a, R b, R c) { return std::fma(a, b, c); }
    static inline R add(R a, R b) { return a + b; }
    static inline R sub(R a, R b) { return a - b; }
    static inline R mul(R a, R b) { return a * b; }
    static inline R div(R a, R b) { return a / b; }
    static inline R max(R a, R b) { return a > b ? a : b; }
    static inline float reduce_add(R v) { return v; }
    static inline float reduce_max(R v) { return v; }
    static inline R exp(R x) {
        using namespace exp_poly;
        if (x < kLo) return 0.0f;
        x = std::min(x, kHi);
        float n = std::nearbyint(x * kLog2e);
        float r = std::fma(n, -kLn2Hi, x);
        r = std::fma(n, -kLn2Lo, r);
        float p = kP0;
        p = std::fma(p, r, kP1);
        p = std::fma(p, r, kP2);
        p = std::fma(p, r, kP3);
        p = std::fma(p, r, kP4);
        p = std::fma(p, r, kP5);
        p = std::fma(p, r * r, r);
        p = p + 1.0f;
        return p * std::ldexp(1.0f, int(n));
    }
};

constexpr Isa kIsa = Isa::Scalar;
constexpr int kMR = 4;
constexpr int kAttnJB = 4;

template <int R>
static void gemm_rows(int kc, const float *a, const float *b, float *c, int64_t ldc,
                      bool accumulate) {
    float acc[R][kPanel];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < kPanel; j++) acc[i][j] = accumulate ? c[i * ldc + j] : 0.0f;
    for (int k = 0; k < kc; k++)
        for (int i = 0; i < R; i++) {
            float av = a[k * kMR + i];
            for (int j = 0; j < kPanel; j++) acc[i][j] = std::fma(av, b[k * kPanel + j], acc[i][j]);
        }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < kPanel; j++) c[i * ldc + j] = acc[i][j];
}

// The reference decoders themselves (quant.cpp, compiled for baseline
// x86-64), which the vector sets' decoders are tested against.
static void dequant(const BlockType &type, const uint8_t *src, int64_t n_blocks, float *out) {
    dequant_blocks(type, src, n_blocks, out);
}

static void transpose_panel(const float *in, int64_t ld, int n, float *out) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < kPanel; j++) out[int64_t(i) * kPanel + j] = in[j * ld + i];
}

// No panel decoder: PackedMatrix::dequant_panel decodes rows and
// transposes them, which keeps this table the reference.
static bool decode_panel(const BlockType &, const uint8_t *, int64_t, int64_t, float *) { return false; }

#include "kernels.inc"

} // namespace scalar
} // namespace lmscore
