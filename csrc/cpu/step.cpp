#include "step.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops.hpp"
#include "validate.hpp"

namespace lmscore {

namespace {

// Rows of attention per tile (tokens x query heads): enough to reuse each
// key and value read many times, few enough for the scores to stay in
// cache.
constexpr int kAttnTargetRows = 32;

// Rows of the output projection and FFN per pass (see run_step).
constexpr int64_t kRowChunk = 256;

// for_rows runs fn(row) for rows [0, n) on the pool, a few rows per task so
// that handing out tasks costs little next to the rows' work.
template <typename Fn> void for_rows(ThreadPool &pool, int64_t n, Fn &&fn) {
    constexpr int64_t kPer = 8;
    pool.run(ceil_div(n, kPer), [&](int64_t task, int) {
        const int64_t end = std::min(n, (task + 1) * kPer);
        for (int64_t r = task * kPer; r < end; r++) fn(r);
    });
}

// lap closes a phase of the step's profile, when it has one (profile.hpp).
inline void lap(StepProfile *prof, const char *name) {
    if (prof) prof->phase(name);
}

// Logits are computed this many floats at a time at most.
constexpr int64_t kLogitsFloats = int64_t(16) << 20;

// norm writes the model's norm of x with weights w (and bias b) into y;
// absent w: no norm, y = x (OLMo 2's missing pre-norms). x may be y.
void norm(const Hparams &hp, const Vector &w, const Vector &b, const float *x, float *y) {
    if (w.empty()) {
        if (x != y) std::memcpy(y, x, sizeof(float) * size_t(hp.n_embd));
    } else if (hp.norm_type == LMSCORE_NORM_LAYER) {
        layer_norm(hp.n_embd, x, w.data(), b.empty() ? nullptr : b.data(), hp.norm_eps, y);
    } else {
        rms_norm(hp.n_embd, x, w.data(), hp.norm_eps, y);
    }
}

// qk_norm RMS-normalizes q (n_heads heads of head_dim) in place with w:
// each head with the same (head_dim) weights, or the whole projection
// with (n_heads * head_dim) weights; absent w: nothing.
inline void qk_norm(const Hparams &hp, float *x, int n_heads, const Vector &w) {
    if (w.empty()) return;
    const int hd = hp.head_dim;
    if (hp.qk_norm == LMSCORE_QK_NORM_FULL) {
        rms_norm(int64_t(n_heads) * hd, x, w.data(), hp.norm_eps, x);
        return;
    }
    for (int h = 0; h < n_heads; h++) {
        float *v = x + int64_t(h) * hd;
        rms_norm(hd, v, w.data(), hp.norm_eps, v);
    }
}

// add_bias adds b (if present) to n values.
inline void add_bias(float *x, const Vector &b, int64_t n) {
    if (b.empty()) return;
    for (int64_t i = 0; i < n; i++) x[i] += b[i];
}

void build_attn_items(const Hparams &hp, const lmscore_batch &b, const std::vector<TokenRun> &runs,
                      std::vector<AttnItem> &items) {
    items.clear();
    const int group = hp.n_head / hp.n_head_kv;
    const int heads = std::min(group, kAttnMaxRows);
    const int tokens = std::max(1, kAttnTargetRows / heads);
    for (const TokenRun &run : runs) {
        for (int32_t i = 0; i < run.n_tokens; i += tokens) {
            const int32_t t = run.token0 + i;
            const int32_t n = std::min<int32_t>(tokens, run.n_tokens - i);
            // For balance only: a window bounds the keys (in its layers;
            // one estimate serves every layer).
            const int64_t keys = b.positions[t] + n;
            const int64_t cost = int64_t(n) * (hp.n_swa > 0 ? std::min<int64_t>(keys, hp.n_swa + n) : keys);
            for (int kh = 0; kh < hp.n_head_kv; kh++)
                for (int g = 0; g < group; g += heads)
                    items.push_back({run.segment, t, n, run.out_row0 + i, kh, g, std::min(heads, group - g),
                                     cost * heads});
        }
    }
    std::stable_sort(items.begin(), items.end(),
                     [](const AttnItem &a, const AttnItem &c) { return a.cost > c.cost; });
}

// plan_attention lists the attention work: every token in every layer but
// the last, where only the tokens with output rows need more than their
// K/V (written before attention). Their rows are compacted, in token order,
// from there on.
void plan_attention(lmscore_step &st, const Hparams &hp, const lmscore_batch &b) {
    st.runs.clear();
    for (int32_t s = 0; s < b.n_segments; s++) {
        const int32_t t0 = b.seg_token_start[s], t1 = b.seg_token_start[s + 1];
        st.runs.push_back({s, t0, t1 - t0, t0});
    }
    build_attn_items(hp, b, st.runs, st.items);

    st.out_row_of.assign(size_t(b.n_tokens), -1);
    for (int32_t i = 0; i < b.n_outputs; i++) st.out_row_of[size_t(b.out_token_index[i])] = 0;
    st.out_rows.clear();
    for (int32_t t = 0; t < b.n_tokens; t++) {
        if (st.out_row_of[size_t(t)] < 0) continue;
        st.out_row_of[size_t(t)] = int32_t(st.out_rows.size());
        st.out_rows.push_back(t);
    }
    st.runs.clear();
    for (int32_t s = 0; s < b.n_segments; s++) {
        const int32_t t1 = b.seg_token_start[s + 1];
        for (int32_t t = b.seg_token_start[s]; t < t1; t++) {
            if (st.out_row_of[size_t(t)] < 0) continue;
            if (!st.runs.empty() && st.runs.back().segment == s &&
                st.runs.back().token0 + st.runs.back().n_tokens == t) {
                st.runs.back().n_tokens++;
            } else {
                st.runs.push_back({s, t, 1, st.out_row_of[size_t(t)]});
            }
        }
    }
    build_attn_items(hp, b, st.runs, st.items_last);
}

// copy_blocks runs the batch's block copies of layer l, in array order (a
// copy may read another's destination), after the layer's K/V writes.
void copy_blocks(lmscore_kv &kv, const lmscore_batch &b, int l) {
    const Hparams &hp = kv.model->hp;
    const int64_t bs = kv.block_size;
    const int64_t head = bs * hp.head_dim; // one head's K or V in a block
    for (int32_t i = 0; i < b.n_copies; i++) {
        const int32_t src = b.copy_src[i], dst = b.copy_dst[i], n = b.copy_n_tokens[i];
        if (src == dst || n == 0) continue;
        const float *s = kv.block(l, src);
        float *d = kv.block(l, dst);
        for (int kh = 0; kh < hp.n_head_kv; kh++) {
            // K transposed: the first n of each of head_dim rows.
            for (int64_t e = 0; e < hp.head_dim; e++)
                std::memcpy(d + kh * head + e * bs, s + kh * head + e * bs, sizeof(float) * size_t(n));
            // V: the first n rows.
            const int64_t v = (hp.n_head_kv + kh) * head;
            std::memcpy(d + v, s + v, sizeof(float) * size_t(n) * hp.head_dim);
        }
    }
}

// sum_ranks sums a shard's partial rows over its tensor-parallel group; a
// whole model's are whole already.
void sum_ranks(lmscore_model &m, float *rows, int64_t n, StepProfile *prof) {
    if (!m.tp) return;
    m.tp->sum_rows(m.tp_rank, rows, n, *m.pool);
    lap(prof, "tensor-parallel sum");
}

// dense_ffn writes the FFN of one layer for nr rows of in (n_embd each,
// normed) into out (n_embd each), the down projection's bias included: the
// one place a layer's FFN is computed, so that another FFN (experts) can
// take its place.
void dense_ffn(lmscore_step &st, const LayerWeights &lw, const float *in, int64_t nr, float *out) {
    const lmscore_model &m = *st.model;
    const Hparams &hp = m.hp;
    const Kernels &kern = *m.kern;
    ThreadPool &pool = *m.pool;
    const int64_t E = hp.n_embd, n_in = hp.n_ffn_in(), ff = hp.n_ff;
    float *ffn_in = st.ffn_in.data(), *act = st.act.data();
    gemm(pool, kern, st.gemm, in, E, nr, lw.ffn_in, ffn_in, n_in);
    lap(st.profile.get(), hp.gated_ffn() ? "gate/up gemm" : "up gemm");
    for_rows(pool, nr, [&](int64_t t) {
        float *x = ffn_in + t * n_in, *a = act + t * ff;
        add_bias(x, lw.ffn_in_b, n_in);
        switch (hp.ffn_type) {
        case LMSCORE_FFN_SWIGLU: kern.silu_mul(ff, x, x + ff, a); break;
        case LMSCORE_FFN_GEGLU: kern.gelu_mul(ff, x, x + ff, a); break;
        case LMSCORE_FFN_GELU: kern.gelu(ff, x, a); break;
        case LMSCORE_FFN_GELU_ERF: kern.gelu_erf(ff, x, a); break;
        }
    });
    lap(st.profile.get(), hp.gated_ffn() ? "gated activation" : "gelu");
    gemm(pool, kern, st.gemm, act, ff, nr, lw.ffn_down, out, E);
    lap(st.profile.get(), "down gemm");
    sum_ranks(*st.model, out, nr * E, st.profile.get()); // a shard's partial rows, before the bias
    for_rows(pool, nr, [&](int64_t t) { add_bias(out + t * E, lw.ffn_down_b, E); });
}

// output_row turns one row of logits into the result of output i.
void output_row(const Kernels &kern, const Hparams &hp, float *row, int32_t target, int32_t top_n,
                std::vector<std::pair<float, int32_t>> &top, lmscore_batch_result &res, int32_t i) {
    const int32_t V = hp.n_vocab;
    // Soft-capped logits are the model's logits: the log-softmax, the
    // greedy flag and the top tokens all read them.
    if (hp.final_softcap > 0.0f) kern.softcap(V, row, hp.final_softcap);
    const float max = kern.row_max(V, row);
    const float log_sum = std::log(kern.sum_exp(V, row, max));
    res.logprob[i] = (row[target] - max) - log_sum;
    res.is_greedy[i] = row[target] == max ? 1 : 0;
    if (top_n == 0) return;
    // The top_n largest logits, larger first and lower ids first on ties:
    // a min-heap of the best so far.
    auto better = [](const std::pair<float, int32_t> &a, const std::pair<float, int32_t> &c) {
        return a.first > c.first || (a.first == c.first && a.second < c.second);
    };
    top.clear();
    for (int32_t v = 0; v < V; v++) {
        std::pair<float, int32_t> e{row[v], v};
        if (int32_t(top.size()) < top_n) {
            top.push_back(e);
            std::push_heap(top.begin(), top.end(), better);
        } else if (better(e, top.front())) {
            std::pop_heap(top.begin(), top.end(), better);
            top.back() = e;
            std::push_heap(top.begin(), top.end(), better);
        }
    }
    std::sort_heap(top.begin(), top.end(), better);
    for (int32_t j = 0; j < top_n; j++) {
        res.top_ids[int64_t(i) * top_n + j] = top[size_t(j)].second;
        res.top_logprobs[int64_t(i) * top_n + j] = (top[size_t(j)].first - max) - log_sum;
    }
}

} // namespace

std::unique_ptr<lmscore_step> make_step(lmscore_model &m, int32_t max_tokens, int32_t max_outputs) {
    if (max_tokens <= 0) fail(LMSCORE_STATUS_INVALID_ARGUMENT, "step: max_tokens %d, want > 0", max_tokens);
    if (max_outputs < 0) fail(LMSCORE_STATUS_INVALID_ARGUMENT, "step: max_outputs %d, want >= 0", max_outputs);
    const Hparams &hp = m.hp;
    auto st = std::make_unique<lmscore_step>();
    st->model = &m;
    st->max_tokens = max_tokens;
    st->max_outputs = max_outputs;
    const int64_t T = max_tokens;
    auto rows = [&](int64_t width) { return size_t(checked_mul(T, width, "step buffer")); };
    st->x.reset(rows(hp.n_embd));
    st->h.reset(rows(hp.n_embd));
    st->qkv.reset(rows(hp.n_qkv()));
    st->attn.reset(rows(hp.n_q()));
    st->tmp.reset(rows(hp.n_embd));
    const int64_t chunk = std::min<int64_t>(T, kRowChunk);
    st->ffn_in.reset(size_t(checked_mul(chunk, hp.n_ffn_in(), "step buffer")));
    st->act.reset(size_t(checked_mul(chunk, hp.n_ff, "step buffer")));
    // cos/sin of every token, one table per RoPE kind (full, sliding).
    st->rope.reset(size_t(checked_mul(T, int64_t(hp.n_rot) * std::max<size_t>(1, m.rope_inv_freq.size()), "step buffer")));
    st->out_chunk = int32_t(std::max<int64_t>(1, std::min<int64_t>(max_outputs, kLogitsFloats / hp.n_vocab)));
    if (max_outputs > 0) {
        st->out_h.reset(size_t(st->out_chunk) * size_t(hp.n_embd));
        st->logits.reset(size_t(checked_mul(st->out_chunk, hp.n_vocab, "logits")));
    }
    const int n_threads = m.pool->size();
    const int64_t gemm_k = std::max<int64_t>({hp.n_embd, hp.n_q(), hp.n_ff});
    st->gemm.reserve(*m.kern, std::max<int64_t>(T, st->out_chunk), gemm_k, n_threads);
    moe_reserve(st->moe, *m.kern, m.layers[0].moe, hp.n_embd, chunk, n_threads);
    st->attn_scratch.resize(size_t(n_threads));
    st->top_scratch.resize(size_t(n_threads));
    for (int i = 0; i < n_threads; i++) {
        st->attn_ptrs.push_back(nullptr);
    }
    st->items.reserve(size_t(T) * size_t(hp.n_head_kv));
    st->slot_check.resize(size_t(T)); // the duplicate-slot check's scratch
    st->profile = make_step_profile(m);
    return st;
}

static void run_step_body(lmscore_step &st, lmscore_kv &kv, const lmscore_batch &b, lmscore_batch_result &res,
                          lmscore_common::TpPassage &passage) {
    lmscore_model &m = *st.model;
    if (kv.model != &m) fail(LMSCORE_STATUS_INVALID_ARGUMENT, "step: the KV pool belongs to another model");
    std::lock_guard<std::mutex> lock(m.run_mu);
    StepProfile *prof = st.profile.get();
    if (prof) prof->begin();
    // A step that throws is counted as dropped, not left open.
    struct DropOnThrow {
        StepProfile *p;
        ~DropOnThrow() {
            if (p) p->drop_open();
        }
    } drop_on_throw{prof};

    const int32_t max_keys = validate_batch(st, kv, b, res);
    if (prof) prof->host("validate");
    kv_reserve_batch(kv, b); // the pool grows to the blocks this step names
    if (prof) prof->host("kv reserve");
    const Hparams &hp = m.hp;
    const Kernels &kern = *m.kern;
    ThreadPool &pool = *m.pool;
    const int32_t T = b.n_tokens;
    const int64_t E = hp.n_embd, hd = hp.head_dim, nq = hp.n_q(), nkv = hp.n_kv(), nqkv = hp.n_qkv();

    // Everything that can fail to allocate happens before the KV pool is touched.
    plan_attention(st, hp, b);
    for (int i = 0; i < pool.size(); i++) {
        st.attn_scratch[size_t(i)].grow(size_t(attn_scratch_floats(int(hd), max_keys)));
        st.attn_ptrs[size_t(i)] = st.attn_scratch[size_t(i)].data();
        st.top_scratch[size_t(i)].reserve(size_t(b.top_n));
    }
    if (prof) prof->host("plan attention");
    std::string tp_err;
    if (lmscore_status tst = passage.open(&tp_err)) fail(tst, "%s", tp_err.c_str()); // from here on every rank computes
    if (m.tp) lap(prof, "tensor-parallel start");

    if (T == 0) {
        // A copy-only step: nothing is written, so every layer copies now.
        for (int l = 0; l < hp.n_layer; l++) copy_blocks(kv, b, l);
        lap(prof, "block copy");
        if (prof) prof->end();
        return;
    }

    float *x = st.x.data(), *h = st.h.data(), *qkv = st.qkv.data(), *attn = st.attn.data();
    float *tmp = st.tmp.data(), *rope = st.rope.data();

    const Vector no_bias; // post-norms have weights only
    const int64_t n_rot = hp.n_rot;
    const int n_tables = int(m.rope_inv_freq.size());
    for_rows(pool, T, [&](int64_t t) {
        float *xt = x + t * E;
        m.embed(b.token_ids[t], xt);
        if (hp.embd_scale != 1.0f)
            for (int64_t i = 0; i < E; i++) xt[i] *= hp.embd_scale;
        if (!m.pos_embd.empty()) {
            const float *pe = m.pos_embd.data() + int64_t(b.positions[t]) * E;
            for (int64_t i = 0; i < E; i++) xt[i] += pe[i];
        }
        for (int k = 0; k < n_tables; k++)
            rope_angles(b.positions[t], int(n_rot), m.rope_inv_freq[size_t(k)].data(), m.rope_attn_factor,
                        rope + (int64_t(k) * T + t) * n_rot);
        norm(hp, m.layers[0].attn_norm, m.layers[0].attn_norm_b, xt, h + t * E);
    });
    // One pass per row here: the first layer's norm and the RoPE angles too.
    lap(prof, "embed + rope angles + attn norm");

    for (int l = 0; l < hp.n_layer; l++) {
        const LayerWeights &lw = m.layers[size_t(l)];
        gemm(pool, kern, st.gemm, h, E, T, lw.wqkv, qkv, nqkv);
        lap(prof, "qkv gemm");

        const float *layer_rope = rope + int64_t(lw.rope_table) * T * n_rot;
        for_rows(pool, T, [&](int64_t t) {
            float *row = qkv + t * nqkv;
            add_bias(row, lw.bqkv, nqkv);
            qk_norm(hp, row, hp.n_head, lw.attn_q_norm);
            qk_norm(hp, row + nq, hp.n_head_kv, lw.attn_k_norm);
            const float *cs = layer_rope + t * n_rot;
            if (hp.rope_type == LMSCORE_ROPE_TYPE_NORM) {
                rope_norm(row, hp.n_head, int(hd), int(n_rot), cs);
                rope_norm(row + nq, hp.n_head_kv, int(hd), int(n_rot), cs);
            } else if (hp.rope_type == LMSCORE_ROPE_TYPE_NEOX) {
                rope_neox(row, hp.n_head, int(hd), int(n_rot), cs);
                rope_neox(row + nq, hp.n_head_kv, int(hd), int(n_rot), cs);
            }
        });
        lap(prof, "qkv bias + q/k norm + rope");

        // K/V into their slots, by KV head and runs of tokens: a block's
        // transposed keys share cache lines across its slots, so one task
        // writes a long run of tokens rather than threads taking turns.
        constexpr int64_t kKvRun = 64;
        const int64_t kv_runs = ceil_div(T, kKvRun);
        pool.run(hp.n_head_kv * kv_runs, [&](int64_t task, int) {
            const int kh = int(task / kv_runs);
            const int64_t t_end = std::min<int64_t>(T, (task % kv_runs + 1) * kKvRun);
            const int64_t head_rows = int64_t(kv.block_size) * hd;
            for (int64_t t = (task % kv_runs) * kKvRun; t < t_end;) {
                const int32_t slot = b.slots[t];
                if (slot < 0) {
                    t++;
                    continue;
                }
                // A run of tokens in consecutive slots of one block: keys go
                // in d-major order, each d's run of offsets side by side.
                const int64_t offset = slot % kv.block_size;
                int64_t n = 1;
                while (t + n < t_end && offset + n < kv.block_size && b.slots[t + n] == slot + n) n++;
                float *blk = kv.block(l, slot / kv.block_size);
                float *k = blk + kh * head_rows + offset; // transposed: stride block_size
                const float *k_src = qkv + t * nqkv + nq + kh * hd;
                for (int64_t d = 0; d < hd; d++)
                    for (int64_t i = 0; i < n; i++) k[d * kv.block_size + i] = k_src[i * nqkv + d];
                for (int64_t i = 0; i < n; i++)
                    std::memcpy(blk + (hp.n_head_kv + kh) * head_rows + (offset + i) * hd,
                                qkv + (t + i) * nqkv + nq + nkv + kh * hd, sizeof(float) * size_t(hd));
                t += n;
            }
        });
        lap(prof, "kv write");
        // After the writes: a copy may read its source's slots this step wrote.
        if (b.n_copies > 0) {
            copy_blocks(kv, b, l);
            lap(prof, "block copy");
        }

        // The last layer carries on with the output tokens' rows only.
        const bool last = l + 1 == hp.n_layer;
        const std::vector<AttnItem> &items = last ? st.items_last : st.items;
        const int64_t rows = last ? int64_t(st.out_rows.size()) : T;
        const float *layer_kv = kv.block(l, 0);
        pool.run(int64_t(items.size()), [&](int64_t i, int thread) {
            const AttnItem &it = items[size_t(i)];
            const int group = hp.n_head / hp.n_head_kv;
            const int64_t head = int64_t(it.kv_head) * group + it.head0;
            AttnTile tile;
            tile.head_dim = int(hd);
            tile.n_rows = it.n_tokens * it.n_heads;
            tile.group = it.n_heads;
            tile.pos0 = b.positions[it.token0];
            tile.q = qkv + int64_t(it.token0) * nqkv + head * hd;
            tile.q_stride = nqkv;
            tile.out = attn + int64_t(it.out_row0) * nq + head * hd;
            tile.out_stride = nq;
            tile.k_base = layer_kv + int64_t(it.kv_head) * kv.block_size * hd;
            tile.v_base = layer_kv + int64_t(hp.n_head_kv + it.kv_head) * kv.block_size * hd;
            tile.block_stride = kv.block_floats;
            tile.block_size = kv.block_size;
            tile.blocks = b.block_indices + b.block_indptr[it.segment];
            tile.scale = hp.attn_scale;
            tile.softcap = hp.attn_softcap;
            tile.window = lw.sliding ? hp.n_swa : 0;
            kern.attention(tile, st.attn_ptrs[size_t(thread)]);
        });
        lap(prof, "attention");
        if (last) {
            // In token order, so a row never moves up over one still unread.
            for (int64_t r = 0; r < rows; r++) {
                const int64_t t = st.out_rows[size_t(r)];
                if (t != r) std::memcpy(x + r * E, x + t * E, sizeof(float) * size_t(E));
            }
            lap(prof, "gather output rows");
        }

        // The rest of the layer runs a chunk of rows at a time, so that the
        // FFN's wide intermediates stay in cache between the product that
        // writes them and the one that reads them.
        for (int64_t r0 = 0; r0 < rows; r0 += kRowChunk) {
            const int64_t nr = std::min(kRowChunk, rows - r0);
            float *xc = x + r0 * E, *hc = h + r0 * E, *tc = tmp + r0 * E;
            gemm(pool, kern, st.gemm, attn + r0 * nq, nq, nr, lw.wo, tc, E);
            lap(prof, "wo gemm");
            sum_ranks(m, tc, nr * E, prof);
            for_rows(pool, nr, [&](int64_t t) {
                float *xt = xc + t * E, *yt = tc + t * E;
                add_bias(yt, lw.bo, E);
                norm(hp, lw.attn_post_norm, no_bias, yt, yt);
                // Parallel residual: the FFN reads the layer's input too.
                if (hp.parallel_residual) norm(hp, lw.ffn_norm, lw.ffn_norm_b, xt, hc + t * E);
                for (int64_t i = 0; i < E; i++) xt[i] += yt[i];
                if (!hp.parallel_residual) norm(hp, lw.ffn_norm, lw.ffn_norm_b, xt, hc + t * E);
            });
            lap(prof, "attn residual + ffn norm");

            if (lw.moe.enabled()) {
                moe_ffn(pool, kern, lw.moe, st.moe, hc, E, nr, tc);
                lap(prof, "experts");
            } else {
                dense_ffn(st, lw, hc, nr, tc);
            }
            for_rows(pool, nr, [&](int64_t t) {
                float *xt = xc + t * E, *yt = tc + t * E;
                norm(hp, lw.ffn_post_norm, no_bias, yt, yt);
                for (int64_t i = 0; i < E; i++) xt[i] += yt[i];
                if (!last) {
                    const LayerWeights &nw = m.layers[size_t(l + 1)];
                    norm(hp, nw.attn_norm, nw.attn_norm_b, xt, hc + t * E);
                }
            });
            lap(prof, "ffn residual + next attn norm");
        }
    }

    const int64_t V = hp.n_vocab;
    for (int32_t o0 = 0; o0 < b.n_outputs; o0 += st.out_chunk) {
        const int32_t n = std::min(st.out_chunk, b.n_outputs - o0);
        float *oh = st.out_h.data(), *logits = st.logits.data();
        pool.run(n, [&](int64_t i, int) {
            const float *xt = x + int64_t(st.out_row_of[size_t(b.out_token_index[o0 + i])]) * E;
            norm(hp, m.output_norm, m.output_norm_b, xt, oh + i * E);
        });
        lap(prof, "output norm");
        gemm(pool, kern, st.gemm, oh, E, n, m.output, logits, V);
        lap(prof, "lm head gemm");
        pool.run(n, [&](int64_t i, int thread) {
            output_row(kern, hp, logits + i * V, b.out_target[o0 + i], b.top_n,
                       st.top_scratch[size_t(thread)], res, o0 + int32_t(i));
        });
        lap(prof, "log-softmax");
    }
    if (prof) prof->end();
}

void run_step(lmscore_step &st, lmscore_kv &kv, const lmscore_batch &b, lmscore_batch_result &res) {
    // Every rank of a tensor-parallel group reaches the start barrier
    // exactly once per step, with its outcome (tp_barrier.h).
    lmscore_common::TpPassage passage(st.model->tp ? &st.model->tp->barrier : nullptr, st.model->tp_rank);
    try {
        run_step_body(st, kv, b, res, passage);
    } catch (const Error &e) {
        passage.failed(e.what(), e.status());
        throw;
    } catch (const std::bad_alloc &) {
        passage.failed("out of host memory", LMSCORE_STATUS_OUT_OF_MEMORY);
        throw;
    } catch (...) {
        passage.failed("internal error", LMSCORE_STATUS_INTERNAL);
        throw;
    }
}

} // namespace lmscore
