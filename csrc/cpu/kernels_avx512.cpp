// AVX-512 kernels: 16 lanes, 12 x 32 GEMM micro-tile (24 accumulators).
// Compiled with AVX-512 target options but called only after run-time
// detection (kernels.cpp), so the binary still runs on any x86-64.
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

// ------------------------------------------------------ dequantization

struct Int {
    using R = __m512i;
    static inline R load_u8(const uint8_t *p) {
        return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    }
    static inline R load_i8(const uint8_t *p) {
        return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    }
    static inline R set1(int32_t x) { return _mm512_set1_epi32(x); }
    static inline R iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
    static inline R and_(R a, R b) { return _mm512_and_si512(a, b); }
    static inline R or_(R a, R b) { return _mm512_or_si512(a, b); }
    static inline R add(R a, R b) { return _mm512_add_epi32(a, b); }
    static inline R sub(R a, R b) { return _mm512_sub_epi32(a, b); }
    static inline R srl(R a, int n) { return _mm512_srli_epi32(a, unsigned(n)); }
    static inline R sll(R a, int n) { return _mm512_slli_epi32(a, unsigned(n)); }
    static inline R srlv(R a, R n) { return _mm512_srlv_epi32(a, n); }
    static inline R sra(R a, int n) { return _mm512_srai_epi32(a, unsigned(n)); }
    static inline R load(const int32_t *p) { return _mm512_loadu_si512(p); }
    // The dword at base + off[lane], lane by lane.
    static inline R gather32(const uint8_t *base, R off) { return _mm512_i32gather_epi32(off, base, 1); }
    static inline __m512 to_float(R a) { return _mm512_cvtepi32_ps(a); }
    // Byte c of each lane, sign-extended: vpshufb moves it to the top
    // byte (zeros below), then one arithmetic shift.
    static inline R byte_i8(R a, int c) {
        if (c == 3) return sra(a, 24);
        const R top = _mm512_set1_epi32(int32_t(uint32_t(c) << 24 | 0x808080u));
        return sra(_mm512_shuffle_epi8(a, _mm512_add_epi8(top, lane_base())), 24);
    }
    // 4i in the top byte of dword i of each 128-bit lane, which turns
    // byte c of a dword into byte 4i + c of its lane.
    static inline R lane_base() { return _mm512_set4_epi32(12 << 24, 8 << 24, 4 << 24, 0); }
    // The low four bits of each lane as a float: vpermps reads only those
    // bits, on another port than the shifts and the conversion.
    static inline __m512 nibble_float(R a) {
        return _mm512_permutexvar_ps(a, _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    }

    // vcvtph2ps is exact, subnormals included, but quiets a signaling NaN,
    // which half.hpp keeps as it is: NaN lanes take half.hpp's bits.
    static inline __m512 f16(const uint8_t *p) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
        const R w = _mm512_cvtepu16_epi32(h);
        const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(w, set1(0x7fff)), set1(0x7c00));
        const R sign = _mm512_slli_epi32(_mm512_and_si512(w, set1(0x8000)), 16);
        const R mant = _mm512_slli_epi32(_mm512_and_si512(w, set1(0x3ff)), 13);
        const R bits = _mm512_or_si512(sign, _mm512_or_si512(set1(0x7f800000), mant));
        return _mm512_mask_mov_ps(_mm512_cvtph_ps(h), nan, _mm512_castsi512_ps(bits));
    }
    static inline __m512 bf16(const uint8_t *p) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }

    // Sixteen entries, one vector; vpermps reads a lane's low four bits.
    using Lut16 = __m512;
    static inline Lut16 lut16_table(const float *t) { return _mm512_loadu_ps(t); }
    static inline __m512 lut16(Lut16 t, R i) { return _mm512_permutexvar_ps(i, t); }
};

// transpose_panel in 16 x 16 tiles: 16 rows of 16 values become 16
// columns (unpack pairs, then 64-bit pairs, then 128-bit lanes twice).
static void transpose_panel(const float *in, int64_t ld, int n, float *out) {
    for (int j0 = 0; j0 < kPanel; j0 += 16) {
        const float *src = in + j0 * ld;
        int i0 = 0;
        for (; i0 + 16 <= n; i0 += 16) {
            __m512 r[16], t[16];
            for (int q = 0; q < 16; q++) r[q] = _mm512_loadu_ps(src + q * ld + i0);
            for (int q = 0; q < 8; q++) {
                t[2 * q] = _mm512_unpacklo_ps(r[2 * q], r[2 * q + 1]);
                t[2 * q + 1] = _mm512_unpackhi_ps(r[2 * q], r[2 * q + 1]);
            }
            for (int q = 0; q < 4; q++) {
                r[4 * q + 0] = _mm512_shuffle_ps(t[4 * q + 0], t[4 * q + 2], 0x44);
                r[4 * q + 1] = _mm512_shuffle_ps(t[4 * q + 0], t[4 * q + 2], 0xee);
                r[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
                r[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xee);
            }
            // r[4a + c] now holds, in each 128-bit lane L, column 4L + c of
            // rows 4a..4a+3; gather lanes across row quads.
            for (int q = 0; q < 2; q++)
                for (int c = 0; c < 4; c++) {
                    t[8 * q + c] = _mm512_shuffle_f32x4(r[8 * q + c], r[8 * q + 4 + c], 0x88);
                    t[8 * q + 4 + c] = _mm512_shuffle_f32x4(r[8 * q + c], r[8 * q + 4 + c], 0xdd);
                }
            for (int c = 0; c < 8; c++) {
                r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
                r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
            }
            float *dst = out + int64_t(i0) * kPanel + j0;
            for (int q = 0; q < 16; q++) _mm512_storeu_ps(dst + q * kPanel, r[q]);
        }
        for (; i0 < n; i0++)
            for (int j = 0; j < 16; j++) out[int64_t(i0) * kPanel + j0 + j] = src[j * ld + i0];
    }
}

#include "kernels_dequant.inc"
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
