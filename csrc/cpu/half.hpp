// Scalar conversions of the 16-bit float formats GGUF stores. They run once,
// at model load, so clarity beats speed here.
#pragma once

#include <cstdint>
#include <cstring>

namespace lmscore {

inline float bits_to_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline uint32_t float_to_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

// IEEE 754 binary16 to binary32, exact for every input (subnormals, inf, NaN).
inline float fp16_to_fp32(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return bits_to_float(sign);
        // Subnormal: value = mant * 2^-24, exact in binary32.
        float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
}

// bfloat16 is the top half of a binary32.
inline float bf16_to_fp32(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t load_u16(const void *p) {
    uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

} // namespace lmscore
