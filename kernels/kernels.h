// kernels.h — the CUDA kernels of lmscore's CUDA core, as host launchers.
//
// Each launcher takes raw device pointers plus sizes, enqueues its work on
// `stream` and returns the launch's cudaError_t; none synchronises. Nothing
// here names a framework type, so kernels/tests can drive every kernel
// directly against a CPU reference.
//
// Weights, and the activations that feed a GEMM or the KV pool, are either
// fp32 or bf16 (DType). GEMMs accumulate in fp32 and write fp32, and the
// kernels after them read fp32 and round once, when they write the next
// GEMM's input: bf16 mode rounds each value as few times as it can. The one
// exception is a gated FFN's gate/up GEMM, which writes the model's type: its
// output is the widest of a step (2 n_ff a token) and only the elementwise
// gated activation reads it: fp32 there doubled the bytes that GEMM writes and
// the activation (bandwidth-bound) reads, for one rounding that bf16 engines
// (HF's) make as well.
// Norms, RoPE, softmax
// and log-softmax compute in fp32; the residual stream and every vector
// parameter (norm weights, biases) are fp32.
// Shapes are written (rows, cols), row-major, innermost last.
#pragma once

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

namespace lmscore_cuda {

enum class DType : int { F32 = 0, BF16 = 1 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

// Query rows per attention work item, per kernel: the SIMT kernel's 16 x 16
// threads cover 64 x 64 (rows x keys) tiles; the tensor-core kernel's four
// warps own 16 rows each (attention_tc.cu's MT says why not 32). The host
// cuts every segment into tiles of at most attention_tile_rows(...) rows
// (tokens times stacked heads).
constexpr int kAttnTileQ = 64;
constexpr int kAttnTileQTc = 64;

// The largest top_n the one-pass log-softmax kernel handles: each thread
// keeps a sorted list of this length in local memory. Larger top_n (up to
// n_vocab) take a slower second kernel of top_n passes.
constexpr int kMaxTopN = 64;

// One attention work item: tokens [tok_begin, tok_end) of one segment, whose
// block table starts at block_indices[blk_begin].
struct AttnTile {
    int32_t tok_begin;
    int32_t tok_end;
    int32_t blk_begin;
    int32_t n_blocks; // entries of this segment's block table
};

// Several tiles of different segments run as one work item of the
// tensor-core kernel (attention_tiles.h cuts them): tiles [tile_begin,
// tile_end), their query rows concatenated (at most kAttnTileQTc in all), whose
// block tables hold the same block ids for positions [0, shared_keys). Key
// tiles inside that common prefix are read once for all the rows; the rest
// are run member by member, the other members' rows masked.
struct AttnGroup {
    int32_t tile_begin;
    int32_t tile_end;
    int32_t shared_keys;
};
static_assert(sizeof(AttnTile) == 4 * sizeof(int32_t) && sizeof(AttnGroup) == 3 * sizeof(int32_t),
              "the step uploads tiles and groups as int32 words");

// Head dimensions the attention kernel is instantiated for.
bool attention_supports_head_dim(int head_dim);

// ---------------------------------------------------------------- weights

// Converts n elements of a GGML-typed tensor (src, on the device; type any
// lmscore_type, rows of ne0 values) into dst (dtype). Dense sources may have
// any length; block types go through dequantize_rows.
cudaError_t convert_tensor(const void *src, int32_t src_type, int64_t ne0, int64_t n,
                           void *dst, DType dst_type, cudaStream_t stream);

// Whether dequantize_rows reads `type`: every lmscore_type (dequant.cuh holds
// the layouts).
bool dequant_supports(int32_t type);
// Bytes of one row of ne0 values of `type`; -1 when ne0 is not whole blocks
// or the type is not an lmscore_type.
int64_t dequant_row_bytes(int32_t type, int64_t ne0);

// dst (n_rows, ne0) of dst_type = src (n_rows rows of ne0 values of GGML
// type `type`, each row dequant_row_bytes long): each value computed in fp32
// exactly as GGML's dequantize_row_* computes it, then rounded once to
// dst_type. ne0 must be a multiple of 8 and of the type's block
// (cudaErrorInvalidValue else).
cudaError_t dequantize_rows(const void *src, int32_t type, int64_t ne0, int64_t n_rows, void *dst,
                            DType dst_type, cudaStream_t stream);

// ------------------------------------------------------------- embeddings

// x (n_tokens, n_embd) fp32 = tok_embd[token_ids[t]] * tok_scale (+
// pos_embd[positions[t]] when pos_embd is not null). pos_embd is (rows,
// n_embd) of dtype; tok_embd is (rows, n_embd) of GGML type tok_type:
// dtype's own (F32 or BF16), or any other, whose looked-up rows are
// dequantized and rounded to dtype, as if the table had been converted at
// load (n_embd a multiple of 8 then). tok_scale is lmscore_model_desc::
// embd_scale (Gemma's sqrt(n_embd)); the product is taken in fp32, after the
// table's rounding.
cudaError_t embed(const int32_t *token_ids, const int32_t *positions, const void *tok_embd, int32_t tok_type,
                  const void *pos_embd, DType dtype, int n_tokens, int n_embd, float tok_scale, float *x,
                  cudaStream_t stream);

// ------------------------------------------------------------------ norms

enum class NormKind : int { RMS = 0, Layer = 1 };

// out[i] (n_rows, n) dtype = norm(x[rows ? rows[i] : i]) * w (+ b), in fp32.
// RMS: x / sqrt(mean(x^2) + eps); Layer: (x - mean) / sqrt(var + eps).
cudaError_t norm(NormKind kind, const float *x, const int32_t *rows, int n_rows, int n,
                 const float *w, const float *b, float eps, void *out, DType dtype,
                 cudaStream_t stream);

// x (n_rows, n) fp32 += norm(y[i] + y_bias) * w, in fp32: a post-norm (Gemma
// 2/3, OLMo 2) fused with the residual add it feeds. y_bias (n) may be null;
// w is required, the norm itself has no bias (lmscore.h has no post-norm
// bias role).
cudaError_t norm_residual_add(NormKind kind, const float *y, const float *y_bias, int n_rows, int n,
                              const float *w, float eps, float *x, cudaStream_t stream);

// out (n_rows, n) of dtype = x rounded to dtype: a GEMM's input where the
// model has no norm before it (OLMo 2's missing pre-norms).
cudaError_t store_rows(const float *x, int64_t n, void *out, DType dtype, cudaStream_t stream);

// Per-head RMSNorm in place, in fp32 (qwen3's q and k norms, on the qkv
// GEMM's output before RoPE). x is (n_tokens, row_stride) fp32; in each row,
// the n_heads heads of head_dim values from column col0 on become
// x / sqrt(mean(x^2) + eps) * w, w (head_dim) shared by the heads. A norm
// over a whole projection (OLMo 2's QK_NORM_FULL) is one head of
// n_head * head_dim values.
cudaError_t head_rms_norm(float *x, int n_tokens, int row_stride, int col0, int n_heads, int head_dim,
                          const float *w, float eps, cudaStream_t stream);

// ---------------------------------------------------- rope and KV writing

enum class RopeKind : int { None = 0, Norm = 1, Neox = 2 }; // as lmscore_rope_type

struct RopeKVParams {
    const float *qkv; // (n_tokens, (n_head + 2*n_head_kv) * head_dim) fp32: q heads, k heads, v heads
    const float *bias;// ((n_head + 2*n_head_kv) * head_dim) or null
    const int32_t *positions; // (n_tokens)
    const int32_t *slots;     // (n_tokens) KV slot, -1: don't write
    void *q_out;      // (n_tokens, n_head * head_dim) of dtype
    void *k_cache;    // (n_slots, n_head_kv * head_dim) of dtype, this layer's
    void *v_cache;    // (n_slots, n_head_kv * head_dim) of dtype
    int n_tokens, n_head, n_head_kv, head_dim;
    RopeKind rope;
    float freq_base;
    const float *freq_factors; // (n_rot/2) fp32 or null (all 1): pair i's frequency is divided by it
    // The lmscore_model_desc fields of the same names, for this layer's kind
    // (sliding layers have their own base and scale); 0 means the default:
    // n_rot head_dim, freq_scale 1, attn_factor 1.
    int n_rot;
    float freq_scale, attn_factor;
};

// Adds the bias, rotates the first n_rot values of each q and k head by
// their position (pair i by pos * freq_scale * freq_base^(-2i/n_rot) /
// freq_factors[i], computed in double; cos and sin times attn_factor,
// applied in fp32; values n_rot.. pass unrotated), writes q to q_out and
// k, v into their slots.
cudaError_t rope_kv_write(const RopeKVParams &p, DType dtype, cudaStream_t stream);

// -------------------------------------------------------------- attention

struct AttentionParams {
    const void *q;               // (n_tokens, n_head * head_dim), rotated
    const void *k_cache;         // (n_slots, n_head_kv * head_dim) of this layer
    const void *v_cache;
    const int32_t *positions;    // (n_tokens)
    const AttnTile *tiles;       // (n_tiles)
    // (n_groups) the tensor-core kernel's work items, each a run of tiles;
    // null: every tile is a work item of its own. Only the tensor-core path
    // takes groups (bf16, head_dim 64 or 128, not force_simt).
    const AttnGroup *groups;
    const int32_t *block_indices;// CSR block tables (see lmscore_batch)
    void *out;                   // (n_tokens, n_head * head_dim)
    int n_tiles, n_head, n_head_kv, head_dim, block_size;
    float scale;                 // usually 1/sqrt(head_dim)
    int force_simt;              // tests: take the SIMT kernel even where tensor cores apply
    int force_stages;            // tests: 2 or 3 K/V stages on the tensor-core path; 0: the device's choice
    // > 1: the tiles were cut for head stacking (attention_stack_heads):
    // each holds at most attention_tile_rows / stack_heads tokens, and one
    // work item runs them for all stack_heads query heads of one kv head, so
    // that a short segment fills the query rows of a tile and its K/V are
    // read once per kv head rather than once per query head. 0 or 1: one
    // query head per work item, tiles of up to attention_tile_rows tokens.
    int stack_heads;
    // > 0: scores become softcap * tanh(score / softcap) before the mask
    // (Gemma 2), score being q.k * scale.
    float softcap;
    // > 0: sliding window, the token at position p attends to p - window <
    // q <= p only; the key tiles wholly before a tile's windows are skipped
    // (never read), not just masked. 0: every q <= p.
    int window;
    int n_groups;
};

// Flash-style paged attention: each query token t attends to every position
// p <= positions[t] of its segment's sequence (p > positions[t] - window
// with a window), reading K/V of position p from
// slot block_indices[blk_begin + p / block_size] * block_size + p % block_size.
// Online softmax in fp32; grouped-query heads share kv head h / (n_head / n_head_kv).
// bf16 with head_dim 64 or 128 runs on tensor cores (attention_tc.cu), the
// rest on the SIMT kernel (attention.cu).
cudaError_t paged_attention(const AttentionParams &p, DType dtype, cudaStream_t stream);

bool attention_tc_supports(int head_dim);
// Whether paged_attention takes the tensor-core kernel: bf16, a head_dim it
// supports, not forced onto the SIMT one. The one place that decides, for
// the dispatch and for the host's tiles.
bool attention_uses_tc(DType dtype, int head_dim, bool force_simt = false);
// Query rows of a work item on that path: kAttnTileQTc or kAttnTileQ.
int attention_tile_rows(DType dtype, int head_dim, bool force_simt = false);
// The stack_heads the tensor-core kernel takes for this model: n_head /
// n_head_kv when that is above 1 (grouped-query attention) and the
// tensor-core path applies (bf16, head_dim 64 or 128), else 1. Each query
// row goes through the same arithmetic either way, so stacking changes no
// result bit (kernel_tests checks this); it only stops short segments from
// taking a whole tile per query head.
int attention_stack_heads(DType dtype, int head_dim, int n_head, int n_head_kv);
cudaError_t paged_attention_tc(const AttentionParams &p, cudaStream_t stream); // bf16 only
// K/V shared-memory stages the tensor-core kernel takes at head_dim on a
// device with smem_per_sm bytes of shared memory per SM: 3 where the blocks
// per SM its registers are cut for (three at D = 64, two at 128) fit with
// three stages (D = 64 on sm_90), else 2. Host code, for the launch and its
// test.
int attention_tc_stages(int head_dim, size_t smem_per_sm);

// ------------------------------------------------- activations, residual

// The FFN's nonlinearities: SiLU (SwiGLU), GELU with GPT-2's tanh
// approximation (GeGLU, gpt2) and the exact, erf GELU (GPT-NeoX).
enum class Activation : int { Silu = 0, GeluTanh = 1, GeluErf = 2 };

// out (n_tokens, n_ff) = act(gu[:, :n_ff]) * gu[:, n_ff:], gu (n_tokens,
// 2*n_ff): the gate/up GEMM's output, gate columns first. Both of dtype: the
// gate/up GEMM stores the model's type (step.cpp), unlike the other GEMMs.
cudaError_t gated_activation(Activation act, const void *gu, int n_tokens, int n_ff, void *out, DType dtype,
                             cudaStream_t stream);

// out (n_tokens, n_ff) of dtype = act(up + bias); up of dtype (the up GEMM's
// output), the sum in fp32; bias (n_ff, fp32) may be null.
cudaError_t activation_bias(Activation act, const void *up, const float *bias, int n_tokens, int n_ff, void *out,
                            DType dtype, cudaStream_t stream);

// x (n_tokens, n) fp32 += y (fp32) + bias (n, fp32, may be null).
cudaError_t residual_add(float *x, const float *y, const float *bias, int n_tokens, int n,
                         cudaStream_t stream);

// ---------------------------------------------------- mixture of experts

// A layer of experts (lmscore.h's n_expert > 0) runs, in step.cpp: the
// router GEMM into logits; moe_route; moe_group; moe_gather; for each
// expert with rows, its gate/up GEMM over its gathered rows, the SwiGLU and
// its down GEMM into its rows of y; moe_combine. Each expert's rows are
// gathered so that its products run as one GEMM over them (never one per
// token), through the fixed plan of its shape, which makes a row's result
// independent of how many rows the expert got (gemm.cpp).
//
// The gathered layout: experts in increasing id, expert x's rows starting
// at start[x] = sum over y < x of counts[y] rounded up to a multiple of
// row_align (moe_expert_starts), its tokens in step order. row_align
// (moe_row_align) keeps every expert's first row on a 256-byte boundary, as
// the GEMM plans' algorithms were chosen for 256-byte aligned operands.

// Per token, lmscore.h's routing in fp32, in the order of the CPU core's
// (csrc/cpu/moe.cpp, route): the softmax over all n_expert logits (max,
// exp, sum, divide), k passes for the largest untaken probability (strict >,
// so the lower id wins a tie), the k chosen sorted by increasing id, and,
// with norm, each weight divided by their sum.
// logits (n_tokens, stride) fp32: the router's n_expert logits first in each
// row, overwritten by the probabilities (columns from n_expert on are not
// touched). chosen, weight (n_tokens, k). counts (n_expert): how many tokens
// chose each expert; zeroed by this call first.
cudaError_t moe_route(float *logits, int n_tokens, int stride, int n_expert, int k, bool norm, int32_t *chosen,
                      float *weight, int32_t *counts, cudaStream_t stream);

// pair_pos (n_tokens, k): the gathered row of token t's j-th expert, from
// moe_route's chosen and counts: within an expert, its tokens in step order
// (a stable counting sort, so the layout follows from the choices alone).
cudaError_t moe_group(const int32_t *chosen, const int32_t *counts, int n_tokens, int n_expert, int k, int row_align,
                      int32_t *pair_pos, cudaStream_t stream);

// rows[pair_pos[t * k + j]] = h[t] for every token t and choice j; h and
// rows of dtype, rows of n values.
cudaError_t moe_gather(const void *h, const int32_t *pair_pos, int n_tokens, int k, int n, void *rows, DType dtype,
                       cudaStream_t stream);

// out (n_tokens, n) fp32 = the sum over j = 0..k-1 (increasing expert id)
// of weight[t, j] * y[pair_pos[t, j]], accumulated in that order from 0;
// then, where shared is not null, + s_t * shared[t], s_t = sigmoid(
// gate_logits[t * gate_stride]) where gate_logits is not null, else 1 (the
// shared expert of Qwen2-MoE). y is (rows, n) fp32 in the gathered layout.
// out may be shared itself: each element is read before it is written.
cudaError_t moe_combine(const float *y, const int32_t *pair_pos, const float *weight, int n_tokens, int k, int n,
                        const float *shared, const float *gate_logits, int gate_stride, float *out,
                        cudaStream_t stream);

// start (n_expert + 1): the gathered layout's first row of each expert and,
// last, the rows it takes in all; the arithmetic moe_group does on the device.
inline void moe_expert_starts(const int32_t *counts, int n_expert, int row_align, int32_t *start) {
    start[0] = 0;
    for (int x = 0; x < n_expert; ++x) start[x + 1] = start[x] + (counts[x] + row_align - 1) / row_align * row_align;
}

// The smallest row count whose rows of row_bytes bytes make a multiple of
// 256 bytes.
inline int moe_row_align(size_t row_bytes) {
    int a = 1;
    while ((row_bytes * (size_t)a) % 256 != 0) a *= 2;
    return a;
}

// -------------------------------------------------------------- KV blocks

// For every copy i and every one of n_planes planes (layers times K and V,
// each plane_elems elements apart): the first n_tok[i] slots of block src[i]
// go to block dst[i]. slot_elems elements per slot. Copies within one launch
// run in any order: the host puts dependent ones in levels (copy_levels.h).
cudaError_t block_copy(void *cache, DType dtype, int n_planes, int64_t plane_elems,
                       int block_size, int slot_elems, const int32_t *src, const int32_t *dst,
                       const int32_t *n_tok, int n_copies, cudaStream_t stream);

// ----------------------------------------------------------------- logits

struct LogitsParams {
    const float *logits;  // (n_rows, n_vocab) fp32, rows row_stride apart
    const int32_t *target;// (n_rows)
    int n_rows, n_vocab, top_n;
    float *logprob;       // (n_rows) log-softmax at the target
    int32_t *is_greedy;   // (n_rows) 1 when the target's logit equals the maximum
    int32_t *top_ids;     // (n_rows, top_n), decreasing probability, ties to the lower id
    float *top_logprobs;  // (n_rows, top_n)
    // > 0: every logit x is read as softcap * tanh(x / softcap), in fp32,
    // before the log-softmax, the arg-max and the top-n (Gemma 2).
    float softcap;
    // Floats from one row of logits to the next; 0 means n_vocab. The LM
    // head pads rows to a multiple of 64 (step.cpp says why).
    int row_stride;
};

// One pass over each row: running max and sum of exponentials, the target's
// logit, the arg-max and the top_n candidates (top_n <= kMaxTopN; beyond
// that, top_n further passes). top_n <= n_vocab.
cudaError_t logits_reduce(const LogitsParams &p, cudaStream_t stream);

} // namespace lmscore_cuda
