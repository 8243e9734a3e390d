// plan.h — a small stand-in for the Go scheduler, enough to drive a core
// through the ABI in the ways the tests need: every (context, continuation)
// pair computed from scratch, or contexts computed once (optionally in two
// chunks) and each continuation run later (or in the context's own step)
// against the shared context blocks, copying the context's partial last
// block, with the last context token recomputed for its logits only (slot -1).
#pragma once

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "abi.h"
#include "test_util.h"

namespace lmscore_test {

// tokens = context + continuation; the continuation is scored.
struct Pair {
    std::vector<int32_t> tokens;
    int ctx_len = 0;
    int task = 0; // pairs of one task share their context
};

struct PairScore {
    std::vector<float> logprob;      // one per continuation token
    std::vector<uint8_t> greedy;
    std::vector<int32_t> top_ids;    // (continuation tokens, top_n)
    std::vector<float> top_logprobs;
};

// One model, KV pool and step executor on one core.
class Engine {
  public:
    Engine(const Abi &abi, const lmscore_model_desc &desc, int precision, int block_size, int n_blocks,
           int max_tokens, int max_outputs)
        : abi_(abi), block_size_(block_size), n_blocks_(n_blocks), max_tokens_(max_tokens), max_outputs_(max_outputs) {
        lmscore_backend_params p = abi.backend_default_params();
        p.precision = precision;
        status_ = abi.model_load(&desc, p, &model_);
        if (status_ == LMSCORE_STATUS_OK) status_ = abi.kv_init(model_, block_size, n_blocks, &kv_);
        if (status_ == LMSCORE_STATUS_OK) status_ = abi.step_init(model_, max_tokens, max_outputs, &step_);
        if (status_ != LMSCORE_STATUS_OK) error_ = abi.last_error();
    }
    ~Engine() {
        if (step_) abi_.step_free(step_);
        if (kv_) abi_.kv_free(kv_);
        if (model_) abi_.model_free(model_);
    }
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;

    bool ok() const { return status_ == LMSCORE_STATUS_OK; }
    lmscore_status status() const { return status_; }
    const std::string &error() const { return error_; }
    const Abi &abi() const { return abi_; }
    lmscore_model *model() { return model_; }
    lmscore_kv *kv() { return kv_; }
    lmscore_step *step() { return step_; }
    int block_size() const { return block_size_; }
    int n_blocks() const { return n_blocks_; }
    int max_tokens() const { return max_tokens_; }
    int max_outputs() const { return max_outputs_; }

  private:
    const Abi &abi_;
    int block_size_, n_blocks_, max_tokens_, max_outputs_;
    lmscore_model *model_ = nullptr;
    lmscore_kv *kv_ = nullptr;
    lmscore_step *step_ = nullptr;
    lmscore_status status_ = LMSCORE_STATUS_OK;
    std::string error_;
};

// The arrays of one lmscore_batch, built segment by segment.
struct StepBuilder {
    std::vector<int32_t> ids, pos, slots, seg_start{0}, indptr{0}, indices;
    std::vector<int32_t> copy_src, copy_dst, copy_n, out_index, out_target;
    std::vector<std::pair<int, int>> out_owner; // (pair, continuation token) per output row
    int top_n = 0;

    int n_tokens() const { return (int)ids.size(); }

    // Tokens toks at positions first_pos.. of a sequence whose block table
    // (from position 0) is table; writes K/V unless a token's position is
    // below write_from.
    void add_segment(const std::vector<int32_t> &toks, int first_pos, const std::vector<int32_t> &table, int bs,
                     int write_from) {
        for (size_t i = 0; i < toks.size(); ++i) {
            const int p = first_pos + (int)i;
            ids.push_back(toks[i]);
            pos.push_back(p);
            slots.push_back(p < write_from ? -1 : table[p / bs] * bs + p % bs);
        }
        seg_start.push_back((int32_t)ids.size());
        indices.insert(indices.end(), table.begin(), table.end());
        indptr.push_back((int32_t)indices.size());
    }
    void add_output(int token_index, int target, int pair, int j) {
        out_index.push_back(token_index);
        out_target.push_back(target);
        out_owner.push_back({pair, j});
    }
    lmscore_batch batch() const {
        lmscore_batch b{};
        b.n_tokens = (int32_t)ids.size();
        b.token_ids = ids.data();
        b.positions = pos.data();
        b.slots = slots.data();
        b.n_segments = (int32_t)seg_start.size() - 1;
        b.seg_token_start = seg_start.data();
        b.block_indptr = indptr.data();
        b.block_indices = indices.data();
        b.n_copies = (int32_t)copy_src.size();
        b.copy_src = copy_src.data();
        b.copy_dst = copy_dst.data();
        b.copy_n_tokens = copy_n.data();
        b.n_outputs = (int32_t)out_index.size();
        b.out_token_index = out_index.data();
        b.out_target = out_target.data();
        b.top_n = top_n;
        return b;
    }
};

// Runs a built step and files each output row under its pair. Returns the
// status; on failure *err holds the core's message.
inline lmscore_status run_step(Engine &e, const StepBuilder &sb, std::vector<PairScore> &scores, std::string *err) {
    const lmscore_batch b = sb.batch();
    const int no = b.n_outputs, K = sb.top_n;
    std::vector<float> lp(no), tlp((size_t)no * K);
    std::vector<uint8_t> g(no);
    std::vector<int32_t> tid((size_t)no * K);
    lmscore_batch_result r{lp.data(), g.data(), K ? tid.data() : nullptr, K ? tlp.data() : nullptr};
    const lmscore_status st = e.abi().step_run(e.step(), e.kv(), &b, &r);
    if (st != LMSCORE_STATUS_OK) {
        *err = e.abi().last_error();
        return st;
    }
    for (int i = 0; i < no; ++i) {
        auto [pair, j] = sb.out_owner[i];
        PairScore &s = scores[pair];
        s.logprob[j] = lp[i];
        s.greedy[j] = g[i];
        for (int k = 0; k < K; ++k) {
            s.top_ids[(size_t)j * K + k] = tid[(size_t)i * K + k];
            s.top_logprobs[(size_t)j * K + k] = tlp[(size_t)i * K + k];
        }
    }
    return st;
}

inline std::vector<PairScore> empty_scores(const std::vector<Pair> &pairs, int top_n) {
    std::vector<PairScore> s(pairs.size());
    for (size_t i = 0; i < pairs.size(); ++i) {
        const size_t n = pairs[i].tokens.size() - pairs[i].ctx_len;
        s[i].logprob.assign(n, NAN);
        s[i].greedy.assign(n, 2);
        s[i].top_ids.assign(n * top_n, -1);
        s[i].top_logprobs.assign(n * top_n, NAN);
    }
    return s;
}

// Every pair from position 0 in fresh blocks, as many pairs per step as fit.
inline bool score_uncached(Engine &e, const std::vector<Pair> &pairs, int top_n, std::vector<PairScore> *out,
                           std::string *err) {
    const int bs = e.block_size();
    *out = empty_scores(pairs, top_n);
    StepBuilder sb;
    sb.top_n = top_n;
    int next_block = 0;
    auto flush = [&]() {
        if (sb.ids.empty()) return true;
        if (run_step(e, sb, *out, err) != LMSCORE_STATUS_OK) return false;
        sb = StepBuilder();
        sb.top_n = top_n;
        next_block = 0;
        return true;
    };
    for (size_t i = 0; i < pairs.size(); ++i) {
        const Pair &p = pairs[i];
        const int n = (int)p.tokens.size() - 1; // the last token is only a target
        const int n_cont = (int)p.tokens.size() - p.ctx_len;
        const int nb = (n + bs - 1) / bs;
        if (sb.n_tokens() + n > e.max_tokens() || next_block + nb > e.n_blocks() ||
            (int)sb.out_index.size() + n_cont > e.max_outputs())
            if (!flush()) return false;
        std::vector<int32_t> table(nb);
        std::iota(table.begin(), table.end(), next_block);
        next_block += nb;
        const int base = sb.n_tokens();
        sb.add_segment(std::vector<int32_t>(p.tokens.begin(), p.tokens.begin() + n), 0, table, bs, 0);
        for (int j = 0; j < n_cont; ++j) sb.add_output(base + p.ctx_len - 1 + j, p.tokens[p.ctx_len + j], (int)i, j);
    }
    return flush();
}

// Pair i's continuation over its context's blocks ctx_table, in fresh blocks
// from *next_block: the context's partial last block copied (copy-on-write),
// the last context token again for its logits only (slot -1), then the
// continuation but its last token.
inline bool add_continuation(StepBuilder &sb, const std::vector<Pair> &pairs, int i,
                             const std::vector<int32_t> &ctx_table, int bs, int n_blocks, int *next_block,
                             std::string *err) {
    const Pair &p = pairs[i];
    const int len = (int)p.tokens.size(), c = p.ctx_len;
    std::vector<int32_t> table(ctx_table.begin(), ctx_table.begin() + c / bs);
    if (c % bs) {
        sb.copy_src.push_back(ctx_table[c / bs]);
        sb.copy_dst.push_back(*next_block);
        sb.copy_n.push_back(c % bs);
        table.push_back((*next_block)++);
    }
    while ((int)table.size() * bs < len - 1) table.push_back((*next_block)++);
    if (*next_block > n_blocks) {
        *err = "test plan: out of KV blocks";
        return false;
    }
    const int base = sb.n_tokens();
    sb.add_segment(std::vector<int32_t>(p.tokens.begin() + c - 1, p.tokens.begin() + len - 1), c - 1, table, bs, c);
    for (int j = 0; j < len - c; ++j) sb.add_output(base + j, p.tokens[c + j], i, j);
    return true;
}

// Contexts once per task (in two steps when split, to exercise segments
// that start mid-sequence and append to a partial block), then every
// continuation in one step over the shared blocks. shuffle_seed != 0
// permutes the continuation segments' order.
inline bool score_cached(Engine &e, const std::vector<Pair> &pairs, int top_n, bool split, uint64_t shuffle_seed,
                         std::vector<PairScore> *out, std::string *err) {
    const int bs = e.block_size();
    *out = empty_scores(pairs, top_n);
    int n_tasks = 0;
    for (const Pair &p : pairs) n_tasks = std::max(n_tasks, p.task + 1);
    std::vector<int> ctx_of(n_tasks, -1); // a pair index holding the task's context
    for (size_t i = 0; i < pairs.size(); ++i)
        if (ctx_of[pairs[i].task] < 0) ctx_of[pairs[i].task] = (int)i;

    int next_block = 0;
    std::vector<std::vector<int32_t>> ctx_table(n_tasks);
    for (int t = 0; t < n_tasks; ++t) {
        const int len = pairs[ctx_of[t]].ctx_len;
        const int nb = (len + bs - 1) / bs;
        for (int b = 0; b < nb; ++b) ctx_table[t].push_back(next_block++);
    }
    // Contexts: [0, cut) then [cut, len).
    for (int phase = 0; phase < (split ? 2 : 1); ++phase) {
        StepBuilder sb;
        for (int t = 0; t < n_tasks; ++t) {
            const Pair &p = pairs[ctx_of[t]];
            const int cut = split ? std::max(1, p.ctx_len / 2 - 3) : p.ctx_len;
            const int from = phase == 0 ? 0 : cut, to = phase == 0 ? cut : p.ctx_len;
            if (from >= to) continue;
            const int nb = (to + bs - 1) / bs;
            std::vector<int32_t> table(ctx_table[t].begin(), ctx_table[t].begin() + nb);
            sb.add_segment(std::vector<int32_t>(p.tokens.begin() + from, p.tokens.begin() + to), from, table, bs, from);
        }
        if (sb.ids.empty()) continue;
        if (sb.n_tokens() > e.max_tokens()) {
            *err = "test plan: contexts exceed max_tokens";
            return false;
        }
        if (run_step(e, sb, *out, err) != LMSCORE_STATUS_OK) return false;
    }
    // Continuations.
    std::vector<int> order(pairs.size());
    std::iota(order.begin(), order.end(), 0);
    if (shuffle_seed) {
        Rng rng(shuffle_seed);
        std::shuffle(order.begin(), order.end(), rng.gen);
    }
    StepBuilder sb;
    sb.top_n = top_n;
    for (int i : order)
        if (!add_continuation(sb, pairs, i, ctx_table[pairs[i].task], bs, e.n_blocks(), &next_block, err)) return false;
    if (sb.n_tokens() > e.max_tokens() || (int)sb.out_index.size() > e.max_outputs()) {
        *err = "test plan: continuations exceed the step";
        return false;
    }
    return run_step(e, sb, *out, err) == LMSCORE_STATUS_OK;
}

// Each task's context and its continuations in one step: the copies of the
// context's partial last block read slots the same step writes (ABI 5),
// and so does the recomputed last context token (slot -1).
inline bool score_cached_one_step(Engine &e, const std::vector<Pair> &pairs, int top_n, std::vector<PairScore> *out,
                                  std::string *err) {
    const int bs = e.block_size();
    *out = empty_scores(pairs, top_n);
    int n_tasks = 0;
    for (const Pair &p : pairs) n_tasks = std::max(n_tasks, p.task + 1);
    int next_block = 0;
    for (int t = 0; t < n_tasks; ++t) {
        StepBuilder sb;
        sb.top_n = top_n;
        std::vector<int32_t> ctx_table;
        for (size_t i = 0; i < pairs.size(); ++i) {
            const Pair &p = pairs[i];
            if (p.task != t) continue;
            if (ctx_table.empty()) {
                const int nb = (p.ctx_len + bs - 1) / bs;
                for (int b = 0; b < nb; ++b) ctx_table.push_back(next_block++);
                sb.add_segment(std::vector<int32_t>(p.tokens.begin(), p.tokens.begin() + p.ctx_len), 0, ctx_table, bs, 0);
            }
            if (!add_continuation(sb, pairs, (int)i, ctx_table, bs, e.n_blocks(), &next_block, err)) return false;
        }
        if (sb.ids.empty()) continue;
        if (sb.n_tokens() > e.max_tokens() || (int)sb.out_index.size() > e.max_outputs()) {
            *err = "test plan: a task's context and continuations exceed the step";
            return false;
        }
        if (run_step(e, sb, *out, err) != LMSCORE_STATUS_OK) return false;
    }
    return true;
}

} // namespace lmscore_test
