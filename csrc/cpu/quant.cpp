#include "quant.hpp"

#include <cstring>

#include "common.hpp"
#include "half.hpp"

namespace lmscore {

namespace {

// no_contract keeps a product a rounded fp32 value where the compiler could
// otherwise fuse it with the next addition (targets with FMA). Baseline
// x86-64, which this file is compiled for, has no FMA, so there it is free
// and does not stop the loops from vectorizing.
#if defined(__x86_64__) && !defined(__FMA__)
inline float no_contract(float x) { return x; }
#elif defined(__x86_64__)
inline float no_contract(float x) {
    __asm__("" : "+x"(x));
    return x;
}
#elif defined(__aarch64__)
inline float no_contract(float x) {
    __asm__("" : "+w"(x));
    return x;
}
#else
inline float no_contract(float x) {
    volatile float v = x;
    return v;
}
#endif

constexpr int QK = 256;
constexpr int8_t kIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

inline float f16(const uint8_t *p) { return fp16_to_fp32(load_u16(p)); }

void decode_f32(const uint8_t *b, float *out) { std::memcpy(out, b, 4); }
void decode_f16(const uint8_t *b, float *out) { *out = f16(b); }
void decode_bf16(const uint8_t *b, float *out) { *out = bf16_to_fp32(load_u16(b)); }

void decode_q8_0(const uint8_t *b, float *out) {
    const float d = f16(b);
    for (int j = 0; j < 32; j++) out[j] = float(int8_t(b[2 + j])) * d;
}

void decode_q4_0(const uint8_t *b, float *out) {
    const float d = f16(b);
    for (int j = 0; j < 16; j++) {
        out[j] = d * float(int(b[2 + j] & 0xf) - 8);
        out[j + 16] = d * float(int(b[2 + j] >> 4) - 8);
    }
}

void decode_q4_1(const uint8_t *b, float *out) {
    const float d = f16(b), m = f16(b + 2);
    for (int j = 0; j < 16; j++) {
        out[j] = no_contract(d * float(b[4 + j] & 0xf)) + m;
        out[j + 16] = no_contract(d * float(b[4 + j] >> 4)) + m;
    }
}

inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

void decode_q5_0(const uint8_t *b, float *out) {
    const float d = f16(b);
    const uint32_t qh = load_u32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0xf) | int((qh >> j) & 1) << 4;
        const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
        out[j] = d * float(lo - 16);
        out[j + 16] = d * float(hi - 16);
    }
}

void decode_q5_1(const uint8_t *b, float *out) {
    const float d = f16(b), m = f16(b + 2);
    const uint32_t qh = load_u32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0xf) | int((qh >> j) & 1) << 4;
        const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
        out[j] = no_contract(d * float(lo)) + m;
        out[j + 16] = no_contract(d * float(hi)) + m;
    }
}

void decode_q2_k(const uint8_t *b, float *out) {
    const uint8_t *scales = b, *qs = b + 16;
    const float d = f16(b + 80), dmin = f16(b + 82);
    for (int s = 0; s < 16; s++) {
        const float dl = d * float(scales[s] & 0xf);
        const float ml = dmin * float(scales[s] >> 4);
        for (int i = s * 16; i < s * 16 + 16; i++) {
            const int g = i / 32, l = i % 32;
            const int q = (qs[(g / 4) * 32 + l] >> (2 * (g % 4))) & 3;
            out[i] = no_contract(dl * float(q)) - ml;
        }
    }
}

void decode_q3_k(const uint8_t *b, float *out) {
    const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    const float d = f16(b + 108);
    for (int s = 0; s < 16; s++) {
        const int lo = s < 8 ? (sc[s] & 0xf) : (sc[s - 8] >> 4);
        const int hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        const float dl = d * float(int8_t(lo | hi << 4) - 32);
        for (int i = s * 16; i < s * 16 + 16; i++) {
            const int g = i / 32, l = i % 32;
            int q = (qs[(g / 4) * 32 + l] >> (2 * (g % 4))) & 3;
            if (((hmask[l] >> g) & 1) == 0) q -= 4;
            out[i] = dl * float(q);
        }
    }
}

inline void k_scale_min(const uint8_t *s, int j, int &sc, int &m) {
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

void decode_q4_k(const uint8_t *b, float *out) {
    const float d = f16(b), dmin = f16(b + 2);
    const uint8_t *qs = b + 16;
    for (int g = 0; g < 8; g++) {
        int sc, m;
        k_scale_min(b + 4, g, sc, m);
        const float dl = d * float(sc), ml = dmin * float(m);
        const int shift = 4 * (g % 2);
        const uint8_t *q = qs + (g / 2) * 32;
        for (int l = 0; l < 32; l++) out[g * 32 + l] = no_contract(dl * float((q[l] >> shift) & 0xf)) - ml;
    }
}

void decode_q5_k(const uint8_t *b, float *out) {
    const float d = f16(b), dmin = f16(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int g = 0; g < 8; g++) {
        int sc, m;
        k_scale_min(b + 4, g, sc, m);
        const float dl = d * float(sc), ml = dmin * float(m);
        const int shift = 4 * (g % 2);
        const uint8_t *q = qs + (g / 2) * 32;
        for (int l = 0; l < 32; l++) {
            const int v = ((q[l] >> shift) & 0xf) | (((qh[l] >> g) & 1) << 4);
            out[g * 32 + l] = no_contract(dl * float(v)) - ml;
        }
    }
}

void decode_q6_k(const uint8_t *b, float *out) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = reinterpret_cast<const int8_t *>(b + 192);
    const float d = f16(b + 208);
    for (int h = 0; h < 2; h++) {
        for (int g = 0; g < 4; g++) {
            const uint8_t *lo = ql + h * 64 + (g % 2) * 32;
            const uint8_t *hi = qh + h * 32;
            const int shift = 4 * (g / 2);
            float *o = out + h * 128 + g * 32;
            const float d0 = d * float(scales[(h * 128 + g * 32) / 16]);
            const float d1 = d * float(scales[(h * 128 + g * 32) / 16 + 1]);
            for (int l = 0; l < 32; l++) {
                const int q = (((lo[l] >> shift) & 0xf) | (((hi[l] >> (2 * g)) & 3) << 4)) - 32;
                o[l] = (l < 16 ? d0 : d1) * float(q);
            }
        }
    }
}

void decode_iq4_nl(const uint8_t *b, float *out) {
    const float d = f16(b);
    for (int j = 0; j < 16; j++) {
        out[j] = d * float(kIQ4NL[b[2 + j] & 0xf]);
        out[j + 16] = d * float(kIQ4NL[b[2 + j] >> 4]);
    }
}

void decode_iq4_xs(const uint8_t *b, float *out) {
    const float d = f16(b);
    const uint16_t sh = load_u16(b + 2);
    const uint8_t *sl = b + 4, *qs = b + 8;
    for (int g = 0; g < 8; g++) {
        const int s = ((sl[g / 2] >> (4 * (g % 2))) & 0xf) | (((sh >> (2 * g)) & 3) << 4);
        const float dl = d * float(s - 32);
        for (int l = 0; l < 16; l++) {
            const uint8_t q = qs[g * 16 + l];
            out[g * 32 + l] = dl * float(kIQ4NL[q & 0xf]);
            out[g * 32 + l + 16] = dl * float(kIQ4NL[q >> 4]);
        }
    }
}

const BlockType kTypes[] = {
    {LMSCORE_TYPE_F32, 1, 4, decode_f32},      {LMSCORE_TYPE_F16, 1, 2, decode_f16},
    {LMSCORE_TYPE_BF16, 1, 2, decode_bf16},    {LMSCORE_TYPE_Q4_0, 32, 18, decode_q4_0},
    {LMSCORE_TYPE_Q4_1, 32, 20, decode_q4_1},  {LMSCORE_TYPE_Q5_0, 32, 22, decode_q5_0},
    {LMSCORE_TYPE_Q5_1, 32, 24, decode_q5_1},  {LMSCORE_TYPE_Q8_0, 32, 34, decode_q8_0},
    {LMSCORE_TYPE_Q2_K, QK, 84, decode_q2_k},  {LMSCORE_TYPE_Q3_K, QK, 110, decode_q3_k},
    {LMSCORE_TYPE_Q4_K, QK, 144, decode_q4_k}, {LMSCORE_TYPE_Q5_K, QK, 176, decode_q5_k},
    {LMSCORE_TYPE_Q6_K, QK, 210, decode_q6_k}, {LMSCORE_TYPE_IQ4_NL, 32, 18, decode_iq4_nl},
    {LMSCORE_TYPE_IQ4_XS, QK, 136, decode_iq4_xs},
};

} // namespace

const BlockType *block_type(int32_t type) {
    for (const BlockType &bt : kTypes)
        if (bt.type == type) return &bt;
    return nullptr;
}

bool is_block_quant(int32_t type) {
    const BlockType *bt = block_type(type);
    return bt != nullptr && bt->values > 1;
}

void dequant_blocks(const BlockType &bt, const uint8_t *src, int64_t n_blocks, float *out) {
    if (bt.type == LMSCORE_TYPE_F32) {
        std::memcpy(out, src, size_t(n_blocks) * 4);
        return;
    }
    for (int64_t i = 0; i < n_blocks; i++, src += bt.bytes, out += bt.values) bt.decode(src, out);
}

void dequant_range(const BlockType &bt, const uint8_t *row, int64_t k0, int64_t n, float *out) {
    dequant_blocks(bt, row + k0 / bt.values * bt.bytes, n / bt.values, out);
}

} // namespace lmscore
