// Validation of a batch before it touches the KV pool: every index the
// forward pass will follow is checked here, so a bad plan is an
// INVALID_ARGUMENT naming the field and index, never a stray write.
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string>

#include "step.hpp"

namespace lmscore {

namespace {

[[noreturn]] void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void bad(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    throw Error(LMSCORE_STATUS_INVALID_ARGUMENT, std::string("batch: ") + buf);
}

void need(const void *p, int64_t n, const char *field) {
    if (n > 0 && p == nullptr) bad("%s is NULL but %lld entries are needed", field, (long long)n);
}

} // namespace

// validate_batch checks b against the step and pool and returns the number
// of keys the longest attention row reads (the last position + 1).
int32_t validate_batch(lmscore_step &st, const lmscore_kv &kv, const lmscore_batch &b,
                       const lmscore_batch_result &res) {
    const Hparams &hp = st.model->hp;
    const int32_t T = b.n_tokens;
    const int64_t n_slots = int64_t(kv.n_blocks) * kv.block_size;
    const int32_t bs = kv.block_size;

    if (T < 0 || T > st.max_tokens) bad("n_tokens %d outside [0, %d] (the step's max_tokens)", T, st.max_tokens);
    if (b.n_outputs < 0 || b.n_outputs > st.max_outputs)
        bad("n_outputs %d outside [0, %d] (the step's max_outputs)", b.n_outputs, st.max_outputs);
    if (b.n_copies < 0) bad("n_copies %d is negative", b.n_copies);
    if (b.n_segments < 0) bad("n_segments %d is negative", b.n_segments);
    need(b.token_ids, T, "token_ids");
    need(b.positions, T, "positions");
    need(b.slots, T, "slots");
    need(b.copy_src, b.n_copies, "copy_src");
    need(b.copy_dst, b.n_copies, "copy_dst");
    need(b.copy_n_tokens, b.n_copies, "copy_n_tokens");
    need(b.out_token_index, b.n_outputs, "out_token_index");
    need(b.out_target, b.n_outputs, "out_target");

    for (int32_t t = 0; t < T; t++) {
        if (b.token_ids[t] < 0 || b.token_ids[t] >= hp.n_vocab)
            bad("token_ids[%d] = %d outside [0, %d)", t, b.token_ids[t], hp.n_vocab);
        if (b.positions[t] < 0 || b.positions[t] >= hp.n_ctx_train)
            bad("positions[%d] = %d outside [0, %d) (n_ctx_train)", t, b.positions[t], hp.n_ctx_train);
        if (b.slots[t] < -1 || b.slots[t] >= n_slots)
            bad("slots[%d] = %d outside [-1, %lld) (the pool's slots)", t, b.slots[t], (long long)n_slots);
    }

    for (int32_t i = 0; i < b.n_copies; i++) {
        if (b.copy_src[i] < 0 || b.copy_src[i] >= kv.n_blocks)
            bad("copy_src[%d] = %d outside [0, %d) (the pool's blocks)", i, b.copy_src[i], kv.n_blocks);
        if (b.copy_dst[i] < 0 || b.copy_dst[i] >= kv.n_blocks)
            bad("copy_dst[%d] = %d outside [0, %d) (the pool's blocks)", i, b.copy_dst[i], kv.n_blocks);
        if (b.copy_n_tokens[i] < 0 || b.copy_n_tokens[i] > bs)
            bad("copy_n_tokens[%d] = %d outside [0, %d] (block_size)", i, b.copy_n_tokens[i], bs);
    }

    int32_t max_keys = 0;
    if (T > 0 || b.n_segments > 0) {
        const int32_t S = b.n_segments;
        if (S == 0) bad("n_segments is 0 but there are %d tokens", T);
        need(b.seg_token_start, S + 1, "seg_token_start");
        need(b.block_indptr, S + 1, "block_indptr");
        if (b.seg_token_start[0] != 0) bad("seg_token_start[0] = %d, want 0", b.seg_token_start[0]);
        if (b.seg_token_start[S] != T)
            bad("seg_token_start[%d] = %d, want n_tokens = %d", S, b.seg_token_start[S], T);
        if (b.block_indptr[0] != 0) bad("block_indptr[0] = %d, want 0", b.block_indptr[0]);
        for (int32_t s = 0; s < S; s++) {
            if (b.seg_token_start[s + 1] <= b.seg_token_start[s])
                bad("seg_token_start[%d] = %d, want > seg_token_start[%d] = %d (segments are not empty)",
                    s + 1, b.seg_token_start[s + 1], s, b.seg_token_start[s]);
            if (b.block_indptr[s + 1] < b.block_indptr[s])
                bad("block_indptr[%d] = %d < block_indptr[%d] = %d", s + 1, b.block_indptr[s + 1], s,
                    b.block_indptr[s]);
        }
        const int32_t n_indices = b.block_indptr[S];
        need(b.block_indices, n_indices, "block_indices");
        for (int32_t i = 0; i < n_indices; i++)
            if (b.block_indices[i] < 0 || b.block_indices[i] >= kv.n_blocks)
                bad("block_indices[%d] = %d outside [0, %d) (the pool's blocks)", i, b.block_indices[i],
                    kv.n_blocks);
        for (int32_t s = 0; s < S; s++) {
            const int32_t t0 = b.seg_token_start[s], t1 = b.seg_token_start[s + 1];
            const int32_t *table = b.block_indices + b.block_indptr[s];
            const int32_t n_blocks = b.block_indptr[s + 1] - b.block_indptr[s];
            for (int32_t t = t0 + 1; t < t1; t++)
                if (b.positions[t] != b.positions[t - 1] + 1)
                    bad("positions[%d] = %d, want %d: segment %d's positions must be consecutive", t,
                        b.positions[t], b.positions[t - 1] + 1, s);
            const int32_t last = b.positions[t1 - 1];
            if (int64_t(n_blocks) * bs <= last)
                bad("segment %d reaches position %d but its block table holds %d blocks of %d", s, last,
                    n_blocks, bs);
            for (int32_t t = t0; t < t1; t++) {
                if (b.slots[t] < 0) continue;
                const int32_t p = b.positions[t];
                const int64_t want = int64_t(table[p / bs]) * bs + p % bs;
                if (b.slots[t] != want)
                    bad("slots[%d] = %d, but segment %d's block table puts position %d at slot %lld", t,
                        b.slots[t], s, p, (long long)want);
            }
            max_keys = std::max(max_keys, last + 1);
        }
    }

    // Two tokens writing one slot would race; the plan never needs it.
    st.slot_check.clear();
    for (int32_t t = 0; t < T; t++)
        if (b.slots[t] >= 0) st.slot_check.push_back(b.slots[t]);
    std::sort(st.slot_check.begin(), st.slot_check.end());
    auto dup = std::adjacent_find(st.slot_check.begin(), st.slot_check.end());
    if (dup != st.slot_check.end()) bad("slot %d is written by two tokens", *dup);

    if (b.top_n < 0 || b.top_n > hp.n_vocab) bad("top_n %d outside [0, %d] (n_vocab)", b.top_n, hp.n_vocab);
    for (int32_t i = 0; i < b.n_outputs; i++) {
        if (b.out_token_index[i] < 0 || b.out_token_index[i] >= T)
            bad("out_token_index[%d] = %d outside [0, %d) (n_tokens)", i, b.out_token_index[i], T);
        if (b.out_target[i] < 0 || b.out_target[i] >= hp.n_vocab)
            bad("out_target[%d] = %d outside [0, %d) (n_vocab)", i, b.out_target[i], hp.n_vocab);
    }
    if (b.n_outputs > 0) {
        need(res.logprob, b.n_outputs, "result logprob");
        need(res.is_greedy, b.n_outputs, "result is_greedy");
        if (b.top_n > 0) {
            need(res.top_ids, b.n_outputs, "result top_ids");
            need(res.top_logprobs, b.n_outputs, "result top_logprobs");
        }
    }
    return max_keys;
}

} // namespace lmscore
