// model_load.cpp — lmscore_model_load: checks the description (the checks
// both cores share, plus the CUDA core's own limits), uploads the weights
// and converts them on the device to the run's precision; in bf16 runs a
// matrix with a quantized source tensor stays quantized (internal.h, Matrix).
#include <math.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../csrc/common/validate.h"
#include "internal.h"

using lmscore_cuda::DType;
using lmscore_cuda::fail;

namespace {

bool raw_bytes(const lmscore_tensor &t, int64_t *out) {
    lmscore_common::TypeInfo ti;
    if (!lmscore_common::type_info(t.type, &ti) || t.ne[0] % ti.block != 0) return false;
    *out = t.ne[1] * (t.ne[0] / ti.block) * ti.bytes;
    return true;
}

bool is_block_type(int32_t type) {
    lmscore_common::TypeInfo ti;
    return lmscore_common::type_info(type, &ti) && ti.block > 1;
}

// Uploads tensors one at a time through a device staging buffer, so host
// memory never holds a converted copy of the model.
class Loader {
  public:
    explicit Loader(lmscore_model *m) : m_(m) {}
    ~Loader() {
        if (staging_) cudaFree(staging_);
    }

    lmscore_status alloc(size_t bytes, void **out) {
        *out = nullptr;
        if (bytes == 0) return LMSCORE_STATUS_OK;
        cudaError_t err = cudaMalloc(out, bytes);
        if (err != cudaSuccess) {
            *out = nullptr;
            char what[96];
            snprintf(what, sizeof what, "allocating %zu bytes of weights", bytes);
            return lmscore_cuda::cuda_fail(err, what);
        }
        m_->allocations.push_back(*out);
        m_->weight_bytes += bytes;
        return LMSCORE_STATUS_OK;
    }

    // Converts t, of shape {ne0, ne1} (validate_model_tensors checked it),
    // into dst (element offset 0) as dtype.
    lmscore_status upload(const lmscore_tensor &t, const std::string &name, int64_t ne0, int64_t ne1, void *dst,
                          DType dtype) {
        int64_t bytes = 0;
        if (!t.data || !raw_bytes(t, &bytes))
            return fail(LMSCORE_STATUS_INTERNAL, "model: tensor %s passed validation but cannot be uploaded (type %d)",
                        name.c_str(), (int)t.type);
        if ((size_t)bytes > staging_bytes_) {
            if (staging_) cudaFree(staging_);
            staging_ = nullptr;
            staging_bytes_ = 0;
            cudaError_t err = cudaMalloc(&staging_, (size_t)bytes);
            if (err != cudaSuccess) {
                staging_ = nullptr;
                return lmscore_cuda::cuda_fail(err, "allocating the weight staging buffer");
            }
            staging_bytes_ = (size_t)bytes;
        }
        // Legacy default stream: the copy waits for the previous conversion
        // that read the staging buffer.
        cudaError_t err = cudaMemcpy(staging_, t.data, (size_t)bytes, cudaMemcpyHostToDevice);
        if (err != cudaSuccess) return lmscore_cuda::cuda_fail(err, ("uploading " + name).c_str());
        err = lmscore_cuda::convert_tensor(staging_, t.type, ne0, ne0 * ne1, dst, dtype, nullptr);
        if (err != cudaSuccess) return lmscore_cuda::cuda_fail(err, ("converting " + name).c_str());
        return LMSCORE_STATUS_OK;
    }

    // A dense matrix of n_out rows of n_in values in the run's precision.
    lmscore_status dense(const lmscore_tensor &t, const std::string &name, int64_t n_in, int64_t n_out,
                         void **out) {
        lmscore_status st = alloc((size_t)(n_in * n_out) * lmscore_cuda::dtype_size(m_->dtype), out);
        if (st != LMSCORE_STATUS_OK) return st;
        return upload(t, name, n_in, n_out, *out, m_->dtype);
    }

    lmscore_status matrix(const lmscore_tensor &t, const std::string &name, int64_t n_in, int64_t n_out,
                          lmscore_cuda::Matrix *out, char **arena = nullptr) {
        const lmscore_tensor *ts[1] = {&t};
        return stacked(ts, &name, &n_out, 1, n_in, out, arena);
    }

    // Whether stacked() keeps these tensors as quantized bands.
    bool keeps_quantized(const lmscore_tensor *const *ts, int count) const {
        if (m_->dtype != DType::BF16) return false;
        for (int i = 0; i < count; ++i)
            if (is_block_type(ts[i]->type)) return true;
        return false;
    }

    // The bytes stacked() takes of an arena for these tensors: each piece
    // (the dense matrix, or each band) starts on a 256-byte boundary, as
    // cudaMalloc's allocations do, so that an expert's matrix is aligned as
    // a matrix of its own would be.
    size_t stacked_bytes(const lmscore_tensor *const *ts, const int64_t *n_outs, int count, int64_t n_in) const {
        const bool quantized = keeps_quantized(ts, count);
        size_t total = 0, dense = 0;
        for (int i = 0; i < count; ++i) {
            int64_t raw = 0;
            if (quantized && is_block_type(ts[i]->type) && raw_bytes(*ts[i], &raw))
                total += arena_piece((size_t)raw);
            else if (quantized)
                total += arena_piece((size_t)(n_outs[i] * n_in) * 2);
            else
                dense += (size_t)(n_outs[i] * n_in) * lmscore_cuda::dtype_size(m_->dtype);
        }
        return quantized ? total : arena_piece(dense);
    }
    static size_t arena_piece(size_t bytes) { return (bytes + 255) / 256 * 256; }

    // Several matrices with the same n_in stacked by rows into one, so that
    // one GEMM computes them all. In bf16 runs, when any of them has a block
    // type, each stays a band of its own type (dense ones converted to
    // bf16): fp32 runs are the check mode and keep everything dense.
    //
    // With arena, the memory comes from *arena (advanced past it) instead of
    // allocations of its own: stacked_bytes() says how much.
    lmscore_status stacked(const lmscore_tensor *const *ts, const std::string *names, const int64_t *n_outs,
                           int count, int64_t n_in, lmscore_cuda::Matrix *out, char **arena = nullptr) {
        *out = lmscore_cuda::Matrix{};
        out->n_in = n_in;
        for (int i = 0; i < count; ++i) out->n_out += n_outs[i];
        const bool quantized = keeps_quantized(ts, count);
        auto take = [&](size_t bytes, void **p) {
            if (!arena) return alloc(bytes, p);
            *p = *arena;
            *arena += arena_piece(bytes);
            return LMSCORE_STATUS_OK;
        };
        lmscore_status st;
        if (!quantized) {
            const size_t es = lmscore_cuda::dtype_size(m_->dtype);
            void *p = nullptr;
            st = take((size_t)(out->n_out * n_in) * es, &p);
            if (st != LMSCORE_STATUS_OK) return st;
            out->dense = p;
            int64_t row = 0;
            for (int i = 0; i < count; ++i) {
                st = upload(*ts[i], names[i], n_in, n_outs[i], (char *)p + (size_t)(row * n_in) * es, m_->dtype);
                if (st != LMSCORE_STATUS_OK) return st;
                row += n_outs[i];
            }
            return LMSCORE_STATUS_OK;
        }
        for (int i = 0; i < count; ++i) {
            const lmscore_tensor &t = *ts[i];
            lmscore_cuda::WeightBand band;
            band.rows = n_outs[i];
            void *p = nullptr;
            if (is_block_type(t.type)) {
                int64_t bytes = 0;
                if (!t.data || !raw_bytes(t, &bytes))
                    return fail(LMSCORE_STATUS_INTERNAL, "model: tensor %s passed validation but cannot be uploaded",
                                names[i].c_str());
                st = take((size_t)bytes, &p);
                if (st != LMSCORE_STATUS_OK) return st;
                cudaError_t err = cudaMemcpy(p, t.data, (size_t)bytes, cudaMemcpyHostToDevice);
                if (err != cudaSuccess) return lmscore_cuda::cuda_fail(err, ("uploading " + names[i]).c_str());
                band.type = t.type;
            } else {
                st = take((size_t)(n_outs[i] * n_in) * 2, &p);
                if (st != LMSCORE_STATUS_OK) return st;
                st = upload(t, names[i], n_in, n_outs[i], p, DType::BF16);
                if (st != LMSCORE_STATUS_OK) return st;
                band.type = LMSCORE_TYPE_BF16;
            }
            band.data = p;
            out->bands.push_back(band);
        }
        return LMSCORE_STATUS_OK;
    }

    // An fp32 vector of n values; an absent (optional) one stays null.
    lmscore_status vector(const lmscore_tensor &t, const std::string &name, int64_t n, float **out) {
        *out = nullptr;
        if (!t.data) return LMSCORE_STATUS_OK;
        void *p = nullptr;
        lmscore_status st = alloc((size_t)n * 4, &p);
        if (st != LMSCORE_STATUS_OK) return st;
        *out = (float *)p;
        return upload(t, name, n, 1, p, DType::F32);
    }

    // Concatenated optional bias vectors; absent parts are zero. Null when all are absent.
    lmscore_status stacked_bias(const lmscore_tensor *const *ts, const std::string *names, const int64_t *ns,
                                int count, float **out) {
        *out = nullptr;
        bool any = false;
        int64_t total = 0;
        for (int i = 0; i < count; ++i) {
            any = any || ts[i]->data;
            total += ns[i];
        }
        if (!any) return LMSCORE_STATUS_OK;
        void *p = nullptr;
        lmscore_status st = alloc((size_t)total * 4, &p);
        if (st != LMSCORE_STATUS_OK) return st;
        cudaError_t err = cudaMemset(p, 0, (size_t)total * 4);
        if (err != cudaSuccess) return lmscore_cuda::cuda_fail(err, "clearing a bias");
        *out = (float *)p;
        int64_t off = 0;
        for (int i = 0; i < count; ++i) {
            if (ts[i]->data) {
                st = upload(*ts[i], names[i], ns[i], 1, (float *)p + off, DType::F32);
                if (st != LMSCORE_STATUS_OK) return st;
            }
            off += ns[i];
        }
        return LMSCORE_STATUS_OK;
    }

  private:
    lmscore_model *m_;
    void *staging_ = nullptr;
    size_t staging_bytes_ = 0;
};

// What the CUDA core adds to the shared checks: the head sizes its
// attention kernel is built for, its two precisions, and q/k head norms
// only without q/k biases (rope_kv_write adds the biases after the norms
// ran). Run between validate_model_hparams and validate_model_tensors.
lmscore_status check_cuda_limits(const lmscore_model_desc &d, const lmscore_backend_params &params) {
    const int head_dim = lmscore_common::model_head_dim(d);
    if (!lmscore_cuda::attention_supports_head_dim(head_dim))
        return fail(LMSCORE_STATUS_UNSUPPORTED,
                    "model: head_dim %d is not built into the CUDA attention kernel (8, 16, 32, 48, 64, 80, 96, 128, 256)",
                    head_dim);
    if (params.precision != LMSCORE_PRECISION_FP32 && params.precision != LMSCORE_PRECISION_BF16)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "params: unknown precision %d", params.precision);
    for (int l = 0; d.layers && l < d.n_layer; ++l) {
        const lmscore_tensor *t = d.layers + (size_t)l * LMSCORE_LAYER_ROLE_COUNT;
        const bool qk_norm = t[LMSCORE_LAYER_ATTN_Q_NORM].data || t[LMSCORE_LAYER_ATTN_K_NORM].data;
        const bool qk_bias = t[LMSCORE_LAYER_BQ].data || t[LMSCORE_LAYER_BK].data || t[LMSCORE_LAYER_BQKV].data;
        if (qk_norm && qk_bias)
            return fail(LMSCORE_STATUS_UNSUPPORTED,
                        "model: layer %d has q/k head norms and q/k biases; the CUDA core applies the norms only "
                        "to unbiased q and k",
                        l);
        // The gated activation reads the gate/up GEMM's output as it is (no
        // converter writes a gated FFN with a bias; the CPU core takes one).
        const bool gated = d.ffn_type == LMSCORE_FFN_SWIGLU || d.ffn_type == LMSCORE_FFN_GEGLU;
        if (gated && d.n_expert == 0 && t[LMSCORE_LAYER_FFN_UP_B].data)
            return fail(LMSCORE_STATUS_UNSUPPORTED,
                        "model: layer %d has a gated FFN with an up-projection bias, which the CUDA core does not "
                        "apply (the CPU core does)",
                        l);
    }
    return LMSCORE_STATUS_OK;
}

// The types dequant.cuh decodes: every lmscore_type, so this refuses only
// a type added to lmscore.h before the CUDA core learns it.
bool cuda_reads_type(int32_t type) { return lmscore_cuda::dequant_supports(type); }

// The features of lmscore_model_desc the CUDA core computes: all of them.
constexpr uint32_t kCudaFeatures = lmscore_common::kFeaturesDense | lmscore_common::kFeatureMoE;

lmscore_status check_desc(const lmscore_model_desc &d, const lmscore_backend_params &params) {
    char msg[1024];
    lmscore_status st = lmscore_common::validate_model_hparams(d, msg, sizeof msg, kCudaFeatures);
    if (st != LMSCORE_STATUS_OK) return fail(st, "%s", msg);
    st = check_cuda_limits(d, params);
    if (st != LMSCORE_STATUS_OK) return st;
    st = lmscore_common::validate_model_tensors(d, msg, sizeof msg, kCudaFeatures);
    if (st != LMSCORE_STATUS_OK) return fail(st, "%s", msg);
    st = lmscore_common::validate_model_types(d, cuda_reads_type, "CUDA",
                                              "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, "
                                              "Q5_K, Q6_K, IQ4_NL and IQ4_XS",
                                              msg, sizeof msg);
    if (st != LMSCORE_STATUS_OK) return fail(st, "%s", msg);
    return LMSCORE_STATUS_OK;
}

// rows_of is rows [first, first + count) of t as a tensor of its own: one
// expert's slice of a stacked matrix.
lmscore_tensor rows_of(const lmscore_tensor &t, int64_t first, int64_t count) {
    lmscore_common::TypeInfo ti{};
    lmscore_common::type_info(t.type, &ti);
    lmscore_tensor v = t;
    v.data = (const char *)t.data + first * (t.ne[0] / ti.block) * ti.bytes;
    v.ne[1] = count;
    return v;
}

// One layer's experts (validate_model_tensors checked every shape): the
// router with the shared expert's gate as its last row, each expert's
// matrices cut out of the stacked tensors into one allocation for the
// layer (thousands of experts in a real model would otherwise be as many
// allocations), and the shared expert.
lmscore_status load_experts(const lmscore_model_desc &d, const lmscore_tensor *t, int l, Loader &ld,
                            lmscore_cuda::LayerWeights &w) {
    const int64_t E = d.n_embd, ne = d.n_expert, ff = d.n_ff_exp, fs = d.n_ff_shexp;
    auto name = [&](int role) { return "blk." + std::to_string(l) + "." + lmscore_common::layer_role_name(role); };
    lmscore_status st;

    // A layer without the shared expert's gate still gets its router row
    // (zeros), so that every layer's router has one shape and one plan.
    std::vector<float> zeros;
    lmscore_tensor gate_row = t[LMSCORE_LAYER_FFN_GATE_INP_SHEXP];
    w.shexp_gate = fs > 0 && gate_row.data != nullptr;
    if (fs > 0 && !gate_row.data) {
        try {
            zeros.assign((size_t)E, 0.f);
        } catch (const std::bad_alloc &) {
            return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "model: out of host memory");
        }
        gate_row = lmscore_tensor{zeros.data(), LMSCORE_TYPE_F32, {E, 1}};
    }
    {
        const lmscore_tensor *rs[2] = {&t[LMSCORE_LAYER_FFN_GATE_INP], &gate_row};
        const std::string rn[2] = {name(LMSCORE_LAYER_FFN_GATE_INP), name(LMSCORE_LAYER_FFN_GATE_INP_SHEXP)};
        const int64_t rows[2] = {ne, 1};
        st = ld.stacked(rs, rn, rows, fs > 0 ? 2 : 1, E, &w.router);
        if (st != LMSCORE_STATUS_OK) return st;
    }

    std::vector<lmscore_tensor> gate, up, down;
    try {
        w.exp_up.resize((size_t)ne);
        w.exp_down.resize((size_t)ne);
        for (int64_t x = 0; x < ne; ++x) {
            gate.push_back(rows_of(t[LMSCORE_LAYER_FFN_GATE_EXPS], x * ff, ff));
            up.push_back(rows_of(t[LMSCORE_LAYER_FFN_UP_EXPS], x * ff, ff));
            down.push_back(rows_of(t[LMSCORE_LAYER_FFN_DOWN_EXPS], x * E, E));
        }
    } catch (const std::bad_alloc &) {
        return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "model: out of host memory");
    }
    const std::string gn[2] = {name(LMSCORE_LAYER_FFN_GATE_EXPS), name(LMSCORE_LAYER_FFN_UP_EXPS)};
    const std::string dn = name(LMSCORE_LAYER_FFN_DOWN_EXPS);
    const int64_t gu_rows[2] = {ff, ff};
    size_t bytes = 0;
    for (int64_t x = 0; x < ne; ++x) {
        const lmscore_tensor *gu[2] = {&gate[x], &up[x]}, *dw[1] = {&down[x]};
        bytes += ld.stacked_bytes(gu, gu_rows, 2, E) + ld.stacked_bytes(dw, &E, 1, ff);
    }
    void *arena = nullptr;
    st = ld.alloc(bytes, &arena);
    if (st != LMSCORE_STATUS_OK) return st;
    char *cursor = (char *)arena;
    for (int64_t x = 0; x < ne; ++x) {
        const lmscore_tensor *gu[2] = {&gate[x], &up[x]};
        st = ld.stacked(gu, gn, gu_rows, 2, E, &w.exp_up[x], &cursor);
        if (st == LMSCORE_STATUS_OK) st = ld.matrix(down[x], dn, ff, E, &w.exp_down[x], &cursor);
        if (st != LMSCORE_STATUS_OK) return st;
    }
    if (cursor != (char *)arena + bytes)
        return fail(LMSCORE_STATUS_INTERNAL, "model: layer %d's experts took %zu bytes of the %zu sized for them", l,
                    (size_t)(cursor - (char *)arena), bytes);

    if (fs > 0) {
        const lmscore_tensor *su[2] = {&t[LMSCORE_LAYER_FFN_GATE_SHEXP], &t[LMSCORE_LAYER_FFN_UP_SHEXP]};
        const std::string sn[2] = {name(LMSCORE_LAYER_FFN_GATE_SHEXP), name(LMSCORE_LAYER_FFN_UP_SHEXP)};
        const int64_t su_rows[2] = {fs, fs};
        st = ld.stacked(su, sn, su_rows, 2, E, &w.shexp_up);
        if (st == LMSCORE_STATUS_OK)
            st = ld.matrix(t[LMSCORE_LAYER_FFN_DOWN_SHEXP], name(LMSCORE_LAYER_FFN_DOWN_SHEXP), fs, E, &w.shexp_down);
        if (st != LMSCORE_STATUS_OK) return st;
    }
    return LMSCORE_STATUS_OK;
}

lmscore_status load_layers(lmscore_model *m, const lmscore_model_desc &d, Loader &ld) {
    const int64_t E = d.n_embd, F = d.n_ff, Q = m->q_dim, KV = m->kv_dim;
    m->layers.resize(d.n_layer);
    for (int l = 0; l < d.n_layer; ++l) {
        const lmscore_tensor *t = d.layers + (size_t)l * LMSCORE_LAYER_ROLE_COUNT;
        auto name = [&](int role) { return "blk." + std::to_string(l) + "." + lmscore_common::layer_role_name(role); };
        lmscore_cuda::LayerWeights &w = m->layers[l];
        lmscore_status st;
#define TRY(expr)                                                                                                 \
    do {                                                                                                          \
        st = (expr);                                                                                              \
        if (st != LMSCORE_STATUS_OK) return st;                                                                   \
    } while (0)
        // As validate_model_tensors accepts: fused or separate q/k/v for any
        // architecture, every bias optional.
        TRY(ld.vector(t[LMSCORE_LAYER_ATTN_NORM], name(LMSCORE_LAYER_ATTN_NORM), E, &w.attn_norm));
        TRY(ld.vector(t[LMSCORE_LAYER_ATTN_NORM_B], name(LMSCORE_LAYER_ATTN_NORM_B), E, &w.attn_norm_b));
        TRY(ld.vector(t[LMSCORE_LAYER_FFN_NORM], name(LMSCORE_LAYER_FFN_NORM), E, &w.ffn_norm));
        TRY(ld.vector(t[LMSCORE_LAYER_FFN_NORM_B], name(LMSCORE_LAYER_FFN_NORM_B), E, &w.ffn_norm_b));
        if (t[LMSCORE_LAYER_WQKV].data) {
            TRY(ld.matrix(t[LMSCORE_LAYER_WQKV], name(LMSCORE_LAYER_WQKV), E, Q + 2 * KV, &w.wqkv));
            TRY(ld.vector(t[LMSCORE_LAYER_BQKV], name(LMSCORE_LAYER_BQKV), Q + 2 * KV, &w.bqkv));
        } else {
            const lmscore_tensor *ws[3] = {&t[LMSCORE_LAYER_WQ], &t[LMSCORE_LAYER_WK], &t[LMSCORE_LAYER_WV]};
            const std::string wn[3] = {name(LMSCORE_LAYER_WQ), name(LMSCORE_LAYER_WK), name(LMSCORE_LAYER_WV)};
            const int64_t rows[3] = {Q, KV, KV};
            TRY(ld.stacked(ws, wn, rows, 3, E, &w.wqkv));
            const lmscore_tensor *bs[3] = {&t[LMSCORE_LAYER_BQ], &t[LMSCORE_LAYER_BK], &t[LMSCORE_LAYER_BV]};
            const std::string bn[3] = {name(LMSCORE_LAYER_BQ), name(LMSCORE_LAYER_BK), name(LMSCORE_LAYER_BV)};
            TRY(ld.stacked_bias(bs, bn, rows, 3, &w.bqkv));
        }
        const int64_t qn = m->qk_norm_full ? Q : m->head_dim, kn = m->qk_norm_full ? KV : m->head_dim;
        TRY(ld.vector(t[LMSCORE_LAYER_ATTN_Q_NORM], name(LMSCORE_LAYER_ATTN_Q_NORM), qn, &w.attn_q_norm));
        TRY(ld.vector(t[LMSCORE_LAYER_ATTN_K_NORM], name(LMSCORE_LAYER_ATTN_K_NORM), kn, &w.attn_k_norm));
        TRY(ld.vector(t[LMSCORE_LAYER_ATTN_POST_NORM], name(LMSCORE_LAYER_ATTN_POST_NORM), E, &w.attn_post_norm));
        TRY(ld.vector(t[LMSCORE_LAYER_FFN_POST_NORM], name(LMSCORE_LAYER_FFN_POST_NORM), E, &w.ffn_post_norm));
        if (d.n_expert > 0) {
            TRY(load_experts(d, t, l, ld, w));
        } else if (m->gated_ffn && !t[LMSCORE_LAYER_FFN_GATE].data) {
            // Phi-3's fused gate_up: already gate rows then up rows.
            TRY(ld.matrix(t[LMSCORE_LAYER_FFN_UP], name(LMSCORE_LAYER_FFN_UP), E, 2 * F, &w.w_up));
        } else if (m->gated_ffn) {
            const lmscore_tensor *ffn[2] = {&t[LMSCORE_LAYER_FFN_GATE], &t[LMSCORE_LAYER_FFN_UP]};
            const std::string fn[2] = {name(LMSCORE_LAYER_FFN_GATE), name(LMSCORE_LAYER_FFN_UP)};
            const int64_t frows[2] = {F, F};
            TRY(ld.stacked(ffn, fn, frows, 2, E, &w.w_up));
        } else {
            TRY(ld.matrix(t[LMSCORE_LAYER_FFN_UP], name(LMSCORE_LAYER_FFN_UP), E, F, &w.w_up));
        }
        TRY(ld.matrix(t[LMSCORE_LAYER_WO], name(LMSCORE_LAYER_WO), Q, E, &w.wo));
        TRY(ld.vector(t[LMSCORE_LAYER_BO], name(LMSCORE_LAYER_BO), E, &w.bo));
        if (d.n_expert == 0) {
            TRY(ld.vector(t[LMSCORE_LAYER_FFN_UP_B], name(LMSCORE_LAYER_FFN_UP_B), F, &w.b_up));
            TRY(ld.matrix(t[LMSCORE_LAYER_FFN_DOWN], name(LMSCORE_LAYER_FFN_DOWN), F, E, &w.w_down));
            TRY(ld.vector(t[LMSCORE_LAYER_FFN_DOWN_B], name(LMSCORE_LAYER_FFN_DOWN_B), E, &w.b_down));
        }
#undef TRY
    }
    return LMSCORE_STATUS_OK;
}

// A dense LM head gets zero rows up to lm_head_rows (internal.h says why);
// a copy when it is tied to the token table, which keeps its own size.
lmscore_status pad_output(lmscore_model *m, Loader &ld) {
    lmscore_cuda::Matrix &w = m->output;
    const int64_t V = w.n_out, V_pad = lm_head_rows((int)V);
    if (w.quantized() || !w.dense || V == V_pad) return LMSCORE_STATUS_OK;
    const size_t es = lmscore_cuda::dtype_size(m->dtype), row = (size_t)w.n_in * es;
    void *padded = nullptr;
    lmscore_status st = ld.alloc((size_t)V_pad * row, &padded);
    if (st != LMSCORE_STATUS_OK) return st;
    cudaError_t err = cudaMemcpy(padded, w.dense, (size_t)V * row, cudaMemcpyDeviceToDevice);
    if (err == cudaSuccess) err = cudaMemset((char *)padded + (size_t)V * row, 0, (size_t)(V_pad - V) * row);
    if (err != cudaSuccess) return lmscore_cuda::cuda_fail(err, "padding the LM head to a multiple of 64 rows");
    w.dense = padded;
    w.n_out = V_pad;
    return LMSCORE_STATUS_OK;
}

lmscore_status load(lmscore_model *m, const lmscore_model_desc &d, Loader &ld) {
    const int64_t E = d.n_embd;
    lmscore_status st = ld.matrix(d.tok_embd, "token_embd.weight", E, d.n_vocab, &m->tok_embd);
    if (st != LMSCORE_STATUS_OK) return st;
    if (d.pos_embd.data) { // gpt2's, which validation made sure of; small, so always dense
        st = ld.dense(d.pos_embd, "position_embd.weight", E, d.n_ctx_train, &m->pos_embd);
        if (st != LMSCORE_STATUS_OK) return st;
    }
    st = ld.vector(d.output_norm, "output_norm.weight", E, &m->output_norm);
    if (st != LMSCORE_STATUS_OK) return st;
    st = ld.vector(d.output_norm_b, "output_norm.bias", E, &m->output_norm_b);
    if (st != LMSCORE_STATUS_OK) return st;
    st = ld.vector(d.rope_freqs, "rope_freqs.weight", m->n_rot / 2, &m->rope_freqs);
    if (st != LMSCORE_STATUS_OK) return st;
    if (d.output.data) {
        st = ld.matrix(d.output, "output.weight", E, d.n_vocab, &m->output);
        if (st != LMSCORE_STATUS_OK) return st;
    } else {
        m->output = m->tok_embd; // tied embeddings
    }
    st = pad_output(m, ld);
    if (st != LMSCORE_STATUS_OK) return st;
    st = load_layers(m, d, ld);
    if (st != LMSCORE_STATUS_OK) return st;
    // The scratch holds a GEMM's weight; an untied quantized token table is
    // only ever looked up row by row, so it does not count.
    auto need = [m](const lmscore_cuda::Matrix &w) {
        if (w.quantized()) m->max_quantized_elems = std::max(m->max_quantized_elems, w.n_in * w.n_out);
    };
    // The LM head's GEMM reads lm_head_rows rows of the scratch, not n_out.
    if (m->output.quantized())
        m->max_quantized_elems = std::max(m->max_quantized_elems, m->output.n_in * lm_head_rows((int)m->output.n_out));
    for (const lmscore_cuda::LayerWeights &w : m->layers) {
        need(w.wqkv);
        need(w.wo);
        need(w.w_up);
        need(w.w_down);
        // Experts one at a time: the scratch holds one expert's matrix.
        need(w.router);
        for (const lmscore_cuda::Matrix &x : w.exp_up) need(x);
        for (const lmscore_cuda::Matrix &x : w.exp_down) need(x);
        need(w.shexp_up);
        need(w.shexp_down);
    }
    cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) return lmscore_cuda::cuda_fail(err, "converting the weights");
    return LMSCORE_STATUS_OK;
}

} // namespace

extern "C" {

LMSCORE_API lmscore_status lmscore_model_load(const lmscore_model_desc *desc, lmscore_backend_params params,
                                              lmscore_model **out) {
    lmscore_cuda::clear_error();
    if (!desc || !out) return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "lmscore_model_load: null argument");
    *out = nullptr;
    if (params.tp_group)
        return fail(LMSCORE_STATUS_UNSUPPORTED, "cuda: tensor parallelism is not built into the CUDA core yet");
    lmscore_status st = check_desc(*desc, params);
    if (st != LMSCORE_STATUS_OK) return st;
    st = lmscore_cuda::use_device(params.device);
    if (st != LMSCORE_STATUS_OK) return st;

    lmscore_model *m = new (std::nothrow) lmscore_model();
    if (!m) return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "model: out of host memory");
    m->hp = *desc;
    m->hp.tok_embd = m->hp.pos_embd = m->hp.output_norm = m->hp.output_norm_b = m->hp.output = lmscore_tensor{};
    m->hp.rope_freqs = lmscore_tensor{};
    m->hp.layers = nullptr;
    m->device = params.device;
    m->dtype = params.precision == LMSCORE_PRECISION_FP32 ? DType::F32 : DType::BF16;
    m->head_dim = lmscore_common::model_head_dim(*desc);
    m->q_dim = desc->n_head * m->head_dim;
    m->kv_dim = desc->n_head_kv * m->head_dim;
    m->qkv_dim = m->q_dim + 2 * m->kv_dim;
    m->hp.swa_layers = nullptr;
    m->gated_ffn = desc->ffn_type == LMSCORE_FFN_SWIGLU || desc->ffn_type == LMSCORE_FFN_GEGLU;
    m->ffn_act = desc->ffn_type == LMSCORE_FFN_SWIGLU ? lmscore_cuda::Activation::Silu
                 : desc->ffn_type == LMSCORE_FFN_GELU_ERF ? lmscore_cuda::Activation::GeluErf
                                                          : lmscore_cuda::Activation::GeluTanh;
    m->norm_kind = desc->norm_type == LMSCORE_NORM_LAYER ? lmscore_cuda::NormKind::Layer : lmscore_cuda::NormKind::RMS;
    m->rope = (lmscore_cuda::RopeKind)desc->rope_type;
    m->qk_norm_full = desc->qk_norm == LMSCORE_QK_NORM_FULL;
    m->parallel_residual = desc->parallel_residual != 0;
    m->embd_scale = desc->embd_scale > 0.f ? desc->embd_scale : 1.f;
    m->attn_scale = desc->attn_scale > 0.f ? desc->attn_scale : 1.f / sqrtf((float)m->head_dim);
    m->attn_softcap = desc->attn_softcap;
    m->final_softcap = desc->final_softcap;
    m->n_rot = desc->rope_type == LMSCORE_ROPE_TYPE_NONE ? 0 : desc->n_rot > 0 ? desc->n_rot : m->head_dim;
    m->n_swa = desc->n_swa;
    m->rope_base = desc->rope_freq_base;
    m->rope_scale = desc->rope_freq_scale > 0.f ? desc->rope_freq_scale : 1.f;
    m->rope_base_swa = desc->rope_freq_base_swa > 0.f ? desc->rope_freq_base_swa : desc->rope_freq_base;
    m->rope_scale_swa = desc->rope_freq_scale_swa > 0.f ? desc->rope_freq_scale_swa : 1.f;
    m->rope_attn_factor = desc->rope_attn_factor > 0.f ? desc->rope_attn_factor : 1.f;
    m->n_router = desc->n_expert > 0 ? desc->n_expert + (desc->n_ff_shexp > 0 ? 1 : 0) : 0;
    try {
        m->swa.assign((size_t)desc->n_layer, 0);
        for (int l = 0; desc->n_swa > 0 && l < desc->n_layer; ++l)
            m->swa[l] = desc->swa_layers ? (desc->swa_layers[l] != 0) : 1;
    } catch (const std::bad_alloc &) {
        delete m;
        return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "model: out of host memory");
    }

    {
        Loader ld(m);
        st = load(m, *desc, ld);
    }
    if (st != LMSCORE_STATUS_OK) {
        lmscore_model_free(m);
        return st;
    }
    *out = m;
    return LMSCORE_STATUS_OK;
}

LMSCORE_API void lmscore_model_free(lmscore_model *model) {
    if (!model) return;
    if (cudaSetDevice(model->device) == cudaSuccess) {
        for (void *p : model->allocations) cudaFree(p);
    }
    cudaGetLastError();
    delete model;
}

} // extern "C"
