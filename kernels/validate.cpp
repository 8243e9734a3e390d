// validate.cpp — checks a batch on the host before any of it reaches the device.
#include <stdarg.h>

#include <algorithm>

#include "internal.h"

namespace lmscore_cuda {

namespace {

lmscore_status bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
lmscore_status bad(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "batch: %s", buf);
}

lmscore_status check_csr(const char *name, const int32_t *a, int n, int32_t last) {
    if (!a) return bad("%s is null", name);
    if (a[0] != 0) return bad("%s[0] = %d, want 0", name, a[0]);
    for (int i = 1; i <= n; ++i)
        if (a[i] < a[i - 1]) return bad("%s is not monotone: [%d] = %d < [%d] = %d", name, i, a[i], i - 1, a[i - 1]);
    if (last >= 0 && a[n] != last) return bad("%s[%d] = %d, want %d", name, n, a[n], last);
    return LMSCORE_STATUS_OK;
}

} // namespace

lmscore_status validate_batch(const lmscore_batch *b, const lmscore_batch_result *r, const BatchLimits &lim) {
    if (!b) return bad("batch is null");
    const int n = b->n_tokens;
    if (n < 0 || n > lim.max_tokens) return bad("n_tokens %d outside [0, max_tokens %d]", n, lim.max_tokens);
    if (n > 0 && (!b->token_ids || !b->positions || !b->slots)) return bad("token_ids, positions or slots is null");
    const int64_t n_slots = (int64_t)lim.block_size * lim.n_blocks;
    for (int t = 0; t < n; ++t) {
        if (b->token_ids[t] < 0 || b->token_ids[t] >= lim.n_vocab)
            return bad("token_ids[%d] = %d outside the vocabulary [0, %d)", t, b->token_ids[t], lim.n_vocab);
        if (b->positions[t] < 0 || b->positions[t] >= lim.n_ctx_train)
            return bad("positions[%d] = %d outside [0, n_ctx_train %d)", t, b->positions[t], lim.n_ctx_train);
        if (b->slots[t] < -1 || b->slots[t] >= n_slots)
            return bad("slots[%d] = %d outside [-1, %lld)", t, b->slots[t], (long long)n_slots);
    }

    if (b->n_segments < 0) return bad("n_segments %d is negative", b->n_segments);
    if (n > 0 && b->n_segments == 0) return bad("%d tokens but no segment", n);
    if (b->n_segments > 0 || n > 0) {
        lmscore_status st = check_csr("seg_token_start", b->seg_token_start, b->n_segments, n);
        if (st != LMSCORE_STATUS_OK) return st;
        st = check_csr("block_indptr", b->block_indptr, b->n_segments, -1);
        if (st != LMSCORE_STATUS_OK) return st;
        const int n_indices = b->block_indptr[b->n_segments];
        if (n_indices > 0 && !b->block_indices) return bad("block_indices is null");
        for (int i = 0; i < n_indices; ++i)
            if (b->block_indices[i] < 0 || b->block_indices[i] >= lim.n_blocks)
                return bad("block_indices[%d] = %d outside [0, n_blocks %d)", i, b->block_indices[i], lim.n_blocks);
        // Every position a token reads (0..its own) must have a block.
        for (int s = 0; s < b->n_segments; ++s) {
            const int64_t covered = (int64_t)(b->block_indptr[s + 1] - b->block_indptr[s]) * lim.block_size;
            for (int t = b->seg_token_start[s]; t < b->seg_token_start[s + 1]; ++t)
                if (b->positions[t] >= covered)
                    return bad("segment %d: positions[%d] = %d is past its block table (%d blocks of %d)", s, t,
                               b->positions[t], b->block_indptr[s + 1] - b->block_indptr[s], lim.block_size);
        }
    }

    if (b->n_copies < 0) return bad("n_copies %d is negative", b->n_copies);
    if (b->n_copies > 0 && (!b->copy_src || !b->copy_dst || !b->copy_n_tokens))
        return bad("copy_src, copy_dst or copy_n_tokens is null");
    for (int i = 0; i < b->n_copies; ++i) {
        if (b->copy_src[i] < 0 || b->copy_src[i] >= lim.n_blocks)
            return bad("copy_src[%d] = %d outside [0, n_blocks %d)", i, b->copy_src[i], lim.n_blocks);
        if (b->copy_dst[i] < 0 || b->copy_dst[i] >= lim.n_blocks)
            return bad("copy_dst[%d] = %d outside [0, n_blocks %d)", i, b->copy_dst[i], lim.n_blocks);
        if (b->copy_n_tokens[i] < 0 || b->copy_n_tokens[i] > lim.block_size)
            return bad("copy_n_tokens[%d] = %d outside [0, block_size %d]", i, b->copy_n_tokens[i], lim.block_size);
    }

    const int no = b->n_outputs;
    if (no < 0 || no > lim.max_outputs) return bad("n_outputs %d outside [0, max_outputs %d]", no, lim.max_outputs);
    if (b->top_n < 0 || b->top_n > lim.n_vocab) return bad("top_n %d outside [0, n_vocab %d]", b->top_n, lim.n_vocab);
    if (no > 0) {
        if (!b->out_token_index || !b->out_target) return bad("out_token_index or out_target is null");
        for (int i = 0; i < no; ++i) {
            if (b->out_token_index[i] < 0 || b->out_token_index[i] >= n)
                return bad("out_token_index[%d] = %d outside [0, n_tokens %d)", i, b->out_token_index[i], n);
            if (b->out_target[i] < 0 || b->out_target[i] >= lim.n_vocab)
                return bad("out_target[%d] = %d outside the vocabulary [0, %d)", i, b->out_target[i], lim.n_vocab);
        }
        if (!r || !r->logprob || !r->is_greedy) return bad("result, result->logprob or result->is_greedy is null");
        if (b->top_n > 0 && (!r->top_ids || !r->top_logprobs)) return bad("top_n %d but top_ids or top_logprobs is null", b->top_n);
    }
    return LMSCORE_STATUS_OK;
}

} // namespace lmscore_cuda
