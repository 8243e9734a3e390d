// A step executor: scratch sized once for up to max_tokens tokens and
// max_outputs output rows, and the forward pass of one flat batch.
#pragma once

#include <vector>

#include "common.hpp"
#include "kv.hpp"
#include "model.hpp"
#include "profile.hpp"

namespace lmscore {

// A run of consecutive tokens of one segment whose attention is computed,
// and the row of the attention output its first token goes to.
struct TokenRun {
    int32_t segment;
    int32_t token0, n_tokens; // step token indices
    int32_t out_row0;
};

// One unit of attention work: consecutive tokens of one segment against the
// query heads [head0, head0 + n_heads) of one KV head's group.
struct AttnItem {
    int32_t segment;
    int32_t token0, n_tokens; // step token indices
    int32_t out_row0;         // attention output row of token0
    int32_t kv_head, head0, n_heads;
    int64_t cost; // for ordering only: bigger first balances the threads
};

} // namespace lmscore

struct lmscore_step {
    lmscore_model *model = nullptr;
    int32_t max_tokens = 0, max_outputs = 0;
    int32_t out_chunk = 0; // output rows per LM-head product

    // Activations, row-major, one row per step token.
    lmscore::Vector x;      // residual stream (n_embd)
    lmscore::Vector h;      // normed input of the next product (n_embd)
    lmscore::Vector qkv;    // (n_qkv)
    lmscore::Vector attn;   // attention output (n_head * head_dim)
    lmscore::Vector tmp;    // product output before the residual add (n_embd)
    lmscore::Vector ffn_in; // gate|up or up (n_ffn_in), one chunk of rows
    lmscore::Vector act;    // (n_ff), one chunk of rows
    lmscore::Vector rope;   // cos/sin (n_rot) per token, the step's tokens once per RoPE table
    lmscore::Vector out_h;  // normed rows of the output tokens (out_chunk x n_embd)
    lmscore::Vector logits; // (out_chunk x n_vocab)

    lmscore::GemmBuffers gemm;
    lmscore::MoeScratch moe; // the experts' scratch (moe.hpp); empty for a dense model
    std::vector<lmscore::Vector> attn_scratch; // one per thread, grown to the longest sequence
    std::vector<float *> attn_ptrs;
    std::vector<std::vector<std::pair<float, int32_t>>> top_scratch; // one per thread

    std::vector<lmscore::AttnItem> items;      // every token
    std::vector<lmscore::AttnItem> items_last; // the last layer: output tokens only
    std::vector<lmscore::TokenRun> runs;
    std::vector<int32_t> out_rows;  // sorted distinct tokens that have output rows
    std::vector<int32_t> out_row_of; // token -> its index in out_rows, or -1
    std::vector<int32_t> slot_check;
    std::unique_ptr<lmscore::StepProfile> profile; // null unless LMSCORE_PROFILE=1 at init
};

namespace lmscore {
std::unique_ptr<lmscore_step> make_step(lmscore_model &m, int32_t max_tokens, int32_t max_outputs);
void run_step(lmscore_step &st, lmscore_kv &kv, const lmscore_batch &b, lmscore_batch_result &res);
} // namespace lmscore
