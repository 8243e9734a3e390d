#include "model.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "../common/validate.h"
#include "half.hpp"
#include "ops.hpp"
#include "quant.hpp"
#include "validate.hpp"

namespace lmscore {

namespace {

int64_t row_bytes(int32_t type, int64_t ne0) {
    const BlockType *bt = block_type(type);
    return bt == nullptr ? 0 : ne0 / bt->values * bt->bytes;
}

// convert_row writes row `row` of t (ne0 values) as fp32, dequantizing as
// quant.hpp does (F16, BF16 and Q8_0 values are exact in fp32).
void convert_row(const lmscore_tensor &t, int64_t row, float *out) {
    const int64_t n = t.ne[0];
    const uint8_t *src = static_cast<const uint8_t *>(t.data) + row * row_bytes(t.type, n);
    dequant_range(*block_type(t.type), src, 0, n, out);
}

// quantized: whether a matrix made of these tensors (absent ones ignored)
// keeps its blocks rather than being converted to fp32 panels.
bool quantized(std::initializer_list<const lmscore_tensor *> parts) {
    for (const lmscore_tensor *t : parts)
        if (t->data != nullptr && is_block_quant(t->type)) return true;
    return false;
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

    // matrix packs the rows of t into dst starting at row `first` (or, for
    // a quantized dst, copies its blocks).
    void matrix(const lmscore_tensor &t, PackedMatrix &dst, int64_t first) {
        if (dst.quantized()) {
            dst.add_rows(t, first);
            return;
        }
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

// hparams copies the sizes and features of a validated description, with
// its "0 means the default" spelled out.
Hparams hparams(const lmscore_model_desc &d) {
    Hparams hp{};
    hp.norm_type = lmscore_norm_type(d.norm_type);
    hp.ffn_type = lmscore_ffn_type(d.ffn_type);
    hp.qk_norm = lmscore_qk_norm(d.qk_norm);
    hp.n_vocab = d.n_vocab;
    hp.n_embd = d.n_embd;
    hp.n_layer = d.n_layer;
    hp.n_head = d.n_head;
    hp.n_head_kv = d.n_head_kv;
    hp.head_dim = lmscore_common::model_head_dim(d);
    hp.n_ff = d.n_ff;
    hp.n_ctx_train = d.n_ctx_train;
    hp.rope_type = lmscore_rope_type(d.rope_type);
    hp.n_rot = lmscore_common::model_rot_dim(d);
    hp.rope_freq_base = d.rope_freq_base;
    hp.norm_eps = d.norm_eps;
    hp.parallel_residual = d.parallel_residual != 0;
    hp.embd_scale = d.embd_scale != 0.0f ? d.embd_scale : 1.0f;
    hp.attn_scale = d.attn_scale != 0.0f ? d.attn_scale : 1.0f / std::sqrt(float(hp.head_dim));
    hp.attn_softcap = d.attn_softcap;
    hp.final_softcap = d.final_softcap;
    hp.n_swa = d.n_swa;
    return hp;
}

// load_rope fills the RoPE tables: one for full-attention layers and, where
// sliding layers turn by another base or scale, one for those.
void load_rope(const lmscore_model_desc &d, lmscore_model &m) {
    const Hparams &hp = m.hp;
    if (hp.rope_type == LMSCORE_ROPE_TYPE_NONE) return;
    const float *factors = static_cast<const float *>(d.rope_freqs.data);
    auto table = [&](float base, float scale) {
        std::vector<double> inv(size_t(hp.n_rot / 2));
        rope_inv_freq(hp.n_rot, base, scale, factors, inv.data());
        return inv;
    };
    const float scale = d.rope_freq_scale != 0.0f ? d.rope_freq_scale : 1.0f;
    m.rope_inv_freq.push_back(table(hp.rope_freq_base, scale));
    const float base_swa = d.rope_freq_base_swa != 0.0f ? d.rope_freq_base_swa : hp.rope_freq_base;
    const float scale_swa = d.rope_freq_scale_swa != 0.0f ? d.rope_freq_scale_swa : 1.0f;
    const bool own_table = base_swa != hp.rope_freq_base || scale_swa != scale;
    for (int l = 0; l < hp.n_layer; l++) {
        LayerWeights &lw = m.layers[size_t(l)];
        if (!lw.sliding || !own_table) continue;
        if (m.rope_inv_freq.size() == 1) m.rope_inv_freq.push_back(table(base_swa, scale_swa));
        lw.rope_table = 1;
    }
    m.rope_attn_factor = d.rope_attn_factor != 0.0f ? d.rope_attn_factor : 1.0f;
}

void load_layer(Loader &ld, const Hparams &hp, const lmscore_tensor *t, LayerWeights &lw) {
    const int64_t e = hp.n_embd, nq = hp.n_q(), nkv = hp.n_kv(), ff = hp.n_ff;
    ld.vector(t[LMSCORE_LAYER_ATTN_NORM], lw.attn_norm);
    ld.vector(t[LMSCORE_LAYER_ATTN_NORM_B], lw.attn_norm_b);
    auto init = [](PackedMatrix &w, int64_t n, int64_t k, std::initializer_list<const lmscore_tensor *> parts) {
        if (quantized(parts)) {
            w.init_quantized(n, k);
        } else {
            w.init(n, k);
        }
    };
    init(lw.wqkv, hp.n_qkv(), e,
         {&t[LMSCORE_LAYER_WQKV], &t[LMSCORE_LAYER_WQ], &t[LMSCORE_LAYER_WK], &t[LMSCORE_LAYER_WV]});
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
    ld.vector(t[LMSCORE_LAYER_ATTN_Q_NORM], lw.attn_q_norm);
    ld.vector(t[LMSCORE_LAYER_ATTN_K_NORM], lw.attn_k_norm);
    init(lw.wo, e, nq, {&t[LMSCORE_LAYER_WO]});
    ld.matrix(t[LMSCORE_LAYER_WO], lw.wo, 0);
    ld.vector(t[LMSCORE_LAYER_BO], lw.bo);
    ld.vector(t[LMSCORE_LAYER_ATTN_POST_NORM], lw.attn_post_norm);
    ld.vector(t[LMSCORE_LAYER_FFN_NORM], lw.ffn_norm);
    ld.vector(t[LMSCORE_LAYER_FFN_NORM_B], lw.ffn_norm_b);
    ld.vector(t[LMSCORE_LAYER_FFN_POST_NORM], lw.ffn_post_norm);
    if (t[LMSCORE_LAYER_FFN_GATE_INP].data != nullptr) return; // experts instead: load_moe (moe.cpp)
    init(lw.ffn_in, hp.n_ffn_in(), e, {&t[LMSCORE_LAYER_FFN_GATE], &t[LMSCORE_LAYER_FFN_UP]});
    if (hp.gated_ffn() && t[LMSCORE_LAYER_FFN_GATE].data == nullptr) {
        // Fused (Phi-3): up holds the gate rows, then the up rows, already
        // in ffn_in's order.
        ld.matrix(t[LMSCORE_LAYER_FFN_UP], lw.ffn_in, 0);
        ld.bias_part(t[LMSCORE_LAYER_FFN_UP_B], lw.ffn_in_b, hp.n_ffn_in(), ff);
    } else if (hp.gated_ffn()) {
        ld.matrix(t[LMSCORE_LAYER_FFN_GATE], lw.ffn_in, 0);
        ld.matrix(t[LMSCORE_LAYER_FFN_UP], lw.ffn_in, ff);
        ld.bias_part(t[LMSCORE_LAYER_FFN_UP_B], lw.ffn_in_b, hp.n_ffn_in(), ff);
    } else {
        ld.matrix(t[LMSCORE_LAYER_FFN_UP], lw.ffn_in, 0);
        ld.vector(t[LMSCORE_LAYER_FFN_UP_B], lw.ffn_in_b);
    }
    init(lw.ffn_down, e, ff, {&t[LMSCORE_LAYER_FFN_DOWN]});
    ld.matrix(t[LMSCORE_LAYER_FFN_DOWN], lw.ffn_down, 0);
    ld.vector(t[LMSCORE_LAYER_FFN_DOWN_B], lw.ffn_down_b);
}

} // namespace

std::unique_ptr<lmscore_model> load_model(const lmscore_model_desc &d,
                                          const lmscore_backend_params &params) {
    if (params.precision != LMSCORE_PRECISION_FP32)
        fail(LMSCORE_STATUS_UNSUPPORTED, "backend cpu: precision %d not supported (fp32 only)",
             int(params.precision));
    // Validate everything before converting anything.
    validate_model_desc(d);
    const Hparams hp = hparams(d);
    if (params.tp_group != nullptr) {
        // A shard sums its partial rows after the output and down
        // projections; the experts' routing and a norm over the whole q or
        // k projection would need the whole rows earlier.
        if (params.tp_rank < 0 || params.tp_rank >= params.tp_group->size())
            fail(LMSCORE_STATUS_INVALID_ARGUMENT, "tensor parallel: rank %d outside [0, %d)", int(params.tp_rank),
                 params.tp_group->size());
        if (d.n_expert > 0)
            fail(LMSCORE_STATUS_UNSUPPORTED, "tensor parallel: a mixture of experts is not split across ranks");
        if (hp.qk_norm == LMSCORE_QK_NORM_FULL)
            fail(LMSCORE_STATUS_UNSUPPORTED,
                 "tensor parallel: q/k norms over the whole projection (OLMo 2) are not split across ranks");
    }

    auto m = std::make_unique<lmscore_model>();
    m->hp = hp;
    m->tp = params.tp_group;
    m->tp_rank = params.tp_rank;
    m->kern = &kernels_for(select_isa());
    m->pool = std::make_unique<ThreadPool>(params.n_threads);

    Loader ld(*m->pool, std::max<int64_t>({hp.n_embd, hp.n_ff, hp.n_qkv()}));
    const lmscore_tensor &out_w = d.output.data != nullptr ? d.output : d.tok_embd;
    if (quantized({&out_w})) {
        m->output.init_quantized(hp.n_vocab, hp.n_embd);
    } else {
        m->output.init(hp.n_vocab, hp.n_embd);
    }
    if (d.output.data != nullptr) {
        ld.matrix(d.output, m->output, 0);
        if (quantized({&d.tok_embd})) {
            // Rows stay blocks; embed() dequantizes the one it needs.
            m->tok_embd_q.init_quantized(hp.n_vocab, hp.n_embd);
            m->tok_embd_q.add_rows(d.tok_embd, 0);
        } else {
            ld.rows(d.tok_embd, m->tok_embd);
        }
    } else {
        // Tied: the embedding rows are read back from the packed output.
        ld.matrix(d.tok_embd, m->output, 0);
    }
    if (d.pos_embd.data != nullptr) ld.rows(d.pos_embd, m->pos_embd);
    ld.vector(d.output_norm, m->output_norm);
    ld.vector(d.output_norm_b, m->output_norm_b);
    m->layers.resize(size_t(hp.n_layer));
    for (int l = 0; l < hp.n_layer; l++) {
        load_layer(ld, hp, d.layers + int64_t(l) * LMSCORE_LAYER_ROLE_COUNT, m->layers[size_t(l)]);
        m->layers[size_t(l)].sliding = lmscore_common::model_layer_sliding(d, l);
        load_moe(*m->pool, d, d.layers + int64_t(l) * LMSCORE_LAYER_ROLE_COUNT, m->layers[size_t(l)].moe);
    }
    load_rope(d, *m);
    return m;
}

} // namespace lmscore

void lmscore_model::embed(int32_t id, float *out) const {
    if (!tok_embd_q.empty()) {
        tok_embd_q.get_row(id, out);
    } else if (!tok_embd.empty()) {
        std::memcpy(out, tok_embd.data() + int64_t(id) * hp.n_embd, sizeof(float) * size_t(hp.n_embd));
    } else {
        output.get_row(id, out);
    }
}
