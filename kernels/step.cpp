// step.cpp — the step executor: workspace sized once, one input upload and
// one result download per step (and, per layer of experts, the experts'
// row counts), everything between on one stream.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>

#include "attention_tiles.h"
#include "internal.h"
#include "../csrc/common/validate.h"

using lmscore_cuda::DType;
using lmscore_cuda::fail;

namespace {

constexpr size_t kAlign = 256;
// cuBLAS's recommended workspace on Hopper; set explicitly so that no GEMM
// allocates during a step.
constexpr size_t kCublasWorkspace = 32u << 20;
// The LM head runs over output rows in chunks whose fp32 logits stay under
// this many bytes, so max_outputs does not multiply the vocabulary's size.
constexpr size_t kLogitsChunkBytes = 128u << 20;
// A dense FFN runs over a step's tokens in chunks of at most this many rows,
// so that its widest buffers (the gate/up output, 2 n_ff values a row: 470
// MB in bf16 for 8192 tokens of an 8B model) are sized for a chunk, not the
// step. 2048 rows still give the GEMMs several full waves on an H200; the
// rows' results are the same bits in any chunking (the plans are fixed).
constexpr int kFfnChunkRows = 2048;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Sections of one step's packed int32 inputs, each 16-byte aligned.
struct InputLayout {
    size_t ids, pos, slots, tiles, groups, blocks, copy_src, copy_dst, copy_n, out_index, out_target, total;
};

size_t pad4(size_t words) { return (words + 3) & ~size_t(3); }

InputLayout layout_inputs(int n_tokens, int n_tiles, int n_groups, int n_block_indices, int n_copies, int n_outputs) {
    InputLayout L{};
    size_t off = 0;
    auto take = [&](size_t words) {
        const size_t at = off;
        off += pad4(words);
        return at;
    };
    L.ids = take(n_tokens);
    L.pos = take(n_tokens);
    L.slots = take(n_tokens);
    L.tiles = take(4 * (size_t)n_tiles);
    L.groups = take(3 * (size_t)n_groups);
    L.blocks = take(n_block_indices);
    L.copy_src = take(n_copies);
    L.copy_dst = take(n_copies);
    L.copy_n = take(n_copies);
    L.out_index = take(n_outputs);
    L.out_target = take(n_outputs);
    L.total = off;
    return L;
}

void free_inputs(lmscore_step *s) {
    if (s->h_inputs) cudaFreeHost(s->h_inputs);
    if (s->d_inputs) cudaFree(s->d_inputs);
    s->h_inputs = s->d_inputs = nullptr;
    s->inputs_cap = 0;
}

lmscore_status reserve_inputs(lmscore_step *s, size_t words) {
    if (words <= s->inputs_cap) return LMSCORE_STATUS_OK;
    // Only a step whose block tables outgrow every earlier one gets here; the
    // previous step has finished (every step ends with a synchronisation).
    const size_t cap = std::max(words, s->inputs_cap * 2);
    free_inputs(s);
    cudaError_t err = cudaMallocHost(&s->h_inputs, cap * 4);
    if (err != cudaSuccess) {
        s->h_inputs = nullptr;
        return lmscore_cuda::cuda_fail(err, "allocating pinned step inputs");
    }
    err = cudaMalloc(&s->d_inputs, cap * 4);
    if (err != cudaSuccess) {
        s->d_inputs = nullptr;
        free_inputs(s);
        return lmscore_cuda::cuda_fail(err, "allocating device step inputs");
    }
    s->inputs_cap = cap;
    return LMSCORE_STATUS_OK;
}

// Results of one step: logprob and is_greedy per row, then top ids and
// logprobs. Sized at init for top_n <= kMaxTopN; a step that asks for more
// grows it.
lmscore_status reserve_results(lmscore_step *s, size_t bytes) {
    if (bytes <= s->results_bytes) return LMSCORE_STATUS_OK;
    if (s->d_results) cudaFree(s->d_results);
    if (s->h_results) cudaFreeHost(s->h_results);
    s->d_results = s->h_results = nullptr;
    s->results_bytes = 0;
    cudaError_t err = cudaMalloc(&s->d_results, bytes);
    if (err != cudaSuccess) {
        s->d_results = nullptr;
        return lmscore_cuda::cuda_fail(err, "allocating device results");
    }
    err = cudaMallocHost(&s->h_results, bytes);
    if (err != cudaSuccess) {
        s->h_results = nullptr;
        cudaFree(s->d_results);
        s->d_results = nullptr;
        return lmscore_cuda::cuda_fail(err, "allocating pinned results");
    }
    s->results_bytes = bytes;
    return LMSCORE_STATUS_OK;
}

void destroy(lmscore_step *s) {
    if (!s) return;
    if (cudaSetDevice(s->model->device) == cudaSuccess) {
        if (s->stream) cudaStreamSynchronize(s->stream);
        if (s->cublas) cublasDestroy(s->cublas);
        if (s->cublaslt) cublasLtDestroy(s->cublaslt);
        if (s->stream) cudaStreamDestroy(s->stream);
        if (s->cublas_workspace) cudaFree(s->cublas_workspace);
        if (s->arena) cudaFree(s->arena);
        if (s->d_results) cudaFree(s->d_results);
        if (s->h_results) cudaFreeHost(s->h_results);
        if (s->h_moe_counts) cudaFreeHost(s->h_moe_counts);
        if (s->moe_event) cudaEventDestroy(s->moe_event);
        free_inputs(s);
    }
    cudaGetLastError();
    delete s;
}

// LMSCORE_CUDA_GEMM=heuristic (see plan_gemms).
bool heuristic_gemms() {
    const char *mode = getenv("LMSCORE_CUDA_GEMM");
    return mode && !strcmp(mode, "heuristic");
}

// Whether an output projection (wo, or down when `down`) takes its bias in
// its GEMM's epilogue while the GEMM adds into the residual: every layer has
// the bias and no post-norm between it and the residual. Its plan is then
// made for cuBLASLt's BIAS epilogue, and the model needs no proj buffer for
// it, nor a residual pass (GPT-2: two of a layer's kernels and 12 bytes per
// element each). Not with per-call heuristic GEMMs: cublasGemmEx has none.
bool bias_epilogue(const lmscore_model *m, bool down) {
    if (heuristic_gemms() || m->layers.empty() || (down && m->hp.n_expert > 0)) return false;
    for (const lmscore_cuda::LayerWeights &lw : m->layers) {
        const float *bias = down ? lw.b_down : lw.bo;
        const float *post_norm = down ? lw.ffn_post_norm : lw.attn_post_norm;
        if (!bias || post_norm) return false;
    }
    return true;
}

// The step's GEMM plans: each weight shape's algorithm fixed for every row
// count the step can see, so that no result depends on the step's size.
// LMSCORE_CUDA_GEMM=heuristic leaves the choice to cuBLAS on every call
// instead, as before the plans; that is not batch invariant (cached and
// uncached scores differ in the last bits) and exists to measure what the
// fixed algorithms cost. LMSCORE_CUDA_GEMM=untuned fixes the heuristic's
// first candidate even where a measured choice exists (gemm_choices.cpp),
// to measure what the choices buy.
lmscore_status plan_gemms(lmscore_step *s) {
    const lmscore_model *m = s->model;
    const int E = m->hp.n_embd, F = m->hp.n_ff, N = s->max_tokens;
    const DType dt = m->dtype;
    const int up_cols = m->gated_ffn ? 2 * F : F;
    const char *mode = getenv("LMSCORE_CUDA_GEMM");
    const bool heuristic = heuristic_gemms();
    const bool untuned = mode && !strcmp(mode, "untuned");
    if (mode && *mode && !heuristic && !untuned && strcmp(mode, "fixed") != 0)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT,
                    "step: environment variable LMSCORE_CUDA_GEMM=%s: expected \"fixed\" (the default), "
                    "\"untuned\" or \"heuristic\"",
                    mode);
    struct Plan {
        const char *what;
        lmscore_cuda::GemmPlan *plan;
        int n_in, n_out, max_rows;
        DType y_type = DType::F32;
        bool bias = false;
        int ld_y = 0;
    };
    // Gate/up and up GEMMs write the model's type (kernels.h); an ungated up
    // projection's bias is added to that, in fp32, by its activation.
    const DType gu = dt;
    std::vector<Plan> plans = {
        {"qkv", &s->gemm_qkv, E, m->qkv_dim, N},
        {"attention output", &s->gemm_wo, m->q_dim, E, N, DType::F32, bias_epilogue(m, false)},
        // n_out: the vocabulary padded (lm_head_rows, internal.h).
        {"LM head", &s->gemm_head, E, s->logits_ld, s->logits_rows, DType::F32, false, s->logits_ld},
    };
    const lmscore_model_desc &hp = m->hp;
    if (hp.n_expert == 0) {
        plans.push_back({m->gated_ffn ? "gate/up" : "up", &s->gemm_up, E, up_cols, s->ffn_rows, gu});
        plans.push_back({"down", &s->gemm_down, F, E, s->ffn_rows, DType::F32, bias_epilogue(m, true)});
    } else {
        plans.push_back({"router", &s->gemm_router, E, m->n_router, N});
        plans.push_back({"expert gate/up", &s->gemm_exp_up, E, 2 * hp.n_ff_exp, N, gu});
        plans.push_back({"expert down", &s->gemm_exp_down, hp.n_ff_exp, E, N});
        if (hp.n_ff_shexp > 0) {
            plans.push_back({"shared expert gate/up", &s->gemm_shexp_up, E, 2 * hp.n_ff_shexp, N, gu});
            plans.push_back({"shared expert down", &s->gemm_shexp_down, hp.n_ff_shexp, E, N});
        }
    }
    for (const auto &p : plans) {
        if (heuristic) {
            lmscore_cuda::gemm_plan_heuristic(p.plan, dt, p.y_type, p.n_in, p.n_out, p.max_rows, p.ld_y);
            continue;
        }
        lmscore_status st = lmscore_cuda::gemm_plan(s->cublaslt, p.what, dt, p.y_type, p.n_in, p.n_out, p.max_rows,
                                                    kCublasWorkspace, p.plan, p.bias, p.ld_y, !untuned);
        if (st != LMSCORE_STATUS_OK) return st;
    }
    return LMSCORE_STATUS_OK;
}

// Head stacking in attention (kernels.h, attention_stack_heads): on by
// default; LMSCORE_CUDA_ATTN_STACK=0 turns it off, to measure what it gains
// (the scores are the same bits either way).
lmscore_status plan_attention(lmscore_step *s) {
    const lmscore_model *m = s->model;
    const char *mode = getenv("LMSCORE_CUDA_ATTN_STACK");
    const bool off = mode && !strcmp(mode, "0");
    if (mode && *mode && !off && strcmp(mode, "1") != 0)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT,
                    "step: environment variable LMSCORE_CUDA_ATTN_STACK=%s: expected 1 (the default) or 0", mode);
    s->attn_stack_heads =
        off ? 1 : lmscore_cuda::attention_stack_heads(m->dtype, m->head_dim, m->hp.n_head, m->hp.n_head_kv);
    // Shared-prefix groups (attention_tiles.h), on the tensor-core path only;
    // LMSCORE_CUDA_ATTN_GROUP=0 turns them off, for A/B.
    const char *group_mode = getenv("LMSCORE_CUDA_ATTN_GROUP");
    const bool group_off = group_mode && !strcmp(group_mode, "0");
    if (group_mode && *group_mode && !group_off && strcmp(group_mode, "1") != 0)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT,
                    "step: environment variable LMSCORE_CUDA_ATTN_GROUP=%s: expected 1 (the default) or 0", group_mode);
    s->attn_groups = !group_off && lmscore_cuda::attention_uses_tc(m->dtype, m->head_dim);
    return LMSCORE_STATUS_OK;
}

// Tokens per attention tile: a tile holds attention_tile_rows query rows.
int tile_tokens(const lmscore_step *s) {
    const lmscore_model *m = s->model;
    return lmscore_cuda::attention_tile_rows(m->dtype, m->head_dim) / std::max(1, s->attn_stack_heads);
}

lmscore_status init(lmscore_step *s) {
    const lmscore_model *m = s->model;
    const int64_t N = s->max_tokens, E = m->hp.n_embd, F = m->hp.n_ff, V = m->hp.n_vocab;
    const size_t es = lmscore_cuda::dtype_size(m->dtype);

    cudaError_t err = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
    if (err != cudaSuccess) return lmscore_cuda::cuda_fail(err, "creating the step stream");
    cublasStatus_t cst = cublasCreate(&s->cublas);
    if (cst != CUBLAS_STATUS_SUCCESS) {
        s->cublas = nullptr;
        return lmscore_cuda::cublas_fail(cst, "cublasCreate");
    }
    cst = cublasSetStream(s->cublas, s->stream);
    if (cst != CUBLAS_STATUS_SUCCESS) return lmscore_cuda::cublas_fail(cst, "cublasSetStream");
    err = cudaMalloc(&s->cublas_workspace, kCublasWorkspace);
    if (err != cudaSuccess) {
        s->cublas_workspace = nullptr;
        return lmscore_cuda::cuda_fail(err, "allocating the cuBLAS workspace");
    }
    cst = cublasSetWorkspace(s->cublas, s->cublas_workspace, kCublasWorkspace);
    if (cst != CUBLAS_STATUS_SUCCESS) return lmscore_cuda::cublas_fail(cst, "cublasSetWorkspace");
    cst = cublasLtCreate(&s->cublaslt);
    if (cst != CUBLAS_STATUS_SUCCESS) {
        s->cublaslt = nullptr;
        return lmscore_cuda::cublas_fail(cst, "cublasLtCreate");
    }

    s->logits_ld = lm_head_rows((int)V);
    s->logits_rows = (int)std::max<int64_t>(1, std::min<int64_t>(std::max(s->max_outputs, 1),
                                                                 (int64_t)(kLogitsChunkBytes / ((size_t)s->logits_ld * 4))));
    // When the LM head runs in chunks, each chunk's input starts a multiple
    // of 128 rows in (256-byte aligned in either precision), as the GEMM
    // plans' algorithms were chosen for 256-byte aligned operands.
    if (s->logits_rows < s->max_outputs && s->logits_rows > 128) s->logits_rows -= s->logits_rows % 128;

    // The FFN's buffers serve the dense FFN, or one expert at a time and
    // the shared expert.
    const lmscore_model_desc &hp = m->hp;
    const int64_t F_max = hp.n_expert > 0 ? std::max(hp.n_ff_exp, hp.n_ff_shexp) : F;
    const int64_t ff_cols = m->gated_ffn ? 2 * F_max : F_max;
    // An expert's rows can be any of the step's tokens: no chunks there.
    // LMSCORE_CUDA_FFN_ROWS=R sets the chunk, for the tests that show that
    // chunking changes no bit. Chunk starts are then R rows apart: keep
    // R * n_embd * 2 bytes a multiple of 256 (the GEMM plans' alignment),
    // as 2048 is for every model and 7 is for the tests' 128-wide ones.
    int chunk = kFfnChunkRows;
    if (const char *env = getenv("LMSCORE_CUDA_FFN_ROWS"); env && *env) {
        char *end = nullptr;
        const long v = strtol(env, &end, 10);
        if (*end || v <= 0 || v > INT32_MAX)
            return fail(LMSCORE_STATUS_INVALID_ARGUMENT,
                        "step: environment variable LMSCORE_CUDA_FFN_ROWS=%s: expected a positive number of rows", env);
        chunk = (int)v;
    }
    s->ffn_rows = hp.n_expert > 0 ? s->max_tokens : std::min(s->max_tokens, chunk);
    const int64_t FR = s->ffn_rows;
    // Mixture of experts: the gathered rows of every (token, choice), each
    // expert's starting on a row_align boundary (kernels.h).
    const int64_t K = hp.n_expert_used, NE = hp.n_expert;
    if (NE > 0) {
        s->moe_row_align = lmscore_cuda::moe_row_align((size_t)E * es);
        const int64_t rows = N * K + NE * (s->moe_row_align - 1);
        if (rows > INT32_MAX)
            return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "step: %d tokens of %lld experts each is too many rows",
                        s->max_tokens, (long long)K);
        s->moe_max_rows = (int)rows;
    }
    const int64_t R = s->moe_max_rows;
    // Two regions when a chunked FFN's down projection is quantized: the
    // largest quantized matrix, then the down projection's (weight()).
    s->dequant_down_bytes = 0;
    if (hp.n_expert == 0 && s->ffn_rows < s->max_tokens)
        for (const lmscore_cuda::LayerWeights &lw : m->layers)
            if (lw.w_down.quantized()) s->dequant_down_bytes = (size_t)((int64_t)F * E) * 2;
    // Slot 1 starts 256-byte aligned, as the GEMM plans' operands are.
    s->dequant_scratch_bytes =
        s->dequant_down_bytes > 0 ? align_up((size_t)m->max_quantized_elems * 2) + s->dequant_down_bytes
                                  : (size_t)m->max_quantized_elems * 2;
    // proj holds an output projection's result only where it cannot be added
    // into the residual by its GEMM (a post-norm between them, or a bias the
    // epilogue does not take; see project() in enqueue) and for a layer of
    // experts: a llama-shaped model has no need of it (128 MiB for 8192
    // tokens of an 8B model), nor has GPT-2.
    const bool wo_epi = bias_epilogue(m, false), down_epi = bias_epilogue(m, true);
    bool need_proj = NE > 0;
    for (const lmscore_cuda::LayerWeights &lw : m->layers)
        need_proj = need_proj || (lw.bo && !wo_epi) || (lw.b_down && !down_epi) || lw.attn_post_norm ||
                    lw.ffn_post_norm;
    size_t sizes[] = {
        (size_t)(N * E) * 4,                           // x
        (size_t)(N * E) * es,                          // hn
        (size_t)(N * m->qkv_dim) * 4,                  // qkv
        (size_t)(N * m->q_dim) * es,                   // q
        (size_t)(N * m->q_dim) * es,                   // attn
        (size_t)(N * E) * 4 * need_proj,               // proj
        (size_t)(FR * ff_cols) * es,                   // ff: gate/up or up, of dtype
        (size_t)(FR * F_max) * es,                     // act
        (size_t)((int64_t)std::max(s->max_outputs, 1) * E) * es, // out_hn
        (size_t)((int64_t)s->logits_rows * s->logits_ld) * 4, // logits
        s->dequant_scratch_bytes,                      // dequant_scratch (bf16)
        (size_t)(N * m->n_router) * 4,                 // moe_logits
        (size_t)(N * K) * 4 * (NE > 0),                // moe_chosen
        (size_t)(N * K) * 4 * (NE > 0),                // moe_weight
        (size_t)NE * 4,                                // moe_counts
        (size_t)(N * K) * 4 * (NE > 0),                // moe_pair_pos
        (size_t)(R * E) * es,                          // moe_rows
        (size_t)(R * E) * 4,                           // moe_y
    };
    size_t total = 0;
    for (size_t b : sizes) total += align_up(b);
    err = cudaMalloc(&s->arena, total);
    if (err != cudaSuccess) {
        s->arena = nullptr;
        char what[128];
        snprintf(what, sizeof what, "allocating a %zu-byte workspace for %d tokens", total, s->max_tokens);
        return lmscore_cuda::cuda_fail(err, what);
    }
    void **parts[] = {(void **)&s->x,          &s->hn,
                      (void **)&s->qkv,        &s->q,
                      &s->attn,                (void **)&s->proj,
                      &s->ff,                  &s->act,
                      &s->out_hn,              (void **)&s->logits,
                      &s->dequant_scratch,     (void **)&s->moe_logits,
                      (void **)&s->moe_chosen, (void **)&s->moe_weight,
                      (void **)&s->moe_counts, (void **)&s->moe_pair_pos,
                      &s->moe_rows,            (void **)&s->moe_y};
    static_assert(sizeof parts / sizeof parts[0] == sizeof sizes / sizeof sizes[0], "one pointer per part");
    char *p = (char *)s->arena;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        *parts[i] = sizes[i] ? p : nullptr;
        p += align_up(sizes[i]);
    }

    // After the workspace, so that a step too large for the GPU is
    // OUT_OF_MEMORY before cuBLASLt is asked about row counts it cannot grid.
    lmscore_status st = plan_gemms(s);
    if (st != LMSCORE_STATUS_OK) return st;
    st = plan_attention(s);
    if (st != LMSCORE_STATUS_OK) return st;
    st = reserve_results(s, (size_t)std::max(s->max_outputs, 1) * (2 + 2 * lmscore_cuda::kMaxTopN) * 4);
    if (st != LMSCORE_STATUS_OK) return st;
    // Room for typical block tables: a few blocks' worth of entries per token.
    const int typical_tiles = s->max_tokens / tile_tokens(s) + 64;
    const size_t words = layout_inputs(s->max_tokens, typical_tiles, s->attn_groups ? typical_tiles : 0,
                                       8 * s->max_tokens + 4096, 256, s->max_outputs)
                             .total;
    st = reserve_inputs(s, words);
    if (st != LMSCORE_STATUS_OK) return st;
    try {
        s->slot_check.resize((size_t)s->max_tokens);
        s->moe_starts.resize((size_t)NE + 1);
    } catch (const std::bad_alloc &) {
        return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "step: out of host memory");
    }
    if (NE > 0) {
        err = cudaMallocHost(&s->h_moe_counts, (size_t)NE * 4);
        if (err != cudaSuccess) {
            s->h_moe_counts = nullptr;
            return lmscore_cuda::cuda_fail(err, "allocating the pinned expert counts");
        }
        err = cudaEventCreateWithFlags(&s->moe_event, cudaEventDisableTiming);
        if (err != cudaSuccess) {
            s->moe_event = nullptr;
            return lmscore_cuda::cuda_fail(err, "creating the expert counts' event");
        }
    }
    return LMSCORE_STATUS_OK;
}

struct Fail {}; // unwinds run_device() after its error is recorded

class StepRunner {
  public:
    StepRunner(lmscore_step *s, lmscore_kv *kv) : s_(s), kv_(kv), m_(s->model) {}

    void check(cudaError_t err, const char *what) {
        if (err != cudaSuccess) {
            status_ = lmscore_cuda::cuda_fail(err, what);
            throw Fail{};
        }
        if (s_->profile) s_->profile->after(what, s_->stream); // the launch just checked ends here
    }
    void check(cublasStatus_t st, const char *what) {
        if (st != CUBLAS_STATUS_SUCCESS) {
            status_ = lmscore_cuda::cublas_fail(st, what);
            throw Fail{};
        }
        if (s_->profile) s_->profile->after(what, s_->stream);
    }

    lmscore_status run(const lmscore_batch *b, lmscore_batch_result *r) {
        try {
            enqueue(b);
            finish(b, r);
        } catch (const Fail &) {
        } catch (const std::bad_alloc &) {
            status_ = fail(LMSCORE_STATUS_OUT_OF_MEMORY, "step: out of host memory");
        }
        if (status_ != LMSCORE_STATUS_OK) {
            // Let queued work drain before the buffers are reused by the next step.
            cudaStreamSynchronize(s_->stream);
            cudaGetLastError();
            return status_;
        }
        return LMSCORE_STATUS_OK;
    }

  private:
    // The pointer a GEMM reads W from: a dense matrix itself, a quantized
    // one dequantized band by band into the scratch (the GEMM that read the
    // scratch before has finished: both are on the one stream).
    // slot 1 is the down projection's own region, so that a chunked FFN
    // dequantizes gate/up and down once per layer, not once per chunk; init
    // makes it only where the FFN runs in chunks.
    const void *weight(const lmscore_cuda::Matrix &w, int slot = 0) {
        if (!w.quantized()) return w.dense;
        if (slot && s_->dequant_down_bytes == 0) {
            // It would start at the scratch's end: past the arena.
            status_ = fail(LMSCORE_STATUS_INTERNAL, "step: the down projection has no dequantization region");
            throw Fail{};
        }
        char *const base = (char *)s_->dequant_scratch + (slot ? s_->dequant_scratch_bytes - s_->dequant_down_bytes : 0);
        char *dst = base;
        for (const lmscore_cuda::WeightBand &band : w.bands) {
            check(lmscore_cuda::dequantize_rows(band.data, band.type, w.n_in, band.rows, dst, DType::BF16, s_->stream),
                  "dequantizing a weight");
            dst += (size_t)(band.rows * w.n_in) * 2;
        }
        return base;
    }

    // A layer of experts on the n normed rows in hn, its output in proj:
    // route, group and gather on the device, then per expert one GEMM pair
    // over its rows, then the weighted sum per token (kernels.h).
    //
    // The GEMMs take their row counts from the host, so the expert counts
    // come back once per layer: the one wait of a step besides its last.
    // It is hidden behind the grouping, the gather and the shared expert,
    // which are queued before the host waits; a model without a shared
    // expert idles the GPU for the copy's latency and the relaunch (some
    // microseconds a layer).
    void experts(const lmscore_cuda::LayerWeights &w, const lmscore_cuda::GemmContext &g, int n) {
        const lmscore_model_desc &hp = m_->hp;
        const cudaStream_t st = s_->stream;
        const DType dt = m_->dtype;
        const int E = hp.n_embd, NE = hp.n_expert, K = hp.n_expert_used, FF = hp.n_ff_exp, FS = hp.n_ff_shexp;
        const int NR = m_->n_router;
        check(lmscore_cuda::gemm(g, s_->gemm_router, weight(w.router), s_->hn, s_->moe_logits, n), "router gemm");
        check(lmscore_cuda::moe_route(s_->moe_logits, n, NR, NE, K, hp.expert_weights_norm != 0, s_->moe_chosen,
                                      s_->moe_weight, s_->moe_counts, st),
              "routing");
        check(cudaMemcpyAsync(s_->h_moe_counts, s_->moe_counts, (size_t)NE * 4, cudaMemcpyDeviceToHost, st),
              "downloading the expert counts");
        check(cudaEventRecord(s_->moe_event, st), "recording the expert counts' event");
        check(lmscore_cuda::moe_group(s_->moe_chosen, s_->moe_counts, n, NE, K, s_->moe_row_align, s_->moe_pair_pos,
                                      st),
              "grouping tokens by expert");
        check(lmscore_cuda::moe_gather(s_->hn, s_->moe_pair_pos, n, K, E, s_->moe_rows, dt, st), "gathering expert rows");
        if (FS > 0) {
            check(lmscore_cuda::gemm(g, s_->gemm_shexp_up, weight(w.shexp_up), s_->hn, s_->ff, n),
                  "shared expert gate/up gemm");
            check(lmscore_cuda::gated_activation(lmscore_cuda::Activation::Silu, s_->ff, n, FS, s_->act, dt, st),
                  "shared expert activation");
            check(lmscore_cuda::gemm(g, s_->gemm_shexp_down, weight(w.shexp_down), s_->act, s_->proj, n),
                  "shared expert down gemm");
        }
        check(cudaEventSynchronize(s_->moe_event), "waiting for the expert counts");
        int32_t *start = s_->moe_starts.data();
        lmscore_cuda::moe_expert_starts(s_->h_moe_counts, NE, s_->moe_row_align, start);
        if (start[NE] > s_->moe_max_rows) {
            status_ = fail(LMSCORE_STATUS_INTERNAL, "step: the experts were routed %d rows, past the %d sized",
                           start[NE], s_->moe_max_rows);
            throw Fail{};
        }
        const size_t es = lmscore_cuda::dtype_size(dt);
        for (int x = 0; x < NE; ++x) {
            const int rows = s_->h_moe_counts[x];
            if (rows == 0) continue;
            const char *in = (const char *)s_->moe_rows + (size_t)start[x] * E * es;
            float *out = s_->moe_y + (size_t)start[x] * E;
            check(lmscore_cuda::gemm(g, s_->gemm_exp_up, weight(w.exp_up[x]), in, s_->ff, rows), "expert gate/up gemm");
            check(lmscore_cuda::gated_activation(lmscore_cuda::Activation::Silu, s_->ff, rows, FF, s_->act, dt, st),
                  "expert activation");
            check(lmscore_cuda::gemm(g, s_->gemm_exp_down, weight(w.exp_down[x]), s_->act, out, rows),
                  "expert down gemm");
        }
        check(lmscore_cuda::moe_combine(s_->moe_y, s_->moe_pair_pos, s_->moe_weight, n, K, E,
                                        FS > 0 ? s_->proj : nullptr, w.shexp_gate ? s_->moe_logits + NE : nullptr, NR,
                                        s_->proj, st),
              "weighted sum of the experts");
    }

    void enqueue(const lmscore_batch *b) {
        const int n = b->n_tokens;
        const int bs = kv_->block_size;
        const cudaStream_t st = s_->stream;
        const DType dt = m_->dtype;
        const int E = m_->hp.n_embd, F = m_->hp.n_ff, V = m_->hp.n_vocab;

        // Attention work items: each segment in tiles of tile_tokens tokens
        // (attention_tile_rows query rows, stacked heads included), short segments
        // over a common prefix grouped (attention_tiles.h).
        std::vector<lmscore_cuda::AttnTile> &tiles = s_->tiles;
        std::vector<lmscore_cuda::AttnGroup> &groups = s_->attn_group_scratch;
        const lmscore_cuda::AttnSegments segs{b->n_segments, b->seg_token_start, b->block_indptr, b->block_indices,
                                              bs};
        lmscore_cuda::plan_attention_tiles(segs, tile_tokens(s_), s_->attn_groups, tiles, groups);
        lmscore_cuda::CopyLevels &cl = s_->copy_levels;
        lmscore_cuda::plan_copy_levels(b->copy_src, b->copy_dst, b->copy_n_tokens, b->n_copies, cl);
        const int n_copies = (int)cl.src.size();
        const int n_indices = b->n_segments > 0 ? b->block_indptr[b->n_segments] : 0;
        const InputLayout L =
            layout_inputs(n, (int)tiles.size(), (int)groups.size(), n_indices, n_copies, b->n_outputs);
        lmscore_status rs = reserve_inputs(s_, L.total);
        if (rs == LMSCORE_STATUS_OK)
            rs = reserve_results(s_, (size_t)b->n_outputs * (2 + 2 * (size_t)b->top_n) * 4);
        if (rs != LMSCORE_STATUS_OK) {
            status_ = rs;
            throw Fail{};
        }
        int32_t *h = s_->h_inputs;
        auto put = [&](size_t at, const int32_t *src, size_t count) {
            if (count) memcpy(h + at, src, count * 4);
        };
        put(L.ids, b->token_ids, n);
        put(L.pos, b->positions, n);
        put(L.slots, b->slots, n);
        put(L.tiles, (const int32_t *)tiles.data(), 4 * tiles.size());
        put(L.groups, (const int32_t *)groups.data(), 3 * groups.size());
        put(L.blocks, b->block_indices, n_indices);
        put(L.copy_src, cl.src.data(), n_copies);
        put(L.copy_dst, cl.dst.data(), n_copies);
        put(L.copy_n, cl.n.data(), n_copies);
        put(L.out_index, b->out_token_index, b->n_outputs);
        put(L.out_target, b->out_target, b->n_outputs);
        if (s_->profile) s_->profile->begin_device(st);
        check(cudaMemcpyAsync(s_->d_inputs, h, L.total * 4, cudaMemcpyHostToDevice, st), "uploading step inputs");
        const int32_t *d = s_->d_inputs;
        const int32_t *d_ids = d + L.ids, *d_pos = d + L.pos, *d_slots = d + L.slots;
        const auto *d_tiles = (const lmscore_cuda::AttnTile *)(d + L.tiles);
        const auto *d_groups = (const lmscore_cuda::AttnGroup *)(d + L.groups);
        const int32_t *d_blocks = d + L.blocks;

        // The copies of layer l (all layers: l < 0), one launch per level;
        // in a layer they run after its K/V writes, so that a copy may
        // read slots the step wrote (the ABI's order).
        auto copy_blocks = [&](int l) {
            const int n_planes = l < 0 ? 2 * m_->hp.n_layer : 2;
            void *planes = l < 0 ? kv_->data : kv_->k_plane(l);
            for (int k = 0; k < cl.n_levels(); ++k) {
                const int at = cl.start[k], count = cl.start[k + 1] - at;
                check(lmscore_cuda::block_copy(planes, dt, n_planes, kv_->plane_elems, bs, m_->kv_dim,
                                               d + L.copy_src + at, d + L.copy_dst + at, d + L.copy_n + at, count, st),
                      "block copy");
            }
        };
        if (n == 0) {
            copy_blocks(-1); // a copy-only step
            return;
        }

        const float eps = m_->hp.norm_eps;
        const lmscore_cuda::NormKind nk = m_->norm_kind;
        lmscore_cuda::GemmContext g;
        g.blas = s_->cublas;
        g.lt = s_->cublaslt;
        g.workspace = s_->cublas_workspace;
        g.workspace_bytes = kCublasWorkspace;
        g.stream = st;
        const lmscore_cuda::Matrix &te = m_->tok_embd;
        const void *tok_table = te.quantized() ? te.bands[0].data : te.dense;
        const int32_t tok_type =
            te.quantized() ? te.bands[0].type : (dt == DType::F32 ? LMSCORE_TYPE_F32 : LMSCORE_TYPE_BF16);
        check(lmscore_cuda::embed(d_ids, d_pos, tok_table, tok_type, m_->pos_embd, dt, n, E, m_->embd_scale, s_->x, st),
              "embed");
        // A GEMM's input from the residual: its pre-norm, or the residual
        // itself rounded to the GEMM's type where the model has none.
        auto pre_norm = [&](const float *w, const float *b, const char *what) {
            if (w)
                check(lmscore_cuda::norm(nk, s_->x, nullptr, n, E, w, b, eps, s_->hn, dt, st), what);
            else
                check(lmscore_cuda::store_rows(s_->x, (int64_t)n * E, s_->hn, dt, st), what);
        };
        // x += y + bias over rows [r0, r0 + rows), through the post-norm
        // when the model has one.
        // init makes proj from the same weights that ask for it here: its
        // absence is a bug, reported rather than written through.
        auto need_proj = [&](const char *what) {
            if (s_->proj) return;
            status_ = fail(LMSCORE_STATUS_INTERNAL, "step: %s needs the projection buffer, which was not made", what);
            throw Fail{};
        };
        auto residual = [&](const float *post_norm, const float *bias, int r0, int rows, const char *what) {
            need_proj(what);
            const float *y = s_->proj + (size_t)r0 * E;
            float *x = s_->x + (size_t)r0 * E;
            if (post_norm)
                check(lmscore_cuda::norm_residual_add(nk, y, bias, rows, E, post_norm, eps, x, st), what);
            else
                check(lmscore_cuda::residual_add(x, y, bias, rows, E, st), what);
        };
        // An output projection into the residual. Without a post-norm
        // between them, the GEMM adds into the residual itself (gemm's
        // accumulate: one fl(x + y) per element, one pass fewer), the bias
        // too where its plan takes one in the epilogue; otherwise through
        // proj and the residual kernels.
        // Rows [r0, r0 + rows) of the residual; in holds those rows.
        auto project = [&](const lmscore_cuda::GemmPlan &plan, const void *W, const void *in,
                           const float *post_norm, const float *bias, int r0, int rows, const char *gemm_what,
                           const char *res_what) {
            if (!post_norm && (!bias || plan.bias)) {
                check(lmscore_cuda::gemm(g, plan, W, in, s_->x + (size_t)r0 * E, rows, true, bias), gemm_what);
                return;
            }
            need_proj(gemm_what);
            check(lmscore_cuda::gemm(g, plan, W, in, s_->proj + (size_t)r0 * E, rows), gemm_what);
            residual(post_norm, bias, r0, rows, res_what);
        };
        const size_t es = lmscore_cuda::dtype_size(dt);
        // One norm per head, or (QK_NORM_FULL) one over the whole projection.
        const int q_heads = m_->qk_norm_full ? 1 : m_->hp.n_head, k_heads = m_->qk_norm_full ? 1 : m_->hp.n_head_kv;
        const int q_width = m_->qk_norm_full ? m_->q_dim : m_->head_dim;
        const int k_width = m_->qk_norm_full ? m_->kv_dim : m_->head_dim;
        for (int l = 0; l < m_->hp.n_layer; ++l) {
            const lmscore_cuda::LayerWeights &w = m_->layers[l];
            const bool sliding = m_->swa[l] != 0;
            pre_norm(w.attn_norm, w.attn_norm_b, "attn norm");
            check(lmscore_cuda::gemm(g, s_->gemm_qkv, weight(w.wqkv), s_->hn, s_->qkv, n),
                  "qkv gemm");
            if (w.attn_q_norm)
                check(lmscore_cuda::head_rms_norm(s_->qkv, n, m_->qkv_dim, 0, q_heads, q_width, w.attn_q_norm, eps, st),
                      "q norm");
            if (w.attn_k_norm)
                check(lmscore_cuda::head_rms_norm(s_->qkv, n, m_->qkv_dim, m_->q_dim, k_heads, k_width, w.attn_k_norm,
                                                  eps, st),
                      "k norm");

            lmscore_cuda::RopeKVParams rp{};
            rp.qkv = s_->qkv;
            rp.bias = w.bqkv;
            rp.positions = d_pos;
            rp.slots = d_slots;
            rp.q_out = s_->q;
            rp.k_cache = kv_->k_plane(l);
            rp.v_cache = kv_->v_plane(l);
            rp.n_tokens = n;
            rp.n_head = m_->hp.n_head;
            rp.n_head_kv = m_->hp.n_head_kv;
            rp.head_dim = m_->head_dim;
            rp.rope = m_->rope;
            rp.freq_base = sliding ? m_->rope_base_swa : m_->rope_base;
            rp.freq_scale = sliding ? m_->rope_scale_swa : m_->rope_scale;
            rp.attn_factor = m_->rope_attn_factor;
            rp.n_rot = m_->n_rot;
            rp.freq_factors = m_->rope_freqs;
            check(lmscore_cuda::rope_kv_write(rp, dt, st), "rope and kv write");
            copy_blocks(l);

            lmscore_cuda::AttentionParams ap{};
            ap.q = s_->q;
            ap.k_cache = kv_->k_plane(l);
            ap.v_cache = kv_->v_plane(l);
            ap.positions = d_pos;
            ap.tiles = d_tiles;
            ap.block_indices = d_blocks;
            ap.out = s_->attn;
            ap.n_tiles = (int)tiles.size();
            ap.groups = groups.empty() ? nullptr : d_groups;
            ap.n_groups = (int)groups.size();
            ap.n_head = m_->hp.n_head;
            ap.n_head_kv = m_->hp.n_head_kv;
            ap.head_dim = m_->head_dim;
            ap.block_size = bs;
            ap.scale = m_->attn_scale;
            ap.softcap = m_->attn_softcap;
            ap.window = sliding ? m_->n_swa : 0;
            ap.stack_heads = s_->attn_stack_heads;
            check(lmscore_cuda::paged_attention(ap, dt, st), "attention");

            // The FFN reads the layer's input too under a parallel
            // residual: its norm runs before the attention output joins
            // the residual (hn is free once the qkv GEMM has read it).
            if (m_->parallel_residual) pre_norm(w.ffn_norm, w.ffn_norm_b, "ffn norm");
            project(s_->gemm_wo, weight(w.wo), s_->attn, w.attn_post_norm, w.bo, 0, n, "wo gemm", "attn residual");
            if (!m_->parallel_residual) pre_norm(w.ffn_norm, w.ffn_norm_b, "ffn norm");
            if (m_->hp.n_expert > 0) {
                experts(w, g, n);
                residual(w.ffn_post_norm, w.b_down, 0, n, "ffn residual");
                continue;
            }
            // Gate/up in the scratch's first region. A quantized down
            // projection has its own region only where the FFN runs in
            // chunks; otherwise the step is one chunk and down takes the
            // first region once gate/up's GEMM is queued (the stream runs
            // that GEMM before the dequantization that overwrites it).
            const void *w_up = weight(w.w_up);
            const void *w_down = s_->dequant_down_bytes > 0 ? weight(w.w_down, 1) : nullptr;
            for (int r0 = 0; r0 < n; r0 += s_->ffn_rows) {
                const int rows = std::min(s_->ffn_rows, n - r0);
                const void *in = (const char *)s_->hn + (size_t)r0 * E * es;
                if (m_->gated_ffn) {
                    check(lmscore_cuda::gemm(g, s_->gemm_up, w_up, in, s_->ff, rows), "gate/up gemm");
                    check(lmscore_cuda::gated_activation(m_->ffn_act, s_->ff, rows, F, s_->act, dt, st),
                          "gated activation");
                } else {
                    check(lmscore_cuda::gemm(g, s_->gemm_up, w_up, in, s_->ff, rows), "up gemm");
                    check(lmscore_cuda::activation_bias(m_->ffn_act, s_->ff, w.b_up, rows, F, s_->act, dt, st),
                          "gelu");
                }
                if (!w_down) w_down = weight(w.w_down); // dense, or the one chunk: see above
                project(s_->gemm_down, w_down, s_->act, w.ffn_post_norm, w.b_down, r0, rows, "down gemm",
                        "ffn residual");
            }
        }

        // The LM head only on output rows: gather them through the final norm.
        const int no = b->n_outputs;
        if (no == 0) return;
        const int K = b->top_n;
        check(lmscore_cuda::norm(nk, s_->x, d + L.out_index, no, E, m_->output_norm, m_->output_norm_b, eps,
                                 s_->out_hn, dt, st),
              "output norm");
        float *res = (float *)s_->d_results;
        const void *head = weight(m_->output); // once for all chunks
        for (int c0 = 0; c0 < no; c0 += s_->logits_rows) {
            const int rows = std::min(s_->logits_rows, no - c0);
            check(lmscore_cuda::gemm(g, s_->gemm_head, head,
                                     (const char *)s_->out_hn + (size_t)c0 * E * lmscore_cuda::dtype_size(dt),
                                     s_->logits, rows),
                  "lm head gemm");
            lmscore_cuda::LogitsParams lp{};
            lp.logits = s_->logits;
            lp.target = d + L.out_target + c0;
            lp.n_rows = rows;
            lp.n_vocab = V;
            lp.row_stride = s_->logits_ld;
            lp.top_n = K;
            lp.softcap = m_->final_softcap;
            lp.logprob = res + c0;
            lp.is_greedy = (int32_t *)(res + no) + c0;
            lp.top_ids = (int32_t *)(res + 2 * (size_t)no) + (size_t)c0 * K;
            lp.top_logprobs = res + 2 * (size_t)no + (size_t)no * K + (size_t)c0 * K;
            check(lmscore_cuda::logits_reduce(lp, st), "log-softmax");
        }
    }

    void finish(const lmscore_batch *b, lmscore_batch_result *r) {
        const int no = b->n_tokens > 0 ? b->n_outputs : 0;
        const int K = b->top_n;
        const size_t bytes = (size_t)no * (2 + 2 * (size_t)K) * 4;
        if (bytes)
            check(cudaMemcpyAsync(s_->h_results, s_->d_results, bytes, cudaMemcpyDeviceToHost, s_->stream),
                  "downloading results");
        // The step's one synchronisation; it also surfaces any kernel fault.
        if (s_->profile) s_->profile->before_sync();
        check(cudaStreamSynchronize(s_->stream), "running the step");
        if (s_->profile) s_->profile->after_sync();
        if (!no) return;
        const float *h = (const float *)s_->h_results;
        memcpy(r->logprob, h, (size_t)no * 4);
        const int32_t *greedy = (const int32_t *)(h + no);
        for (int i = 0; i < no; ++i) r->is_greedy[i] = (uint8_t)greedy[i];
        if (K > 0) {
            memcpy(r->top_ids, h + 2 * (size_t)no, (size_t)no * K * 4);
            memcpy(r->top_logprobs, h + 2 * (size_t)no + (size_t)no * K, (size_t)no * K * 4);
        }
    }

    lmscore_step *s_;
    lmscore_kv *kv_;
    const lmscore_model *m_;
    lmscore_status status_ = LMSCORE_STATUS_OK;
};

} // namespace

extern "C" {

LMSCORE_API lmscore_status lmscore_step_init(lmscore_model *model, int32_t max_tokens, int32_t max_outputs,
                                             lmscore_step **out) {
    lmscore_cuda::clear_error();
    if (!model || !out) return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "lmscore_step_init: null argument");
    *out = nullptr;
    if (max_tokens <= 0 || max_outputs < 0)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "step: max_tokens %d must be positive, max_outputs %d non-negative",
                    max_tokens, max_outputs);
    lmscore_status st = lmscore_cuda::use_device(model->device);
    if (st != LMSCORE_STATUS_OK) return st;
    lmscore_step *s = new (std::nothrow) lmscore_step();
    if (!s) return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "step: out of host memory");
    s->model = model;
    s->max_tokens = max_tokens;
    s->max_outputs = max_outputs;
    st = init(s);
    if (st == LMSCORE_STATUS_OK) st = lmscore_cuda::profile_open(s);
    if (st != LMSCORE_STATUS_OK) {
        destroy(s);
        return st;
    }
    *out = s;
    return LMSCORE_STATUS_OK;
}

LMSCORE_API void lmscore_step_free(lmscore_step *step) { destroy(step); }

LMSCORE_API lmscore_status lmscore_step_run(lmscore_step *step, lmscore_kv *kv, const lmscore_batch *batch,
                                            lmscore_batch_result *result) {
    lmscore_cuda::clear_error();
    if (!step || !kv) return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "lmscore_step_run: step or kv is null");
    if (kv->model != step->model)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "lmscore_step_run: the KV pool belongs to another model");
    lmscore_cuda::StepProfile *prof = step->profile.get();
    const lmscore_cuda::ProfileCall profile_call(prof); // a call that returns early counts as dropped
    const lmscore_model *m = step->model;
    const lmscore_common::BatchLimits lim{m->hp.n_vocab,  m->hp.n_ctx_train, kv->block_size,
                                          kv->n_blocks,    step->max_tokens,  step->max_outputs};
    char msg[1024];
    int32_t max_keys = 0;
    lmscore_status st = lmscore_common::validate_batch(batch, result, lim, step->slot_check.data(), &max_keys, msg,
                                                       sizeof msg);
    if (st != LMSCORE_STATUS_OK) return fail(st, "%s", msg);
    if (prof) prof->host_lap("validate");
    st = lmscore_cuda::use_device(m->device);
    if (st != LMSCORE_STATUS_OK) return st;
    st = lmscore_cuda::kv_reserve_batch(kv, batch); // the pool grows to the blocks this step names
    if (st != LMSCORE_STATUS_OK) return st;
    if (prof) prof->host_lap("kv reserve");
    st = StepRunner(step, kv).run(batch, result);
    if (prof) prof->end_call(st == LMSCORE_STATUS_OK);
    return st;
}

} // extern "C"
