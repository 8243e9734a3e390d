// AVX2 + FMA kernels: 8 lanes, 6 x 32 GEMM micro-tile computed as two
// 6 x 16 halves (12 accumulators of 16 registers). Called only after
// run-time detection (kernels.cpp).
#include "kernels.hpp"

#if defined(LMSCORE_HAVE_X86_KERNELS)

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common.hpp"
#include "exp_poly.hpp"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

namespace lmscore {
namespace avx2 {

struct Vec {
    using R = __m256;
    static constexpr int W = 8;
    static inline R zero() { return _mm256_setzero_ps(); }
    static inline R set1(float x) { return _mm256_set1_ps(x); }
    static inline R load(const float *p) { return _mm256_loadu_ps(p); }
    static inline void store(float *p, R v) { _mm256_storeu_ps(p, v); }
    static inline __m256i mask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static inline R load_n(const float *p, int n) { return _mm256_maskload_ps(p, mask(n)); }
    static inline void store_n(float *p, R v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
    static inline R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    static inline R add(R a, R b) { return _mm256_add_ps(a, b); }
    static inline R sub(R a, R b) { return _mm256_sub_ps(a, b); }
    static inline R mul(R a, R b) { return _mm256_mul_ps(a, b); }
    static inline R div(R a, R b) { return _mm256_div_ps(a, b); }
    static inline R max(R a, R b) { return _mm256_max_ps(a, b); }
    static inline float reduce_add(R v) {
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        return _mm_cvtss_f32(q);
    }
    static inline float reduce_max(R v) {
        __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        q = _mm_max_ps(q, _mm_movehl_ps(q, q));
        q = _mm_max_ss(q, _mm_movehdup_ps(q));
        return _mm_cvtss_f32(q);
    }
    static inline R exp(R x) {
        using namespace exp_poly;
        R under = _mm256_cmp_ps(x, set1(kLo), _CMP_LT_OQ);
        x = _mm256_min_ps(_mm256_max_ps(x, set1(kLo)), set1(kHi));
        R n = _mm256_round_ps(mul(x, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
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
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_andnot_ps(under, mul(p, _mm256_castsi256_ps(e)));
    }
};

constexpr Isa kIsa = Isa::Avx2;
constexpr int kMR = 6;
constexpr int kAttnJB = 2;

template <int R>
static void gemm_rows(int kc, const float *a, const float *b, float *c, int64_t ldc,
                      bool accumulate) {
    for (int half = 0; half < 2; half++) {
        const float *bh = b + half * 16;
        float *ch = c + half * 16;
        __m256 c0[R], c1[R];
        if (accumulate) {
            for (int i = 0; i < R; i++) {
                c0[i] = _mm256_loadu_ps(ch + i * ldc);
                c1[i] = _mm256_loadu_ps(ch + i * ldc + 8);
            }
        } else {
            for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm256_setzero_ps();
        }
        for (int k = 0; k < kc; k++) {
            __m256 b0 = _mm256_load_ps(bh + k * kPanel);
            __m256 b1 = _mm256_load_ps(bh + k * kPanel + 8);
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                __m256 av = _mm256_broadcast_ss(a + k * kMR + i);
                c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
                c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
            }
        }
        for (int i = 0; i < R; i++) {
            _mm256_storeu_ps(ch + i * ldc, c0[i]);
            _mm256_storeu_ps(ch + i * ldc + 8, c1[i]);
        }
    }
}

#include "kernels.inc"

} // namespace avx2
} // namespace lmscore

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif // LMSCORE_HAVE_X86_KERNELS
