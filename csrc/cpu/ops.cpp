#include "ops.hpp"

#include <cmath>

namespace lmscore {

void rms_norm(int64_t n, const float *x, const float *w, float eps, float *y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += double(x[i]) * double(x[i]);
    const float mean = float(sum / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

void layer_norm(int64_t n, const float *x, const float *w, const float *b, float eps, float *y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += double(x[i]);
    const float mean = float(sum / double(n));
    double sum2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float d = x[i] - mean;
        sum2 += double(d) * double(d);
    }
    const float var = float(sum2 / double(n));
    const float scale = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = ((x[i] - mean) * scale) * w[i];
        y[i] = b ? v + b[i] : v;
    }
}

void rope_angles(int pos, int head_dim, float base, float *cos_sin) {
    for (int i = 0; i < head_dim / 2; i++) {
        const double theta = double(pos) * std::pow(double(base), -2.0 * i / double(head_dim));
        cos_sin[2 * i] = float(std::cos(theta));
        cos_sin[2 * i + 1] = float(std::sin(theta));
    }
}

void rope_norm(float *x, int n_heads, int head_dim, const float *cos_sin) {
    for (int h = 0; h < n_heads; h++) {
        float *v = x + int64_t(h) * head_dim;
        for (int i = 0; i < head_dim / 2; i++) {
            const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            const float x0 = v[2 * i], x1 = v[2 * i + 1];
            v[2 * i] = x0 * c - x1 * s;
            v[2 * i + 1] = x0 * s + x1 * c;
        }
    }
}

void rope_neox(float *x, int n_heads, int head_dim, const float *cos_sin) {
    const int half = head_dim / 2;
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
