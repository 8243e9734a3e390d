#include "model.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "half.hpp"

namespace lmscore {

namespace {

// GGUF tensor names of the layer roles, for error messages.
const char *const kRoleNames[LMSCORE_LAYER_ROLE_COUNT] = {
    "attn_norm.weight",   "attn_norm.bias",     "attn_q.weight",  "attn_k.weight",
    "attn_v.weight",      "attn_q.bias",        "attn_k.bias",    "attn_v.bias",
    "attn_qkv.weight",    "attn_qkv.bias",      "attn_output.weight", "attn_output.bias",
    "ffn_norm.weight",    "ffn_norm.bias",      "ffn_gate.weight", "ffn_up.weight",
    "ffn_up.bias",        "ffn_down.weight",    "ffn_down.bias",
};

constexpr int kQ8Block = 32;
constexpr int kQ8BlockBytes = 2 + kQ8Block; // fp16 scale, then 32 int8

int64_t row_bytes(int32_t type, int64_t ne0) {
    switch (type) {
    case LMSCORE_TYPE_F32: return ne0 * 4;
    case LMSCORE_TYPE_F16:
    case LMSCORE_TYPE_BF16: return ne0 * 2;
    case LMSCORE_TYPE_Q8_0: return ne0 / kQ8Block * kQ8BlockBytes;
    }
    return 0;
}

// convert_row writes row `row` of t (ne0 values) as fp32. Q8_0 values are
// d * q with d an fp16: an exact product in fp32 (11 + 8 significant bits).
void convert_row(const lmscore_tensor &t, int64_t row, float *out) {
    const int64_t n = t.ne[0];
    const uint8_t *src = static_cast<const uint8_t *>(t.data) + row * row_bytes(t.type, n);
    switch (t.type) {
    case LMSCORE_TYPE_F32: std::memcpy(out, src, size_t(n) * 4); break;
    case LMSCORE_TYPE_F16:
        for (int64_t i = 0; i < n; i++) out[i] = fp16_to_fp32(load_u16(src + 2 * i));
        break;
    case LMSCORE_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) out[i] = bf16_to_fp32(load_u16(src + 2 * i));
        break;
    case LMSCORE_TYPE_Q8_0:
        for (int64_t b = 0; b < n / kQ8Block; b++) {
            const uint8_t *blk = src + b * kQ8BlockBytes;
            const float d = fp16_to_fp32(load_u16(blk));
            for (int i = 0; i < kQ8Block; i++)
                out[b * kQ8Block + i] = d * float(static_cast<int8_t>(blk[2 + i]));
        }
        break;
    }
}

// check_tensor validates one tensor against its expected shape. It returns
// false for an absent optional tensor and throws for anything wrong.
bool check_tensor(const lmscore_tensor &t, const std::string &name, int64_t ne0, int64_t ne1,
                  bool required) {
    if (t.data == nullptr) {
        if (required) fail(LMSCORE_STATUS_INVALID_ARGUMENT, "tensor %s: missing", name.c_str());
        return false;
    }
    if (t.type != LMSCORE_TYPE_F32 && t.type != LMSCORE_TYPE_F16 && t.type != LMSCORE_TYPE_BF16 &&
        t.type != LMSCORE_TYPE_Q8_0) {
        fail(LMSCORE_STATUS_UNSUPPORTED,
             "tensor %s: type %d not supported (want F32, F16, BF16 or Q8_0)", name.c_str(),
             int(t.type));
    }
    if (t.ne[0] != ne0 || t.ne[1] != ne1) {
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "tensor %s: shape {%lld, %lld}, want {%lld, %lld}",
             name.c_str(), (long long)t.ne[0], (long long)t.ne[1], (long long)ne0,
             (long long)ne1);
    }
    if (t.type == LMSCORE_TYPE_Q8_0 && ne0 % kQ8Block != 0) {
        fail(LMSCORE_STATUS_INVALID_ARGUMENT,
             "tensor %s: type Q8_0 needs rows of a multiple of 32 values, got %lld", name.c_str(),
             (long long)ne0);
    }
    return true;
}

// Loader converts tensors with the model's thread pool, rows in parallel.
class Loader {
  public:
    Loader(ThreadPool &pool, int64_t max_row) : pool_(pool), rows_(pool.size()) {
        for (auto &r : rows_) r.reset(size_t(max_row));
    }

    void vector(const lmscore_tensor &t, Vector &dst) {
        if (t.data == nullptr) return;
        dst.reset(size_t(t.ne[0]));
        convert_row(t, 0, dst.data());
    }

    void rows(const lmscore_tensor &t, Vector &dst) {
        const int64_t n = t.ne[1], k = t.ne[0];
        dst.reset(size_t(checked_mul(n, k, "tensor")));
        float *base = dst.data();
        pool_.run(ceil_div(n, kChunk), [&](int64_t chunk, int) {
            for (int64_t r = chunk * kChunk; r < std::min(n, (chunk + 1) * kChunk); r++)
                convert_row(t, r, base + r * k);
        });
    }

    // matrix packs the rows of t into dst starting at row `first`.
    void matrix(const lmscore_tensor &t, PackedMatrix &dst, int64_t first) {
        const int64_t n = t.ne[1];
        pool_.run(ceil_div(n, kChunk), [&](int64_t chunk, int thread) {
            float *tmp = rows_[thread].data();
            for (int64_t r = chunk * kChunk; r < std::min(n, (chunk + 1) * kChunk); r++) {
                convert_row(t, r, tmp);
                dst.set_row(first + r, tmp);
            }
        });
    }

    // bias fills dst[first..first+n) from t, zero-filled elsewhere.
    void bias_part(const lmscore_tensor &t, Vector &dst, int64_t total, int64_t first) {
        if (t.data == nullptr) return;
        if (dst.empty()) dst.reset(size_t(total), /*zero=*/true);
        convert_row(t, 0, dst.data() + first);
    }

  private:
    static constexpr int64_t kChunk = 64;
    ThreadPool &pool_;
    std::vector<Vector> rows_;
};

Hparams check_hparams(const lmscore_model_desc &d) {
    Hparams hp{};
    if (d.arch != LMSCORE_ARCH_LLAMA && d.arch != LMSCORE_ARCH_QWEN2 && d.arch != LMSCORE_ARCH_GPT2)
        fail(LMSCORE_STATUS_UNSUPPORTED, "model: architecture %d not supported", int(d.arch));
    hp.arch = lmscore_arch(d.arch);
    struct {
        const char *name;
        int32_t value;
    } dims[] = {{"n_vocab", d.n_vocab}, {"n_embd", d.n_embd}, {"n_layer", d.n_layer},
                {"n_head", d.n_head},   {"n_head_kv", d.n_head_kv}, {"n_ff", d.n_ff},
                {"n_ctx_train", d.n_ctx_train}};
    for (auto &dim : dims)
        if (dim.value <= 0)
            fail(LMSCORE_STATUS_INVALID_ARGUMENT, "model: %s = %d, want > 0", dim.name, int(dim.value));
    if (d.n_embd % d.n_head != 0)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "model: n_embd %d is not a multiple of n_head %d",
             int(d.n_embd), int(d.n_head));
    if (d.n_head % d.n_head_kv != 0)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "model: n_head %d is not a multiple of n_head_kv %d",
             int(d.n_head), int(d.n_head_kv));
    if (d.rope_type != LMSCORE_ROPE_TYPE_NONE && d.rope_type != LMSCORE_ROPE_TYPE_NORM &&
        d.rope_type != LMSCORE_ROPE_TYPE_NEOX)
        fail(LMSCORE_STATUS_UNSUPPORTED, "model: rope type %d not supported", int(d.rope_type));
    hp.n_vocab = d.n_vocab;
    hp.n_embd = d.n_embd;
    hp.n_layer = d.n_layer;
    hp.n_head = d.n_head;
    hp.n_head_kv = d.n_head_kv;
    hp.head_dim = d.n_embd / d.n_head;
    hp.n_ff = d.n_ff;
    hp.n_ctx_train = d.n_ctx_train;
    hp.rope_type = lmscore_rope_type(d.rope_type);
    hp.rope_freq_base = d.rope_freq_base;
    hp.norm_eps = d.norm_eps;
    if (hp.rope_type != LMSCORE_ROPE_TYPE_NONE) {
        if (hp.head_dim % 2 != 0)
            fail(LMSCORE_STATUS_INVALID_ARGUMENT, "model: RoPE needs an even head size, got %d",
                 hp.head_dim);
        if (!(hp.rope_freq_base > 0.0f))
            fail(LMSCORE_STATUS_INVALID_ARGUMENT, "model: rope_freq_base %g, want > 0",
                 double(hp.rope_freq_base));
    }
    if (!(hp.norm_eps >= 0.0f))
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "model: norm_eps %g, want >= 0", double(hp.norm_eps));
    if (hp.arch == LMSCORE_ARCH_GPT2 && hp.n_head_kv != hp.n_head)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "model: gpt2 needs n_head_kv == n_head, got %d and %d",
             hp.n_head_kv, hp.n_head);
    return hp;
}

std::string layer_name(int layer, int role) {
    return "blk." + std::to_string(layer) + "." + kRoleNames[role];
}

// check_layer validates one layer's tensors. Fused QKV (gpt2's layout) and
// separate q/k/v are both accepted for every architecture, and every bias
// is optional, so variants of the three families load too.
void check_layer(const Hparams &hp, const lmscore_tensor *t, int l) {
    const int64_t e = hp.n_embd, nq = hp.n_q(), nkv = hp.n_kv(), ff = hp.n_ff;
    auto name = [&](int role) { return layer_name(l, role); };
    check_tensor(t[LMSCORE_LAYER_ATTN_NORM], name(LMSCORE_LAYER_ATTN_NORM), e, 1, true);
    check_tensor(t[LMSCORE_LAYER_ATTN_NORM_B], name(LMSCORE_LAYER_ATTN_NORM_B), e, 1, false);
    if (t[LMSCORE_LAYER_WQKV].data != nullptr) {
        check_tensor(t[LMSCORE_LAYER_WQKV], name(LMSCORE_LAYER_WQKV), e, hp.n_qkv(), true);
        check_tensor(t[LMSCORE_LAYER_BQKV], name(LMSCORE_LAYER_BQKV), hp.n_qkv(), 1, false);
    } else {
        check_tensor(t[LMSCORE_LAYER_WQ], name(LMSCORE_LAYER_WQ), e, nq, true);
        check_tensor(t[LMSCORE_LAYER_WK], name(LMSCORE_LAYER_WK), e, nkv, true);
        check_tensor(t[LMSCORE_LAYER_WV], name(LMSCORE_LAYER_WV), e, nkv, true);
        check_tensor(t[LMSCORE_LAYER_BQ], name(LMSCORE_LAYER_BQ), nq, 1, false);
        check_tensor(t[LMSCORE_LAYER_BK], name(LMSCORE_LAYER_BK), nkv, 1, false);
        check_tensor(t[LMSCORE_LAYER_BV], name(LMSCORE_LAYER_BV), nkv, 1, false);
    }
    check_tensor(t[LMSCORE_LAYER_WO], name(LMSCORE_LAYER_WO), nq, e, true);
    check_tensor(t[LMSCORE_LAYER_BO], name(LMSCORE_LAYER_BO), e, 1, false);
    check_tensor(t[LMSCORE_LAYER_FFN_NORM], name(LMSCORE_LAYER_FFN_NORM), e, 1, true);
    check_tensor(t[LMSCORE_LAYER_FFN_NORM_B], name(LMSCORE_LAYER_FFN_NORM_B), e, 1, false);
    check_tensor(t[LMSCORE_LAYER_FFN_GATE], name(LMSCORE_LAYER_FFN_GATE), e, ff, hp.gated_ffn());
    check_tensor(t[LMSCORE_LAYER_FFN_UP], name(LMSCORE_LAYER_FFN_UP), e, ff, true);
    check_tensor(t[LMSCORE_LAYER_FFN_UP_B], name(LMSCORE_LAYER_FFN_UP_B), ff, 1, false);
    check_tensor(t[LMSCORE_LAYER_FFN_DOWN], name(LMSCORE_LAYER_FFN_DOWN), ff, e, true);
    check_tensor(t[LMSCORE_LAYER_FFN_DOWN_B], name(LMSCORE_LAYER_FFN_DOWN_B), e, 1, false);
    if (!hp.gated_ffn() && t[LMSCORE_LAYER_FFN_GATE].data != nullptr)
        fail(LMSCORE_STATUS_UNSUPPORTED, "tensor %s: gpt2 has no gated FFN",
             name(LMSCORE_LAYER_FFN_GATE).c_str());
}

void load_layer(Loader &ld, const Hparams &hp, const lmscore_tensor *t, LayerWeights &lw) {
    const int64_t e = hp.n_embd, nq = hp.n_q(), nkv = hp.n_kv(), ff = hp.n_ff;
    ld.vector(t[LMSCORE_LAYER_ATTN_NORM], lw.attn_norm);
    ld.vector(t[LMSCORE_LAYER_ATTN_NORM_B], lw.attn_norm_b);
    lw.wqkv.init(hp.n_qkv(), e);
    if (t[LMSCORE_LAYER_WQKV].data != nullptr) {
        ld.matrix(t[LMSCORE_LAYER_WQKV], lw.wqkv, 0);
        ld.bias_part(t[LMSCORE_LAYER_BQKV], lw.bqkv, hp.n_qkv(), 0);
    } else {
        ld.matrix(t[LMSCORE_LAYER_WQ], lw.wqkv, 0);
        ld.matrix(t[LMSCORE_LAYER_WK], lw.wqkv, nq);
        ld.matrix(t[LMSCORE_LAYER_WV], lw.wqkv, nq + nkv);
        ld.bias_part(t[LMSCORE_LAYER_BQ], lw.bqkv, hp.n_qkv(), 0);
        ld.bias_part(t[LMSCORE_LAYER_BK], lw.bqkv, hp.n_qkv(), nq);
        ld.bias_part(t[LMSCORE_LAYER_BV], lw.bqkv, hp.n_qkv(), nq + nkv);
    }
    lw.wo.init(e, nq);
    ld.matrix(t[LMSCORE_LAYER_WO], lw.wo, 0);
    ld.vector(t[LMSCORE_LAYER_BO], lw.bo);
    ld.vector(t[LMSCORE_LAYER_FFN_NORM], lw.ffn_norm);
    ld.vector(t[LMSCORE_LAYER_FFN_NORM_B], lw.ffn_norm_b);
    lw.ffn_in.init(hp.n_ffn_in(), e);
    if (hp.gated_ffn()) {
        ld.matrix(t[LMSCORE_LAYER_FFN_GATE], lw.ffn_in, 0);
        ld.matrix(t[LMSCORE_LAYER_FFN_UP], lw.ffn_in, ff);
        ld.bias_part(t[LMSCORE_LAYER_FFN_UP_B], lw.ffn_in_b, hp.n_ffn_in(), ff);
    } else {
        ld.matrix(t[LMSCORE_LAYER_FFN_UP], lw.ffn_in, 0);
        ld.vector(t[LMSCORE_LAYER_FFN_UP_B], lw.ffn_in_b);
    }
    lw.ffn_down.init(e, ff);
    ld.matrix(t[LMSCORE_LAYER_FFN_DOWN], lw.ffn_down, 0);
    ld.vector(t[LMSCORE_LAYER_FFN_DOWN_B], lw.ffn_down_b);
}

} // namespace

std::unique_ptr<lmscore_model> load_model(const lmscore_model_desc &d,
                                          const lmscore_backend_params &params) {
    if (params.precision != LMSCORE_PRECISION_FP32)
        fail(LMSCORE_STATUS_UNSUPPORTED, "backend cpu: precision %d not supported (fp32 only)",
             int(params.precision));
    Hparams hp = check_hparams(d);
    if (d.layers == nullptr) fail(LMSCORE_STATUS_INVALID_ARGUMENT, "model: layers is NULL");

    // Validate everything before converting anything.
    check_tensor(d.tok_embd, "token_embd.weight", hp.n_embd, hp.n_vocab, true);
    check_tensor(d.pos_embd, "position_embd.weight", hp.n_embd, hp.n_ctx_train,
                 hp.arch == LMSCORE_ARCH_GPT2);
    if (hp.arch != LMSCORE_ARCH_GPT2 && d.pos_embd.data != nullptr)
        fail(LMSCORE_STATUS_UNSUPPORTED, "tensor position_embd.weight: only gpt2 has learned positions");
    check_tensor(d.output_norm, "output_norm.weight", hp.n_embd, 1, true);
    check_tensor(d.output_norm_b, "output_norm.bias", hp.n_embd, 1, false);
    check_tensor(d.output, "output.weight", hp.n_embd, hp.n_vocab, false);
    for (int l = 0; l < hp.n_layer; l++)
        check_layer(hp, d.layers + int64_t(l) * LMSCORE_LAYER_ROLE_COUNT, l);

    auto m = std::make_unique<lmscore_model>();
    m->hp = hp;
    m->kern = &kernels_for(select_isa());
    m->pool = std::make_unique<ThreadPool>(params.n_threads);

    Loader ld(*m->pool, std::max<int64_t>({hp.n_embd, hp.n_ff, hp.n_qkv()}));
    m->output.init(hp.n_vocab, hp.n_embd);
    if (d.output.data != nullptr) {
        ld.matrix(d.output, m->output, 0);
        ld.rows(d.tok_embd, m->tok_embd);
    } else {
        // Tied: the embedding rows are read back from the packed output.
        ld.matrix(d.tok_embd, m->output, 0);
    }
    if (d.pos_embd.data != nullptr) ld.rows(d.pos_embd, m->pos_embd);
    ld.vector(d.output_norm, m->output_norm);
    ld.vector(d.output_norm_b, m->output_norm_b);
    m->layers.resize(size_t(hp.n_layer));
    for (int l = 0; l < hp.n_layer; l++)
        load_layer(ld, hp, d.layers + int64_t(l) * LMSCORE_LAYER_ROLE_COUNT, m->layers[size_t(l)]);
    return m;
}

} // namespace lmscore

void lmscore_model::embed(int32_t id, float *out) const {
    if (!tok_embd.empty()) {
        std::memcpy(out, tok_embd.data() + int64_t(id) * hp.n_embd, sizeof(float) * size_t(hp.n_embd));
    } else {
        output.get_row(id, out);
    }
}
