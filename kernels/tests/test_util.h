// test_util.h — host helpers shared by the device tests: random numbers,
// bf16 rounding, error measures and the PASS/FAIL report.
#pragma once

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <random>
#include <string>
#include <vector>

namespace lmscore_test {

struct Rng {
    std::mt19937_64 gen;
    explicit Rng(uint64_t seed) : gen(seed) {}
    float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen); }
    float normal(float sd = 1.f) { return std::normal_distribution<float>(0.f, sd)(gen); }
    int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(gen); }
    int range(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); } // inclusive
};

// Round to nearest even, as __float2bfloat16_rn does.
inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; // NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
inline float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// Measured error of an output against a float64 reference: the relative
// L2 norm ||out - ref|| / ||ref|| (METHOD.md's measure) and the largest
// absolute difference. Any NaN or Inf in the output fails.
struct Err {
    double rel_l2 = 0, max_abs = 0;
    bool non_finite = false;
};

template <typename A, typename B> Err compare(const A &out, const B &ref) {
    Err e;
    double num = 0, den = 0;
    if (out.size() != ref.size()) {
        e.non_finite = true;
        return e;
    }
    for (size_t i = 0; i < out.size(); ++i) {
        const double o = out[i], r = ref[i];
        if (!std::isfinite(o)) e.non_finite = true;
        num += (o - r) * (o - r);
        den += r * r;
        e.max_abs = fmax(e.max_abs, fabs(o - r));
    }
    e.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    return e;
}

class Report {
  public:
    // One line per check: PASS/FAIL, its name, the measured value(s) and the bound.
    bool check(bool ok, const std::string &name, const char *fmt, ...) __attribute__((format(printf, 4, 5))) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name.c_str(), buf);
        fflush(stdout);
        (ok ? passed_ : failed_)++;
        return ok;
    }
    bool err(const std::string &name, const Err &e, double tol_rel_l2) {
        const bool ok = !e.non_finite && e.rel_l2 <= tol_rel_l2;
        return check(ok, name, "rel_l2 %.3g max_abs %.3g%s (tol rel_l2 %.2g)", e.rel_l2, e.max_abs,
                     e.non_finite ? " NON-FINITE" : "", tol_rel_l2);
    }
    void info(const char *fmt, ...) __attribute__((format(printf, 2, 3))) {
        va_list ap;
        va_start(ap, fmt);
        printf("INFO ");
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
    }
    // The closing line, in the plain form CI tools read.
    int finish(const char *suite) const {
        printf("%s: %d passed, %d failed\n", suite, passed_, failed_);
        return failed_ == 0 ? 0 : 1;
    }
    int failed() const { return failed_; }

  private:
    int passed_ = 0, failed_ = 0;
};

} // namespace lmscore_test
