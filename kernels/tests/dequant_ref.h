// dequant_ref.h — the naive host reference of dequant.cuh: GGML's
// dequantize_row_* written out block by block in GGML's own loop order (a
// structure unlike the device's eight-values-per-thread indexing), in fp32,
// plus what the tests need to make random blocks.
//
// fp32 as GGML computes it means every product rounded before the next
// operation: the test programs are compiled with -ffp-contract=off
// (kernels/tests/CMakeLists.txt), so no a * b + c here becomes an FMA.
#pragma once

#include <stdint.h>
#include <string.h>

#include <vector>

#include "lmscore.h"
#include "test_util.h"

namespace lmscore_test {

// fp16 bits to fp32, exactly (subnormals included), without cuda_fp16.h.
inline float ref_f16(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    int exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { // subnormal: normalise
            exp = 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                --exp;
            }
            bits = sign | (uint32_t)(exp + 127 - 15) << 23 | (mant & 0x3ff) << 13;
        }
    } else {
        bits = sign | (uint32_t)(exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// fp32 to fp16 bits, round to nearest, for finite values in fp16's normal
// range (what the tests use to set a scale; not a general conversion).
inline uint16_t ref_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const int exp = (int)((u >> 23) & 0xff) - 127 + 15;
    if ((u & 0x7fffffffu) == 0 || exp < 1) return sign;
    if (exp > 30) return (uint16_t)(sign | 0x7bff); // the largest finite
    uint32_t mant = (u >> 13) & 0x3ff;
    const uint32_t rest = u & 0x1fff;
    uint32_t h = (uint32_t)exp << 10 | mant;
    if (rest > 0x1000 || (rest == 0x1000 && (mant & 1))) ++h; // may carry into the exponent: still right
    if (h >= 0x7c00) h = 0x7bff;
    return (uint16_t)(sign | h);
}

// Values per block and bytes per block of an lmscore_type; false for others.
inline bool ref_block(int32_t type, int *values, int *bytes) {
    switch (type) {
    case LMSCORE_TYPE_F32: *values = 1, *bytes = 4; return true;
    case LMSCORE_TYPE_F16: *values = 1, *bytes = 2; return true;
    case LMSCORE_TYPE_BF16: *values = 1, *bytes = 2; return true;
    case LMSCORE_TYPE_Q4_0: *values = 32, *bytes = 18; return true;
    case LMSCORE_TYPE_Q4_1: *values = 32, *bytes = 20; return true;
    case LMSCORE_TYPE_Q5_0: *values = 32, *bytes = 22; return true;
    case LMSCORE_TYPE_Q5_1: *values = 32, *bytes = 24; return true;
    case LMSCORE_TYPE_Q8_0: *values = 32, *bytes = 34; return true;
    case LMSCORE_TYPE_Q2_K: *values = 256, *bytes = 84; return true;
    case LMSCORE_TYPE_Q3_K: *values = 256, *bytes = 110; return true;
    case LMSCORE_TYPE_Q4_K: *values = 256, *bytes = 144; return true;
    case LMSCORE_TYPE_Q5_K: *values = 256, *bytes = 176; return true;
    case LMSCORE_TYPE_Q6_K: *values = 256, *bytes = 210; return true;
    case LMSCORE_TYPE_IQ4_NL: *values = 32, *bytes = 18; return true;
    case LMSCORE_TYPE_IQ4_XS: *values = 256, *bytes = 136; return true;
    }
    return false;
}

// Byte offsets of a block's fp16 scale fields (d, and dmin or m where the
// type has one): the fields random blocks must keep finite.
inline std::vector<int> ref_scale_fields(int32_t type) {
    switch (type) {
    case LMSCORE_TYPE_Q4_0:
    case LMSCORE_TYPE_Q5_0:
    case LMSCORE_TYPE_Q8_0:
    case LMSCORE_TYPE_IQ4_NL:
    case LMSCORE_TYPE_IQ4_XS: return {0};
    case LMSCORE_TYPE_Q4_1:
    case LMSCORE_TYPE_Q5_1:
    case LMSCORE_TYPE_Q4_K:
    case LMSCORE_TYPE_Q5_K: return {0, 2};
    case LMSCORE_TYPE_Q2_K: return {80, 82};
    case LMSCORE_TYPE_Q3_K: return {108};
    case LMSCORE_TYPE_Q6_K: return {208};
    }
    return {};
}

inline const char *ref_type_name(int32_t type) {
    switch (type) {
    case LMSCORE_TYPE_F32: return "F32";
    case LMSCORE_TYPE_F16: return "F16";
    case LMSCORE_TYPE_BF16: return "BF16";
    case LMSCORE_TYPE_Q4_0: return "Q4_0";
    case LMSCORE_TYPE_Q4_1: return "Q4_1";
    case LMSCORE_TYPE_Q5_0: return "Q5_0";
    case LMSCORE_TYPE_Q5_1: return "Q5_1";
    case LMSCORE_TYPE_Q8_0: return "Q8_0";
    case LMSCORE_TYPE_Q2_K: return "Q2_K";
    case LMSCORE_TYPE_Q3_K: return "Q3_K";
    case LMSCORE_TYPE_Q4_K: return "Q4_K";
    case LMSCORE_TYPE_Q5_K: return "Q5_K";
    case LMSCORE_TYPE_Q6_K: return "Q6_K";
    case LMSCORE_TYPE_IQ4_NL: return "IQ4_NL";
    case LMSCORE_TYPE_IQ4_XS: return "IQ4_XS";
    }
    return "unknown";
}

// Every lmscore_type, block types first.
constexpr int32_t kRefTypes[] = {LMSCORE_TYPE_Q4_0, LMSCORE_TYPE_Q4_1, LMSCORE_TYPE_Q5_0,   LMSCORE_TYPE_Q5_1,
                                 LMSCORE_TYPE_Q8_0, LMSCORE_TYPE_Q2_K, LMSCORE_TYPE_Q3_K,   LMSCORE_TYPE_Q4_K,
                                 LMSCORE_TYPE_Q5_K, LMSCORE_TYPE_Q6_K, LMSCORE_TYPE_IQ4_NL, LMSCORE_TYPE_IQ4_XS,
                                 LMSCORE_TYPE_F32,  LMSCORE_TYPE_F16,  LMSCORE_TYPE_BF16};

namespace ref_detail {

inline float h(const uint8_t *p) { return ref_f16((uint16_t)(p[0] | p[1] << 8)); }
constexpr int8_t kIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

// One block at x into y, as ggml-quants.c's dequantize_row_<type>.
inline void block(int32_t type, const uint8_t *x, float *y) {
    switch (type) {
    case LMSCORE_TYPE_F32: memcpy(y, x, 4); return;
    case LMSCORE_TYPE_F16: *y = h(x); return;
    case LMSCORE_TYPE_BF16: {
        const uint32_t u = (uint32_t)(x[0] | x[1] << 8) << 16;
        memcpy(y, &u, 4);
        return;
    }
    case LMSCORE_TYPE_Q4_0: {
        const float d = h(x);
        for (int j = 0; j < 16; ++j) {
            const int x0 = (x[2 + j] & 0x0F) - 8, x1 = (x[2 + j] >> 4) - 8;
            y[j] = x0 * d;
            y[j + 16] = x1 * d;
        }
        return;
    }
    case LMSCORE_TYPE_Q4_1: {
        const float d = h(x), m = h(x + 2);
        for (int j = 0; j < 16; ++j) {
            const int x0 = x[4 + j] & 0x0F, x1 = x[4 + j] >> 4;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
        return;
    }
    case LMSCORE_TYPE_Q5_0:
    case LMSCORE_TYPE_Q5_1: {
        const bool q51 = type == LMSCORE_TYPE_Q5_1;
        const float d = h(x), m = q51 ? h(x + 2) : 0.f;
        uint32_t qh;
        memcpy(&qh, x + (q51 ? 4 : 2), 4);
        const uint8_t *qs = x + (q51 ? 8 : 6);
        for (int j = 0; j < 16; ++j) {
            const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
            const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
            if (q51) {
                const int x0 = (qs[j] & 0x0F) | xh_0, x1 = (qs[j] >> 4) | xh_1;
                y[j] = x0 * d + m;
                y[j + 16] = x1 * d + m;
            } else {
                const int x0 = ((qs[j] & 0x0F) | xh_0) - 16, x1 = ((qs[j] >> 4) | xh_1) - 16;
                y[j] = x0 * d;
                y[j + 16] = x1 * d;
            }
        }
        return;
    }
    case LMSCORE_TYPE_Q8_0: {
        const float d = h(x);
        for (int j = 0; j < 32; ++j) y[j] = (int8_t)x[2 + j] * d;
        return;
    }
    case LMSCORE_TYPE_IQ4_NL: {
        const float d = h(x);
        for (int j = 0; j < 16; ++j) {
            y[j] = d * kIQ4NL[x[2 + j] & 0xf];
            y[j + 16] = d * kIQ4NL[x[2 + j] >> 4];
        }
        return;
    }
    case LMSCORE_TYPE_Q2_K: {
        const uint8_t *scales = x, *q = x + 16;
        const float d = h(x + 80), min = h(x + 82);
        int is = 0;
        for (int n = 0; n < 256; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                uint8_t sc = scales[is++];
                float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l] >> shift) & 3)) - ml;
                sc = scales[is++];
                dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3)) - ml;
                shift += 2;
            }
            q += 32;
        }
        return;
    }
    case LMSCORE_TYPE_Q3_K: {
        const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        uint32_t aux[4];
        const float d_all = h(x + 108);
        const uint8_t *q = x + 32, *hm = x;
        uint8_t m = 1;
        memcpy(aux, x + 96, 12);
        const uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
        int8_t scales[16];
        memcpy(scales, aux, 16);
        int is = 0;
        for (int n = 0; n < 256; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                float dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
                dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                shift += 2;
                m <<= 1;
            }
            q += 32;
        }
        return;
    }
    case LMSCORE_TYPE_Q4_K:
    case LMSCORE_TYPE_Q5_K: {
        const bool q5 = type == LMSCORE_TYPE_Q5_K;
        const float d = h(x), min = h(x + 2);
        const uint8_t *scales = x + 4, *qh = x + 16, *q = x + (q5 ? 48 : 16);
        int is = 0;
        uint8_t sc, m, u1 = 1, u2 = 2;
        for (int j = 0; j < 256; j += 64) {
            get_scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * ((q[l] & 0xF) + (q5 && (qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * ((q[l] >> 4) + (q5 && (qh[l] & u2) ? 16 : 0)) - m2;
            q += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
        return;
    }
    case LMSCORE_TYPE_Q6_K: {
        const float d = h(x + 208);
        const uint8_t *ql = x, *qh = x + 128;
        const int8_t *sc = (const int8_t *)(x + 192);
        for (int n = 0; n < 256; n += 128) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
        return;
    }
    case LMSCORE_TYPE_IQ4_XS: {
        const float d = h(x);
        const uint16_t scales_h = (uint16_t)(x[2] | x[3] << 8);
        const uint8_t *scales_l = x + 4, *qs = x + 8;
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (ls - 32);
            for (int j = 0; j < 16; ++j) {
                y[j + 0] = dl * kIQ4NL[qs[j] & 0xf];
                y[j + 16] = dl * kIQ4NL[qs[j] >> 4];
            }
            y += 32;
            qs += 16;
        }
        return;
    }
    }
}

} // namespace ref_detail

// n_rows rows of ne0 values of `type` (ne0 whole blocks) to fp32.
inline std::vector<float> ref_dequantize(int32_t type, const uint8_t *src, int64_t ne0, int64_t n_rows) {
    int values = 0, bytes = 0;
    std::vector<float> out;
    if (!ref_block(type, &values, &bytes)) return out;
    out.resize((size_t)(ne0 * n_rows));
    const int64_t n_blocks = ne0 * n_rows / values;
    for (int64_t b = 0; b < n_blocks; ++b) ref_detail::block(type, src + b * bytes, &out[(size_t)(b * values)]);
    return out;
}

// Random rows of `type`: random bytes, but each fp16 scale field any
// finite fp16 (subnormals included); dense types random finite values.
inline std::vector<uint8_t> random_rows(Rng &rng, int32_t type, int64_t ne0, int64_t n_rows) {
    int values = 0, bytes = 0;
    if (!ref_block(type, &values, &bytes)) return {};
    const int64_t n_blocks = ne0 * n_rows / values;
    std::vector<uint8_t> raw((size_t)(n_blocks * bytes));
    for (uint8_t &b : raw) b = (uint8_t)rng.gen();
    auto finite16 = [&](uint16_t finite_exp_mask_bits, int exp_shift, int exp_all_ones) {
        uint16_t v;
        do v = (uint16_t)rng.gen();
        while (((v >> exp_shift) & finite_exp_mask_bits) == exp_all_ones);
        return v;
    };
    for (int64_t b = 0; b < n_blocks; ++b) {
        uint8_t *blk = &raw[(size_t)(b * bytes)];
        if (type == LMSCORE_TYPE_F32) {
            const float f = rng.normal(1.f);
            memcpy(blk, &f, 4);
            continue;
        }
        std::vector<int> fields = ref_scale_fields(type);
        if (type == LMSCORE_TYPE_F16) fields = {0};
        for (int off : fields) {
            const uint16_t v = finite16(0x1f, 10, 0x1f);
            blk[off] = v & 0xff;
            blk[off + 1] = v >> 8;
        }
        if (type == LMSCORE_TYPE_BF16) {
            const uint16_t v = finite16(0xff, 7, 0xff);
            blk[0] = v & 0xff;
            blk[1] = v >> 8;
        }
    }
    return raw;
}

// Random rows of `type` whose values have about the RMS `rms`, as a
// trained model's would (tests that run a model need activations of O(1)):
// random quants, every scale field of a block the same random multiple of
// one factor found by dequantizing once with unit scales.
inline std::vector<uint8_t> scaled_rows(Rng &rng, int32_t type, int64_t ne0, int64_t n_rows, float rms) {
    int values = 0, bytes = 0;
    if (!ref_block(type, &values, &bytes)) return {};
    const int64_t n_blocks = ne0 * n_rows / values;
    std::vector<uint8_t> raw((size_t)(n_blocks * bytes));
    if (values == 1) {
        for (int64_t i = 0; i < n_blocks; ++i) {
            const float f = rng.normal(rms);
            uint8_t *p = &raw[(size_t)(i * bytes)];
            if (type == LMSCORE_TYPE_F32) {
                memcpy(p, &f, 4);
            } else {
                const uint16_t v = type == LMSCORE_TYPE_F16 ? ref_to_f16(f) : f32_to_bf16(f);
                p[0] = v & 0xff;
                p[1] = v >> 8;
            }
        }
        return raw;
    }
    for (uint8_t &b : raw) b = (uint8_t)rng.gen();
    const std::vector<int> fields = ref_scale_fields(type);
    std::vector<float> jitter((size_t)n_blocks);
    for (float &j : jitter) j = rng.uniform(0.5f, 1.5f);
    auto set_scales = [&](float unit) {
        for (int64_t b = 0; b < n_blocks; ++b)
            for (int off : fields) {
                const uint16_t v = ref_to_f16(unit * jitter[(size_t)b]);
                raw[(size_t)(b * bytes + off)] = v & 0xff;
                raw[(size_t)(b * bytes + off + 1)] = v >> 8;
            }
    };
    set_scales(1.f);
    const std::vector<float> unit = ref_dequantize(type, raw.data(), ne0, n_rows);
    double ss = 0;
    for (float v : unit) ss += (double)v * v;
    const double got = sqrt(ss / (double)unit.size());
    set_scales(got > 0 ? (float)(rms / got) : 1.f);
    return raw;
}

} // namespace lmscore_test
