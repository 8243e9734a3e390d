// dequant.cuh — GGML's tensor types decoded on the device, eight consecutive
// values of a row at a time: the one place the CUDA core spells the block
// layouts (ggml-common.h; lmscore.h's lmscore_type lists them).
//
// Every value is what GGML's dequantize_row_* computes, bit for bit: the
// fp16 fields widened exactly, then fp32 operations in GGML's order (the
// K-quants' sub-block scale d * sc first, then * q, then - m). Products go
// through __fmul_rn, which nvcc never fuses with the following add into an
// FMA, so "d * q + m" is two roundings here as it is in C. The caller rounds
// the fp32 result once to the storage type.
//
// Eight values because every type keeps its scale constant over at least 16
// consecutive values and stores the quants of 8 consecutive values in 8 (or
// fewer) consecutive bytes, and 8 bf16 are one 16-byte store.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "lmscore.h"

namespace lmscore_cuda {
namespace dq {

// Fields are read byte by byte: blocks of 18, 22 or 110 bytes leave them
// at any alignment.
__device__ __forceinline__ float f16(const uint8_t *p) {
    return __half2float(__ushort_as_half((unsigned short)(p[0] | (p[1] << 8))));
}
__device__ __forceinline__ uint32_t u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float mul_add(float a, float b, float c) { return __fadd_rn(__fmul_rn(a, b), c); }
__device__ __forceinline__ float mul_sub(float a, float b, float c) { return __fsub_rn(__fmul_rn(a, b), c); }

// kvalues_iq4nl: the non-linear 4-bit grid of IQ4_NL and IQ4_XS.
__device__ __forceinline__ float iq4nl(int q) {
    constexpr int8_t k[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    return (float)k[q];
}

// The 6-bit scale and min of sub-block j (of 8) of Q4_K and Q5_K, packed in
// 12 bytes (GGML's get_scale_min_k4).
__device__ __forceinline__ void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

} // namespace dq

// Block<TYPE>: kValues values in kBytes bytes; get8(b, j, v) writes values
// j..j+7 (j a multiple of 8) of the block at b. The dense types are blocks
// of one value, so get8 reads 8 of them from b on.
template <int TYPE> struct Block;

template <> struct Block<LMSCORE_TYPE_F32> {
    static constexpr int kValues = 1, kBytes = 4;
    static __device__ __forceinline__ void get8(const uint8_t *b, int, float *v) {
        const float *p = (const float *)b; // dense rows are 4-byte aligned
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = p[k];
    }
};

template <> struct Block<LMSCORE_TYPE_F16> {
    static constexpr int kValues = 1, kBytes = 2;
    static __device__ __forceinline__ void get8(const uint8_t *b, int, float *v) {
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = dq::f16(b + 2 * k);
    }
};

template <> struct Block<LMSCORE_TYPE_BF16> {
    static constexpr int kValues = 1, kBytes = 2;
    static __device__ __forceinline__ void get8(const uint8_t *b, int, float *v) {
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = __uint_as_float((uint32_t)(b[2 * k] | (b[2 * k + 1] << 8)) << 16);
    }
};

// Legacy blocks of 32: byte i of the quants holds value i in its low
// nibble and value i + 16 in its high one; Q5's fifth bits are bit i of a
// 32-bit word.
template <> struct Block<LMSCORE_TYPE_Q4_0> { // fp16 d, qs[16]; d * (q - 8)
    static constexpr int kValues = 32, kBytes = 18;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b);
        const int shift = j < 16 ? 0 : 4;
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = dq::mul(d, (float)(((b[2 + ((j + k) & 15)] >> shift) & 0xf) - 8));
    }
};

template <> struct Block<LMSCORE_TYPE_Q4_1> { // fp16 d, fp16 m, qs[16]; d * q + m
    static constexpr int kValues = 32, kBytes = 20;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b), m = dq::f16(b + 2);
        const int shift = j < 16 ? 0 : 4;
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = dq::mul_add(d, (float)((b[4 + ((j + k) & 15)] >> shift) & 0xf), m);
    }
};

template <> struct Block<LMSCORE_TYPE_Q5_0> { // fp16 d, qh[4], qs[16]; d * (q - 16)
    static constexpr int kValues = 32, kBytes = 22;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b);
        const uint32_t qh = dq::u32(b + 2);
        const int shift = j < 16 ? 0 : 4;
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const int i = j + k;
            const int q = ((b[6 + (i & 15)] >> shift) & 0xf) | (int)((qh >> i) & 1) << 4;
            v[k] = dq::mul(d, (float)(q - 16));
        }
    }
};

template <> struct Block<LMSCORE_TYPE_Q5_1> { // fp16 d, fp16 m, qh[4], qs[16]; d * q + m
    static constexpr int kValues = 32, kBytes = 24;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b), m = dq::f16(b + 2);
        const uint32_t qh = dq::u32(b + 4);
        const int shift = j < 16 ? 0 : 4;
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const int i = j + k;
            const int q = ((b[8 + (i & 15)] >> shift) & 0xf) | (int)((qh >> i) & 1) << 4;
            v[k] = dq::mul_add(d, (float)q, m);
        }
    }
};

template <> struct Block<LMSCORE_TYPE_Q8_0> { // fp16 d, int8 qs[32]; q * d
    static constexpr int kValues = 32, kBytes = 34;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b);
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = dq::mul((float)(int8_t)b[2 + j + k], d);
    }
};

template <> struct Block<LMSCORE_TYPE_IQ4_NL> { // fp16 d, qs[16]; d * grid[q]
    static constexpr int kValues = 32, kBytes = 18;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b);
        const int shift = j < 16 ? 0 : 4;
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = dq::mul(d, dq::iq4nl((b[2 + ((j + k) & 15)] >> shift) & 0xf));
    }
};

// K-quants, blocks of 256. Q2_K and Q3_K: value i = 32 g + l takes bits
// 2 (g % 4) of byte 32 (g / 4) + l of the 2-bit quants; 16 sub-blocks of 16.
template <> struct Block<LMSCORE_TYPE_Q2_K> { // scales[16], qs[64], fp16 d, fp16 dmin
    static constexpr int kValues = 256, kBytes = 84;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b + 80), dmin = dq::f16(b + 82);
        const int sc = b[j / 16];
        const float dl = dq::mul(d, (float)(sc & 0xf)), ml = dq::mul(dmin, (float)(sc >> 4));
        const int g = j / 32, l0 = j % 32;
        const uint8_t *q = b + 16 + (g / 4) * 32 + l0;
        const int shift = 2 * (g % 4);
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = dq::mul_sub(dl, (float)((q[k] >> shift) & 3), ml);
    }
};

template <> struct Block<LMSCORE_TYPE_Q3_K> { // hmask[32], qs[64], scales[12], fp16 d
    static constexpr int kValues = 256, kBytes = 110;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const uint8_t *sc = b + 96;
        const float d = dq::f16(b + 108);
        const int s = j / 16; // 6-bit scale s: low 4 bits in sc[0..7], high 2 in sc[8..11]
        const int lo = s < 8 ? (sc[s] & 0xf) : (sc[s - 8] >> 4);
        const int hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        const float dl = dq::mul(d, (float)((lo | hi << 4) - 32));
        const int g = j / 32, l0 = j % 32;
        const uint8_t *q = b + 32 + (g / 4) * 32 + l0;
        const uint8_t *hm = b + l0;
        const int shift = 2 * (g % 4);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const int qv = ((q[k] >> shift) & 3) - (((hm[k] >> g) & 1) ? 0 : 4);
            v[k] = dq::mul(dl, (float)qv);
        }
    }
};

// Q4_K and Q5_K: 8 sub-blocks of 32; sub-block g's nibbles are the low
// (g even) or high (g odd) halves of bytes 32 (g / 2) .. + 31.
template <> struct Block<LMSCORE_TYPE_Q4_K> { // fp16 d, fp16 dmin, scales[12], qs[128]
    static constexpr int kValues = 256, kBytes = 144;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b), dmin = dq::f16(b + 2);
        const int g = j / 32, l0 = j % 32;
        int sc, m;
        dq::k4_scale_min(b + 4, g, &sc, &m);
        const float dl = dq::mul(d, (float)sc), ml = dq::mul(dmin, (float)m);
        const uint8_t *q = b + 16 + (g / 2) * 32 + l0;
        const int shift = 4 * (g % 2);
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = dq::mul_sub(dl, (float)((q[k] >> shift) & 0xf), ml);
    }
};

template <> struct Block<LMSCORE_TYPE_Q5_K> { // fp16 d, fp16 dmin, scales[12], qh[32], qs[128]
    static constexpr int kValues = 256, kBytes = 176;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b), dmin = dq::f16(b + 2);
        const int g = j / 32, l0 = j % 32;
        int sc, m;
        dq::k4_scale_min(b + 4, g, &sc, &m);
        const float dl = dq::mul(d, (float)sc), ml = dq::mul(dmin, (float)m);
        const uint8_t *q = b + 48 + (g / 2) * 32 + l0;
        const uint8_t *qh = b + 16 + l0;
        const int shift = 4 * (g % 2);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const int qv = ((q[k] >> shift) & 0xf) | (((qh[k] >> g) & 1) << 4);
            v[k] = dq::mul_sub(dl, (float)qv, ml);
        }
    }
};

// Q6_K: two halves of 128; in half h, group g (of 32) takes the low (g < 2)
// or high nibbles of ql bytes 64 h + 32 (g % 2) + l and bits 2 g of qh byte
// 32 h + l; int8 scales per 16.
template <> struct Block<LMSCORE_TYPE_Q6_K> { // ql[128], qh[64], int8 scales[16], fp16 d
    static constexpr int kValues = 256, kBytes = 210;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b + 208);
        const float ds = dq::mul(d, (float)(int8_t)b[192 + j / 16]);
        const int h = j / 128, g = (j % 128) / 32, l0 = j % 32;
        const uint8_t *ql = b + h * 64 + (g % 2) * 32 + l0;
        const uint8_t *qh = b + 128 + h * 32 + l0;
        const int shift = 4 * (g / 2);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const int qv = (((ql[k] >> shift) & 0xf) | (((qh[k] >> (2 * g)) & 3) << 4)) - 32;
            v[k] = dq::mul(ds, (float)qv);
        }
    }
};

// IQ4_XS: 8 sub-blocks of 32 laid out as IQ4_NL blocks (16 bytes each),
// 6-bit scales: low 4 bits in scales_l, high 2 in the 16-bit scales_h.
template <> struct Block<LMSCORE_TYPE_IQ4_XS> { // fp16 d, scales_h, scales_l[4], qs[128]
    static constexpr int kValues = 256, kBytes = 136;
    static __device__ __forceinline__ void get8(const uint8_t *b, int j, float *v) {
        const float d = dq::f16(b);
        const int sh = b[2] | (b[3] << 8);
        const int g = j / 32, l0 = j % 32;
        const int s = ((b[4 + g / 2] >> (4 * (g % 2))) & 0xf) | (((sh >> (2 * g)) & 3) << 4);
        const float dl = dq::mul(d, (float)(s - 32));
        const uint8_t *q = b + 8 + g * 16;
        const int shift = l0 < 16 ? 0 : 4;
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = dq::mul(dl, dq::iq4nl((q[(l0 + k) & 15] >> shift) & 0xf));
    }
};

// Host side: calls f(Block<TYPE>{}) for a runtime type (every
// lmscore_type), to launch the kernel templated on it; false, and no call,
// for any other value.
template <typename F> bool dispatch_type(int32_t type, F &&f) {
    switch (type) {
#define LMSCORE_DQ_CASE(t)                                                                                            \
    case t: f(Block<t>{}); return true;
    LMSCORE_DQ_CASE(LMSCORE_TYPE_F32)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_F16)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_BF16)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q4_0)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q4_1)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q5_0)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q5_1)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q8_0)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q2_K)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q3_K)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q4_K)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q5_K)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_Q6_K)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_IQ4_NL)
    LMSCORE_DQ_CASE(LMSCORE_TYPE_IQ4_XS)
#undef LMSCORE_DQ_CASE
    }
    return false;
}

} // namespace lmscore_cuda
