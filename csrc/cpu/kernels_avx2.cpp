// AVX2 + FMA kernels: 8 lanes, 6 x 32 GEMM micro-tile computed as two
// 6 x 16 halves (12 accumulators of 16 registers). Called only after
// run-time detection (kernels.cpp).
#include "kernels.hpp"

#if defined(LMSCORE_HAVE_X86_KERNELS)

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common.hpp"
#include "exp_poly.hpp"
#include "half.hpp"
#include "quant.hpp"

// F16C (every AVX2 CPU has it; kernels.cpp checks) converts fp16 weights.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
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

// ------------------------------------------------------ dequantization

struct Int {
    using R = __m256i;
    static inline R load_u8(const uint8_t *p) {
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p)));
    }
    static inline R load_i8(const uint8_t *p) {
        return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p)));
    }
    static inline R set1(int32_t x) { return _mm256_set1_epi32(x); }
    static inline R iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
    static inline R and_(R a, R b) { return _mm256_and_si256(a, b); }
    static inline R or_(R a, R b) { return _mm256_or_si256(a, b); }
    static inline R add(R a, R b) { return _mm256_add_epi32(a, b); }
    static inline R sub(R a, R b) { return _mm256_sub_epi32(a, b); }
    static inline R srl(R a, int n) { return _mm256_srli_epi32(a, n); }
    static inline R sll(R a, int n) { return _mm256_slli_epi32(a, n); }
    static inline R srlv(R a, R n) { return _mm256_srlv_epi32(a, n); }
    static inline R sra(R a, int n) { return _mm256_srai_epi32(a, n); }
    static inline R load(const int32_t *p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)); }
    // The dword at base + off[lane], lane by lane.
    static inline R gather32(const uint8_t *base, R off) {
        return _mm256_i32gather_epi32(reinterpret_cast<const int *>(base), off, 1);
    }
    static inline __m256 to_float(R a) { return _mm256_cvtepi32_ps(a); }
    // Byte c of each lane, sign-extended: vpshufb moves it to the top
    // byte (zeros below), then one arithmetic shift.
    static inline R byte_i8(R a, int c) {
        if (c == 3) return sra(a, 24);
        const R top = _mm256_set1_epi32(int32_t(uint32_t(c) << 24 | 0x808080u));
        return sra(_mm256_shuffle_epi8(a, _mm256_add_epi8(top, lane_base())), 24);
    }
    // 4i in the top byte of dword i of each 128-bit lane, which turns
    // byte c of a dword into byte 4i + c of its lane.
    static inline R lane_base() { return _mm256_setr_epi32(0, 4 << 24, 8 << 24, 12 << 24, 0, 4 << 24, 8 << 24, 12 << 24); }
    // The low four bits of each lane as a float.
    static inline __m256 nibble_float(R a) { return to_float(and_(a, set1(0xf))); }

    // vcvtph2ps is exact, subnormals included, but quiets a signaling NaN,
    // which half.hpp keeps as it is: NaN lanes take half.hpp's bits.
    static inline __m256 f16(const uint8_t *p) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
        const R w = _mm256_cvtepu16_epi32(h);
        const R nan = _mm256_cmpgt_epi32(_mm256_and_si256(w, set1(0x7fff)), set1(0x7c00));
        const R sign = _mm256_slli_epi32(_mm256_and_si256(w, set1(0x8000)), 16);
        const R mant = _mm256_slli_epi32(_mm256_and_si256(w, set1(0x3ff)), 13);
        const R bits = _mm256_or_si256(sign, _mm256_or_si256(set1(0x7f800000), mant));
        return _mm256_blendv_ps(_mm256_cvtph_ps(h), _mm256_castsi256_ps(bits), _mm256_castsi256_ps(nan));
    }
    static inline __m256 bf16(const uint8_t *p) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }

    // Sixteen entries in two vectors; a lane's bit 3 picks the vector.
    struct Lut16 {
        __m256 lo, hi;
    };
    static inline Lut16 lut16_table(const float *t) { return {_mm256_loadu_ps(t), _mm256_loadu_ps(t + 8)}; }
    static inline __m256 lut16(const Lut16 &t, R i) {
        const R idx = _mm256_and_si256(i, set1(0xf));
        const __m256 hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, set1(7)));
        return _mm256_blendv_ps(_mm256_permutevar8x32_ps(t.lo, idx), _mm256_permutevar8x32_ps(t.hi, idx), hi);
    }
};

// transpose_panel in 8 x 8 tiles: 8 rows of 8 values become 8 columns.
static void transpose_panel(const float *in, int64_t ld, int n, float *out) {
    for (int j0 = 0; j0 < kPanel; j0 += 8) {
        const float *src = in + j0 * ld;
        int i0 = 0;
        for (; i0 + 8 <= n; i0 += 8) {
            __m256 r[8], t[8];
            for (int r_ = 0; r_ < 8; r_++) r[r_] = _mm256_loadu_ps(src + r_ * ld + i0);
            for (int q = 0; q < 4; q++) {
                t[2 * q] = _mm256_unpacklo_ps(r[2 * q], r[2 * q + 1]);
                t[2 * q + 1] = _mm256_unpackhi_ps(r[2 * q], r[2 * q + 1]);
            }
            for (int q = 0; q < 2; q++) {
                r[4 * q + 0] = _mm256_shuffle_ps(t[4 * q + 0], t[4 * q + 2], 0x44);
                r[4 * q + 1] = _mm256_shuffle_ps(t[4 * q + 0], t[4 * q + 2], 0xee);
                r[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
                r[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xee);
            }
            float *dst = out + int64_t(i0) * kPanel + j0;
            for (int q = 0; q < 4; q++) {
                _mm256_storeu_ps(dst + q * kPanel, _mm256_permute2f128_ps(r[q], r[q + 4], 0x20));
                _mm256_storeu_ps(dst + (q + 4) * kPanel, _mm256_permute2f128_ps(r[q], r[q + 4], 0x31));
            }
        }
        for (; i0 < n; i0++)
            for (int j = 0; j < 8; j++) out[int64_t(i0) * kPanel + j0 + j] = src[j * ld + i0];
    }
}

#include "kernels_dequant.inc"
#include "kernels.inc"

} // namespace avx2
} // namespace lmscore

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif // LMSCORE_HAVE_X86_KERNELS
