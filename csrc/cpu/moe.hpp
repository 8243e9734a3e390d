// The mixture-of-experts FFN of the CPU core (lmscore.h's n_expert > 0):
// the experts' weights as the core holds them, and the FFN of a chunk of
// rows. A layer with experts runs moe_ffn where a dense layer runs its
// gate/up and down products.
//
// Batch invariance: a token's output must not depend on which other tokens
// share its step. The router is one product over the chunk, and each
// expert one product over the rows routed to it, gathered in token order;
// gemm() computes every element as the same chain whatever the row count
// (gemm.hpp), so a gathered row's products are those it would get alone.
// Routing, the activation and the weighted sum read a token's own row, and
// the sum runs in increasing expert id, so nothing else can reach it.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"
#include "gemm.hpp"
#include "kernels.hpp"
#include "threadpool.hpp"

namespace lmscore {

// MoeWeights is one layer's experts; empty (enabled() false) in a dense
// layer. Each expert is its own pair of packed matrices, so that its
// product runs over its rows alone and a quantized expert dequantizes only
// its own blocks.
struct MoeWeights {
    int n_expert = 0, n_expert_used = 0, n_ff_exp = 0, n_ff_shexp = 0;
    bool weights_norm = false;

    PackedMatrix router;               // n_expert rows of n_embd: the router's logits
    std::vector<PackedMatrix> gate_up; // per expert: n_ff_exp gate rows, then n_ff_exp up rows
    std::vector<PackedMatrix> down;    // per expert: n_embd rows of n_ff_exp
    // The shared expert (n_ff_shexp > 0): gate rows then up rows, down; its
    // output is scaled by sigmoid(shexp_gate . x) when shexp_gate is there.
    PackedMatrix shexp_gate_up, shexp_down;
    AlignedBuffer<float> shexp_gate;

    bool enabled() const { return n_expert > 0; }
};

// MoeScratch is what moe_ffn needs for a chunk of up to max_rows rows,
// sized once by the step (its own GEMM buffers, because an expert's width
// can exceed every dense product's K).
struct MoeScratch {
    int64_t max_rows = 0;
    AlignedBuffer<float> logits;   // (max_rows, n_expert): router logits, then probabilities
    std::vector<int32_t> chosen;   // (max_rows, n_expert_used): expert ids, increasing
    std::vector<float> weight;     // (max_rows, n_expert_used): their weights
    std::vector<int32_t> expert_start; // (n_expert + 1): CSR of the routed (row, choice) pairs
    std::vector<int32_t> cursor;   // (n_expert): the counting sort's next free place per expert
    std::vector<int32_t> routed;   // (max_rows * n_expert_used): row * n_expert_used + choice
    AlignedBuffer<float> rows_in;  // (max_rows, n_embd): one expert's gathered inputs
    AlignedBuffer<float> gate_up;  // (max_rows, 2 * max(n_ff_exp, n_ff_shexp))
    AlignedBuffer<float> act;      // (max_rows, max(n_ff_exp, n_ff_shexp))
    AlignedBuffer<float> rows_out; // (max_rows, n_embd): one expert's outputs
    GemmBuffers gemm;
};

// load_moe fills mw from one layer's tensors t (LMSCORE_LAYER_ROLE_COUNT
// entries) of a validated description; a dense layer leaves it empty.
void load_moe(ThreadPool &pool, const lmscore_model_desc &d, const lmscore_tensor *t, MoeWeights &mw);

// moe_reserve sizes s for chunks of up to max_rows rows; mw is any layer's
// experts (their sizes are the model's). Nothing for a dense model.
void moe_reserve(MoeScratch &s, const Kernels &kern, const MoeWeights &mw, int64_t n_embd, int64_t max_rows,
                 int n_threads);

// moe_ffn writes the FFN output of n_rows normed rows h (row stride
// n_embd) into out (row stride n_embd): the weighted sum of the chosen
// experts' SwiGLU outputs, plus the shared expert's. n_rows <= the
// scratch's max_rows.
void moe_ffn(ThreadPool &pool, const Kernels &kern, const MoeWeights &mw, MoeScratch &s, const float *h,
             int64_t n_embd, int64_t n_rows, float *out);

} // namespace lmscore
