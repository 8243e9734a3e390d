// Every index the forward pass will follow and every shape the loaders
// will trust is checked here, so a bad plan or description is an
// INVALID_ARGUMENT (or UNSUPPORTED) naming the field and index, never a
// stray read or write. See validate.h.
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>

#include <algorithm>
#include <cmath>

namespace lmscore_common {

namespace {

// Writes a message into the caller's buffer and returns the status to give.
class Report {
  public:
    Report(char *msg, size_t cap, const char *prefix) : msg_(msg), cap_(cap), prefix_(prefix) {}

    lmscore_status operator()(lmscore_status st, const char *fmt, ...) const
        __attribute__((format(printf, 3, 4))) {
        if (msg_ == nullptr || cap_ == 0) return st;
        int n = snprintf(msg_, cap_, "%s", prefix_);
        if (n < 0 || size_t(n) >= cap_) return st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg_ + n, cap_ - size_t(n), fmt, ap);
        va_end(ap);
        return st;
    }

  private:
    char *msg_;
    size_t cap_;
    const char *prefix_;
};

constexpr lmscore_status kBad = LMSCORE_STATUS_INVALID_ARGUMENT;
constexpr lmscore_status kUnsupported = LMSCORE_STATUS_UNSUPPORTED;
constexpr lmscore_status kOK = LMSCORE_STATUS_OK;

// GGUF tensor names of the layer roles, in lmscore_layer_role order.
const char *const kRoleNames[LMSCORE_LAYER_ROLE_COUNT] = {
    "attn_norm.weight", "attn_norm.bias", "attn_q.weight",      "attn_k.weight",
    "attn_v.weight",    "attn_q.bias",    "attn_k.bias",        "attn_v.bias",
    "attn_qkv.weight",  "attn_qkv.bias",  "attn_output.weight", "attn_output.bias",
    "ffn_norm.weight",  "ffn_norm.bias",  "ffn_gate.weight",    "ffn_up.weight",
    "ffn_up.bias",      "ffn_down.weight", "ffn_down.bias",
    "attn_q_norm.weight", "attn_k_norm.weight",
    "post_attention_norm.weight", "post_ffw_norm.weight",
    "ffn_gate_inp.weight", "ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight",
    "ffn_gate_inp_shexp.weight", "ffn_gate_shexp.weight", "ffn_up_shexp.weight", "ffn_down_shexp.weight",
};

} // namespace

const char *layer_role_name(int role) {
    return role >= 0 && role < LMSCORE_LAYER_ROLE_COUNT ? kRoleNames[role] : "unknown role";
}

bool type_info(int32_t type, TypeInfo *out) {
    switch (type) {
    case LMSCORE_TYPE_F32: *out = {"F32", 1, 4}; return true;
    case LMSCORE_TYPE_F16: *out = {"F16", 1, 2}; return true;
    case LMSCORE_TYPE_BF16: *out = {"BF16", 1, 2}; return true;
    case LMSCORE_TYPE_Q4_0: *out = {"Q4_0", 32, 18}; return true;
    case LMSCORE_TYPE_Q4_1: *out = {"Q4_1", 32, 20}; return true;
    case LMSCORE_TYPE_Q5_0: *out = {"Q5_0", 32, 22}; return true;
    case LMSCORE_TYPE_Q5_1: *out = {"Q5_1", 32, 24}; return true;
    case LMSCORE_TYPE_Q8_0: *out = {"Q8_0", 32, 34}; return true;
    case LMSCORE_TYPE_Q2_K: *out = {"Q2_K", 256, 84}; return true;
    case LMSCORE_TYPE_Q3_K: *out = {"Q3_K", 256, 110}; return true;
    case LMSCORE_TYPE_Q4_K: *out = {"Q4_K", 256, 144}; return true;
    case LMSCORE_TYPE_Q5_K: *out = {"Q5_K", 256, 176}; return true;
    case LMSCORE_TYPE_Q6_K: *out = {"Q6_K", 256, 210}; return true;
    case LMSCORE_TYPE_IQ4_NL: *out = {"IQ4_NL", 32, 18}; return true;
    case LMSCORE_TYPE_IQ4_XS: *out = {"IQ4_XS", 256, 136}; return true;
    }
    return false;
}

const char *type_name(int32_t type) {
    TypeInfo ti;
    return type_info(type, &ti) ? ti.name : "unknown";
}

// ------------------------------------------------------------------ batch

lmscore_status validate_batch(const lmscore_batch *batch, const lmscore_batch_result *res,
                              const BatchLimits &lim, int32_t *slot_scratch, int32_t *max_keys,
                              char *msg, size_t cap) {
    const Report bad(msg, cap, "batch: ");
    auto need = [&](const void *p, int64_t n, const char *field) {
        if (n > 0 && p == nullptr)
            return bad(kBad, "%s is NULL but %lld entries are needed", field, (long long)n);
        return kOK;
    };
    if (batch == nullptr) return bad(kBad, "batch is NULL");
    const lmscore_batch &b = *batch;
    const int32_t T = b.n_tokens;
    const int64_t n_slots = int64_t(lim.n_blocks) * lim.block_size;
    const int32_t bs = lim.block_size;

    if (T < 0 || T > lim.max_tokens)
        return bad(kBad, "n_tokens %d outside [0, %d] (the step's max_tokens)", T, lim.max_tokens);
    if (b.n_outputs < 0 || b.n_outputs > lim.max_outputs)
        return bad(kBad, "n_outputs %d outside [0, %d] (the step's max_outputs)", b.n_outputs,
                   lim.max_outputs);
    if (b.n_copies < 0) return bad(kBad, "n_copies %d is negative", b.n_copies);
    if (b.n_segments < 0) return bad(kBad, "n_segments %d is negative", b.n_segments);
    if (auto st = need(b.token_ids, T, "token_ids")) return st;
    if (auto st = need(b.positions, T, "positions")) return st;
    if (auto st = need(b.slots, T, "slots")) return st;
    if (auto st = need(b.copy_src, b.n_copies, "copy_src")) return st;
    if (auto st = need(b.copy_dst, b.n_copies, "copy_dst")) return st;
    if (auto st = need(b.copy_n_tokens, b.n_copies, "copy_n_tokens")) return st;
    if (auto st = need(b.out_token_index, b.n_outputs, "out_token_index")) return st;
    if (auto st = need(b.out_target, b.n_outputs, "out_target")) return st;

    for (int32_t t = 0; t < T; t++) {
        if (b.token_ids[t] < 0 || b.token_ids[t] >= lim.n_vocab)
            return bad(kBad, "token_ids[%d] = %d outside [0, %d)", t, b.token_ids[t], lim.n_vocab);
        if (b.positions[t] < 0 || b.positions[t] >= lim.n_ctx_train)
            return bad(kBad, "positions[%d] = %d outside [0, %d) (n_ctx_train)", t, b.positions[t],
                       lim.n_ctx_train);
        if (b.slots[t] < -1 || b.slots[t] >= n_slots)
            return bad(kBad, "slots[%d] = %d outside [-1, %lld) (the pool's slots)", t, b.slots[t],
                       (long long)n_slots);
    }

    for (int32_t i = 0; i < b.n_copies; i++) {
        if (b.copy_src[i] < 0 || b.copy_src[i] >= lim.n_blocks)
            return bad(kBad, "copy_src[%d] = %d outside [0, %d) (the pool's blocks)", i, b.copy_src[i],
                       lim.n_blocks);
        if (b.copy_dst[i] < 0 || b.copy_dst[i] >= lim.n_blocks)
            return bad(kBad, "copy_dst[%d] = %d outside [0, %d) (the pool's blocks)", i, b.copy_dst[i],
                       lim.n_blocks);
        if (b.copy_n_tokens[i] < 0 || b.copy_n_tokens[i] > bs)
            return bad(kBad, "copy_n_tokens[%d] = %d outside [0, %d] (block_size)", i, b.copy_n_tokens[i],
                       bs);
    }

    int32_t keys = 0;
    if (T > 0 || b.n_segments > 0) {
        const int32_t S = b.n_segments;
        if (S == 0) return bad(kBad, "n_segments is 0 but there are %d tokens", T);
        if (auto st = need(b.seg_token_start, S + 1, "seg_token_start")) return st;
        if (auto st = need(b.block_indptr, S + 1, "block_indptr")) return st;
        if (b.seg_token_start[0] != 0) return bad(kBad, "seg_token_start[0] = %d, want 0", b.seg_token_start[0]);
        if (b.seg_token_start[S] != T)
            return bad(kBad, "seg_token_start[%d] = %d, want n_tokens = %d", S, b.seg_token_start[S], T);
        if (b.block_indptr[0] != 0) return bad(kBad, "block_indptr[0] = %d, want 0", b.block_indptr[0]);
        for (int32_t s = 0; s < S; s++) {
            if (b.seg_token_start[s + 1] <= b.seg_token_start[s])
                return bad(kBad,
                           "seg_token_start[%d] = %d, want > seg_token_start[%d] = %d (segments are not empty)",
                           s + 1, b.seg_token_start[s + 1], s, b.seg_token_start[s]);
            if (b.block_indptr[s + 1] < b.block_indptr[s])
                return bad(kBad, "block_indptr[%d] = %d < block_indptr[%d] = %d", s + 1, b.block_indptr[s + 1],
                           s, b.block_indptr[s]);
        }
        const int32_t n_indices = b.block_indptr[S];
        if (auto st = need(b.block_indices, n_indices, "block_indices")) return st;
        for (int32_t i = 0; i < n_indices; i++)
            if (b.block_indices[i] < 0 || b.block_indices[i] >= lim.n_blocks)
                return bad(kBad, "block_indices[%d] = %d outside [0, %d) (the pool's blocks)", i,
                           b.block_indices[i], lim.n_blocks);
        for (int32_t s = 0; s < S; s++) {
            const int32_t t0 = b.seg_token_start[s], t1 = b.seg_token_start[s + 1];
            const int32_t *table = b.block_indices + b.block_indptr[s];
            const int32_t n_blocks = b.block_indptr[s + 1] - b.block_indptr[s];
            for (int32_t t = t0 + 1; t < t1; t++)
                if (b.positions[t] != b.positions[t - 1] + 1)
                    return bad(kBad, "positions[%d] = %d, want %d: segment %d's positions must be consecutive",
                               t, b.positions[t], b.positions[t - 1] + 1, s);
            const int32_t last = b.positions[t1 - 1];
            if (int64_t(n_blocks) * bs <= last)
                return bad(kBad, "segment %d reaches position %d but its block table holds %d blocks of %d", s,
                           last, n_blocks, bs);
            for (int32_t t = t0; t < t1; t++) {
                if (b.slots[t] < 0) continue;
                const int32_t p = b.positions[t];
                const int64_t want = int64_t(table[p / bs]) * bs + p % bs;
                if (b.slots[t] != want)
                    return bad(kBad, "slots[%d] = %d, but segment %d's block table puts position %d at slot %lld",
                               t, b.slots[t], s, p, (long long)want);
            }
            keys = std::max(keys, last + 1);
        }
    }

    // Two tokens writing one slot would race; the plan never needs it.
    int32_t n_written = 0;
    for (int32_t t = 0; t < T; t++)
        if (b.slots[t] >= 0) slot_scratch[n_written++] = b.slots[t];
    std::sort(slot_scratch, slot_scratch + n_written);
    const int32_t *dup = std::adjacent_find(slot_scratch, slot_scratch + n_written);
    if (dup != slot_scratch + n_written) return bad(kBad, "slot %d is written by two tokens", *dup);

    if (b.top_n < 0 || b.top_n > lim.n_vocab)
        return bad(kBad, "top_n %d outside [0, %d] (n_vocab)", b.top_n, lim.n_vocab);
    for (int32_t i = 0; i < b.n_outputs; i++) {
        if (b.out_token_index[i] < 0 || b.out_token_index[i] >= T)
            return bad(kBad, "out_token_index[%d] = %d outside [0, %d) (n_tokens)", i, b.out_token_index[i], T);
        if (b.out_target[i] < 0 || b.out_target[i] >= lim.n_vocab)
            return bad(kBad, "out_target[%d] = %d outside [0, %d) (n_vocab)", i, b.out_target[i], lim.n_vocab);
    }
    if (b.n_outputs > 0) {
        if (res == nullptr) return bad(kBad, "result is NULL but there are %d output rows", b.n_outputs);
        if (auto st = need(res->logprob, b.n_outputs, "result logprob")) return st;
        if (auto st = need(res->is_greedy, b.n_outputs, "result is_greedy")) return st;
        if (b.top_n > 0) {
            if (auto st = need(res->top_ids, b.n_outputs, "result top_ids")) return st;
            if (auto st = need(res->top_logprobs, b.n_outputs, "result top_logprobs")) return st;
        }
    }
    *max_keys = keys;
    return kOK;
}

// ------------------------------------------------------------------ model

int32_t model_head_dim(const lmscore_model_desc &d) {
    if (d.head_dim != 0) return d.head_dim;
    return d.n_head > 0 ? d.n_embd / d.n_head : 0;
}

namespace {

// check_expert_hparams: the mixture-of-experts sizes (n_expert > 0).
lmscore_status check_expert_hparams(const Report &bad, const lmscore_model_desc &d) {
    if (d.n_expert == 0) return kOK;
    if (d.n_expert < 0) return bad(kBad, "n_expert = %d, want >= 0", int(d.n_expert));
    if (d.n_expert_used < 1 || d.n_expert_used > d.n_expert)
        return bad(kBad, "n_expert_used = %d, want 1 to n_expert = %d", int(d.n_expert_used), int(d.n_expert));
    if (d.n_ff_exp <= 0) return bad(kBad, "n_ff_exp = %d, want > 0", int(d.n_ff_exp));
    if (d.n_ff_shexp < 0) return bad(kBad, "n_ff_shexp = %d, want >= 0", int(d.n_ff_shexp));
    if (d.expert_weights_norm != 0 && d.expert_weights_norm != 1)
        return bad(kBad, "expert_weights_norm = %d, want 0 or 1", int(d.expert_weights_norm));
    // The stacked expert matrices' row counts are int32 in the header.
    if (int64_t(d.n_ff_exp) * d.n_expert > INT32_MAX || int64_t(d.n_embd) * d.n_expert > INT32_MAX)
        return bad(kBad, "n_expert %d with n_ff_exp %d and n_embd %d overflows int32", int(d.n_expert),
                   int(d.n_ff_exp), int(d.n_embd));
    if (d.ffn_type != LMSCORE_FFN_SWIGLU)
        return bad(kUnsupported, "experts of ffn_type %d are not supported (SwiGLU experts only)", int(d.ffn_type));
    return kOK;
}

} // namespace

lmscore_status validate_model_hparams(const lmscore_model_desc &d, char *msg, size_t cap, uint32_t implemented) {
    const Report bad(msg, cap, "model: ");
    if (d.norm_type != LMSCORE_NORM_RMS && d.norm_type != LMSCORE_NORM_LAYER)
        return bad(kUnsupported, "norm_type %d not supported", int(d.norm_type));
    if (d.ffn_type < LMSCORE_FFN_SWIGLU || d.ffn_type > LMSCORE_FFN_GELU_ERF)
        return bad(kUnsupported, "ffn_type %d not supported", int(d.ffn_type));
    if (d.qk_norm < LMSCORE_QK_NORM_NONE || d.qk_norm > LMSCORE_QK_NORM_FULL)
        return bad(kUnsupported, "qk_norm %d not supported", int(d.qk_norm));
    // A feature the calling core does not compute is refused by name
    // rather than ignored.
    auto scaled = [](float v) { return v != 0.0f && v != 1.0f; };
    const struct {
        uint32_t bit;
        const char *name;
        bool used;
    } features[] = {
        {kFeatureGeGLU, "GeGLU", d.ffn_type == LMSCORE_FFN_GEGLU},
        {kFeatureGeluErf, "the exact GELU", d.ffn_type == LMSCORE_FFN_GELU_ERF},
        {kFeatureQKNormFull, "q/k norms over the whole projection", d.qk_norm == LMSCORE_QK_NORM_FULL},
        {kFeatureParallelResidual, "parallel residual", d.parallel_residual != 0},
        {kFeatureEmbdScale, "embedding scale", scaled(d.embd_scale)},
        {kFeatureAttnScale, "attention scale", d.attn_scale != 0.0f},
        {kFeatureAttnSoftcap, "attention soft-capping", d.attn_softcap != 0.0f},
        {kFeatureFinalSoftcap, "final soft-capping", d.final_softcap != 0.0f},
        {kFeatureSlidingWindow, "sliding-window attention", d.n_swa != 0},
        {kFeaturePartialRotary, "partial rotary", d.n_rot != 0 && d.n_rot != model_head_dim(d)},
        {kFeatureRopeFreqScale, "RoPE frequency scale", scaled(d.rope_freq_scale)},
        {kFeatureRopeAttnFactor, "RoPE attention factor", scaled(d.rope_attn_factor)},
        {kFeatureMoE, "mixture of experts", d.n_expert != 0},
    };
    for (const auto &f : features)
        if (f.used && (implemented & f.bit) == 0) return bad(kUnsupported, "%s is not supported yet by this core", f.name);
    const struct {
        const char *name;
        int32_t value;
    } dims[] = {{"n_vocab", d.n_vocab}, {"n_embd", d.n_embd},       {"n_layer", d.n_layer},
                {"n_head", d.n_head},   {"n_head_kv", d.n_head_kv}, {"n_ff", d.n_ff},
                {"n_ctx_train", d.n_ctx_train}};
    for (const auto &dim : dims)
        if (dim.value <= 0) return bad(kBad, "%s = %d, want > 0", dim.name, int(dim.value));
    if (d.head_dim < 0) return bad(kBad, "head_dim = %d, want > 0, or 0 for n_embd / n_head", int(d.head_dim));
    if (d.head_dim == 0 && d.n_embd % d.n_head != 0)
        return bad(kBad, "n_embd %d is not a multiple of n_head %d", int(d.n_embd), int(d.n_head));
    // Every core sizes its q, k and v rows in int32.
    if (int64_t(d.n_head + 2 * int64_t(d.n_head_kv)) * model_head_dim(d) > INT32_MAX)
        return bad(kBad, "(n_head + 2 n_head_kv) * head_dim = (%d + 2*%d) * %d overflows int32", int(d.n_head),
                   int(d.n_head_kv), int(model_head_dim(d)));
    if (d.n_head % d.n_head_kv != 0)
        return bad(kBad, "n_head %d is not a multiple of n_head_kv %d", int(d.n_head), int(d.n_head_kv));
    if (d.rope_type != LMSCORE_ROPE_TYPE_NONE && d.rope_type != LMSCORE_ROPE_TYPE_NORM &&
        d.rope_type != LMSCORE_ROPE_TYPE_NEOX)
        return bad(kUnsupported, "rope type %d not supported", int(d.rope_type));
    const int32_t head_dim = model_head_dim(d);
    if (d.rope_type != LMSCORE_ROPE_TYPE_NONE) {
        if (head_dim % 2 != 0) return bad(kBad, "RoPE needs an even head size, got %d", head_dim);
        if (!(d.rope_freq_base > 0.0f))
            return bad(kBad, "rope_freq_base %g, want > 0", double(d.rope_freq_base));
    }
    if (!(d.norm_eps >= 0.0f)) return bad(kBad, "norm_eps %g, want >= 0", double(d.norm_eps));
    if (d.n_rot != 0) {
        if (d.rope_type == LMSCORE_ROPE_TYPE_NONE) return bad(kBad, "n_rot %d but the model has no RoPE", int(d.n_rot));
        if (d.n_rot < 0 || d.n_rot > head_dim || d.n_rot % 2 != 0)
            return bad(kBad, "n_rot %d, want an even number in [2, head_dim %d], or 0 for head_dim", int(d.n_rot),
                       head_dim);
    }
    // 0 means "none" (or 1) for each of these; a negative, NaN or infinite
    // value would poison every score rather than fail.
    const struct {
        const char *name;
        float value;
    } factors[] = {{"embd_scale", d.embd_scale},           {"attn_scale", d.attn_scale},
                   {"attn_softcap", d.attn_softcap},       {"final_softcap", d.final_softcap},
                   {"rope_freq_scale", d.rope_freq_scale}, {"rope_attn_factor", d.rope_attn_factor},
                   {"rope_freq_base_swa", d.rope_freq_base_swa},
                   {"rope_freq_scale_swa", d.rope_freq_scale_swa}};
    for (const auto &f : factors)
        if (!(f.value >= 0.0f) || !std::isfinite(f.value))
            return bad(kBad, "%s %g, want a finite number >= 0 (0: none)", f.name, double(f.value));
    if (d.n_swa < 0) return bad(kBad, "n_swa %d, want >= 0 (0: no sliding window)", int(d.n_swa));
    if (d.parallel_residual != 0 && d.parallel_residual != 1)
        return bad(kBad, "parallel_residual %d, want 0 or 1", int(d.parallel_residual));
    return check_expert_hparams(bad, d);
}

bool model_layer_sliding(const lmscore_model_desc &d, int32_t l) {
    if (d.n_swa <= 0) return false;
    return d.swa_layers == nullptr || d.swa_layers[l] != 0;
}

int32_t model_rot_dim(const lmscore_model_desc &d) { return d.n_rot != 0 ? d.n_rot : model_head_dim(d); }

namespace {

// check_tensor validates one tensor against its expected shape {ne0, ne1};
// an absent tensor is fine unless required.
lmscore_status check_tensor(const Report &bad, const lmscore_tensor &t, const char *name, int64_t ne0,
                            int64_t ne1, bool required) {
    if (t.data == nullptr) {
        if (required) return bad(kBad, "tensor %s: missing", name);
        return kOK;
    }
    TypeInfo ti;
    if (!type_info(t.type, &ti))
        return bad(kUnsupported, "tensor %s: type %d is not an lmscore_type", name, int(t.type));
    if (t.ne[0] != ne0 || t.ne[1] != ne1)
        return bad(kBad, "tensor %s: shape {%lld, %lld}, want {%lld, %lld}", name, (long long)t.ne[0],
                   (long long)t.ne[1], (long long)ne0, (long long)ne1);
    if (ne0 % ti.block != 0)
        return bad(kBad, "tensor %s: type %s needs rows of a multiple of %d values, got %lld", name, ti.name,
                   ti.block, (long long)ne0);
    return kOK;
}

// A norm's bias needs its weight, and only LayerNorm has one.
lmscore_status check_norm_bias(const Report &bad, const lmscore_model_desc &d, const lmscore_tensor *t, int l,
                               int weight, int bias) {
    if (t[bias].data == nullptr) return kOK;
    if (t[weight].data == nullptr)
        return bad(kBad, "tensor blk.%d.%s: a norm bias without its weight blk.%d.%s", l, kRoleNames[bias], l,
                   kRoleNames[weight]);
    if (d.norm_type != LMSCORE_NORM_LAYER)
        return bad(kBad, "tensor blk.%d.%s: only LayerNorm has a bias (norm_type %d)", l, kRoleNames[bias],
                   int(d.norm_type));
    return kOK;
}

// check_experts: a layer of experts (n_expert > 0) has the router and the
// stacked experts, the shared expert's tensors when n_ff_shexp > 0, and no
// dense FFN (it is in place of one); a dense layer has none of these,
// which a core without experts (moe_core false) reports as unsupported.
lmscore_status check_experts(const Report &bad, const lmscore_model_desc &d, const lmscore_tensor *t, int l,
                             bool moe_core) {
    char name[64];
    auto check = [&](int role, int64_t ne0, int64_t ne1, bool required) {
        snprintf(name, sizeof name, "blk.%d.%s", l, kRoleNames[role]);
        return check_tensor(bad, t[role], name, ne0, ne1, required);
    };
    auto absent = [&](int role, const char *why) {
        if (t[role].data == nullptr) return kOK;
        return bad(kBad, "tensor blk.%d.%s: %s", l, kRoleNames[role], why);
    };
    if (d.n_expert == 0) {
        for (int role = LMSCORE_LAYER_FFN_GATE_INP; role <= LMSCORE_LAYER_FFN_DOWN_SHEXP; role++) {
            if (t[role].data != nullptr && !moe_core)
                return bad(kUnsupported, "tensor blk.%d.%s: mixture of experts is not supported yet by this core", l,
                           kRoleNames[role]);
            if (auto st = absent(role, "the model has no experts (n_expert 0)")) return st;
        }
        return kOK;
    }
    for (int role : {LMSCORE_LAYER_FFN_GATE, LMSCORE_LAYER_FFN_UP, LMSCORE_LAYER_FFN_UP_B, LMSCORE_LAYER_FFN_DOWN,
                     LMSCORE_LAYER_FFN_DOWN_B})
        if (auto st = absent(role, "a layer of experts has no dense FFN")) return st;
    const int64_t e = d.n_embd, ne = d.n_expert, ff = d.n_ff_exp, fs = d.n_ff_shexp;
    if (auto st = check(LMSCORE_LAYER_FFN_GATE_INP, e, ne, true)) return st;
    if (auto st = check(LMSCORE_LAYER_FFN_GATE_EXPS, e, ff * ne, true)) return st;
    if (auto st = check(LMSCORE_LAYER_FFN_UP_EXPS, e, ff * ne, true)) return st;
    if (auto st = check(LMSCORE_LAYER_FFN_DOWN_EXPS, ff, e * ne, true)) return st;
    if (fs == 0) {
        for (int role = LMSCORE_LAYER_FFN_GATE_INP_SHEXP; role <= LMSCORE_LAYER_FFN_DOWN_SHEXP; role++)
            if (auto st = absent(role, "the model has no shared expert (n_ff_shexp 0)")) return st;
        return kOK;
    }
    if (auto st = check(LMSCORE_LAYER_FFN_GATE_INP_SHEXP, e, 1, false)) return st;
    if (auto st = check(LMSCORE_LAYER_FFN_GATE_SHEXP, e, fs, true)) return st;
    if (auto st = check(LMSCORE_LAYER_FFN_UP_SHEXP, e, fs, true)) return st;
    return check(LMSCORE_LAYER_FFN_DOWN_SHEXP, fs, e, true);
}

lmscore_status check_layer(const Report &bad, const lmscore_model_desc &d, const lmscore_tensor *t, int l,
                           uint32_t implemented) {
    const int64_t e = d.n_embd, head_dim = model_head_dim(d);
    const int64_t nq = d.n_head * head_dim, nkv = d.n_head_kv * head_dim, nqkv = nq + 2 * nkv, ff = d.n_ff;
    const bool gated = d.ffn_type == LMSCORE_FFN_SWIGLU || d.ffn_type == LMSCORE_FFN_GEGLU;
    char name[64];
    auto check = [&](int role, int64_t ne0, int64_t ne1, bool required) {
        snprintf(name, sizeof name, "blk.%d.%s", l, kRoleNames[role]);
        return check_tensor(bad, t[role], name, ne0, ne1, required);
    };
    auto has = [&](uint32_t bit) { return (implemented & bit) != 0; };
    auto pending = [&](int role, const char *what) {
        return bad(kUnsupported, "tensor blk.%d.%s: %s is not supported yet by this core", l, kRoleNames[role], what);
    };

    // Pre-norms: absent means none (OLMo 2), where the core has that.
    const bool pre_optional = has(kFeatureOptionalPreNorms);
    if (auto st = check(LMSCORE_LAYER_ATTN_NORM, e, 1, false)) return st;
    if (auto st = check(LMSCORE_LAYER_ATTN_NORM_B, e, 1, false)) return st;
    if (auto st = check_norm_bias(bad, d, t, l, LMSCORE_LAYER_ATTN_NORM, LMSCORE_LAYER_ATTN_NORM_B)) return st;
    if (auto st = check(LMSCORE_LAYER_FFN_NORM, e, 1, false)) return st;
    if (auto st = check(LMSCORE_LAYER_FFN_NORM_B, e, 1, false)) return st;
    if (auto st = check_norm_bias(bad, d, t, l, LMSCORE_LAYER_FFN_NORM, LMSCORE_LAYER_FFN_NORM_B)) return st;

    if (t[LMSCORE_LAYER_WQKV].data != nullptr) {
        if (auto st = check(LMSCORE_LAYER_WQKV, e, nqkv, true)) return st;
        if (auto st = check(LMSCORE_LAYER_BQKV, nqkv, 1, false)) return st;
        for (int role : {LMSCORE_LAYER_WQ, LMSCORE_LAYER_WK, LMSCORE_LAYER_WV, LMSCORE_LAYER_BQ, LMSCORE_LAYER_BK,
                         LMSCORE_LAYER_BV})
            if (t[role].data != nullptr)
                return bad(kBad, "tensor blk.%d.%s: the layer has a fused blk.%d.%s already", l, kRoleNames[role], l,
                           kRoleNames[LMSCORE_LAYER_WQKV]);
    } else {
        if (auto st = check(LMSCORE_LAYER_WQ, e, nq, true)) return st;
        if (auto st = check(LMSCORE_LAYER_WK, e, nkv, true)) return st;
        if (auto st = check(LMSCORE_LAYER_WV, e, nkv, true)) return st;
        if (auto st = check(LMSCORE_LAYER_BQ, nq, 1, false)) return st;
        if (auto st = check(LMSCORE_LAYER_BK, nkv, 1, false)) return st;
        if (auto st = check(LMSCORE_LAYER_BV, nkv, 1, false)) return st;
        if (t[LMSCORE_LAYER_BQKV].data != nullptr)
            return bad(kBad, "tensor blk.%d.%s: a fused bias without the fused blk.%d.%s", l,
                       kRoleNames[LMSCORE_LAYER_BQKV], l, kRoleNames[LMSCORE_LAYER_WQKV]);
    }
    // QK_NORM_HEAD: (head_dim), shared by the heads; QK_NORM_FULL: the whole
    // projection; NONE: no q/k norm at all.
    const bool qk_full = d.qk_norm == LMSCORE_QK_NORM_FULL;
    const int64_t qn = qk_full ? nq : head_dim, kn = qk_full ? nkv : head_dim;
    const bool qk_norm = d.qk_norm != LMSCORE_QK_NORM_NONE;
    if (qk_norm) {
        if (auto st = check(LMSCORE_LAYER_ATTN_Q_NORM, qn, 1, true)) return st;
        if (auto st = check(LMSCORE_LAYER_ATTN_K_NORM, kn, 1, true)) return st;
    } else {
        for (int role : {LMSCORE_LAYER_ATTN_Q_NORM, LMSCORE_LAYER_ATTN_K_NORM})
            if (t[role].data != nullptr)
                return bad(kBad, "tensor blk.%d.%s: the model has no q/k norm (qk_norm %d)", l, kRoleNames[role],
                           int(d.qk_norm));
    }
    if (auto st = check(LMSCORE_LAYER_WO, nq, e, true)) return st;
    if (auto st = check(LMSCORE_LAYER_BO, e, 1, false)) return st;

    // Post-norms of the sublayer outputs (Gemma 2/3, OLMo 2).
    for (int role : {LMSCORE_LAYER_ATTN_POST_NORM, LMSCORE_LAYER_FFN_POST_NORM}) {
        if (t[role].data == nullptr) continue;
        if (!has(kFeaturePostNorms)) return pending(role, "a post-norm");
        if (auto st = check(role, e, 1, true)) return st;
    }

    // The experts replace the dense FFN (validate_model_hparams refused
    // them for a core without kFeatureMoE).
    if (auto st = check_experts(bad, d, t, l, has(kFeatureMoE))) return st;
    if (d.n_expert == 0) {
        // Dense FFN. Gated: gate and up, or up of 2 n_ff rows (gate first) with
        // no gate; ungated: up alone.
        const bool fused = gated && t[LMSCORE_LAYER_FFN_GATE].data == nullptr;
        if (!gated && t[LMSCORE_LAYER_FFN_GATE].data != nullptr)
            return bad(kUnsupported, "tensor blk.%d.%s: an ungated FFN (ffn_type %d) has no gate", l,
                       kRoleNames[LMSCORE_LAYER_FFN_GATE], int(d.ffn_type));
        if (fused) {
            if (t[LMSCORE_LAYER_FFN_UP].data == nullptr)
                return bad(kBad,
                           "tensor blk.%d.%s: missing (a gated FFN needs it and blk.%d.%s, or it alone of 2 n_ff "
                           "rows)",
                           l, kRoleNames[LMSCORE_LAYER_FFN_UP], l, kRoleNames[LMSCORE_LAYER_FFN_GATE]);
            if (t[LMSCORE_LAYER_FFN_UP].ne[1] != 2 * ff)
                return bad(kBad,
                           "tensor blk.%d.%s: missing (a gated FFN needs it, or blk.%d.%s of shape {%lld, %lld}, gate and "
                           "up fused; that has {%lld, %lld})",
                           l, kRoleNames[LMSCORE_LAYER_FFN_GATE], l, kRoleNames[LMSCORE_LAYER_FFN_UP], (long long)e,
                           (long long)(2 * ff), (long long)t[LMSCORE_LAYER_FFN_UP].ne[0],
                           (long long)t[LMSCORE_LAYER_FFN_UP].ne[1]);
            if (auto st = check(LMSCORE_LAYER_FFN_UP, e, 2 * ff, true)) return st;
            if (!has(kFeatureFusedGateUp))
                return pending(LMSCORE_LAYER_FFN_UP, "a fused gate and up (no ffn_gate)");
        } else {
            if (auto st = check(LMSCORE_LAYER_FFN_GATE, e, ff, gated)) return st;
            if (auto st = check(LMSCORE_LAYER_FFN_UP, e, ff, true)) return st;
        }
        if (auto st = check(LMSCORE_LAYER_FFN_UP_B, ff, 1, false)) return st;
        if (auto st = check(LMSCORE_LAYER_FFN_DOWN, ff, e, true)) return st;
        if (auto st = check(LMSCORE_LAYER_FFN_DOWN_B, e, 1, false)) return st;
    }

    // Absent pre-norms last, so that a core without them names the tensor.
    if (!pre_optional)
        for (int role : {LMSCORE_LAYER_ATTN_NORM, LMSCORE_LAYER_FFN_NORM})
            if (t[role].data == nullptr) return pending(role, "a layer without this norm");
    return kOK;
}

} // namespace

lmscore_status validate_model_tensors(const lmscore_model_desc &d, char *msg, size_t cap, uint32_t implemented) {
    if (d.layers == nullptr) return Report(msg, cap, "model: ")(kBad, "layers is NULL");
    const Report bad(msg, cap, "");
    if (auto st = check_tensor(bad, d.tok_embd, "token_embd.weight", d.n_embd, d.n_vocab, true)) return st;
    if (auto st = check_tensor(bad, d.pos_embd, "position_embd.weight", d.n_embd, d.n_ctx_train, false)) return st;
    if (auto st = check_tensor(bad, d.output_norm, "output_norm.weight", d.n_embd, 1, true)) return st;
    if (auto st = check_tensor(bad, d.output_norm_b, "output_norm.bias", d.n_embd, 1, false)) return st;
    if (auto st = check_tensor(bad, d.output, "output.weight", d.n_embd, d.n_vocab, false)) return st;
    for (int l = 0; l < d.n_layer; l++)
        if (auto st = check_layer(bad, d, d.layers + int64_t(l) * LMSCORE_LAYER_ROLE_COUNT, l, implemented)) return st;
    if (d.rope_freqs.data != nullptr) {
        const int64_t half = model_rot_dim(d) / 2; // one factor per rotated pair
        if (d.rope_type == LMSCORE_ROPE_TYPE_NONE)
            return bad(kBad, "tensor rope_freqs.weight: the model has no RoPE");
        if (d.rope_freqs.type != LMSCORE_TYPE_F32)
            return bad(kUnsupported, "tensor rope_freqs.weight: type %d, want F32", int(d.rope_freqs.type));
        if (auto st = check_tensor(bad, d.rope_freqs, "rope_freqs.weight", half, 1, false)) return st;
        // A factor divides an angle: zero, negative or NaN would make every
        // later position meaningless rather than fail.
        const float *f = static_cast<const float *>(d.rope_freqs.data);
        for (int64_t i = 0; i < half; i++)
            if (!(f[i] > 0.0f) || !std::isfinite(f[i]))
                return bad(kBad, "tensor rope_freqs.weight: value %lld is %g, want a positive number",
                           (long long)i, double(f[i]));
    }
    return kOK;
}

lmscore_status validate_model_types(const lmscore_model_desc &d, bool (*supported)(int32_t type),
                                    const char *core, const char *list, char *msg, size_t cap) {
    const Report bad(msg, cap, "");
    auto check = [&](const lmscore_tensor &t, const char *name) -> lmscore_status {
        if (t.data == nullptr || supported(t.type)) return kOK;
        return bad(kUnsupported, "tensor %s: type %s not supported by the %s core (it reads %s)", name,
                   type_name(t.type), core, list);
    };
    if (auto st = check(d.tok_embd, "token_embd.weight")) return st;
    if (auto st = check(d.pos_embd, "position_embd.weight")) return st;
    if (auto st = check(d.output_norm, "output_norm.weight")) return st;
    if (auto st = check(d.output_norm_b, "output_norm.bias")) return st;
    if (auto st = check(d.output, "output.weight")) return st;
    char name[64];
    for (int l = 0; l < d.n_layer; l++) {
        const lmscore_tensor *t = d.layers + int64_t(l) * LMSCORE_LAYER_ROLE_COUNT;
        for (int role = 0; role < LMSCORE_LAYER_ROLE_COUNT; role++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, kRoleNames[role]);
            if (auto st = check(t[role], name)) return st;
        }
    }
    return kOK;
}

} // namespace lmscore_common
