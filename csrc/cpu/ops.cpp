#include "ops.hpp"

#include <cmath>

namespace lmscore {

namespace {

// Sums in double through 8 running partial sums and a fixed tree at the
// end: the order depends only on n, and the independent chains keep the
// adds from waiting on each other (one chain was most of a norm's time).
constexpr int kLanes = 8;

double tree_sum(const double *acc) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double sum_squares(int64_t n, const float *x, float shift) {
    double acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; l++) {
            const double d = double(x[i + l] - shift);
            acc[l] += d * d;
        }
    for (int l = 0; i < n; i++, l++) {
        const double d = double(x[i] - shift);
        acc[l] += d * d;
    }
    return tree_sum(acc);
}

double sum(int64_t n, const float *x) {
    double acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; l++) acc[l] += double(x[i + l]);
    for (int l = 0; i < n; i++, l++) acc[l] += double(x[i]);
    return tree_sum(acc);
}

} // namespace

void rms_norm(int64_t n, const float *x, const float *w, float eps, float *y) {
    const float mean = float(sum_squares(n, x, 0.0f) / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

void layer_norm(int64_t n, const float *x, const float *w, const float *b, float eps, float *y) {
    const float mean = float(sum(n, x) / double(n));
    const float var = float(sum_squares(n, x, mean) / double(n));
    const float scale = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = ((x[i] - mean) * scale) * w[i];
        y[i] = b ? v + b[i] : v;
    }
}

void rope_inv_freq(int n_rot, float base, float scale, const float *freq_factors, double *inv_freq) {
    for (int i = 0; i < n_rot / 2; i++) {
        inv_freq[i] = double(scale) * std::pow(double(base), -2.0 * i / double(n_rot));
        if (freq_factors != nullptr) inv_freq[i] /= double(freq_factors[i]);
    }
}

void rope_angles(int pos, int n_rot, const double *inv_freq, double attn_factor, float *cos_sin) {
    for (int i = 0; i < n_rot / 2; i++) {
        const double theta = double(pos) * inv_freq[i];
        cos_sin[2 * i] = float(attn_factor * std::cos(theta));
        cos_sin[2 * i + 1] = float(attn_factor * std::sin(theta));
    }
}

void rope_norm(float *x, int n_heads, int head_dim, int n_rot, const float *cos_sin) {
    for (int h = 0; h < n_heads; h++) {
        float *v = x + int64_t(h) * head_dim;
        for (int i = 0; i < n_rot / 2; i++) {
            const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            const float x0 = v[2 * i], x1 = v[2 * i + 1];
            v[2 * i] = x0 * c - x1 * s;
            v[2 * i + 1] = x0 * s + x1 * c;
        }
    }
}

void rope_neox(float *x, int n_heads, int head_dim, int n_rot, const float *cos_sin) {
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + int64_t(h) * head_dim;
        for (int i = 0; i < half; i++) {
            const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c - x1 * s;
            v[i + half] = x0 * s + x1 * c;
        }
    }
}

} // namespace lmscore
