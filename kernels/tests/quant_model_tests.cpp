// quant_model_tests.cpp — quantized weights end to end in the CUDA core.
//
// A quantized model is its dequantized weights (issue 15). In bf16 the core
// keeps them quantized and dequantizes each to bf16 just before its GEMM,
// into the one GEMM plan a bf16 weight of that shape gets, so its scores
// must be bitwise those of the bf16 model whose weights are the dequantized
// values rounded to bf16; in fp32 (dequantized at load) bitwise those of
// the F32 model of the dequantized values. Here, on small random llama
// models whose tensors cover every block type in a Q4_K_M-like mix (types
// differing inside the stacked q/k/v and gate/up GEMMs, a dense F16 band
// among quantized ones, a dense stack, quantized token table and LM head,
// tied and untied; and a mixture of experts whose router, stacked experts
// and shared expert are quantized, each expert dequantized alone before
// its GEMMs), at block sizes 1 and 16:
//   - quantized bf16 == bf16 of the dequantized weights, bit for bit;
//   - quantized, cached (contexts once, split, shuffled) == uncached;
//   - quantized fp32 == F32 of the dequantized weights, bit for bit;
//   - the weights take their quantized size on the device
//     (lmscore_model::weight_bytes) and the step's dequantization scratch
//     is the largest quantized GEMM weight in bf16.
// The host dequantization is tests/dequant_ref.h, which kernel_tests checks
// the device kernels against.
//
// With --big: a Llama-3.1-8B-shaped Q4_K_M-like model (random blocks with
// realistic scales) and its bf16 counterpart: device memory of each, and
// the time of one 4096-token step.
//
// Linked with the core (not dlopen'ed) to read weight_bytes.
// Usage: quant_model_tests [--big]
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <chrono>

#include "abi.h"
#include "dequant_ref.h"
#include "internal.h"
#include "plan.h"
#include "test_util.h"
#include "timing.h"

using namespace lmscore_test;

namespace {

Report R;

Abi linked_core() {
    Abi a;
    a.name = "cuda core (linked)";
#define LMSCORE_TEST_LINKED(ret, name, params) a.name = lmscore_##name;
    LMSCORE_ABI_FUNCTIONS(LMSCORE_TEST_LINKED)
#undef LMSCORE_TEST_LINKED
    return a;
}

struct Shape {
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff;
    bool tied;
};

// One tensor in three encodings of the same values: as given (quant), the
// dequantized values exactly (f32) and rounded to bf16 (bf16).
struct Tensor {
    int32_t type = LMSCORE_TYPE_F32;
    int64_t ne0 = 0, ne1 = 0;
    std::vector<uint8_t> quant;
    std::vector<float> f32;
    std::vector<uint16_t> bf16;
};

enum class Enc { Quant, F32, BF16 };

lmscore_tensor view(const Tensor &t, Enc e) {
    lmscore_tensor v{};
    if (t.ne0 == 0) return v;
    v.ne[0] = t.ne0;
    v.ne[1] = t.ne1;
    if (e == Enc::Quant) {
        v.type = t.type;
        v.data = t.quant.data();
    } else if (e == Enc::F32 || t.bf16.empty()) { // norm vectors: F32 in every encoding
        v.type = LMSCORE_TYPE_F32;
        v.data = t.f32.data();
    } else {
        v.type = LMSCORE_TYPE_BF16;
        v.data = t.bf16.data();
    }
    return v;
}

Tensor make(Rng &rng, int32_t type, int64_t ne0, int64_t ne1, float rms) {
    Tensor t;
    t.type = type;
    t.ne0 = ne0;
    t.ne1 = ne1;
    t.quant = scaled_rows(rng, type, ne0, ne1, rms);
    t.f32 = ref_dequantize(type, t.quant.data(), ne0, ne1);
    t.bf16.resize(t.f32.size());
    for (size_t i = 0; i < t.f32.size(); ++i) t.bf16[i] = f32_to_bf16(t.f32[i]);
    return t;
}

Tensor norm_vector(Rng &rng, int64_t n) {
    Tensor t;
    t.ne0 = n;
    t.ne1 = 1;
    t.f32.resize(n);
    for (float &x : t.f32) x = 1.f + rng.normal(0.1f);
    t.quant.resize(n * 4);
    memcpy(t.quant.data(), t.f32.data(), n * 4);
    return t; // no bf16 encoding: F32 in every encoding (view)
}

// The types of a layer's matrices: q, k, v, o, gate, up, down.
struct LayerTypes {
    int32_t q, k, v, o, gate, up, down;
};

// A mixture of experts in place of the dense FFN (n_expert 0: none):
// sizes, and per layer the types of the router, the stacked experts' gate,
// up and down, and the shared expert's gate, up and down (whose sigmoid
// gate vector is F32, as GGUF files keep vectors).
struct ExpertTypes {
    int32_t router, gate, up, down, sh_gate, sh_up, sh_down;
};
struct Experts {
    int n_expert = 0, n_used = 0, n_ff_exp = 0, n_ff_shexp = 0;
    bool norm = false;
    std::vector<ExpertTypes> types;
};

// An F32 vector of n values of standard deviation sd, the same in every encoding.
Tensor dense_vector(Rng &rng, int64_t n, float sd) {
    Tensor t;
    t.ne0 = n;
    t.ne1 = 1;
    t.f32.resize(n);
    for (float &x : t.f32) x = rng.normal(sd);
    t.quant.resize(n * 4);
    memcpy(t.quant.data(), t.f32.data(), n * 4);
    return t;
}

class QuantModel {
  public:
    QuantModel(const Shape &s, const std::vector<LayerTypes> &lt, int32_t tok_type, int32_t out_type, uint64_t seed,
               const Experts &ex = Experts{})
        : s_(s), ex_(ex) {
        Rng rng(seed);
        const int E = s.n_embd, D = E / s.n_head, Q = s.n_head * D, KV = s.n_head_kv * D, F = s.n_ff;
        const float w_in = 1.f / sqrtf((float)E), w_ff = 1.f / sqrtf((float)F), w_q = 1.f / sqrtf((float)Q);
        tok_ = make(rng, tok_type, E, s.n_vocab, 2.5f / sqrtf((float)E));
        if (!s.tied) out_ = make(rng, out_type, E, s.n_vocab, 2.5f / sqrtf((float)E));
        out_norm_ = norm_vector(rng, E);
        layers_.resize((size_t)s.n_layer * LMSCORE_LAYER_ROLE_COUNT);
        for (int l = 0; l < s.n_layer; ++l) {
            Tensor *L = &layers_[(size_t)l * LMSCORE_LAYER_ROLE_COUNT];
            const LayerTypes &t = lt[l % lt.size()];
            L[LMSCORE_LAYER_ATTN_NORM] = norm_vector(rng, E);
            L[LMSCORE_LAYER_FFN_NORM] = norm_vector(rng, E);
            L[LMSCORE_LAYER_WQ] = make(rng, t.q, E, Q, w_in);
            L[LMSCORE_LAYER_WK] = make(rng, t.k, E, KV, w_in);
            L[LMSCORE_LAYER_WV] = make(rng, t.v, E, KV, w_in);
            L[LMSCORE_LAYER_WO] = make(rng, t.o, Q, E, w_q);
            if (ex.n_expert == 0) {
                L[LMSCORE_LAYER_FFN_GATE] = make(rng, t.gate, E, F, w_in);
                L[LMSCORE_LAYER_FFN_UP] = make(rng, t.up, E, F, w_in);
                L[LMSCORE_LAYER_FFN_DOWN] = make(rng, t.down, F, E, w_ff);
                continue;
            }
            const ExpertTypes &x = ex.types[l % ex.types.size()];
            const int NE = ex.n_expert, FE = ex.n_ff_exp, FS = ex.n_ff_shexp;
            L[LMSCORE_LAYER_FFN_GATE_INP] = make(rng, x.router, E, NE, 1.5f / sqrtf((float)E));
            L[LMSCORE_LAYER_FFN_GATE_EXPS] = make(rng, x.gate, E, FE * NE, w_in);
            L[LMSCORE_LAYER_FFN_UP_EXPS] = make(rng, x.up, E, FE * NE, w_in);
            L[LMSCORE_LAYER_FFN_DOWN_EXPS] = make(rng, x.down, FE, E * NE, 1.f / sqrtf((float)FE));
            if (FS > 0) {
                L[LMSCORE_LAYER_FFN_GATE_INP_SHEXP] = dense_vector(rng, E, 1.f / sqrtf((float)E));
                L[LMSCORE_LAYER_FFN_GATE_SHEXP] = make(rng, x.sh_gate, E, FS, w_in);
                L[LMSCORE_LAYER_FFN_UP_SHEXP] = make(rng, x.sh_up, E, FS, w_in);
                L[LMSCORE_LAYER_FFN_DOWN_SHEXP] = make(rng, x.sh_down, FS, E, 1.f / sqrtf((float)FS));
            }
        }
        for (Enc e : {Enc::Quant, Enc::F32, Enc::BF16}) {
            Desc &d = descs_[(int)e];
            d.views.resize(layers_.size());
            for (size_t i = 0; i < layers_.size(); ++i) d.views[i] = view(layers_[i], e);
            lmscore_model_desc &m = d.desc;
            m.n_vocab = s.n_vocab;
            m.n_embd = E;
            m.n_layer = s.n_layer;
            m.n_head = s.n_head;
            m.n_head_kv = s.n_head_kv;
            m.n_ff = F;
            m.n_expert = ex.n_expert;
            m.n_expert_used = ex.n_used;
            m.n_ff_exp = ex.n_ff_exp;
            m.n_ff_shexp = ex.n_ff_shexp;
            m.expert_weights_norm = ex.norm ? 1 : 0;
            m.n_ctx_train = 1024;
            m.rope_type = LMSCORE_ROPE_TYPE_NORM;
            m.rope_freq_base = 10000.f;
            m.norm_eps = 1e-5f;
            m.tok_embd = view(tok_, e);
            m.output_norm = view(out_norm_, e);
            m.output = view(out_, e);
            m.layers = d.views.data();
        }
    }

    const lmscore_model_desc &desc(Enc e) const { return descs_[(int)e].desc; }
    const Shape &shape() const { return s_; }

    // What a bf16 run of the quantized encoding should hold on the device:
    // each GEMM weight (a stack of tensors) at its quantized size when any
    // of its tensors has a block type (dense bands then in bf16), else in
    // bf16; vectors in fp32. *scratch: the largest quantized GEMM weight in
    // bf16, which the step dequantizes into.
    //
    // A layer's experts share one allocation in which each expert's matrix
    // (or each band of it) starts on a 256-byte boundary, as a matrix of its
    // own would: their bytes are counted so (pieces rounded up to 256).
    size_t expected_weight_bytes(size_t *scratch) const {
        size_t total = 0;
        *scratch = 0;
        // parts: (tensor, fraction of its rows) pairs; one expert is 1/n_expert.
        auto stack_of = [&](std::vector<const Tensor *> ts, bool gemm, int share, bool arena) {
            const auto piece = [arena](size_t b) { return arena ? (b + 255) / 256 * 256 : b; };
            bool quantized = false;
            size_t quant_bytes = 0, elems = 0;
            for (const Tensor *t : ts) {
                int values = 0, bytes = 0;
                ref_block(t->type, &values, &bytes);
                quantized = quantized || values > 1;
            }
            for (const Tensor *t : ts) {
                int values = 0, bytes = 0;
                ref_block(t->type, &values, &bytes);
                quant_bytes += piece(values > 1 ? t->quant.size() / share : t->f32.size() / share * 2);
                elems += t->f32.size() / share;
            }
            total += quantized ? quant_bytes : piece(elems * 2);
            if (quantized && gemm) *scratch = std::max(*scratch, elems * 2);
        };
        auto stack = [&](std::vector<const Tensor *> ts, bool gemm) { stack_of(ts, gemm, 1, false); };
        const Tensor &head = s_.tied ? tok_ : out_;
        stack({&tok_}, s_.tied);
        if (!s_.tied) stack({&out_}, true);
        // The LM head's GEMM runs at the vocabulary padded to lm_head_rows,
        // so a quantized head is dequantized into that many rows.
        {
            int values = 0, bytes = 0;
            ref_block(head.type, &values, &bytes);
            if (values > 1)
                *scratch = std::max(*scratch, (size_t)s_.n_embd * lm_head_rows(s_.n_vocab) * 2);
        }
        total += out_norm_.f32.size() * 4;
        for (int l = 0; l < s_.n_layer; ++l) {
            const Tensor *L = &layers_[(size_t)l * LMSCORE_LAYER_ROLE_COUNT];
            stack({&L[LMSCORE_LAYER_WQ], &L[LMSCORE_LAYER_WK], &L[LMSCORE_LAYER_WV]}, true);
            stack({&L[LMSCORE_LAYER_WO]}, true);
            total += (L[LMSCORE_LAYER_ATTN_NORM].f32.size() + L[LMSCORE_LAYER_FFN_NORM].f32.size()) * 4;
            if (ex_.n_expert == 0) {
                stack({&L[LMSCORE_LAYER_FFN_GATE], &L[LMSCORE_LAYER_FFN_UP]}, true);
                stack({&L[LMSCORE_LAYER_FFN_DOWN]}, true);
                continue;
            }
            // The router with the shared expert's gate as its last row.
            if (ex_.n_ff_shexp > 0)
                stack({&L[LMSCORE_LAYER_FFN_GATE_INP], &L[LMSCORE_LAYER_FFN_GATE_INP_SHEXP]}, true);
            else
                stack({&L[LMSCORE_LAYER_FFN_GATE_INP]}, true);
            for (int x = 0; x < ex_.n_expert; ++x) {
                stack_of({&L[LMSCORE_LAYER_FFN_GATE_EXPS], &L[LMSCORE_LAYER_FFN_UP_EXPS]}, true, ex_.n_expert, true);
                stack_of({&L[LMSCORE_LAYER_FFN_DOWN_EXPS]}, true, ex_.n_expert, true);
            }
            if (ex_.n_ff_shexp > 0) {
                stack({&L[LMSCORE_LAYER_FFN_GATE_SHEXP], &L[LMSCORE_LAYER_FFN_UP_SHEXP]}, true);
                stack({&L[LMSCORE_LAYER_FFN_DOWN_SHEXP]}, true);
            }
        }
        return total;
    }

  private:
    struct Desc {
        std::vector<lmscore_tensor> views;
        lmscore_model_desc desc{};
    };
    Shape s_;
    Experts ex_;
    Tensor tok_, out_, out_norm_;
    std::vector<Tensor> layers_;
    Desc descs_[3];
};

std::vector<Pair> make_tasks(Rng &rng, int n_vocab, int n_tasks) {
    std::vector<Pair> pairs;
    for (int t = 0; t < n_tasks; ++t) {
        std::vector<int32_t> ctx(rng.range(17, 45));
        for (int32_t &x : ctx) x = rng.below(n_vocab);
        for (int c = 0; c < 3; ++c) {
            Pair p;
            p.tokens = ctx;
            const int n = rng.range(1, 7);
            for (int j = 0; j < n; ++j) p.tokens.push_back(rng.below(n_vocab));
            p.ctx_len = (int)ctx.size();
            p.task = t;
            pairs.push_back(p);
        }
    }
    return pairs;
}

// Positions whose logprob, greedy flag, top ids or top logprobs differ in any bit.
int n_different(const std::vector<PairScore> &a, const std::vector<PairScore> &b, int *n_total, bool *finite) {
    int diff = 0;
    *n_total = 0;
    *finite = true;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
        for (size_t j = 0; j < a[i].logprob.size(); ++j) {
            const size_t K = a[i].top_ids.size() / a[i].logprob.size();
            ++*n_total;
            *finite = *finite && std::isfinite(a[i].logprob[j]) && std::isfinite(b[i].logprob[j]);
            diff += memcmp(&a[i].logprob[j], &b[i].logprob[j], 4) != 0 || a[i].greedy[j] != b[i].greedy[j] ||
                    memcmp(&a[i].top_ids[j * K], &b[i].top_ids[j * K], K * 4) != 0 ||
                    memcmp(&a[i].top_logprobs[j * K], &b[i].top_logprobs[j * K], K * 4) != 0;
        }
    return diff;
}

void check_same(const std::string &name, const std::vector<PairScore> &a, const std::vector<PairScore> &b) {
    int total = 0;
    bool finite = true;
    const int d = n_different(a, b, &total, &finite);
    R.check(d == 0 && finite && total > 0, name, "%d of %d scored positions differ in some bit%s", d, total,
            finite ? "" : " (NON-FINITE scores)");
}

void test_model(const Abi &core, const char *label, const QuantModel &m, uint64_t seed) {
    Rng rng(seed);
    const std::vector<Pair> pairs = make_tasks(rng, m.shape().n_vocab, 6);
    const int top_n = 5;
    for (int bs : {1, 16}) {
        char name[128];
        snprintf(name, sizeof name, "%s bf16 bs=%d", label, bs);
        const int n_blocks = 2048 / bs + 64;
        Engine q(core, m.desc(Enc::Quant), LMSCORE_PRECISION_BF16, bs, n_blocks, 512, 256);
        Engine b(core, m.desc(Enc::BF16), LMSCORE_PRECISION_BF16, bs, n_blocks, 512, 256);
        if (!R.check(q.ok() && b.ok(), std::string(name) + " load", "%s",
                     !q.ok() ? q.error().c_str() : !b.ok() ? b.error().c_str() : "ok"))
            continue;
        if (bs == 1) {
            size_t scratch = 0;
            const size_t want = m.expected_weight_bytes(&scratch);
            const size_t got = q.model()->weight_bytes, dense = b.model()->weight_bytes;
            R.check(got == want && got < dense, std::string(label) + " weight bytes on the device",
                    "%zu (want %zu); the bf16 model's %zu (%.2fx)", got, want, dense, (double)dense / got);
            // A step whose FFN runs in chunks (LMSCORE_CUDA_FFN_ROWS below
            // its 512 tokens) also holds the down projection dequantized.
            bool down_quantized = false;
            for (const lmscore_cuda::LayerWeights &lw : q.model()->layers)
                down_quantized = down_quantized || lw.w_down.quantized();
            if (down_quantized && q.model()->hp.n_expert == 0 && q.step()->ffn_rows < 512)
                scratch = (scratch + 255) / 256 * 256 + (size_t)q.model()->hp.n_ff * q.model()->hp.n_embd * 2;
            R.check(q.step()->dequant_scratch_bytes == scratch && b.step()->dequant_scratch_bytes == 0,
                    std::string(label) + " dequantization scratch", "%zu bytes (want %zu, the largest quantized GEMM weight in bf16, and the down projection's when the FFN runs in chunks); bf16 model %zu",
                    q.step()->dequant_scratch_bytes, scratch, b.step()->dequant_scratch_bytes);
        }
        std::vector<PairScore> qu, bu, qc;
        std::string err;
        if (!R.check(score_uncached(q, pairs, top_n, &qu, &err) && score_uncached(b, pairs, top_n, &bu, &err) &&
                         score_cached(q, pairs, top_n, true, seed, &qc, &err),
                     std::string(name) + " run", "%s", err.empty() ? "ok" : err.c_str()))
            continue;
        check_same(std::string(name) + " quantized vs bf16 of the dequantized weights", qu, bu);
        check_same(std::string(name) + " quantized cached vs uncached", qc, qu);
    }
    {
        const std::string name = std::string(label) + " fp32 bs=16";
        Engine q(core, m.desc(Enc::Quant), LMSCORE_PRECISION_FP32, 16, 2048 / 16 + 64, 512, 256);
        Engine f(core, m.desc(Enc::F32), LMSCORE_PRECISION_FP32, 16, 2048 / 16 + 64, 512, 256);
        if (!R.check(q.ok() && f.ok(), name + " load", "%s", !q.ok() ? q.error().c_str() : !f.ok() ? f.error().c_str() : "ok"))
            return;
        R.check(q.model()->weight_bytes == f.model()->weight_bytes && q.step()->dequant_scratch_bytes == 0,
                name + " dequantized at load", "%zu weight bytes (F32 model %zu), scratch %zu", q.model()->weight_bytes,
                f.model()->weight_bytes, q.step()->dequant_scratch_bytes);
        std::vector<PairScore> qu, fu;
        std::string err;
        if (!R.check(score_uncached(q, pairs, top_n, &qu, &err) && score_uncached(f, pairs, top_n, &fu, &err),
                     name + " run", "%s", err.empty() ? "ok" : err.c_str()))
            return;
        check_same(name + " quantized vs F32 of the dequantized weights", qu, fu);
    }
}

// ------------------------------------------------------------------ --big

// Rows of a tensor repeated from a random chunk of 512, so an 8B-shaped
// model takes seconds to make: the values do not matter to the timing.
std::vector<uint8_t> tiled_rows(Rng &rng, int32_t type, int64_t ne0, int64_t rows, float rms) {
    int values = 0, bytes = 0;
    ref_block(type, &values, &bytes);
    const std::vector<uint8_t> chunk = scaled_rows(rng, type, ne0, std::min<int64_t>(rows, 512), rms);
    std::vector<uint8_t> out((size_t)(ne0 / values * bytes * rows));
    for (size_t off = 0; off < out.size(); off += chunk.size())
        memcpy(&out[off], chunk.data(), std::min(chunk.size(), out.size() - off));
    return out;
}

size_t device_used() {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return total_b - free_b;
}

// Loads desc in bf16, runs 4 x 1024-token steps (512 scored rows) and
// reports memory and time; returns the step's milliseconds or -1.
double probe(const Abi &core, const char *label, const lmscore_model_desc &desc) {
    const size_t before = device_used();
    const auto t0 = std::chrono::steady_clock::now();
    Engine e(core, desc, LMSCORE_PRECISION_BF16, 16, 4 * 1024 / 16 + 16, 4096, 512);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!R.check(e.ok(), std::string("big ") + label + " load", "%s", e.ok() ? "ok" : e.error().c_str())) return -1;
    const size_t after = device_used();
    StepBuilder sb;
    Rng rng(5);
    for (int seg = 0; seg < 4; ++seg) {
        std::vector<int32_t> toks(1024), table(1024 / 16);
        for (int32_t &t : toks) t = rng.below(desc.n_vocab);
        for (int b = 0; b < 1024 / 16; ++b) table[b] = seg * 64 + b;
        const int base = sb.n_tokens();
        sb.add_segment(toks, 0, table, 16, 0);
        for (int j = 1024 - 128; j < 1024; ++j) sb.add_output(base + j, rng.below(desc.n_vocab), 0, 0);
    }
    const lmscore_batch b = sb.batch();
    std::vector<float> lp(512);
    std::vector<uint8_t> g(512);
    lmscore_batch_result r{lp.data(), g.data(), nullptr, nullptr};
    const double ms = median_ms([&] { return core.step_run(e.step(), e.kv(), &b, &r) == LMSCORE_STATUS_OK; }, 2, 5);
    bool finite = true;
    for (float v : lp) finite = finite && std::isfinite(v);
    R.check(ms > 0 && finite, std::string("big ") + label + " step",
            "weights %.2f GB on the device (weight_bytes), %.2f GB used after load + KV pool + step (scratch %.2f GB); "
            "load %.1f s; 4096-token step, 512 rows scored: %.2f ms%s",
            e.model()->weight_bytes / 1e9, (after - before) / 1e9, e.step()->dequant_scratch_bytes / 1e9, load_s, ms,
            finite ? "" : " NON-FINITE logprobs");
    return ms;
}

// Llama-3.1-8B's shape as a Q4_K_M file lays it out (llama-quantize's
// choice: Q6_K for attn_v and ffn_down in the first and last eighth of the
// layers and every third between, Q6_K LM head, Q4_K elsewhere), against
// the same shape in bf16.
void big_model_probe(const Abi &core) {
    const int V = 128256, E = 4096, L = 32, H = 32, HKV = 8, F = 14336, D = E / H, KV = HKV * D;
    Rng rng(88);
    struct Owned {
        std::vector<std::vector<uint8_t>> bufs;
        std::vector<lmscore_tensor> layers;
        lmscore_tensor tok{}, out{}, norm{};
    };
    std::vector<float> ones(E, 1.f);
    auto tensor = [](const std::vector<uint8_t> &b, int32_t type, int64_t ne0, int64_t ne1) {
        lmscore_tensor t{};
        t.data = b.data();
        t.type = type;
        t.ne[0] = ne0;
        t.ne[1] = ne1;
        return t;
    };
    auto build = [&](bool quant, Owned *o) {
        // One buffer per (type, shape), shared by the layers.
        auto buf = [&](int32_t type, int64_t ne0, int64_t ne1, float rms) {
            o->bufs.push_back(tiled_rows(rng, quant ? type : LMSCORE_TYPE_BF16, ne0, ne1, rms));
            return tensor(o->bufs.back(), quant ? type : LMSCORE_TYPE_BF16, ne0, ne1);
        };
        o->bufs.reserve(16);
        const float w_in = 1.f / sqrtf((float)E), w_ff = 1.f / sqrtf((float)F);
        const lmscore_tensor q = buf(LMSCORE_TYPE_Q4_K, E, E, w_in), k4 = buf(LMSCORE_TYPE_Q4_K, E, KV, w_in),
                             k6 = buf(LMSCORE_TYPE_Q6_K, E, KV, w_in), o4 = buf(LMSCORE_TYPE_Q4_K, E, E, w_in),
                             gu = buf(LMSCORE_TYPE_Q4_K, E, F, w_in), d4 = buf(LMSCORE_TYPE_Q4_K, F, E, w_ff),
                             d6 = buf(LMSCORE_TYPE_Q6_K, F, E, w_ff);
        o->tok = buf(LMSCORE_TYPE_Q4_K, E, V, 2.5f / sqrtf((float)E));
        o->out = buf(LMSCORE_TYPE_Q6_K, E, V, 2.5f / sqrtf((float)E));
        lmscore_tensor norm{};
        norm.data = ones.data();
        norm.type = LMSCORE_TYPE_F32;
        norm.ne[0] = E;
        norm.ne[1] = 1;
        o->norm = norm;
        o->layers.assign((size_t)L * LMSCORE_LAYER_ROLE_COUNT, lmscore_tensor{});
        for (int l = 0; l < L; ++l) {
            lmscore_tensor *t = &o->layers[(size_t)l * LMSCORE_LAYER_ROLE_COUNT];
            const bool more_bits = l < L / 8 || l >= 7 * L / 8 || (l - L / 8) % 3 == 2;
            t[LMSCORE_LAYER_ATTN_NORM] = t[LMSCORE_LAYER_FFN_NORM] = norm;
            t[LMSCORE_LAYER_WQ] = q;
            t[LMSCORE_LAYER_WK] = k4;
            t[LMSCORE_LAYER_WV] = more_bits ? k6 : k4;
            t[LMSCORE_LAYER_WO] = o4;
            t[LMSCORE_LAYER_FFN_GATE] = t[LMSCORE_LAYER_FFN_UP] = gu;
            t[LMSCORE_LAYER_FFN_DOWN] = more_bits ? d6 : d4;
        }
    };
    auto desc_of = [&](Owned &o) {
        lmscore_model_desc d{};
        d.n_vocab = V;
        d.n_embd = E;
        d.n_layer = L;
        d.n_head = H;
        d.n_head_kv = HKV;
        d.n_ff = F;
        d.n_ctx_train = 8192;
        d.rope_type = LMSCORE_ROPE_TYPE_NORM;
        d.rope_freq_base = 500000.f;
        d.norm_eps = 1e-5f;
        d.tok_embd = o.tok;
        d.output_norm = o.norm;
        d.output = o.out;
        d.layers = o.layers.data();
        return d;
    };
    double ms[2] = {-1, -1};
    for (int quant = 1; quant >= 0; --quant) {
        Owned o;
        build(quant, &o);
        ms[quant] = probe(core, quant ? "Llama-3.1-8B shape Q4_K_M" : "Llama-3.1-8B shape bf16", desc_of(o));
    }
    if (ms[0] > 0 && ms[1] > 0)
        R.info("big: the Q4_K_M step takes %.3fx the bf16 step's time (%.2f vs %.2f ms)", ms[1] / ms[0], ms[1], ms[0]);
}

} // namespace

int main(int argc, char **argv) {
    const bool big = argc > 1 && !strcmp(argv[1], "--big");
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        printf("SKIP quant_model_tests: no CUDA device\n");
        return 0;
    }
    unsetenv("LMSCORE_CUDA_GEMM");
    const Abi core = linked_core();
    // Every block type, mixed as llama-quantize mixes them: q/k/v of
    // different types in one stacked GEMM, a dense F16 band among quantized
    // ones (layer 1's v), a dense gate/up stack (layer 1).
    const std::vector<LayerTypes> mix = {
        {LMSCORE_TYPE_Q4_K, LMSCORE_TYPE_Q4_K, LMSCORE_TYPE_Q6_K, LMSCORE_TYPE_Q5_K, LMSCORE_TYPE_Q3_K,
         LMSCORE_TYPE_Q2_K, LMSCORE_TYPE_IQ4_XS},
        {LMSCORE_TYPE_Q4_0, LMSCORE_TYPE_Q4_1, LMSCORE_TYPE_F16, LMSCORE_TYPE_Q5_0, LMSCORE_TYPE_F32,
         LMSCORE_TYPE_BF16, LMSCORE_TYPE_Q5_1},
    };
    // head_dim 64: bf16 attention on tensor cores, as in real models. Row
    // counts odd where the shape allows (the vocabulary).
    const Shape untied = {997, 256, 2, 4, 2, 512, false};
    const Shape tied = {999, 256, 2, 4, 2, 512, true};
    {
        QuantModel m(untied, mix, LMSCORE_TYPE_Q8_0, LMSCORE_TYPE_IQ4_NL, 101);
        test_model(core, "llama untied (Q8_0 token table, IQ4_NL LM head)", m, 7);
    }
    {
        QuantModel m(tied, mix, LMSCORE_TYPE_Q4_K, 0, 202);
        test_model(core, "llama tied (Q4_K token table as the LM head)", m, 8);
    }
    {
        // Experts of every kind of band: K-quants and legacy quants, a
        // dense F16 up among quantized gates (layer 1), an F32 router as
        // llama-quantize leaves it (layer 1) and a quantized one (layer 0);
        // the experts' widths whole blocks of their types (down's rows are
        // n_ff_exp long: 96 = 3 legacy blocks).
        Experts ex;
        ex.n_expert = 4;
        ex.n_used = 2;
        ex.n_ff_exp = 96;
        ex.n_ff_shexp = 160;
        ex.norm = true;
        ex.types = {
            {LMSCORE_TYPE_Q8_0, LMSCORE_TYPE_Q4_K, LMSCORE_TYPE_Q5_K, LMSCORE_TYPE_Q8_0, LMSCORE_TYPE_Q4_0,
             LMSCORE_TYPE_IQ4_NL, LMSCORE_TYPE_Q5_1},
            {LMSCORE_TYPE_F32, LMSCORE_TYPE_Q6_K, LMSCORE_TYPE_F16, LMSCORE_TYPE_IQ4_NL, LMSCORE_TYPE_Q3_K,
             LMSCORE_TYPE_Q2_K, LMSCORE_TYPE_Q4_1},
        };
        QuantModel m(untied, mix, LMSCORE_TYPE_Q8_0, LMSCORE_TYPE_Q6_K, 303, ex);
        test_model(core, "moe untied (quantized experts, router and shared expert)", m, 9);
    }
    if (big) big_model_probe(core);
    return R.finish("quant_model_tests");
}
