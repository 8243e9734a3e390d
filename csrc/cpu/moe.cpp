#include "moe.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "quant.hpp"

namespace lmscore {

// Not an anonymous namespace: the cgo build compiles every core file as one
// unit (binding/core_cpu.cpp), where step.cpp's and model.cpp's helpers of
// the same kind would collide with these.
namespace moe_detail {

int64_t row_bytes(const lmscore_tensor &t) {
    const BlockType *bt = block_type(t.type);
    return t.ne[0] / bt->values * bt->bytes;
}

// rows_of is rows [first, first + count) of t as a tensor of its own: an
// expert's slice of a stacked matrix.
lmscore_tensor rows_of(const lmscore_tensor &t, int64_t first, int64_t count) {
    lmscore_tensor v = t;
    v.data = static_cast<const uint8_t *>(t.data) + first * row_bytes(t);
    v.ne[1] = count;
    return v;
}

// init_matrix makes w quantized when any part is (its blocks are kept and
// dequantized inside the product, as model.cpp does for the dense weights).
void init_matrix(PackedMatrix &w, int64_t n, int64_t k, std::initializer_list<const lmscore_tensor *> parts) {
    for (const lmscore_tensor *t : parts) {
        if (is_block_quant(t->type)) {
            w.init_quantized(n, k);
            return;
        }
    }
    w.init(n, k);
}

// Loader copies rows into packed matrices with the model's pool, each
// thread converting into its own row of floats.
class Loader {
  public:
    Loader(ThreadPool &pool, int64_t max_row) : pool_(pool), tmp_(size_t(pool.size())) {
        for (auto &r : tmp_) r.reset(size_t(max_row));
    }

    // rows puts t's rows into w as rows first.. of it.
    void rows(const lmscore_tensor &t, PackedMatrix &w, int64_t first) {
        if (w.quantized()) {
            w.add_rows(t, first);
            return;
        }
        const BlockType &bt = *block_type(t.type);
        const int64_t n = t.ne[1], k = t.ne[0], rb = row_bytes(t);
        const uint8_t *src = static_cast<const uint8_t *>(t.data);
        constexpr int64_t kChunk = 64;
        pool_.run(ceil_div(n, kChunk), [&](int64_t chunk, int thread) {
            float *row = tmp_[size_t(thread)].data();
            for (int64_t r = chunk * kChunk; r < std::min(n, (chunk + 1) * kChunk); r++) {
                dequant_range(bt, src + r * rb, 0, k, row);
                w.set_row(first + r, row);
            }
        });
    }

  private:
    ThreadPool &pool_;
    std::vector<AlignedBuffer<float>> tmp_;
};

// for_row_blocks runs fn(row) for rows [0, n), a few per task so that
// handing out tasks costs little next to a row's work.
template <typename Fn> void for_row_blocks(ThreadPool &pool, int64_t n, Fn &&fn) {
    constexpr int64_t kPer = 8;
    pool.run(ceil_div(n, kPer), [&](int64_t task, int) {
        const int64_t end = std::min(n, (task + 1) * kPer);
        for (int64_t r = task * kPer; r < end; r++) fn(r);
    });
}

// A probability that route() has taken; real ones are in [0, 1].
constexpr float kTaken = -1.0f;

// route turns one row's router logits (overwritten) into its k experts,
// in increasing id, and their weights: lmscore.h's rule, in fp32, each step
// in a fixed order over the row alone.
void route(float *p, int n_expert, int k, bool norm, int32_t *chosen, float *weight) {
    float max = p[0];
    for (int e = 1; e < n_expert; e++) max = std::max(max, p[e]);
    float sum = 0.0f;
    for (int e = 0; e < n_expert; e++) {
        p[e] = std::exp(p[e] - max);
        sum += p[e];
    }
    for (int e = 0; e < n_expert; e++) p[e] = p[e] / sum;
    // k passes for the largest untaken probability; the strict > keeps the
    // lower id on a tie. (A NaN is never larger, so the pass still picks.)
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < n_expert; e++) {
            if (p[e] == kTaken) continue;
            if (best < 0 || p[e] > p[best]) best = e;
        }
        chosen[j] = best;
        weight[j] = p[best];
        p[best] = kTaken;
    }
    // Increasing expert id: the order of the weighted sum.
    for (int j = 1; j < k; j++) {
        for (int i = j; i > 0 && chosen[i - 1] > chosen[i]; i--) {
            std::swap(chosen[i - 1], chosen[i]);
            std::swap(weight[i - 1], weight[i]);
        }
    }
    if (norm) {
        float total = 0.0f;
        for (int j = 0; j < k; j++) total += weight[j];
        for (int j = 0; j < k; j++) weight[j] = weight[j] / total;
    }
}

// swiglu runs the gated activation of n rows of gate|up (2 ff each) into
// act (ff each), one row per call so that each row's vector/scalar split is
// its own.
void swiglu(ThreadPool &pool, const Kernels &kern, int64_t n, int64_t ff, const float *gate_up, float *act) {
    for_row_blocks(pool, n, [&](int64_t r) {
        const float *g = gate_up + r * 2 * ff;
        kern.silu_mul(ff, g, g + ff, act + r * ff);
    });
}

} // namespace moe_detail

void load_moe(ThreadPool &pool, const lmscore_model_desc &d, const lmscore_tensor *t, MoeWeights &mw) {
    if (d.n_expert <= 0) return;
    const int64_t e = d.n_embd, ne = d.n_expert, ff = d.n_ff_exp, fs = d.n_ff_shexp;
    mw.n_expert = d.n_expert;
    mw.n_expert_used = d.n_expert_used;
    mw.n_ff_exp = d.n_ff_exp;
    mw.n_ff_shexp = d.n_ff_shexp;
    mw.weights_norm = d.expert_weights_norm != 0;
    moe_detail::Loader ld(pool, std::max<int64_t>({e, ff, fs}));

    const lmscore_tensor &router = t[LMSCORE_LAYER_FFN_GATE_INP];
    moe_detail::init_matrix(mw.router, ne, e, {&router});
    ld.rows(router, mw.router, 0);

    const lmscore_tensor &gate = t[LMSCORE_LAYER_FFN_GATE_EXPS], &up = t[LMSCORE_LAYER_FFN_UP_EXPS];
    const lmscore_tensor &down = t[LMSCORE_LAYER_FFN_DOWN_EXPS];
    mw.gate_up.resize(size_t(ne));
    mw.down.resize(size_t(ne));
    for (int64_t x = 0; x < ne; x++) {
        PackedMatrix &gu = mw.gate_up[size_t(x)], &dn = mw.down[size_t(x)];
        moe_detail::init_matrix(gu, 2 * ff, e, {&gate, &up});
        ld.rows(moe_detail::rows_of(gate, x * ff, ff), gu, 0);
        ld.rows(moe_detail::rows_of(up, x * ff, ff), gu, ff);
        moe_detail::init_matrix(dn, e, ff, {&down});
        ld.rows(moe_detail::rows_of(down, x * e, e), dn, 0);
    }

    if (fs > 0) {
        const lmscore_tensor &sg = t[LMSCORE_LAYER_FFN_GATE_SHEXP], &su = t[LMSCORE_LAYER_FFN_UP_SHEXP];
        const lmscore_tensor &sd = t[LMSCORE_LAYER_FFN_DOWN_SHEXP];
        moe_detail::init_matrix(mw.shexp_gate_up, 2 * fs, e, {&sg, &su});
        ld.rows(sg, mw.shexp_gate_up, 0);
        ld.rows(su, mw.shexp_gate_up, fs);
        moe_detail::init_matrix(mw.shexp_down, e, fs, {&sd});
        ld.rows(sd, mw.shexp_down, 0);
        const lmscore_tensor &gi = t[LMSCORE_LAYER_FFN_GATE_INP_SHEXP];
        if (gi.data != nullptr) {
            mw.shexp_gate.reset(size_t(e));
            dequant_range(*block_type(gi.type), static_cast<const uint8_t *>(gi.data), 0, e, mw.shexp_gate.data());
        }
    }
}

void moe_reserve(MoeScratch &s, const Kernels &kern, const MoeWeights &mw, int64_t n_embd, int64_t max_rows,
                 int n_threads) {
    if (!mw.enabled()) return;
    const int64_t ne = mw.n_expert, k = mw.n_expert_used;
    const int64_t ff = std::max(mw.n_ff_exp, mw.n_ff_shexp);
    auto floats = [&](int64_t width) { return size_t(checked_mul(max_rows, width, "MoE step buffer")); };
    s.max_rows = max_rows;
    s.logits.reset(floats(ne));
    s.chosen.resize(floats(k));
    s.weight.resize(floats(k));
    s.expert_start.resize(size_t(ne + 1));
    s.cursor.resize(size_t(ne));
    s.routed.resize(floats(k));
    s.rows_in.reset(floats(n_embd));
    s.gate_up.reset(floats(2 * ff));
    s.act.reset(floats(ff));
    s.rows_out.reset(floats(n_embd));
    s.gemm.reserve(kern, max_rows, std::max(n_embd, ff), n_threads);
}

void moe_ffn(ThreadPool &pool, const Kernels &kern, const MoeWeights &mw, MoeScratch &s, const float *h,
             int64_t n_embd, int64_t n_rows, float *out) {
    if (n_rows > s.max_rows)
        fail(LMSCORE_STATUS_INTERNAL, "moe: %lld rows exceed the step's %lld", (long long)n_rows,
             (long long)s.max_rows);
    if (n_rows <= 0) return;
    const int64_t E = n_embd, ne = mw.n_expert, k = mw.n_expert_used, ff = mw.n_ff_exp;
    float *logits = s.logits.data(), *rows_in = s.rows_in.data(), *gate_up = s.gate_up.data();
    float *act = s.act.data(), *rows_out = s.rows_out.data();
    int32_t *chosen = s.chosen.data(), *routed = s.routed.data(), *start = s.expert_start.data();
    float *weight = s.weight.data();

    gemm(pool, kern, s.gemm, h, E, n_rows, mw.router, logits, ne);
    moe_detail::for_row_blocks(pool, n_rows, [&](int64_t r) {
        moe_detail::route(logits + r * ne, int(ne), int(k), mw.weights_norm, chosen + r * k, weight + r * k);
    });

    // Group the (row, choice) pairs by expert, rows in token order within
    // one: a counting sort, so the grouping follows from the choices alone.
    std::fill(start, start + ne + 1, 0);
    for (int64_t i = 0; i < n_rows * k; i++) start[chosen[i] + 1]++;
    for (int64_t x = 0; x < ne; x++) start[x + 1] += start[x];
    int32_t *cursor = s.cursor.data();
    std::copy(start, start + ne, cursor);
    for (int64_t i = 0; i < n_rows * k; i++) routed[cursor[chosen[i]]++] = int32_t(i);

    moe_detail::for_row_blocks(pool, n_rows,
                               [&](int64_t r) { std::memset(out + r * E, 0, sizeof(float) * size_t(E)); });

    // Experts one after another in increasing id, so that each token's
    // weighted outputs are added in that order.
    for (int64_t x = 0; x < ne; x++) {
        const int64_t first = start[x], count = start[x + 1] - first;
        if (count == 0) continue;
        const int32_t *pairs = routed + first;
        moe_detail::for_row_blocks(pool, count, [&](int64_t i) {
            std::memcpy(rows_in + i * E, h + int64_t(pairs[i] / k) * E, sizeof(float) * size_t(E));
        });
        gemm(pool, kern, s.gemm, rows_in, E, count, mw.gate_up[size_t(x)], gate_up, 2 * ff);
        moe_detail::swiglu(pool, kern, count, ff, gate_up, act);
        gemm(pool, kern, s.gemm, act, ff, count, mw.down[size_t(x)], rows_out, E);
        moe_detail::for_row_blocks(pool, count, [&](int64_t i) {
            const float w = weight[pairs[i]];
            float *o = out + int64_t(pairs[i] / k) * E;
            const float *y = rows_out + i * E;
            for (int64_t c = 0; c < E; c++) o[c] += w * y[c];
        });
    }

    if (mw.n_ff_shexp > 0) {
        const int64_t fs = mw.n_ff_shexp;
        gemm(pool, kern, s.gemm, h, E, n_rows, mw.shexp_gate_up, gate_up, 2 * fs);
        moe_detail::swiglu(pool, kern, n_rows, fs, gate_up, act);
        gemm(pool, kern, s.gemm, act, fs, n_rows, mw.shexp_down, rows_out, E);
        moe_detail::for_row_blocks(pool, n_rows, [&](int64_t r) {
            float scale = 1.0f;
            if (!mw.shexp_gate.empty()) {
                const float *x = h + r * E, *g = mw.shexp_gate.data();
                float z = 0.0f;
                for (int64_t c = 0; c < E; c++) z = std::fma(g[c], x[c], z);
                scale = 1.0f / (1.0f + std::exp(-z));
            }
            float *o = out + r * E;
            const float *y = rows_out + r * E;
            for (int64_t c = 0; c < E; c++) o[c] += scale * y[c];
        });
    }
}

} // namespace lmscore
