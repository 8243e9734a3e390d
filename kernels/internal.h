// internal.h — the CUDA core's definitions of the ABI's opaque handles and
// its error helpers. Host code only; never seen outside kernels/.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include <new>

#include <memory>
#include <string>
#include <vector>

#include "copy_levels.h"
#include "kernels.h"
#include "lmscore.h"
#include "profile.h"

namespace lmscore_cuda {

// Records msg as this thread's last error and returns status.
lmscore_status fail(lmscore_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void clear_error();

// Maps a CUDA error to a status: allocation failures are OUT_OF_MEMORY, the
// rest DEVICE_ERROR, with cudaGetErrorString in the message. The error is
// also taken off the thread's CUDA state, so that a non-sticky error does
// not resurface in a later, unrelated call.
lmscore_status cuda_fail(cudaError_t err, const char *what);
lmscore_status cublas_fail(cublasStatus_t st, const char *what);

// Makes `device` current on this thread: binding/ may call from any OS thread.
lmscore_status use_device(int device);

// Y (n_rows, n_out) = X (n_rows, n_in) * W^T, W (n_out, n_in) as nn.Linear
// stores it, X and W of dtype, Y of y_type, fp32 accumulation (in fp32 mode
// true fp32: no TF32, the check mode's contract).
//
// A plan fixes one cuBLASLt algorithm for a weight shape and every row count
// from 1 to max_rows, without split-K: row i of Y is then bitwise the same
// whatever the other rows of the call, which makes a token's K/V and logits
// independent of the step it ran in (gemm.cpp says why). The descriptors live
// inside the plan, so a plan is made in place and never copied.
struct GemmPlan {
    DType dtype = DType::F32, y_type = DType::F32;
    int n_in = 0, n_out = 0, max_rows = 0;
    int ld_y = 0; // floats (or bf16s) from one row of Y to the next, >= n_out
    bool fixed = false; // false: cublasGemmEx chooses per call (LMSCORE_CUDA_GEMM=heuristic)
    bool bias = false;  // cuBLASLt's BIAS epilogue: each call names an fp32 bias (n_out) to add
    cublasLtMatmulDescOpaque_t op{};
    cublasLtMatrixLayoutOpaque_t w_layout{};
    cublasLtMatmulAlgo_t algo{};
    size_t workspace_bytes = 0;
    // How gemm_plan chose: the heuristic's first (Default), the table's entry
    // (Measured), or the first because the entry is not among the candidates
    // (a table out of date for this cuBLASLt build; gemm_describe says so).
    enum class Choice { Default, Measured, NotACandidate } choice = Choice::Default;

    GemmPlan() = default;
    GemmPlan(const GemmPlan &) = delete;
    GemmPlan &operator=(const GemmPlan &) = delete;
};

// One algorithm a plan may fix, with the workspace it needs at most.
struct GemmAlgo {
    cublasLtMatmulAlgo_t algo;
    size_t workspace_bytes;
};

// What a GEMM runs with: both handles (cublasGemmEx for heuristic plans),
// the workspace and the stream.
struct GemmContext {
    cublasHandle_t blas = nullptr;
    cublasLtHandle_t lt = nullptr;
    void *workspace = nullptr;
    size_t workspace_bytes = 0;
    cudaStream_t stream = nullptr;
};

// Makes *p a fixed plan: of gemm_plan_candidates, the measured choice for
// the shape on this device (gemm_choice) when it is among them, else the
// first. UNSUPPORTED, naming `what` and the shape, when there are none.
// With bias (fp32 Y only), the plan's algorithm is one that takes cuBLASLt's
// BIAS epilogue, and every call must pass a bias.
// ld_y, when > n_out, spaces Y's rows that far apart (0: n_out).
// measured = false skips the measured choice (LMSCORE_CUDA_GEMM=untuned).
lmscore_status gemm_plan(cublasLtHandle_t lt, const char *what, DType dtype, DType y_type, int n_in, int n_out,
                         int max_rows, size_t max_workspace, GemmPlan *p, bool bias = false, int ld_y = 0,
                         bool measured = true);
// Makes *p a plan that leaves the choice to cublasGemmEx on every call.
void gemm_plan_heuristic(GemmPlan *p, DType dtype, DType y_type, int n_in, int n_out, int max_rows, int ld_y = 0);

// The pieces of gemm_plan, for tests that look at every candidate: describe
// the shape; list the algorithms without split-K that cuBLASLt accepts for
// every probed row count up to max_rows within max_workspace, best first
// (its heuristic's order for max_rows rows, then for fewer); fix one.
cublasStatus_t gemm_plan_init(GemmPlan *p, DType dtype, DType y_type, int n_in, int n_out, int max_rows,
                              bool bias = false, int ld_y = 0);
cublasStatus_t gemm_candidates(cublasLtHandle_t lt, GemmPlan *p, size_t max_workspace, std::vector<GemmAlgo> *out);
// The candidates a plan chooses among: those without workspace, or, only
// when there are none, those within max_workspace.
void gemm_plan_candidates(cublasLtHandle_t lt, GemmPlan *p, size_t max_workspace, std::vector<GemmAlgo> *out);
void gemm_plan_fix(GemmPlan *p, const GemmAlgo &a);

// The plan's algorithm and configuration in words, for logs.
std::string gemm_describe(const GemmPlan &p);

// An algorithm's configuration: what identifies it among the candidates.
struct GemmConfig {
    int32_t id = 0, splitk = 0;
    uint32_t tile = 0, stages = 0, reduction = 0, swizzle = 0, custom = 0;
    uint16_t inner = 0, cluster = 0;
    bool operator==(const GemmConfig &o) const {
        return id == o.id && splitk == o.splitk && tile == o.tile && stages == o.stages && reduction == o.reduction &&
               swizzle == o.swizzle && custom == o.custom && inner == o.inner && cluster == o.cluster;
    }
};
GemmConfig gemm_config(const cublasLtMatmulAlgo_t &algo);

// A measured choice (gemm_choices.cpp): on this device with this cuBLASLt,
// the candidate with this configuration was the fastest row-invariant one
// for the shape at `rows` rows, by at least gemm_sweep --tune's margin over
// the default. gemm_plan takes it at any max_rows when it is among the
// shape's candidates; the speed was measured at `rows`.
struct GemmChoice {
    const char *device; // cudaDeviceProp::name
    size_t cublaslt;    // cublasLtGetVersion()
    DType dtype, y_type;
    bool bias;
    int n_in, n_out, ld_y;
    int rows; // the row count it was timed at (not part of the key)
    GemmConfig config;
};
// The table, and the entry for a plan's shape on the current device (null
// when there is none).
const std::vector<GemmChoice> &gemm_choices();
const GemmChoice *gemm_choice(const GemmPlan &p);

// Enqueues Y = X W^T for n_rows <= p.max_rows rows on ctx.stream; with
// accumulate (fp32 Y only), Y += X W^T, rounded once per element. bias
// (n_out fp32) is given exactly when the plan was made with one; it is added
// in the epilogue, each element's own addition, so rows stay independent.
cublasStatus_t gemm(const GemmContext &ctx, const GemmPlan &p, const void *W, const void *X, void *Y, int n_rows,
                    bool accumulate = false, const float *bias = nullptr);

// A weight matrix (n_out, n_in) as it sits in device memory. Dense: in the
// model's dtype, ready for its GEMM. Quantized (bf16 runs, when any of its
// source tensors has a block type): bands of rows, each in its GGML type
// (a dense band converted to bf16 at load), dequantized to bf16 into the
// step's scratch just before the GEMM (step.cpp), so the GEMM and its plan
// are those of a bf16 weight.
struct WeightBand {
    const void *data = nullptr;
    int32_t type = 0; // lmscore_type
    int64_t rows = 0;
};

struct Matrix {
    const void *dense = nullptr;  // null when quantized
    std::vector<WeightBand> bands; // quantized: top to bottom
    int64_t n_in = 0, n_out = 0;
    bool quantized() const { return !bands.empty(); }
};

struct LayerWeights {
    // Vectors are fp32 whatever the precision: they are tiny, and norms and
    // biases are applied in fp32 anyway.
    float *attn_norm = nullptr, *attn_norm_b = nullptr; // null: no norm before attention (OLMo 2)
    Matrix wqkv; // (q_dim + 2*kv_dim, n_embd): llama's q, k, v stacked into one GEMM
    float *bqkv = nullptr;
    // QK_NORM_HEAD: (head_dim) each (Qwen3, Gemma 3); QK_NORM_FULL: (q_dim)
    // and (kv_dim) (OLMo 2).
    float *attn_q_norm = nullptr, *attn_k_norm = nullptr;
    Matrix wo;
    float *bo = nullptr;
    float *attn_post_norm = nullptr, *ffn_post_norm = nullptr; // (n_embd) or null (Gemma 2/3, OLMo 2)
    float *ffn_norm = nullptr, *ffn_norm_b = nullptr; // null: no norm before the FFN (OLMo 2)
    // Gated: (2*n_ff, n_embd), gate rows then up rows (separate tensors
    // stacked, or Phi-3's fused gate_up as it is); ungated: (n_ff, n_embd).
    Matrix w_up;
    float *b_up = nullptr;
    Matrix w_down;
    float *b_down = nullptr;

    // Mixture of experts (n_expert > 0), in place of w_up and w_down.
    // The router: the experts' n_expert rows, then, with a shared expert,
    // the row of its gate (FFN_GATE_INP_SHEXP; zeros, unused, in a layer
    // without one), so that one GEMM gives every logit of a token.
    Matrix router;
    bool shexp_gate = false; // the shared expert's output is scaled by sigmoid(router row n_expert . x)
    // Per expert, each its own matrix so that its GEMM runs over its rows
    // alone and a quantized one dequantizes only its own blocks: (2 n_ff_exp,
    // n_embd), gate rows then up rows; and (n_embd, n_ff_exp).
    std::vector<Matrix> exp_up, exp_down;
    Matrix shexp_up, shexp_down; // the shared expert (n_ff_shexp > 0): as w_up, w_down
};

} // namespace lmscore_cuda

struct lmscore_model {
    lmscore_model_desc hp{}; // hyperparameters; the tensor fields are cleared
    int device = 0;
    lmscore_cuda::DType dtype = lmscore_cuda::DType::BF16;
    int head_dim = 0, q_dim = 0, kv_dim = 0, qkv_dim = 0;
    bool gated_ffn = true;              // SwiGLU, GeGLU; or GELU (tanh or erf) with bias
    lmscore_cuda::Activation ffn_act = lmscore_cuda::Activation::Silu;
    lmscore_cuda::NormKind norm_kind = lmscore_cuda::NormKind::RMS;
    lmscore_cuda::RopeKind rope = lmscore_cuda::RopeKind::None;
    bool qk_norm_full = false;          // QK_NORM_FULL: one norm over each whole projection
    bool parallel_residual = false;
    float embd_scale = 1.f, attn_scale = 0.f; // attn_scale resolved: 1/sqrt(head_dim) when the desc says 0
    float attn_softcap = 0.f, final_softcap = 0.f;
    int n_rot = 0;                      // resolved: head_dim when the desc says 0; 0 without RoPE
    int n_swa = 0;                      // window of the sliding layers
    std::vector<uint8_t> swa;           // (n_layer) 1: a sliding layer (all of them when the desc has none)
    // RoPE of full and of sliding layers, resolved from the desc's 0 defaults.
    float rope_base = 0.f, rope_scale = 1.f, rope_base_swa = 0.f, rope_scale_swa = 1.f, rope_attn_factor = 1.f;

    lmscore_cuda::Matrix tok_embd;      // (n_vocab, n_embd); a quantized one is looked up row by row
    void *pos_embd = nullptr;           // (n_ctx_train, n_embd) of dtype, gpt2
    float *output_norm = nullptr, *output_norm_b = nullptr;
    lmscore_cuda::Matrix output;        // a copy of tok_embd when tied (same memory)
    float *rope_freqs = nullptr;        // (head_dim/2) or null: all 1
    std::vector<lmscore_cuda::LayerWeights> layers;
    // Mixture of experts: the router's rows (n_expert, plus one for a
    // shared expert's gate); 0 in a dense model.
    int n_router = 0;
    std::vector<void *> allocations;    // everything above, freed together
    size_t weight_bytes = 0;            // device memory of the weights, quantized ones at their own size
    int64_t max_quantized_elems = 0;    // of the largest quantized Matrix: a step's dequantization scratch
    // The phase profiler's sums (profile.h); null until a step is made with LMSCORE_PROFILE=1.
    std::unique_ptr<lmscore_common::ProfileTotals> profile;
};

struct lmscore_kv {
    lmscore_model *model = nullptr;
    int block_size = 0, n_blocks = 0; // n_blocks: the ceiling (see lmscore_kv_init)
    // (n_layer, 2, plane_elems / kv_dim slots, kv_dim): each layer's K plane
    // then its V plane, plane_elems elements apart, of which the first
    // n_alloc blocks are backed by memory (kv_pool.cpp). With virtual memory
    // management the planes are reserved at the ceiling's size and mapped as
    // steps reach blocks (data and plane_elems never change); without it the
    // pool is reallocated larger, planes n_alloc blocks long.
    void *data = nullptr;
    int64_t n_alloc = 0;
    int64_t plane_elems = 0;
    struct Mapping {
        size_t offset = 0, bytes = 0; // into the reserved range
        unsigned long long handle = 0; // CUmemGenericAllocationHandle
    };
    bool vmm = false;
    size_t vmm_reserved = 0;      // bytes of address space from data
    size_t vmm_mapped = 0;        // bytes mapped in each plane, from its start
    size_t vmm_granularity = 0;
    std::vector<Mapping> mappings; // every plane's, in the order mapped

    void *k_plane(int layer) const { return plane(2 * layer); }
    void *v_plane(int layer) const { return plane(2 * layer + 1); }
    void *plane(int i) const {
        return (char *)data + (size_t)i * plane_elems * lmscore_cuda::dtype_size(model->dtype);
    }
};

namespace lmscore_cuda {
// kv_reserve_batch grows kv to the blocks a validated batch names
// (LMSCORE_STATUS_OUT_OF_MEMORY, kv unchanged, when that fails).
lmscore_status kv_reserve_batch(lmscore_kv *kv, const lmscore_batch *batch);
} // namespace lmscore_cuda

// Rows of the LM head's GEMM and floats between rows of its logits: the
// vocabulary rounded up to a multiple of 64. cuBLASLt runs an odd output
// dimension on a slow kernel (gpt2-large's 50257 logits: 90 TFLOP/s on an
// H200, 607 at 50304; kernels/tests/results/h200-lm-head-padding.log). A
// dense head is padded with zero rows (model_load.cpp, pad_output); a
// quantized one is dequantized into a scratch of this many rows, the rows
// past the vocabulary left as they are. The logits past n_vocab are never
// read, and each logit depends on its own weight row only, so the padding
// changes no score, and a quantized head and its dequantized dense copy run
// the same plan (the bitwise check of quant_model_tests).
inline int lm_head_rows(int n_vocab) { return (n_vocab + 63) / 64 * 64; }

struct lmscore_step {
    lmscore_model *model = nullptr;
    int max_tokens = 0, max_outputs = 0, logits_rows = 0;
    // Floats between rows of logits: n_vocab rounded up to a multiple of 64
    // (lm_head_rows).
    int logits_ld = 0;
    cudaStream_t stream = nullptr;
    cublasHandle_t cublas = nullptr;
    cublasLtHandle_t cublaslt = nullptr;
    void *cublas_workspace = nullptr;
    // One plan per weight shape, each fixed for 1..max_tokens rows (the LM
    // head for 1..logits_rows): see GemmPlan.
    lmscore_cuda::GemmPlan gemm_qkv, gemm_wo, gemm_up, gemm_down, gemm_head;
    // Mixture of experts, in place of gemm_up and gemm_down: the router,
    // one expert's gate/up and down, the shared expert's. An expert's GEMM
    // runs over the rows routed to it, at most max_tokens (a token chooses
    // an expert at most once), so its plans are fixed for 1..max_tokens
    // rows like the others.
    lmscore_cuda::GemmPlan gemm_router, gemm_exp_up, gemm_exp_down, gemm_shexp_up, gemm_shexp_down;
    // (model->max_quantized_elems) bf16, in the arena: the quantized weight
    // of the next GEMM, dequantized. One for all of them, since the GEMMs of
    // a step run one after another on the stream.
    void *dequant_scratch = nullptr;
    size_t dequant_scratch_bytes = 0;
    // The last dequant_down_bytes of it: a dense FFN's down projection,
    // dequantized beside gate/up (step.cpp's weight()); 0 when unneeded.
    size_t dequant_down_bytes = 0;

    // Activations for max_tokens tokens, one allocation.
    void *arena = nullptr;
    float *x = nullptr;       // (max_tokens, n_embd) fp32 residual stream
    void *hn = nullptr;       // (max_tokens, n_embd) normalised
    // GEMM outputs are fp32 (see kernels.h); the rest is of the model's dtype.
    float *qkv = nullptr;     // (max_tokens, qkv_dim)
    void *q = nullptr;        // (max_tokens, q_dim) rotated queries
    void *attn = nullptr;     // (max_tokens, q_dim)
    float *proj = nullptr;    // (max_tokens, n_embd) output of wo and w_down
    // A dense FFN runs in chunks of ffn_rows tokens (step.cpp); experts use
    // max_tokens.
    int ffn_rows = 0;
    void *ff = nullptr;       // (ffn_rows, 2*n_ff) of dtype when gated, (ffn_rows, n_ff) fp32 ungated
    void *act = nullptr;      // (ffn_rows, n_ff)
    void *out_hn = nullptr;   // (max_outputs, n_embd) final-normed output rows
    float *logits = nullptr;  // (logits_rows, logits_ld) one chunk of output rows
    // Mixture of experts (kernels.h, moe_route .. moe_combine); null in a
    // dense model. ff and act above serve one expert at a time.
    float *moe_logits = nullptr;   // (max_tokens, n_router) router logits, then probabilities
    int32_t *moe_chosen = nullptr; // (max_tokens, n_expert_used) expert ids, increasing
    float *moe_weight = nullptr;   // (max_tokens, n_expert_used)
    int32_t *moe_counts = nullptr; // (n_expert) tokens per expert
    int32_t *moe_pair_pos = nullptr; // (max_tokens, n_expert_used) row in the gathered layout
    void *moe_rows = nullptr;      // (moe_max_rows, n_embd) of dtype: the experts' gathered inputs
    float *moe_y = nullptr;        // (moe_max_rows, n_embd): the experts' outputs, gathered layout
    int moe_row_align = 1, moe_max_rows = 0;
    // The expert counts come back to the host once per layer (the GEMMs
    // take their row counts from the host): a pinned copy, the event that
    // says it arrived, and the starts computed from it.
    int32_t *h_moe_counts = nullptr;
    cudaEvent_t moe_event = nullptr;
    std::vector<int32_t> moe_starts;
    // Results of a step of n outputs and top_n: logprob (n) f32, is_greedy
    // (n) i32, top_ids (n * top_n) i32, top_logprobs (n * top_n) f32.
    void *d_results = nullptr, *h_results = nullptr;
    size_t results_bytes = 0;

    // Step inputs: one pinned host buffer packed per step, one device copy.
    // Grows (rarely) when a step's block tables outgrow it.
    int32_t *h_inputs = nullptr, *d_inputs = nullptr;
    size_t inputs_cap = 0; // int32 words

    std::vector<lmscore_cuda::AttnTile> tiles; // host scratch
    std::vector<int32_t> slot_check;           // (max_tokens) the batch validator's scratch
    // Query heads per attention work item (attention_stack_heads, fixed at
    // init; LMSCORE_CUDA_ATTN_STACK=0 makes it 1): segments are cut into
    // tiles of attention_tile_rows / attn_stack_heads tokens.
    int attn_stack_heads = 1;
    // Shared-prefix groups of tiles (attention_tiles.h): on where the
    // tensor-core kernel runs, unless LMSCORE_CUDA_ATTN_GROUP=0 at init.
    bool attn_groups = false;
    std::vector<lmscore_cuda::AttnGroup> attn_group_scratch; // host scratch
    lmscore_cuda::CopyLevels copy_levels; // host scratch: the step's copies by level (copy_levels.h)
    std::unique_ptr<lmscore_cuda::StepProfile> profile; // null unless LMSCORE_PROFILE=1 at init (profile.h)
};
