// ref_model.cpp — random model construction and the float64 reference forward pass.
//
// The reference follows the architectures as lmscore.h names them:
//   llama: RMSNorm, rotary NORM, grouped-query attention, SwiGLU, no biases;
//   qwen2: llama plus q/k/v biases, rotary NEOX;
//   gpt2:  learned positions, LayerNorm with bias, fused QKV with bias, GELU (tanh).
// Rotary angle of pair i at position p: p * base^(-2i / head_dim).
#include "ref_model.h"

#include <math.h>

#include <algorithm>

namespace lmscore_test {

RandomModel::T RandomModel::make(Rng &rng, int64_t ne0, int64_t ne1, float sd, float mean) {
    T t;
    t.ne0 = ne0;
    t.ne1 = ne1;
    t.v.resize((size_t)(ne0 * ne1));
    for (float &x : t.v) x = mean + rng.normal(sd);
    return t;
}

lmscore_tensor RandomModel::view(const T &t) {
    lmscore_tensor v{};
    if (t.v.empty()) return v;
    v.data = t.v.data();
    v.type = LMSCORE_TYPE_F32;
    v.ne[0] = t.ne0;
    v.ne[1] = t.ne1;
    return v;
}

RandomModel::RandomModel(const ModelShape &s, uint64_t seed) : s_(s) {
    Rng rng(seed);
    const int E = s.n_embd, D = E / s.n_head, Q = s.n_head * D, KV = s.n_head_kv * D, F = s.n_ff;
    const bool gpt2 = s.arch == ARCH_GPT2, qwen2 = s.arch == ARCH_QWEN2;
    const float w_in = 1.f / sqrtf((float)E), w_ff = 1.f / sqrtf((float)F), w_q = 1.f / sqrtf((float)Q);
    // Logit spread: the final norm makes h ~ unit RMS, so a logit is a sum of
    // E products; 2.5/sqrt(E) gives logits of standard deviation ~2.5.
    tok_ = make(rng, E, s.n_vocab, 2.5f / sqrtf((float)E));
    if (gpt2) pos_ = make(rng, E, s.n_ctx_train, 0.3f);
    out_norm_ = make(rng, E, 1, 0.1f, 1.f);
    if (gpt2) out_norm_b_ = make(rng, E, 1, 0.1f);
    if (!s.tied) out_ = make(rng, E, s.n_vocab, 2.5f / sqrtf((float)E));
    layers_.resize((size_t)s.n_layer * LMSCORE_LAYER_ROLE_COUNT);
    for (int l = 0; l < s.n_layer; ++l) {
        T *L = &layers_[(size_t)l * LMSCORE_LAYER_ROLE_COUNT];
        L[LMSCORE_LAYER_ATTN_NORM] = make(rng, E, 1, 0.1f, 1.f);
        L[LMSCORE_LAYER_FFN_NORM] = make(rng, E, 1, 0.1f, 1.f);
        L[LMSCORE_LAYER_WO] = make(rng, Q, E, w_q);
        L[LMSCORE_LAYER_FFN_DOWN] = make(rng, F, E, w_ff);
        L[LMSCORE_LAYER_FFN_UP] = make(rng, E, F, w_in);
        if (gpt2) {
            L[LMSCORE_LAYER_ATTN_NORM_B] = make(rng, E, 1, 0.1f);
            L[LMSCORE_LAYER_FFN_NORM_B] = make(rng, E, 1, 0.1f);
            L[LMSCORE_LAYER_WQKV] = make(rng, E, 3 * E, w_in);
            L[LMSCORE_LAYER_BQKV] = make(rng, 3 * E, 1, 0.1f);
            L[LMSCORE_LAYER_BO] = make(rng, E, 1, 0.1f);
            L[LMSCORE_LAYER_FFN_UP_B] = make(rng, F, 1, 0.1f);
            L[LMSCORE_LAYER_FFN_DOWN_B] = make(rng, E, 1, 0.1f);
        } else {
            L[LMSCORE_LAYER_WQ] = make(rng, E, Q, w_in);
            L[LMSCORE_LAYER_WK] = make(rng, E, KV, w_in);
            L[LMSCORE_LAYER_WV] = make(rng, E, KV, w_in);
            L[LMSCORE_LAYER_FFN_GATE] = make(rng, E, F, w_in);
            if (qwen2) {
                L[LMSCORE_LAYER_BQ] = make(rng, Q, 1, 0.1f);
                L[LMSCORE_LAYER_BK] = make(rng, KV, 1, 0.1f);
                L[LMSCORE_LAYER_BV] = make(rng, KV, 1, 0.1f);
            }
        }
    }
    layer_views_.resize(layers_.size());
    for (size_t i = 0; i < layers_.size(); ++i) layer_views_[i] = view(layers_[i]);
    desc_.norm_type = gpt2 ? LMSCORE_NORM_LAYER : LMSCORE_NORM_RMS;
    desc_.ffn_type = gpt2 ? LMSCORE_FFN_GELU : LMSCORE_FFN_SWIGLU;
    desc_.n_vocab = s.n_vocab;
    desc_.n_embd = E;
    desc_.n_layer = s.n_layer;
    desc_.n_head = s.n_head;
    desc_.n_head_kv = s.n_head_kv;
    desc_.n_ff = F;
    desc_.n_ctx_train = s.n_ctx_train;
    desc_.rope_type = s.rope_type;
    desc_.rope_freq_base = s.rope_freq_base;
    desc_.norm_eps = s.norm_eps;
    desc_.tok_embd = view(tok_);
    desc_.pos_embd = view(pos_);
    desc_.output_norm = view(out_norm_);
    desc_.output_norm_b = view(out_norm_b_);
    desc_.output = view(out_);
    desc_.layers = layer_views_.data();
}

namespace {

using Vec = std::vector<double>;

thread_local bool g_bf16 = false; // forward()'s bf16_points, for the helpers below
double st(double x) { return g_bf16 ? (double)round_bf16((float)x) : x; } // a stored value

// y (n_out) = W x (+ b); W holds n_out rows of n_in.
Vec linear(const std::vector<float> &W, const std::vector<float> *b, const Vec &x, int n_in, int n_out,
           int row_offset = 0) {
    Vec y(n_out);
    Vec xs(x);
    for (double &v : xs) v = st(v); // a GEMM input
    for (int o = 0; o < n_out; ++o) {
        const float *w = &W[(size_t)(row_offset + o) * n_in];
        double acc = 0;
        for (int i = 0; i < n_in; ++i) acc += st(w[i]) * xs[i];
        y[o] = acc + (b && !b->empty() ? (*b)[row_offset + o] : 0.0);
    }
    return y;
}

Vec normalize(const Vec &x, const std::vector<float> &w, const std::vector<float> &b, bool layer_norm, double eps) {
    const int n = (int)x.size();
    double mean = 0, var = 0;
    if (layer_norm) {
        for (double v : x) mean += v;
        mean /= n;
    }
    for (double v : x) var += (v - mean) * (v - mean);
    const double inv = 1.0 / sqrt(var / n + eps);
    Vec y(n);
    for (int i = 0; i < n; ++i) y[i] = (x[i] - mean) * inv * w[i] + (b.empty() ? 0.0 : b[i]);
    return y;
}

void rope(double *v, int D, int pos, int type, double base) {
    if (type == LMSCORE_ROPE_TYPE_NONE) return;
    for (int i = 0; i < D / 2; ++i) {
        const int i0 = type == LMSCORE_ROPE_TYPE_NEOX ? i : 2 * i;
        const int i1 = type == LMSCORE_ROPE_TYPE_NEOX ? i + D / 2 : 2 * i + 1;
        const double th = pos * pow(base, -2.0 * i / D);
        const double a = v[i0], b = v[i1];
        v[i0] = a * cos(th) - b * sin(th);
        v[i1] = a * sin(th) + b * cos(th);
    }
}

} // namespace

std::vector<std::vector<double>> RandomModel::forward(const std::vector<int32_t> &tokens, bool bf16_points) const {
    g_bf16 = bf16_points;
    const int n = (int)tokens.size();
    const int E = s_.n_embd, H = s_.n_head, Hkv = s_.n_head_kv, D = E / H, Q = H * D, KV = Hkv * D, F = s_.n_ff;
    const bool gpt2 = s_.arch == ARCH_GPT2;
    std::vector<Vec> x(n, Vec(E));
    for (int t = 0; t < n; ++t)
        for (int e = 0; e < E; ++e)
            x[t][e] = st(tok_.v[(size_t)tokens[t] * E + e]) + (gpt2 ? st(pos_.v[(size_t)t * E + e]) : 0.0);

    for (int l = 0; l < s_.n_layer; ++l) {
        std::vector<Vec> q(n), k(n), v(n);
        for (int t = 0; t < n; ++t) {
            const Vec h = normalize(x[t], layer(l, LMSCORE_LAYER_ATTN_NORM).v, layer(l, LMSCORE_LAYER_ATTN_NORM_B).v,
                                    gpt2, s_.norm_eps);
            if (gpt2) {
                const auto &W = layer(l, LMSCORE_LAYER_WQKV).v;
                const auto *B = &layer(l, LMSCORE_LAYER_BQKV).v;
                q[t] = linear(W, B, h, E, Q, 0);
                k[t] = linear(W, B, h, E, KV, Q);
                v[t] = linear(W, B, h, E, KV, Q + KV);
            } else {
                q[t] = linear(layer(l, LMSCORE_LAYER_WQ).v, &layer(l, LMSCORE_LAYER_BQ).v, h, E, Q);
                k[t] = linear(layer(l, LMSCORE_LAYER_WK).v, &layer(l, LMSCORE_LAYER_BK).v, h, E, KV);
                v[t] = linear(layer(l, LMSCORE_LAYER_WV).v, &layer(l, LMSCORE_LAYER_BV).v, h, E, KV);
            }
            for (int hh = 0; hh < H; ++hh) rope(&q[t][hh * D], D, t, s_.rope_type, s_.rope_freq_base);
            for (int hh = 0; hh < Hkv; ++hh) rope(&k[t][hh * D], D, t, s_.rope_type, s_.rope_freq_base);
            for (Vec *qkv : {&q[t], &k[t], &v[t]}) // attention reads q and the KV pool in storage precision
                for (double &z : *qkv) z = st(z);
        }
        for (int t = 0; t < n; ++t) {
            Vec a(Q);
            for (int hh = 0; hh < H; ++hh) {
                const int kvh = hh / (H / Hkv);
                Vec sc(t + 1);
                double mx = -INFINITY;
                for (int p = 0; p <= t; ++p) {
                    double d = 0;
                    for (int i = 0; i < D; ++i) d += q[t][hh * D + i] * k[p][kvh * D + i];
                    sc[p] = d / sqrt((double)D);
                    mx = std::max(mx, sc[p]);
                }
                double sum = 0;
                for (double &s : sc) sum += (s = exp(s - mx));
                for (int i = 0; i < D; ++i) {
                    double acc = 0;
                    for (int p = 0; p <= t; ++p) acc += sc[p] * v[p][kvh * D + i];
                    a[hh * D + i] = acc / sum;
                }
            }
            const Vec o = linear(layer(l, LMSCORE_LAYER_WO).v, &layer(l, LMSCORE_LAYER_BO).v, a, Q, E);
            for (int e = 0; e < E; ++e) x[t][e] += o[e];

            const Vec h = normalize(x[t], layer(l, LMSCORE_LAYER_FFN_NORM).v, layer(l, LMSCORE_LAYER_FFN_NORM_B).v,
                                    gpt2, s_.norm_eps);
            Vec act(F);
            if (gpt2) {
                const Vec u = linear(layer(l, LMSCORE_LAYER_FFN_UP).v, &layer(l, LMSCORE_LAYER_FFN_UP_B).v, h, E, F);
                for (int f = 0; f < F; ++f) {
                    const double z = u[f];
                    act[f] = 0.5 * z * (1 + tanh(sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)));
                }
            } else {
                const Vec g = linear(layer(l, LMSCORE_LAYER_FFN_GATE).v, nullptr, h, E, F);
                const Vec u = linear(layer(l, LMSCORE_LAYER_FFN_UP).v, nullptr, h, E, F);
                for (int f = 0; f < F; ++f) act[f] = g[f] / (1 + exp(-g[f])) * u[f];
            }
            const Vec d = linear(layer(l, LMSCORE_LAYER_FFN_DOWN).v, &layer(l, LMSCORE_LAYER_FFN_DOWN_B).v, act, F, E);
            for (int e = 0; e < E; ++e) x[t][e] += d[e];
        }
    }
    std::vector<Vec> logits(n);
    const std::vector<float> &W = s_.tied ? tok_.v : out_.v;
    for (int t = 0; t < n; ++t) {
        const Vec h = normalize(x[t], out_norm_.v, out_norm_b_.v, gpt2, s_.norm_eps);
        logits[t] = linear(W, nullptr, h, E, s_.n_vocab);
    }
    return logits;
}

} // namespace lmscore_test
