// The model as the CPU core holds it: hyperparameters, and every weight
// converted to fp32 at load (F16 and BF16 widened), matrices packed for the
// GEMM micro-kernel, except that a matrix with quantized parts keeps its
// blocks (copied) and is dequantized panel by panel in the GEMM.
// Nothing points into the caller's data.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "../common/profile.h"
#include "common.hpp"
#include "gemm.hpp"
#include "kernels.hpp"
#include "moe.hpp"
#include "threadpool.hpp"
#include "tp.hpp"

namespace lmscore {

struct Hparams {
    lmscore_norm_type norm_type;
    lmscore_ffn_type ffn_type;
    lmscore_qk_norm qk_norm;
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    lmscore_rope_type rope_type;
    int n_rot; // values of a head RoPE rotates (head_dim when the desc says 0)
    float rope_freq_base, norm_eps;
    bool parallel_residual;
    float embd_scale;    // 1 when the desc says 0
    float attn_scale;    // 1/sqrt(head_dim) when the desc says 0
    float attn_softcap;  // 0: none
    float final_softcap; // 0: none
    int n_swa;           // 0: no sliding layers

    int n_q() const { return n_head * head_dim; }
    int n_kv() const { return n_head_kv * head_dim; }
    int n_qkv() const { return n_q() + 2 * n_kv(); }
    bool gated_ffn() const { return ffn_type == LMSCORE_FFN_SWIGLU || ffn_type == LMSCORE_FFN_GEGLU; }
    // Columns of the first FFN product: gate then up, or up alone.
    int n_ffn_in() const { return gated_ffn() ? 2 * n_ff : n_ff; }
};

using Vector = AlignedBuffer<float>; // empty: absent

struct LayerWeights {
    Vector attn_norm, attn_norm_b; // attn_norm empty: no norm (identity)
    PackedMatrix wqkv; // rows q (n_head*head_dim), then k, then v (n_head_kv*head_dim each)
    Vector bqkv;
    Vector attn_q_norm, attn_k_norm; // QK_NORM_HEAD: (head_dim) each; FULL: (nq), (nkv)
    PackedMatrix wo;
    Vector bo;
    Vector attn_post_norm;         // empty: none
    Vector ffn_norm, ffn_norm_b;   // ffn_norm empty: no norm (identity)
    Vector ffn_post_norm;          // empty: none
    PackedMatrix ffn_in; // gated: n_ff gate rows then n_ff up rows; else up
    Vector ffn_in_b;
    PackedMatrix ffn_down;
    Vector ffn_down_b;
    MoeWeights moe; // n_expert > 0: the experts, in place of ffn_in and ffn_down
    bool sliding = false; // attends within the last n_swa positions only
    int rope_table = 0;   // which of the model's RoPE tables its q and k turn by
};

} // namespace lmscore

struct lmscore_model {
    lmscore::Hparams hp;
    const lmscore::Kernels *kern = nullptr;
    std::unique_ptr<lmscore::ThreadPool> pool;
    // Steps on one model share its thread pool, so they take turns.
    std::mutex run_mu;

    lmscore::Vector tok_embd; // n_vocab x n_embd rows; empty when tied to output or quantized
    lmscore::PackedMatrix tok_embd_q; // a quantized untied embedding, kept as blocks
    lmscore::Vector pos_embd; // n_ctx_train x n_embd, gpt2
    lmscore::Vector output_norm, output_norm_b;
    // RoPE's per-pair frequencies (n_rot/2 each), rope_freqs and the
    // frequency scale applied: [0] for full-attention layers, [1] for
    // sliding layers where their base or scale differ. Empty without RoPE.
    std::vector<std::vector<double>> rope_inv_freq;
    float rope_attn_factor = 1.0f; // multiplies cos and sin
    lmscore::PackedMatrix output;
    std::vector<lmscore::LayerWeights> layers;
    // The phase profiler's sums over every profiled step (profile.hpp);
    // null until a step is made with LMSCORE_PROFILE=1.
    std::unique_ptr<lmscore_common::ProfileTotals> profile;
    // Tensor parallelism (tp.hpp): this model is rank tp_rank's shard of
    // the group's; null for a whole model.
    lmscore_tp_group *tp = nullptr;
    int tp_rank = 0;

    // embed copies token id's embedding row into out.
    void embed(int32_t id, float *out) const;
};

namespace lmscore {
// load_model validates desc and builds the model; it throws Error.
std::unique_ptr<lmscore_model> load_model(const lmscore_model_desc &desc,
                                          const lmscore_backend_params &params);
} // namespace lmscore
