// AVX-512 kernels: 16 lanes, 12 x 32 GEMM micro-tile (24 accumulators).
// Compiled with AVX-512 target options but called only after run-time
// detection (kernels.cpp), so the binary still runs on any x86-64.
#include "kernels.hpp"

#if defined(LMSCORE_HAVE_X86_KERNELS)

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common.hpp"
#include "exp_poly.hpp"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
// GCC 12 warns inside its own intrinsics (_mm512_undefined_ps) here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace lmscore {
namespace avx512 {

struct Vec {
    using R = __m512;
    static constexpr int W = 16;
    static inline R zero() { return _mm512_setzero_ps(); }
    static inline R set1(float x) { return _mm512_set1_ps(x); }
    static inline R load(const float *p) { return _mm512_loadu_ps(p); }
    static inline void store(float *p, R v) { _mm512_storeu_ps(p, v); }
    static inline __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }
    static inline R load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
    static inline void store_n(float *p, R v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
    static inline R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
    static inline R add(R a, R b) { return _mm512_add_ps(a, b); }
    static inline R sub(R a, R b) { return _mm512_sub_ps(a, b); }
    static inline R mul(R a, R b) { return _mm512_mul_ps(a, b); }
    static inline R div(R a, R b) { return _mm512_div_ps(a, b); }
    static inline R max(R a, R b) { return _mm512_max_ps(a, b); }
    // Fixed reduction trees: halves, then quarters, and so on.
    static inline float reduce_add(R v) {
        __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        return _mm_cvtss_f32(q);
    }
    static inline float reduce_max(R v) {
        __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
        __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        q = _mm_max_ps(q, _mm_movehl_ps(q, q));
        q = _mm_max_ss(q, _mm_movehdup_ps(q));
        return _mm_cvtss_f32(q);
    }
    static inline R exp(R x) {
        using namespace exp_poly;
        __mmask16 under = _mm512_cmp_ps_mask(x, set1(kLo), _CMP_LT_OQ);
        x = _mm512_min_ps(_mm512_max_ps(x, set1(kLo)), set1(kHi));
        R n = _mm512_roundscale_ps(mul(x, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        R r = fma(n, set1(-kLn2Hi), x);
        r = fma(n, set1(-kLn2Lo), r);
        R p = set1(kP0);
        p = fma(p, r, set1(kP1));
        p = fma(p, r, set1(kP2));
        p = fma(p, r, set1(kP3));
        p = fma(p, r, set1(kP4));
        p = fma(p, r, set1(kP5));
        p = fma(p, mul(r, r), r);
        p = add(p, set1(1.0f));
        __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
        return _mm512_maskz_mov_ps(~under, mul(p, _mm512_castsi512_ps(e)));
    }
};

constexpr Isa kIsa = Isa::Avx512;
constexpr int kMR = 12;
constexpr int kAttnJB = 4;

// C[R x 32] (+)= A[kc x kMR strip] * B[kc x 32 panel]: two vectors per row,
// the A value broadcast. Each accumulator lane is one output element's chain.
template <int R>
static void gemm_rows(int kc, const float *a, const float *b, float *c, int64_t ldc,
                      bool accumulate) {
    __m512 c0[R], c1[R];
    if (accumulate) {
        for (int i = 0; i < R; i++) {
            c0[i] = _mm512_loadu_ps(c + i * ldc);
            c1[i] = _mm512_loadu_ps(c + i * ldc + 16);
        }
    } else {
        for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b + k * kPanel);
        __m512 b1 = _mm512_load_ps(b + k * kPanel + 16);
#pragma GCC unroll 12
        for (int i = 0; i < R; i++) {
            __m512 av = _mm512_set1_ps(a[k * kMR + i]);
            c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
        }
    }
    for (int i = 0; i < R; i++) {
        _mm512_storeu_ps(c + i * ldc, c0[i]);
        _mm512_storeu_ps(c + i * ldc + 16, c1[i]);
    }
}

#include "kernels.inc"

} // namespace avx512
} // namespace lmscore

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

#endif // LMSCORE_HAVE_X86_KERNELS
