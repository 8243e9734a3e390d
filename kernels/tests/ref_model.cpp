// ref_model.cpp — random model construction and the float64 reference forward pass.
//
// The families, as RandomModel builds them (lmscore.h names the features):
//   llama:   RMSNorm, rotary NORM, grouped-query attention, SwiGLU, no biases;
//   qwen2:   llama plus q/k/v biases, rotary NEOX;
//   gpt2:    learned positions, LayerNorm with bias, fused QKV with bias, GELU (tanh);
//   gemma2:  GeGLU, embeddings x sqrt(n_embd), pre- and post-norms, an
//            attention scale of its own, attention and final soft-capping,
//            sliding-window attention on every other layer, head_dim != n_embd / n_head;
//   gemma3:  gemma2 without soft-capping, with per-head q/k norms, two
//            sliding layers to one global, each kind with its own RoPE base
//            (and the global one a linear position scale);
//   phi3:    fused qkv and gate_up, partial rotary (3/4 of the head) with
//            LongRoPE-style frequency factors and attention factor;
//   neox:    GPT-NeoX: parallel residual, LayerNorm with biases, fused qkv
//            with bias, exact (erf) GELU, partial rotary (1/4 of the head);
//   olmo2:   no pre-norms, post-norms, q/k RMSNorm over the whole projections;
//   mistral: llama with a sliding window on every layer (swa_layers NULL),
//            an explicit head_dim and a linear position scale;
//   mixtral: llama with experts in place of the FFN, top-k renormalized;
//   qwen2moe: qwen2 with experts (raw top-k weights) and a shared expert
//            scaled by its sigmoid gate, the gate absent in layer 1;
//   qwen3moe: per-head q/k norms, no biases, experts renormalized.
// The forward pass reads the features from the description, as the cores do
// (lmscore.h's comments are the spec), not from the family.
#include "ref_model.h"

#include <math.h>

#include <algorithm>
#include <functional>

namespace lmscore_test {

const char *test_arch_name(int32_t a) {
    switch (a) {
    case ARCH_LLAMA: return "llama";
    case ARCH_QWEN2: return "qwen2";
    case ARCH_GPT2: return "gpt2";
    case ARCH_GEMMA2: return "gemma2";
    case ARCH_GEMMA3: return "gemma3";
    case ARCH_PHI3: return "phi3";
    case ARCH_NEOX: return "neox";
    case ARCH_OLMO2: return "olmo2";
    case ARCH_MISTRAL: return "mistral";
    case ARCH_MIXTRAL: return "mixtral";
    case ARCH_QWEN2MOE: return "qwen2moe";
    case ARCH_QWEN3MOE: return "qwen3moe";
    }
    return "unknown";
}

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
    const int E = s.n_embd, D = head_dim(), Q = s.n_head * D, KV = s.n_head_kv * D, F = s.n_ff;
    const int a = s.arch;
    const bool gpt2 = a == ARCH_GPT2, qwen2 = a == ARCH_QWEN2 || a == ARCH_QWEN2MOE, neox = a == ARCH_NEOX,
               phi3 = a == ARCH_PHI3;
    const bool moe = s.n_expert > 0, head_norms = a == ARCH_GEMMA3 || a == ARCH_QWEN3MOE;
    const bool gemma = a == ARCH_GEMMA2 || a == ARCH_GEMMA3, olmo2 = a == ARCH_OLMO2;
    const bool layer_norm = gpt2 || neox, fused_qkv = gpt2 || neox || phi3;
    const float w_in = 1.f / sqrtf((float)E), w_ff = 1.f / sqrtf((float)F), w_q = 1.f / sqrtf((float)Q);
    // Logit spread: the final norm makes h ~ unit RMS, so a logit is a sum of
    // E products; 2.5/sqrt(E) gives logits of standard deviation ~2.5.
    // Gemma's embeddings are scaled up by sqrt(E) on the way in, so its
    // (tied) table is the same and its inputs are large, as in Gemma.
    tok_ = make(rng, E, s.n_vocab, 2.5f / sqrtf((float)E));
    if (gpt2) pos_ = make(rng, E, s.n_ctx_train, 0.3f);
    out_norm_ = make(rng, E, 1, 0.1f, 1.f);
    if (layer_norm) out_norm_b_ = make(rng, E, 1, 0.1f);
    if (!s.tied) out_ = make(rng, E, s.n_vocab, 2.5f / sqrtf((float)E));
    layers_.resize((size_t)s.n_layer * LMSCORE_LAYER_ROLE_COUNT);
    for (int l = 0; l < s.n_layer; ++l) {
        T *L = &layers_[(size_t)l * LMSCORE_LAYER_ROLE_COUNT];
        if (!olmo2) {
            L[LMSCORE_LAYER_ATTN_NORM] = make(rng, E, 1, 0.1f, 1.f);
            L[LMSCORE_LAYER_FFN_NORM] = make(rng, E, 1, 0.1f, 1.f);
        }
        // The draws in the order of the original three families, so their
        // weights (and the logged results) stay what they were.
        L[LMSCORE_LAYER_WO] = make(rng, Q, E, w_q);
        if (!moe) {
            L[LMSCORE_LAYER_FFN_DOWN] = make(rng, F, E, w_ff);
            L[LMSCORE_LAYER_FFN_UP] = phi3 ? make(rng, E, 2 * F, w_in) // gate rows, then up rows
                                           : make(rng, E, F, w_in);
        }
        if (layer_norm) {
            L[LMSCORE_LAYER_ATTN_NORM_B] = make(rng, E, 1, 0.1f);
            L[LMSCORE_LAYER_FFN_NORM_B] = make(rng, E, 1, 0.1f);
            L[LMSCORE_LAYER_WQKV] = make(rng, E, Q + 2 * KV, w_in);
            L[LMSCORE_LAYER_BQKV] = make(rng, Q + 2 * KV, 1, 0.1f);
            L[LMSCORE_LAYER_BO] = make(rng, E, 1, 0.1f);
            L[LMSCORE_LAYER_FFN_UP_B] = make(rng, F, 1, 0.1f);
            L[LMSCORE_LAYER_FFN_DOWN_B] = make(rng, E, 1, 0.1f);
        } else {
            if (fused_qkv) {
                L[LMSCORE_LAYER_WQKV] = make(rng, E, Q + 2 * KV, w_in);
            } else {
                L[LMSCORE_LAYER_WQ] = make(rng, E, Q, w_in);
                L[LMSCORE_LAYER_WK] = make(rng, E, KV, w_in);
                L[LMSCORE_LAYER_WV] = make(rng, E, KV, w_in);
            }
            if (!phi3 && !moe) L[LMSCORE_LAYER_FFN_GATE] = make(rng, E, F, w_in);
            if (qwen2) {
                L[LMSCORE_LAYER_BQ] = make(rng, Q, 1, 0.1f);
                L[LMSCORE_LAYER_BK] = make(rng, KV, 1, 0.1f);
                L[LMSCORE_LAYER_BV] = make(rng, KV, 1, 0.1f);
            }
        }
        if (gemma || olmo2) {
            // Post-norms of weight ~0.5: each branch joins the residual at a
            // fixed RMS, small beside Gemma's sqrt(E)-scaled embeddings.
            L[LMSCORE_LAYER_ATTN_POST_NORM] = make(rng, E, 1, 0.1f, 0.5f);
            L[LMSCORE_LAYER_FFN_POST_NORM] = make(rng, E, 1, 0.1f, 0.5f);
        }
        if (head_norms) {
            L[LMSCORE_LAYER_ATTN_Q_NORM] = make(rng, D, 1, 0.1f, 1.f);
            L[LMSCORE_LAYER_ATTN_K_NORM] = make(rng, D, 1, 0.1f, 1.f);
        }
        if (moe) {
            // Router logits of standard deviation ~1.5: routes that differ
            // from token to token, with few near-ties (a tie the float64
            // reference breaks the other way would move a whole expert).
            const int NE = s.n_expert, FE = s.n_ff_exp, FS = s.n_ff_shexp;
            L[LMSCORE_LAYER_FFN_GATE_INP] = make(rng, E, NE, 1.5f / sqrtf((float)E));
            L[LMSCORE_LAYER_FFN_GATE_EXPS] = make(rng, E, FE * NE, w_in);
            L[LMSCORE_LAYER_FFN_UP_EXPS] = make(rng, E, FE * NE, w_in);
            L[LMSCORE_LAYER_FFN_DOWN_EXPS] = make(rng, FE, E * NE, 1.f / sqrtf((float)FE));
            if (FS > 0) {
                if (l != 1) L[LMSCORE_LAYER_FFN_GATE_INP_SHEXP] = make(rng, E, 1, 1.f / sqrtf((float)E));
                L[LMSCORE_LAYER_FFN_GATE_SHEXP] = make(rng, E, FS, w_in);
                L[LMSCORE_LAYER_FFN_UP_SHEXP] = make(rng, E, FS, w_in);
                L[LMSCORE_LAYER_FFN_DOWN_SHEXP] = make(rng, FS, E, 1.f / sqrtf((float)FS));
            }
        }
        if (olmo2) {
            L[LMSCORE_LAYER_ATTN_Q_NORM] = make(rng, Q, 1, 0.1f, 1.f);
            L[LMSCORE_LAYER_ATTN_K_NORM] = make(rng, KV, 1, 0.1f, 1.f);
        }
    }
    layer_views_.resize(layers_.size());
    for (size_t i = 0; i < layers_.size(); ++i) layer_views_[i] = view(layers_[i]);
    desc_.norm_type = layer_norm ? LMSCORE_NORM_LAYER : LMSCORE_NORM_RMS;
    desc_.ffn_type = gpt2 ? LMSCORE_FFN_GELU : neox ? LMSCORE_FFN_GELU_ERF : gemma ? LMSCORE_FFN_GEGLU : LMSCORE_FFN_SWIGLU;
    desc_.qk_norm = head_norms ? LMSCORE_QK_NORM_HEAD : olmo2 ? LMSCORE_QK_NORM_FULL : LMSCORE_QK_NORM_NONE;
    desc_.n_expert = s.n_expert;
    desc_.n_expert_used = s.n_expert_used;
    desc_.n_ff_exp = s.n_ff_exp;
    desc_.n_ff_shexp = s.n_ff_shexp;
    desc_.expert_weights_norm = moe && a != ARCH_QWEN2MOE ? 1 : 0;
    desc_.parallel_residual = neox ? 1 : 0;
    desc_.n_vocab = s.n_vocab;
    desc_.n_embd = E;
    desc_.n_layer = s.n_layer;
    desc_.n_head = s.n_head;
    desc_.n_head_kv = s.n_head_kv;
    desc_.head_dim = s.head_dim;
    desc_.n_ff = F;
    desc_.n_ctx_train = s.n_ctx_train;
    desc_.rope_type = s.rope_type;
    desc_.rope_freq_base = s.rope_freq_base;
    desc_.norm_eps = s.norm_eps;
    if (gemma) desc_.embd_scale = sqrtf((float)E);
    if (a == ARCH_GEMMA2) {
        // Soft caps low enough to bend these models' scores and logits
        // (Gemma 2's real 50 and 30 rarely bite on random weights).
        desc_.attn_scale = 1.f / sqrtf(1.5f * D); // query_pre_attn_scalar 1.5 head_dim
        desc_.attn_softcap = 2.5f;
        desc_.final_softcap = 4.f;
    }
    if (a == ARCH_GEMMA2 || a == ARCH_GEMMA3 || a == ARCH_MISTRAL) desc_.n_swa = s.n_swa;
    if (a == ARCH_GEMMA2 || a == ARCH_GEMMA3) {
        swa_layers_.resize(s.n_layer);
        for (int l = 0; l < s.n_layer; ++l)
            swa_layers_[l] = a == ARCH_GEMMA2 ? (l % 2 == 0) : (l % 3 != 2); // Gemma 2: local first; Gemma 3: 2 local : 1 global here
        desc_.swa_layers = swa_layers_.data();
    }
    if (a == ARCH_GEMMA3) {
        desc_.rope_freq_base_swa = 10000.f;
        desc_.rope_freq_scale = 0.125f; // Gemma 3 4B+: linear factor 8 on the global layers only
    }
    if (a == ARCH_MISTRAL) desc_.rope_freq_scale = 0.5f;
    if (phi3) {
        desc_.n_rot = D * 3 / 4;
        rope_freqs_ = make(rng, desc_.n_rot / 2, 1, 0.f, 1.f);
        for (size_t i = 0; i < rope_freqs_.v.size(); ++i) rope_freqs_.v[i] = 1.f + 2.f * i / (rope_freqs_.v.size() - 1);
        desc_.rope_attn_factor = 1.19f;
    }
    if (neox) desc_.n_rot = D / 4;
    desc_.tok_embd = view(tok_);
    desc_.pos_embd = view(pos_);
    desc_.output_norm = view(out_norm_);
    desc_.output_norm_b = view(out_norm_b_);
    desc_.output = view(out_);
    desc_.rope_freqs = view(rope_freqs_);
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

// y = norm(x[0..n)) * w (+ b), in place when y is x.
void normalize_into(const double *x, int n, const std::vector<float> &w, const std::vector<float> &b, bool layer_norm,
                    double eps, double *y) {
    double mean = 0, var = 0;
    if (layer_norm) {
        for (int i = 0; i < n; ++i) mean += x[i];
        mean /= n;
    }
    for (int i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const double inv = 1.0 / sqrt(var / n + eps);
    for (int i = 0; i < n; ++i) y[i] = (x[i] - mean) * inv * w[i] + (b.empty() ? 0.0 : b[i]);
}

Vec normalize(const Vec &x, const std::vector<float> &w, const std::vector<float> &b, bool layer_norm, double eps) {
    Vec y(x.size());
    normalize_into(x.data(), (int)x.size(), w, b, layer_norm, eps, y.data());
    return y;
}

// RMSNorm of n values in place with n weights.
void rms_in_place(double *v, int n, const float *w, double eps) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += v[i] * v[i];
    const double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; ++i) v[i] = v[i] * inv * w[i];
}

// lmscore.h's RoPE: pair i of the first n_rot values turns by pos * scale *
// base^(-2i/n_rot) / ff[i]; cos and sin times af.
void rope(double *v, int n_rot, int pos, int type, double base, double scale, double af, const std::vector<float> &ff) {
    if (type == LMSCORE_ROPE_TYPE_NONE) return;
    const int h = n_rot / 2;
    for (int i = 0; i < h; ++i) {
        const int i0 = type == LMSCORE_ROPE_TYPE_NEOX ? i : 2 * i;
        const int i1 = type == LMSCORE_ROPE_TYPE_NEOX ? i + h : 2 * i + 1;
        const double th = pos * scale * pow(base, -2.0 * i / n_rot) / (ff.empty() ? 1.0 : ff[i]);
        const double c = cos(th) * af, s = sin(th) * af;
        const double a = v[i0], b = v[i1];
        v[i0] = a * c - b * s;
        v[i1] = a * s + b * c;
    }
}

double act(int ffn_type, double z) {
    switch (ffn_type) {
    case LMSCORE_FFN_SWIGLU: return z / (1 + exp(-z));
    case LMSCORE_FFN_GELU_ERF: return 0.5 * z * (1 + erf(z / sqrt(2.0)));
    default: return 0.5 * z * (1 + tanh(sqrt(2 / M_PI) * (z + 0.044715 * z * z * z))); // GeGLU, GELU
    }
}

double or1(double v) { return v > 0 ? v : 1.0; }

// swiglu of one expert whose gate and up rows start at row `row` of gate
// and up, and whose down rows start at down_row of down.
Vec swiglu(const std::vector<float> &gate, const std::vector<float> &up, const std::vector<float> &down, const Vec &h,
           int E, int ff, int row, int down_row) {
    const Vec g = linear(gate, nullptr, h, E, ff, row), u = linear(up, nullptr, h, E, ff, row);
    Vec a(ff);
    for (int f = 0; f < ff; ++f) a[f] = act(LMSCORE_FFN_SWIGLU, st(g[f])) * st(u[f]); // gate/up stored (kernels.h)
    return linear(down, nullptr, a, ff, E, down_row);
}

} // namespace

// lmscore.h's mixture of experts for one normed row h, in float64: the
// softmax over every router logit, the n_expert_used largest (lower id
// first on ties), renormalized when asked, summed in increasing id; plus
// the shared expert, scaled by sigmoid of its gate. With bf16_points the
// router reads h and its weights in bf16, as the core's router GEMM does.
std::vector<double> RandomModel::experts(int l, const std::vector<double> &h, double *margin) const {
    const lmscore_model_desc &d = desc_;
    const int E = s_.n_embd, NE = d.n_expert, K = d.n_expert_used, FE = d.n_ff_exp, FS = d.n_ff_shexp;
    const Vec z = linear(layer(l, LMSCORE_LAYER_FFN_GATE_INP).v, nullptr, h, E, NE);
    {
        Vec sorted(z);
        std::sort(sorted.begin(), sorted.end(), std::greater<double>());
        *margin = K < NE ? sorted[K - 1] - sorted[K] : INFINITY;
    }
    double mx = -INFINITY, sum = 0;
    for (double v : z) mx = std::max(mx, v);
    Vec p(NE);
    for (int e = 0; e < NE; ++e) sum += (p[e] = exp(z[e] - mx));
    for (double &v : p) v /= sum;
    std::vector<bool> taken(NE, false);
    for (int j = 0; j < K; ++j) {
        int best = -1;
        for (int e = 0; e < NE; ++e)
            if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
        taken[best] = true;
    }
    double total = 0;
    for (int e = 0; e < NE; ++e) total += taken[e] ? p[e] : 0;
    Vec out(E, 0.0);
    for (int e = 0; e < NE; ++e) {
        if (!taken[e]) continue;
        const double w = d.expert_weights_norm ? p[e] / total : p[e];
        const Vec y = swiglu(layer(l, LMSCORE_LAYER_FFN_GATE_EXPS).v, layer(l, LMSCORE_LAYER_FFN_UP_EXPS).v,
                             layer(l, LMSCORE_LAYER_FFN_DOWN_EXPS).v, h, E, FE, e * FE, e * E);
        for (int i = 0; i < E; ++i) out[i] += w * y[i];
    }
    if (FS > 0) {
        double scale = 1;
        const auto &gate = layer(l, LMSCORE_LAYER_FFN_GATE_INP_SHEXP).v;
        if (!gate.empty()) scale = 1 / (1 + exp(-linear(gate, nullptr, h, E, 1)[0]));
        const Vec y = swiglu(layer(l, LMSCORE_LAYER_FFN_GATE_SHEXP).v, layer(l, LMSCORE_LAYER_FFN_UP_SHEXP).v,
                             layer(l, LMSCORE_LAYER_FFN_DOWN_SHEXP).v, h, E, FS, 0, 0);
        for (int i = 0; i < E; ++i) out[i] += scale * y[i];
    }
    return out;
}

std::vector<std::vector<double>> RandomModel::forward(const std::vector<int32_t> &tokens, bool bf16_points,
                                                      std::vector<double> *route_margin) const {
    g_bf16 = bf16_points;
    const lmscore_model_desc &d = desc_;
    const int n = (int)tokens.size();
    const int E = s_.n_embd, H = s_.n_head, Hkv = s_.n_head_kv, D = head_dim(), Q = H * D, KV = Hkv * D, F = s_.n_ff;
    const bool ln = d.norm_type == LMSCORE_NORM_LAYER;
    const bool gated = d.ffn_type == LMSCORE_FFN_SWIGLU || d.ffn_type == LMSCORE_FFN_GEGLU;
    const double eps = s_.norm_eps, embd_scale = or1(d.embd_scale);
    const double attn_scale = d.attn_scale > 0 ? d.attn_scale : 1.0 / sqrt((double)D);
    const int n_rot = d.n_rot > 0 ? d.n_rot : D;
    std::vector<Vec> x(n, Vec(E));
    if (route_margin) route_margin->assign(n, INFINITY);
    for (int t = 0; t < n; ++t)
        for (int e = 0; e < E; ++e)
            x[t][e] = st(tok_.v[(size_t)tokens[t] * E + e]) * embd_scale + (pos_.v.empty() ? 0.0 : st(pos_.v[(size_t)t * E + e]));

    for (int l = 0; l < s_.n_layer; ++l) {
        const bool sliding = d.n_swa > 0 && (!d.swa_layers || d.swa_layers[l]);
        const double base = sliding && d.rope_freq_base_swa > 0 ? d.rope_freq_base_swa : d.rope_freq_base;
        const double rscale = sliding ? or1(d.rope_freq_scale_swa) : or1(d.rope_freq_scale);
        auto norm_or_copy = [&](const Vec &v, int w_role, int b_role) {
            return layer(l, w_role).v.empty() ? v : normalize(v, layer(l, w_role).v, layer(l, b_role).v, ln, eps);
        };
        std::vector<Vec> q(n), k(n), v(n);
        for (int t = 0; t < n; ++t) {
            const Vec h = norm_or_copy(x[t], LMSCORE_LAYER_ATTN_NORM, LMSCORE_LAYER_ATTN_NORM_B);
            if (!layer(l, LMSCORE_LAYER_WQKV).v.empty()) {
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
            const auto &qn = layer(l, LMSCORE_LAYER_ATTN_Q_NORM).v, &kn = layer(l, LMSCORE_LAYER_ATTN_K_NORM).v;
            if (d.qk_norm == LMSCORE_QK_NORM_HEAD) {
                for (int hh = 0; hh < H; ++hh) rms_in_place(&q[t][hh * D], D, qn.data(), eps);
                for (int hh = 0; hh < Hkv; ++hh) rms_in_place(&k[t][hh * D], D, kn.data(), eps);
            } else if (d.qk_norm == LMSCORE_QK_NORM_FULL) {
                rms_in_place(q[t].data(), Q, qn.data(), eps);
                rms_in_place(k[t].data(), KV, kn.data(), eps);
            }
            const double af = or1(d.rope_attn_factor);
            for (int hh = 0; hh < H; ++hh) rope(&q[t][hh * D], n_rot, t, s_.rope_type, base, rscale, af, rope_freqs_.v);
            for (int hh = 0; hh < Hkv; ++hh) rope(&k[t][hh * D], n_rot, t, s_.rope_type, base, rscale, af, rope_freqs_.v);
            for (Vec *qkv : {&q[t], &k[t], &v[t]}) // attention reads q and the KV pool in storage precision
                for (double &z : *qkv) z = st(z);
        }
        for (int t = 0; t < n; ++t) {
            Vec a(Q);
            const int lo = sliding ? std::max(0, t - d.n_swa + 1) : 0;
            for (int hh = 0; hh < H; ++hh) {
                const int kvh = hh / (H / Hkv);
                Vec sc(t + 1);
                double mx = -INFINITY;
                for (int p = lo; p <= t; ++p) {
                    double dot = 0;
                    for (int i = 0; i < D; ++i) dot += q[t][hh * D + i] * k[p][kvh * D + i];
                    sc[p] = dot * attn_scale;
                    if (d.attn_softcap > 0) sc[p] = d.attn_softcap * tanh(sc[p] / d.attn_softcap);
                    mx = std::max(mx, sc[p]);
                }
                double sum = 0;
                for (int p = lo; p <= t; ++p) sum += (sc[p] = exp(sc[p] - mx));
                for (int i = 0; i < D; ++i) {
                    double acc = 0;
                    for (int p = lo; p <= t; ++p) acc += sc[p] * v[p][kvh * D + i];
                    a[hh * D + i] = acc / sum;
                }
            }
            Vec o = linear(layer(l, LMSCORE_LAYER_WO).v, &layer(l, LMSCORE_LAYER_BO).v, a, Q, E);
            if (!layer(l, LMSCORE_LAYER_ATTN_POST_NORM).v.empty())
                o = normalize(o, layer(l, LMSCORE_LAYER_ATTN_POST_NORM).v, {}, ln, eps);
            // Parallel residual: the FFN reads the layer's input as well.
            const Vec h = d.parallel_residual ? norm_or_copy(x[t], LMSCORE_LAYER_FFN_NORM, LMSCORE_LAYER_FFN_NORM_B) : Vec();
            for (int e = 0; e < E; ++e) x[t][e] += o[e];
            const Vec hf = d.parallel_residual ? h : norm_or_copy(x[t], LMSCORE_LAYER_FFN_NORM, LMSCORE_LAYER_FFN_NORM_B);

            Vec dn;
            if (d.n_expert > 0) {
                double margin = INFINITY;
                dn = experts(l, hf, &margin);
                if (route_margin) (*route_margin)[t] = std::min((*route_margin)[t], margin);
            } else {
                Vec ac(F);
                const auto &up = layer(l, LMSCORE_LAYER_FFN_UP).v;
                if (gated) {
                    const bool fused = layer(l, LMSCORE_LAYER_FFN_GATE).v.empty(); // gate rows, then up rows
                    const Vec g = fused ? linear(up, nullptr, hf, E, F, 0) : linear(layer(l, LMSCORE_LAYER_FFN_GATE).v, nullptr, hf, E, F);
                    const Vec u = linear(up, nullptr, hf, E, F, fused ? F : 0);
                    // The gate/up GEMM stores the model's type (kernels.h).
                    for (int f = 0; f < F; ++f) ac[f] = act(d.ffn_type, st(g[f])) * st(u[f]);
                } else {
                    const Vec u = linear(up, &layer(l, LMSCORE_LAYER_FFN_UP_B).v, hf, E, F);
                    for (int f = 0; f < F; ++f) ac[f] = act(d.ffn_type, u[f]);
                }
                dn = linear(layer(l, LMSCORE_LAYER_FFN_DOWN).v, &layer(l, LMSCORE_LAYER_FFN_DOWN_B).v, ac, F, E);
            }
            if (!layer(l, LMSCORE_LAYER_FFN_POST_NORM).v.empty())
                dn = normalize(dn, layer(l, LMSCORE_LAYER_FFN_POST_NORM).v, {}, ln, eps);
            for (int e = 0; e < E; ++e) x[t][e] += dn[e];
        }
    }
    std::vector<Vec> logits(n);
    const std::vector<float> &W = s_.tied ? tok_.v : out_.v;
    for (int t = 0; t < n; ++t) {
        const Vec h = normalize(x[t], out_norm_.v, out_norm_b_.v, ln, eps);
        logits[t] = linear(W, nullptr, h, E, s_.n_vocab);
        if (d.final_softcap > 0)
            for (double &z : logits[t]) z = d.final_softcap * tanh(z / d.final_softcap);
    }
    return logits;
}

} // namespace lmscore_test
