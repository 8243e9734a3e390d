/*
 * lmscore.h — the one C ABI between Go and the native cores.
 *
 * Two libraries implement it with the same symbol names:
 *   - the CPU core (csrc/), compiled into the Go binary by cgo;
 *   - the CUDA core (kernels/), built by CMake into liblmscore_cuda.so and
 *     loaded by binding/ at run time with dlopen, so one binary serves both.
 *
 * Division of labour: Go plans, C executes. The Go scheduler decides which
 * tokens to compute, where their K/V go (paged blocks) and which rows to
 * score; a step arrives here as flat, pointer-free int32 arrays and runs in
 * one call. Nothing in this header names a C++ or CUDA type.
 *
 * Conventions (after llama.h):
 *   - opaque handles with init/free pairs;
 *   - every fallible function returns lmscore_status; on failure it leaves
 *     a message readable through lmscore_last_error() on the same thread;
 *   - the caller owns every input and output buffer;
 *   - tensor shapes are given innermost first (GGML's ne order):
 *     a weight of ne = {n_in, n_out} is n_out rows of n_in values,
 *     i.e. PyTorch's nn.Linear layout (out_features, in_features).
 *   - library code never exits or aborts.
 */
#ifndef LMSCORE_H
#define LMSCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LMSCORE_BUILD_SHARED)
#define LMSCORE_API __attribute__((visibility("default")))
#else
#define LMSCORE_API
#endif

/* Bumped on any incompatible change; binding/ refuses a library whose
 * lmscore_abi_version() differs from the header it was compiled with. */
#define LMSCORE_ABI_VERSION 6

/* ---------------------------------------------------------------- status */

typedef enum lmscore_status {
    LMSCORE_STATUS_OK               = 0,
    LMSCORE_STATUS_INVALID_ARGUMENT = 1, /* a bad shape, id, slot or pointer in the input */
    LMSCORE_STATUS_UNSUPPORTED      = 2, /* architecture, tensor type or feature not built in */
    LMSCORE_STATUS_OUT_OF_MEMORY    = 3, /* host or device allocation failed */
    LMSCORE_STATUS_DEVICE_ERROR     = 4, /* a CUDA error; the handle stays usable when it was not sticky */
    LMSCORE_STATUS_INTERNAL         = 5, /* a bug: please report the message */
} lmscore_status;

/* The message of the last failed call made on this thread ("" if none).
 * Valid until the next lmscore call on the same thread. */
LMSCORE_API const char *lmscore_last_error(void);

LMSCORE_API int32_t lmscore_abi_version(void);

/* "cpu" or "cuda"; useful in error messages and logs. */
LMSCORE_API const char *lmscore_backend_name(void);

/* ----------------------------------------------------------------- model */

/* The cores know no architecture by name: a model is described by the
 * features below, and Go (model/archs.go) maps each family onto them. A
 * family that reuses these features needs no change here. */

typedef enum lmscore_norm_type {
    LMSCORE_NORM_RMS   = 0, /* x / sqrt(mean(x^2) + eps) * w */
    LMSCORE_NORM_LAYER = 1, /* (x - mean) / sqrt(var + eps) * w + b (b optional) */
} lmscore_norm_type;

typedef enum lmscore_ffn_type {
    LMSCORE_FFN_SWIGLU   = 0, /* down(silu(gate x) * up x) */
    LMSCORE_FFN_GEGLU    = 1, /* down(gelu_tanh(gate x) * up x): Gemma */
    LMSCORE_FFN_GELU     = 2, /* down(gelu_tanh(up x + b)) + b: gpt2 */
    LMSCORE_FFN_GELU_ERF = 3, /* down(gelu_erf(up x + b)) + b, the exact GELU: GPT-NeoX */
} lmscore_ffn_type;

typedef enum lmscore_qk_norm {
    LMSCORE_QK_NORM_NONE = 0,
    LMSCORE_QK_NORM_HEAD = 1, /* RMSNorm of each q and k head, (head_dim) weights shared by the
                               * heads: Qwen3, Gemma 3 */
    LMSCORE_QK_NORM_FULL = 2, /* RMSNorm over the whole q (n_head*head_dim) and k
                               * (n_head_kv*head_dim) projections: OLMo 2 */
} lmscore_qk_norm;

typedef enum lmscore_rope_type {
    LMSCORE_ROPE_TYPE_NONE = 0, /* no rotation (learned positions or none) */
    LMSCORE_ROPE_TYPE_NORM = 1, /* rotate consecutive pairs (2i, 2i+1) of the first n_rot values of a
                                 * head: llama.cpp LLAMA_ROPE_TYPE_NORM */
    LMSCORE_ROPE_TYPE_NEOX = 2, /* rotate (i, i + n_rot/2): llama.cpp LLAMA_ROPE_TYPE_NEOX */
} lmscore_rope_type;

/* Tensor element types, numbered as GGML numbers them. The quantized types
 * are GGML's blocks (ggml-common.h), a row being whole blocks of 32 (legacy,
 * IQ4_NL) or 256 (K-quants, IQ4_XS) values; a weight is its dequantized
 * value, computed in fp32 as GGML's dequantize_row_* does. Both cores read
 * every type here; the CUDA core keeps quantized matrices quantized in bf16
 * runs and dequantizes each to bf16 on the device just before its GEMM. */
typedef enum lmscore_type {
    LMSCORE_TYPE_F32    = 0,
    LMSCORE_TYPE_F16    = 1,
    LMSCORE_TYPE_Q4_0   = 2,  /* 32: fp16 d, 16 bytes of nibbles; d * (q - 8) */
    LMSCORE_TYPE_Q4_1   = 3,  /* 32: fp16 d, fp16 m, nibbles; d * q + m */
    LMSCORE_TYPE_Q5_0   = 6,  /* 32: fp16 d, 32 fifth bits, nibbles; d * (q - 16) */
    LMSCORE_TYPE_Q5_1   = 7,  /* 32: fp16 d, fp16 m, fifth bits, nibbles; d * q + m */
    LMSCORE_TYPE_Q8_0   = 8,  /* 32: fp16 scale d, then 32 int8 q; value = d * q */
    LMSCORE_TYPE_Q2_K   = 10, /* 256: 4-bit scales/mins per 16, 2-bit q, fp16 d, dmin */
    LMSCORE_TYPE_Q3_K   = 11, /* 256: high bits, 2-bit q, 6-bit scales per 16, fp16 d */
    LMSCORE_TYPE_Q4_K   = 12, /* 256: fp16 d, dmin, 6-bit scales/mins per 32, nibbles */
    LMSCORE_TYPE_Q5_K   = 13, /* 256: as Q4_K plus fifth bits */
    LMSCORE_TYPE_Q6_K   = 14, /* 256: low nibbles, high pairs, int8 scales per 16, fp16 d */
    LMSCORE_TYPE_IQ4_NL = 20, /* 32: fp16 d, nibbles indexing a fixed table of 16 int8 */
    LMSCORE_TYPE_IQ4_XS = 23, /* 256: fp16 d, 6-bit scales per 32, IQ4_NL nibbles */
    LMSCORE_TYPE_BF16   = 30,
} lmscore_type;

typedef struct lmscore_tensor {
    const void *data; /* NULL: absent (optional tensors only) */
    int32_t     type; /* lmscore_type */
    int64_t     ne[2];/* ne[0] innermost; a vector has ne[1] == 1 */
} lmscore_tensor;

/* Per-layer tensor roles. Index: layer * LMSCORE_LAYER_ROLE_COUNT + role.
 * Shapes use nq = n_head*head_dim, nkv = n_head_kv*head_dim. Which roles a
 * model has follows from its features; biases and norms are optional. */
typedef enum lmscore_layer_role {
    LMSCORE_LAYER_ATTN_NORM   = 0,  /* (n_embd); absent: no norm before attention (OLMo 2) */
    LMSCORE_LAYER_ATTN_NORM_B = 1,  /* (n_embd), LayerNorm only */
    LMSCORE_LAYER_WQ          = 2,  /* (n_embd, nq) */
    LMSCORE_LAYER_WK          = 3,  /* (n_embd, nkv) */
    LMSCORE_LAYER_WV          = 4,  /* (n_embd, nkv) */
    LMSCORE_LAYER_BQ          = 5,  /* (nq) */
    LMSCORE_LAYER_BK          = 6,  /* (nkv) */
    LMSCORE_LAYER_BV          = 7,  /* (nkv) */
    LMSCORE_LAYER_WQKV        = 8,  /* (n_embd, nq + 2 nkv), rows q, then k, then v: instead of WQ, WK, WV */
    LMSCORE_LAYER_BQKV        = 9,  /* (nq + 2 nkv) */
    LMSCORE_LAYER_WO          = 10, /* (nq, n_embd) */
    LMSCORE_LAYER_BO          = 11, /* (n_embd) */
    LMSCORE_LAYER_FFN_NORM    = 12, /* (n_embd); absent: no norm before the FFN (OLMo 2) */
    LMSCORE_LAYER_FFN_NORM_B  = 13, /* (n_embd), LayerNorm only */
    LMSCORE_LAYER_FFN_GATE    = 14, /* (n_embd, n_ff), gated FFNs; absent with FFN_UP of 2 n_ff rows,
                                     * gate rows first (Phi-3's fused gate_up) */
    LMSCORE_LAYER_FFN_UP      = 15, /* (n_embd, n_ff), or (n_embd, 2 n_ff) fused as above */
    LMSCORE_LAYER_FFN_UP_B    = 16, /* (n_ff), ungated FFNs */
    LMSCORE_LAYER_FFN_DOWN    = 17, /* (n_ff, n_embd) */
    LMSCORE_LAYER_FFN_DOWN_B  = 18, /* (n_embd) */
    LMSCORE_LAYER_ATTN_Q_NORM = 19, /* QK_NORM_HEAD: (head_dim); QK_NORM_FULL: (nq). RMSNorm after the
                                     * q bias, before RoPE; eps norm_eps */
    LMSCORE_LAYER_ATTN_K_NORM = 20, /* QK_NORM_HEAD: (head_dim); QK_NORM_FULL: (nkv) */
    LMSCORE_LAYER_ATTN_POST_NORM = 21, /* (n_embd): norms the attention output before the residual
                                        * add (Gemma 2/3, OLMo 2) */
    LMSCORE_LAYER_FFN_POST_NORM  = 22, /* (n_embd): the same for the FFN output */
    /* Mixture of experts (n_expert > 0), in place of FFN_GATE/UP/DOWN. The
     * experts' matrices are stacked: expert e's rows follow expert e-1's. */
    LMSCORE_LAYER_FFN_GATE_INP   = 23, /* (n_embd, n_expert): the router's logits */
    LMSCORE_LAYER_FFN_GATE_EXPS  = 24, /* (n_embd, n_ff_exp * n_expert) */
    LMSCORE_LAYER_FFN_UP_EXPS    = 25, /* (n_embd, n_ff_exp * n_expert) */
    LMSCORE_LAYER_FFN_DOWN_EXPS  = 26, /* (n_ff_exp, n_embd * n_expert) */
    /* A shared expert beside the routed ones (Qwen2-MoE), all optional: */
    LMSCORE_LAYER_FFN_GATE_INP_SHEXP = 27, /* (n_embd): its output is scaled by sigmoid(w . x) */
    LMSCORE_LAYER_FFN_GATE_SHEXP = 28, /* (n_embd, n_ff_shexp) */
    LMSCORE_LAYER_FFN_UP_SHEXP   = 29, /* (n_embd, n_ff_shexp) */
    LMSCORE_LAYER_FFN_DOWN_SHEXP = 30, /* (n_ff_shexp, n_embd) */
    LMSCORE_LAYER_ROLE_COUNT     = 31,
} lmscore_layer_role;

typedef struct lmscore_model_desc {
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;    /* width of one q, k or v head; 0: n_embd / n_head */
    int32_t n_ff;        /* the dense FFN's width (unused when n_expert > 0) */
    int32_t n_ctx_train; /* positions must stay below this */

    int32_t norm_type;   /* lmscore_norm_type, of every norm but the q/k norms (always RMS) */
    float   norm_eps;    /* epsilon of every norm */
    int32_t ffn_type;    /* lmscore_ffn_type */
    int32_t qk_norm;     /* lmscore_qk_norm */
    /* 0: x + attn(norm(x)), then h + ffn(norm(h)). 1: x + attn(norm(x)) +
     * ffn(ffn_norm(x)), both reading the layer's input (GPT-NeoX). */
    int32_t parallel_residual;
    float   embd_scale;  /* token embeddings are multiplied by this; 0: 1 (Gemma: sqrt(n_embd)) */

    /* Attention. Scores are q.k * attn_scale (0: 1/sqrt(head_dim)); with
     * attn_softcap > 0 they become attn_softcap * tanh(score / attn_softcap)
     * before the mask and softmax (Gemma 2). */
    float   attn_scale;
    float   attn_softcap;
    /* Sliding-window attention: in a sliding layer, the token at position p
     * attends to positions p - n_swa < q <= p only. n_swa 0: none.
     * swa_layers: n_layer flags, 1 for a sliding layer; NULL: every layer
     * slides when n_swa > 0. */
    int32_t        n_swa;
    const uint8_t *swa_layers;

    /* RoPE. Pair i of the first n_rot values of a head (0: all of head_dim)
     * turns by pos * rope_freq_scale * rope_freq_base^(-2i/n_rot) /
     * rope_freqs[i]; cos and sin are multiplied by rope_attn_factor.
     * rope_freq_scale and rope_attn_factor 0 mean 1. Sliding layers use
     * rope_freq_base_swa (0: rope_freq_base) and rope_freq_scale_swa (0: 1),
     * and rope_freqs too. */
    int32_t rope_type;   /* lmscore_rope_type */
    int32_t n_rot;
    float   rope_freq_base;
    float   rope_freq_scale;
    float   rope_attn_factor;
    float   rope_freq_base_swa;
    float   rope_freq_scale_swa;

    /* Mixture of experts: n_expert > 0 routes each token to n_expert_used of
     * n_expert experts of width n_ff_exp. The router's logits go through a
     * softmax over all experts; the n_expert_used largest probabilities
     * (lower expert id first on ties) weight their experts, renormalized to
     * sum 1 when expert_weights_norm is 1. The weighted outputs are summed
     * in increasing expert id. A shared expert (n_ff_shexp > 0) adds its
     * output, scaled by sigmoid of FFN_GATE_INP_SHEXP when present. */
    int32_t n_expert;
    int32_t n_expert_used;
    int32_t n_ff_exp;
    int32_t n_ff_shexp;
    int32_t expert_weights_norm;

    float   final_softcap; /* logits become c * tanh(logit / c) when c > 0 (Gemma 2) */

    lmscore_tensor tok_embd;      /* (n_embd, n_vocab) */
    lmscore_tensor pos_embd;      /* (n_embd, n_ctx_train): learned positions (gpt2), optional */
    lmscore_tensor output_norm;   /* (n_embd) */
    lmscore_tensor output_norm_b; /* (n_embd), LayerNorm only */
    lmscore_tensor output;        /* (n_embd, n_vocab); absent: tied to tok_embd */

    const lmscore_tensor *layers; /* n_layer * LMSCORE_LAYER_ROLE_COUNT entries */

    /* (n_rot/2), F32, positive: the frequency factors rope_freqs[i] above,
     * as llama.cpp's ggml_rope_ext applies freq_factors (Llama 3.1's
     * rope_freqs.weight, Phi-3's LongRoPE factors). Absent: all 1. */
    lmscore_tensor rope_freqs;
} lmscore_model_desc;

typedef enum lmscore_precision {
    LMSCORE_PRECISION_FP32 = 0, /* CPU: always; CUDA: the check mode */
    LMSCORE_PRECISION_BF16 = 1, /* CUDA: bf16 weights and activations, fp32 accumulation */
} lmscore_precision;

/* Tensor parallelism: a group of size ranks, each a model loaded with the
 * group and its rank in lmscore_backend_params. Rank r's description holds
 * its shard of every layer: n_head, n_head_kv and n_ff are the shard's (the
 * whole model's divided by size), WQ/WK/WV (or WQKV: its q, k and v rows),
 * their biases and FFN_GATE/FFN_UP hold the shard's output rows
 * (column-parallel), WO and FFN_DOWN the shard's input columns
 * (row-parallel), and everything else is whole. After the attention's
 * output projection and after the FFN's down projection the ranks' partial
 * rows are summed, in rank order, so that every rank holds the same bits;
 * their biases are added after the sum. Each rank's KV pool holds its own
 * KV heads.
 *
 * A shard's description sets head_dim (n_embd / n_head, the default, is
 * the whole model's head width only when not split).
 *
 * All size ranks are loaded, each with one step executor and its KV pool,
 * made alike; then every step runs the same batch on every rank at once,
 * each from its own thread, one step at a time per group: a rank's
 * lmscore_step_run returns once all have run it, and a rank that never
 * calls leaves the others waiting. When one rank fails before computing (a
 * bad batch, no memory), every rank's call fails before it computes (a
 * pool may have grown) and the group stays usable; a failure after that
 * breaks the group, and every later step on it fails (reload the ranks).
 * Mixtures of experts and whole-projection q/k norms (QK_NORM_FULL) are
 * not split: model_load refuses them. (ABI 6.) */
typedef struct lmscore_tp_group lmscore_tp_group;

/* size in [1, 64]. A backend that does not split models returns
 * LMSCORE_STATUS_UNSUPPORTED. The group must outlive its ranks' models. */
LMSCORE_API lmscore_status lmscore_tp_group_create(int32_t size, lmscore_tp_group **out);
LMSCORE_API void lmscore_tp_group_free(lmscore_tp_group *group);

typedef struct lmscore_backend_params {
    int32_t n_threads; /* CPU: worker threads; <= 0 means all cores; capped at the cores available */
    int32_t device;    /* CUDA: device ordinal */
    int32_t precision; /* lmscore_precision */
    lmscore_tp_group *tp_group; /* NULL: the whole model; else this model is rank tp_rank's shard */
    int32_t tp_rank;
} lmscore_backend_params;

LMSCORE_API lmscore_backend_params lmscore_backend_default_params(void);

typedef struct lmscore_model lmscore_model;

/* Loads (copies and converts) the weights described by desc. The tensor data
 * need only stay valid for the duration of the call. */
LMSCORE_API lmscore_status lmscore_model_load(const lmscore_model_desc *desc,
                                              lmscore_backend_params params,
                                              lmscore_model **out);
LMSCORE_API void lmscore_model_free(lmscore_model *model);

/* ------------------------------------------------------------- KV blocks */

/* A pool of n_blocks KV blocks of block_size token slots each, for every
 * layer. Block ids run 0..n_blocks-1; the scheduler owns their allocation.
 * Slot s = block * block_size + offset.
 *
 * n_blocks is a ceiling: kv_init allocates (almost) nothing, and
 * lmscore_step_run grows the pool, in segments of blocks, to the highest
 * block id a step names, zeroed. When growing fails, step_run returns
 * LMSCORE_STATUS_OUT_OF_MEMORY before computing anything, and the pool
 * keeps its blocks and contents. Low block ids cost the least memory. */
typedef struct lmscore_kv lmscore_kv;

/* Bytes one block takes on this backend (all layers, K and V). */
LMSCORE_API lmscore_status lmscore_kv_block_bytes(const lmscore_model *model,
                                                  int32_t block_size,
                                                  int64_t *out_bytes);
LMSCORE_API lmscore_status lmscore_kv_init(lmscore_model *model,
                                           int32_t block_size, int32_t n_blocks,
                                           lmscore_kv **out);
LMSCORE_API void lmscore_kv_free(lmscore_kv *kv);

/* ----------------------------------------------------------------- steps */

/* One step: a flat, unpadded batch of tokens from many sequence segments.
 *
 * A segment is a run of consecutive positions of one sequence. Its block
 * table lists, in position order, the blocks holding that sequence's K/V
 * from position 0 up to its last token in this step; cached positions and
 * the ones this step writes alike. Token t of segment s attends to every
 * position p <= positions[t] of its sequence, reading position p from
 * block block_indices[block_indptr[s] + p / block_size], offset
 * p % block_size. Layer by layer, all of a step's K/V writes happen
 * first, then the block copies, then that layer's attention reads. */
typedef struct lmscore_batch {
    int32_t        n_tokens;
    const int32_t *token_ids;      /* (n_tokens) */
    const int32_t *positions;      /* (n_tokens) absolute position in its sequence */
    const int32_t *slots;          /* (n_tokens) where its K/V is written; -1: its K/V is already
                                    * cached at its position (a recomputed last context token,
                                    * run only for its logits) and is not written again */

    int32_t        n_segments;
    const int32_t *seg_token_start;/* (n_segments + 1) CSR over tokens; must start at 0, end at n_tokens */
    const int32_t *block_indptr;   /* (n_segments + 1) CSR over block_indices */
    const int32_t *block_indices;  /* (block_indptr[n_segments]) */

    /* Copy the K/V of the first copy_n_tokens[i] slots of block copy_src[i]
     * into block copy_dst[i]: in each layer after the step's K/V writes and
     * before its attention, in array order. So a copy may read slots this
     * step writes (a branch copies its parent's partial block in the step
     * that computes both) or another copy's destination (since ABI 5;
     * up to ABI 4 copies ran before the step). A copy-only step (n_tokens == 0)
     * copies every layer. */
    int32_t        n_copies;
    const int32_t *copy_src;
    const int32_t *copy_dst;
    const int32_t *copy_n_tokens;

    /* Output rows: the log-probability of out_target[i] predicted at the
     * step token out_token_index[i] (i.e. the next-token distribution after it). */
    int32_t        n_outputs;
    const int32_t *out_token_index;/* (n_outputs) */
    const int32_t *out_target;     /* (n_outputs) */
    int32_t        top_n;          /* >= 0; also report the top_n most likely tokens per row */
} lmscore_batch;

typedef struct lmscore_batch_result {
    float   *logprob;   /* (n_outputs) natural log, fp32 log-softmax over the whole vocabulary */
    uint8_t *is_greedy; /* (n_outputs) 1 when the target's logit equals the maximum logit */
    int32_t *top_ids;   /* (n_outputs, top_n) in decreasing probability; may be NULL when top_n == 0 */
    float   *top_logprobs; /* (n_outputs, top_n) */
} lmscore_batch_result;

/* A step executor: the scratch space for steps of up to max_tokens tokens
 * and max_outputs output rows, sized once. Not safe for concurrent use;
 * create one per thread of control. */
typedef struct lmscore_step lmscore_step;

LMSCORE_API lmscore_status lmscore_step_init(lmscore_model *model,
                                             int32_t max_tokens, int32_t max_outputs,
                                             lmscore_step **out);
LMSCORE_API void lmscore_step_free(lmscore_step *step);

/* Runs one batch. Validates the whole batch first and returns
 * LMSCORE_STATUS_INVALID_ARGUMENT, before touching the KV pool, if any of
 * these fails (both backends check the same rules):
 *   - n_tokens <= max_tokens and n_outputs <= max_outputs of the step;
 *   - token ids < n_vocab, positions < n_ctx_train, slots -1 or inside the
 *     pool, block ids inside the pool, copy_n_tokens <= block_size;
 *   - seg_token_start and block_indptr start at 0 and are monotone,
 *     seg_token_start[n_segments] == n_tokens, no segment is empty;
 *   - positions are consecutive within a segment, its block table reaches
 *     its last position, each written slot is the one the block table gives
 *     its position, and no two tokens write one slot;
 *   - out_token_index < n_tokens, out_target < n_vocab, 0 <= top_n <= n_vocab,
 *     and every array and result buffer that is needed is non-NULL.
 * n_tokens == 0 is allowed (a step of block copies only). Then it grows the
 * KV pool to the blocks the batch names (LMSCORE_STATUS_OUT_OF_MEMORY, the
 * pool untouched, when that fails).
 *
 * Steps on one model run one at a time (the CPU core shares one thread
 * pool per model); a step or pool must not outlive its model. */
LMSCORE_API lmscore_status lmscore_step_run(lmscore_step *step, lmscore_kv *kv,
                                            const lmscore_batch *batch,
                                            lmscore_batch_result *result);

/* --------------------------------------------------------------- profile */

/* The phase profiler. With LMSCORE_PROFILE=1 in the environment when a step
 * executor is made (lmscore_step_init reads it; any value but "", "0" or
 * "1" is INVALID_ARGUMENT there), every step it runs is timed phase by
 * phase, and the times add up per model over all its steps. Off, a step
 * costs nothing more than a test of a null pointer per phase.
 *
 * Writes one JSON object, NUL-terminated, into buf when it fits in cap
 * bytes, and always sets *needed to the bytes it takes, the NUL included:
 * a caller with *needed > cap calls again with a larger buffer (buf may be
 * NULL with cap 0 to ask). The object:
 *
 *   {"backend": "cpu" | "cuda", "enabled": false}
 *       no step of this model was profiled; or
 *   {"backend": ..., "enabled": true, "clock": how phases were timed,
 *    "steps": steps profiled, "dropped_steps": steps that ran profiled but
 *    are in no sum (they failed, or their timing did),
 *    "wall_ms": host time inside those steps' lmscore_step_run,
 *    "host":   [{"name": ..., "ms": ..., "count": ...}, ...],
 *    "phases": [{"name": ..., "ms": ..., "count": ...}, ...]}
 *
 * "host" cuts each step's wall time into consecutive laps (validation,
 * packing, launching, waiting, ...): they sum to wall_ms. "phases" are the
 * computing phases in step order, summed over steps and layers (count: how
 * many times each ran): on the CUDA core the device's time between CUDA
 * events on the step's stream, named as the step names its launches
 * ("qkv gemm", "attention", ...); on the CPU core host time. Phases never
 * overlap and lie inside the steps, so wall_ms minus their sum is the time
 * spent on nothing else: on CUDA, the device's idle gaps within the calls.
 * Milliseconds are fp64 sums; on CUDA each phase's time includes any gap
 * before its launch reached the device. Phase names are the cores' own
 * and may change between versions; the keys above may not. */
LMSCORE_API lmscore_status lmscore_profile_report(const lmscore_model *model, char *buf, size_t cap,
                                                  size_t *needed);

/* ------------------------------------------------------- the function list */

/* Every function above, once, in the order of this header, as
 * X(return type, name without the lmscore_ prefix, parameter list).
 * binding/ and kernels/tests expand it into their tables of function
 * pointers and their dlsym lists, and check each entry's type against the
 * declaration above; a function added here reaches every table at once. */
#define LMSCORE_ABI_FUNCTIONS(X)                                                          \
    X(const char *, last_error, (void))                                                   \
    X(int32_t, abi_version, (void))                                                       \
    X(const char *, backend_name, (void))                                                 \
    X(lmscore_status, tp_group_create, (int32_t, lmscore_tp_group **))                    \
    X(void, tp_group_free, (lmscore_tp_group *))                                          \
    X(lmscore_backend_params, backend_default_params, (void))                             \
    X(lmscore_status, model_load,                                                         \
      (const lmscore_model_desc *, lmscore_backend_params, lmscore_model **))             \
    X(void, model_free, (lmscore_model *))                                                \
    X(lmscore_status, kv_block_bytes, (const lmscore_model *, int32_t, int64_t *))        \
    X(lmscore_status, kv_init, (lmscore_model *, int32_t, int32_t, lmscore_kv **))        \
    X(void, kv_free, (lmscore_kv *))                                                      \
    X(lmscore_status, step_init, (lmscore_model *, int32_t, int32_t, lmscore_step **))    \
    X(void, step_free, (lmscore_step *))                                                  \
    X(lmscore_status, step_run,                                                           \
      (lmscore_step *, lmscore_kv *, const lmscore_batch *, lmscore_batch_result *))      \
    X(lmscore_status, profile_report, (const lmscore_model *, char *, size_t, size_t *))

#ifdef __cplusplus
}
#endif

#endif /* LMSCORE_H */
