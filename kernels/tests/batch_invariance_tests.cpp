// batch_invariance_tests.cpp — a sequence's scores must not depend on the
// step it runs in. The CUDA core, loaded with dlopen as binding/ loads it,
// scores one 45-token sequence (44 scored positions, top-5 as well):
//   alone          the whole sequence in one step of 44 tokens;
//   one by one     44 steps of a single token, each reading the K/V of the
//                  earlier steps;
//   in 500         inside a 500-token step between two unrelated sequences
//                  that are scored too (500 LM-head rows);
//   prefix in 500  its first 29 tokens inside a 329-token step, the rest
//                  one token per step;
//   rest in 500    its first 29 tokens alone, the rest inside a 500-token
//                  step;
//   cached replay  as the scheduler reuses a prefix: the first 29 tokens
//                  inside a big step, then the last of them again (for its
//                  logits only, slot -1) and the rest in a small step, over a
//                  copy-on-write copy of the prefix's partial last block;
// and every one of them must equal "alone" bit for bit (logprob, is_greedy,
// top ids, top logprobs), in fp32 and bf16, at block sizes 1 and 16, on
// llama (SIMT attention), llama with head_dim 64 (tensor-core attention in
// bf16), qwen2 (biases) and gpt2 (LayerNorm, GELU, learned positions), and
// on the ABI-3 feature models (ref_model.cpp): gemma2, gemma3 and mistral
// slide their windows over a 150-token sequence (the prefix 99 tokens), so
// tiles before a window are skipped at some token counts and not others;
// and on the mixtures of experts (mixtral, qwen2moe, qwen3moe), whose
// experts get a different number of rows in every mode.
//
// The step executor is made for 1024 tokens, so each GEMM's fixed algorithm
// is chosen for 1024 rows and here runs with 1 to 500.
//
// Usage: batch_invariance_tests path/to/liblmscore_cuda.so [--cpu-only]
//   --cpu-only (batch_invariance_tests_cpu): the CPU core, invariant by
//     construction, as the subject: checks this harness with no GPU.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <functional>

#include "abi.h"
#include "plan.h"
#include "ref_model.h"
#include "test_util.h"

using namespace lmscore_test;

namespace {

Report R;

// The sequence's length: 45 tokens, 150 for the sliding-window models (so
// that windows end inside the prefix and key tiles before them are
// skipped); set_length sets all three.
int g_len = 45;    // tokens of the sequence; the last is only a target
int g_scored = 44; // scored positions 0..g_len-2
int g_cut = 29;    // where the prefix ends in the split modes
constexpr int kTopN = 5;

void set_length(int len) {
    g_len = len;
    g_scored = len - 1;
    g_cut = len * 2 / 3 - 1;
}

// Fresh KV blocks for each run, from one counter.
struct Blocks {
    int next = 0, bs = 16, limit = 0;
    std::vector<int32_t> take(int n_tokens) {
        std::vector<int32_t> t((n_tokens + bs - 1) / bs);
        for (int32_t &b : t) b = next++;
        return t;
    }
    bool ok() const { return next <= limit; }
};

// One step under construction, with the sequence's output rows recorded.
struct Step {
    StepBuilder sb;
    std::vector<int> seq_pos; // per output row: the sequence position it scores, or -1 (filler)
    explicit Step() { sb.top_n = kTopN; }
    // Filler: an unrelated sequence of n tokens from position 0, every
    // position scored against a random target.
    void filler(Rng &rng, Blocks &blocks, int n_vocab, int n) {
        std::vector<int32_t> toks(n);
        for (int32_t &t : toks) t = rng.below(n_vocab);
        const int base = sb.n_tokens();
        sb.add_segment(toks, 0, blocks.take(n), blocks.bs, 0);
        for (int i = 0; i < n; ++i) {
            sb.add_output(base + i, rng.below(n_vocab), 1, 0);
            seq_pos.push_back(-1);
        }
    }
    // Sequence tokens [from, to) at their positions over table; K/V written
    // from write_from on; positions [score_from, to) scored.
    void seq(const std::vector<int32_t> &s, int from, int to, const std::vector<int32_t> &table, int bs, int write_from,
             int score_from) {
        const int base = sb.n_tokens();
        sb.add_segment(std::vector<int32_t>(s.begin() + from, s.begin() + to), from, table, bs, write_from);
        for (int p = std::max(from, score_from); p < to; ++p) {
            sb.add_output(base + (p - from), s[p + 1], 0, 0);
            seq_pos.push_back(p);
        }
    }
};

struct Scores {
    std::vector<float> lp = std::vector<float>(g_scored, NAN);
    std::vector<uint8_t> greedy = std::vector<uint8_t>(g_scored, 2);
    std::vector<int32_t> top_ids = std::vector<int32_t>(g_scored * kTopN, -1);
    std::vector<float> top_lp = std::vector<float>(g_scored * kTopN, NAN);
    int filled = 0;
};

// Runs a step and files the sequence's rows into *out.
bool run(Engine &e, const Step &st, Scores *out, std::string *err) {
    const lmscore_batch b = st.sb.batch();
    const int no = b.n_outputs;
    std::vector<float> lp(no), tlp((size_t)no * kTopN);
    std::vector<uint8_t> g(no);
    std::vector<int32_t> tid((size_t)no * kTopN);
    lmscore_batch_result r{lp.data(), g.data(), tid.data(), tlp.data()};
    if (e.abi().step_run(e.step(), e.kv(), &b, &r) != LMSCORE_STATUS_OK) {
        *err = e.abi().last_error();
        return false;
    }
    for (int i = 0; i < no; ++i) {
        const int p = st.seq_pos[i];
        if (p < 0) continue;
        out->lp[p] = lp[i];
        out->greedy[p] = g[i];
        memcpy(&out->top_ids[(size_t)p * kTopN], &tid[(size_t)i * kTopN], kTopN * 4);
        memcpy(&out->top_lp[(size_t)p * kTopN], &tlp[(size_t)i * kTopN], kTopN * 4);
        out->filled++;
    }
    return true;
}

// The modes of the header comment: each builds and runs its steps.
struct Mode {
    const char *name;
    std::function<bool(Engine &, Rng &, Blocks &, int n_vocab, const std::vector<int32_t> &, Scores *, std::string *)> run;
};

const std::vector<Mode> &modes() {
    static const std::vector<Mode> m = {
        {"alone",
         [](Engine &e, Rng &, Blocks &blk, int, const std::vector<int32_t> &s, Scores *out, std::string *err) {
             Step st;
             st.seq(s, 0, g_scored, blk.take(g_scored), blk.bs, 0, 0);
             return run(e, st, out, err);
         }},
        {"one by one",
         [](Engine &e, Rng &, Blocks &blk, int, const std::vector<int32_t> &s, Scores *out, std::string *err) {
             const std::vector<int32_t> table = blk.take(g_scored);
             for (int p = 0; p < g_scored; ++p) {
                 Step st;
                 st.seq(s, p, p + 1, std::vector<int32_t>(table.begin(), table.begin() + p / blk.bs + 1), blk.bs, p, p);
                 if (!run(e, st, out, err)) return false;
             }
             return true;
         }},
        {"in 500",
         [](Engine &e, Rng &rng, Blocks &blk, int V, const std::vector<int32_t> &s, Scores *out, std::string *err) {
             Step st;
             st.filler(rng, blk, V, 211);
             st.seq(s, 0, g_scored, blk.take(g_scored), blk.bs, 0, 0);
             st.filler(rng, blk, V, 500 - 211 - g_scored);
             return run(e, st, out, err);
         }},
        {"prefix in 500",
         [](Engine &e, Rng &rng, Blocks &blk, int V, const std::vector<int32_t> &s, Scores *out, std::string *err) {
             const std::vector<int32_t> table = blk.take(g_scored);
             Step big;
             big.filler(rng, blk, V, 300);
             big.seq(s, 0, g_cut, std::vector<int32_t>(table.begin(), table.begin() + (g_cut - 1) / blk.bs + 1), blk.bs, 0, 0);
             if (!run(e, big, out, err)) return false;
             for (int p = g_cut; p < g_scored; ++p) {
                 Step st;
                 st.seq(s, p, p + 1, std::vector<int32_t>(table.begin(), table.begin() + p / blk.bs + 1), blk.bs, p, p);
                 if (!run(e, st, out, err)) return false;
             }
             return true;
         }},
        {"rest in 500",
         [](Engine &e, Rng &rng, Blocks &blk, int V, const std::vector<int32_t> &s, Scores *out, std::string *err) {
             const std::vector<int32_t> table = blk.take(g_scored);
             Step small;
             small.seq(s, 0, g_cut, std::vector<int32_t>(table.begin(), table.begin() + (g_cut - 1) / blk.bs + 1), blk.bs, 0, 0);
             if (!run(e, small, out, err)) return false;
             Step big;
             big.filler(rng, blk, V, 400);
             big.seq(s, g_cut, g_scored, table, blk.bs, g_cut, g_cut);
             big.filler(rng, blk, V, 500 - 400 - (g_scored - g_cut));
             return run(e, big, out, err);
         }},
        {"cached replay",
         [](Engine &e, Rng &rng, Blocks &blk, int V, const std::vector<int32_t> &s, Scores *out, std::string *err) {
             const int bs = blk.bs;
             const std::vector<int32_t> ctx = blk.take(g_cut);
             Step big;
             big.filler(rng, blk, V, 250);
             // The prefix, scored up to its second-to-last position: the last
             // one is scored by the replay, as the scheduler plans it.
             big.seq(s, 0, g_cut, ctx, bs, 0, 0);
             big.seq_pos.back() = -1;
             big.filler(rng, blk, V, 200);
             if (!run(e, big, out, err)) return false;
             Step st;
             std::vector<int32_t> table(ctx.begin(), ctx.begin() + g_cut / bs);
             if (g_cut % bs) { // copy-on-write of the prefix's partial last block
                 st.sb.copy_src.push_back(ctx[g_cut / bs]);
                 st.sb.copy_dst.push_back(blk.next);
                 st.sb.copy_n.push_back(g_cut % bs);
                 table.push_back(blk.next++);
             }
             while ((int)table.size() * bs < g_scored) table.push_back(blk.next++);
             st.seq(s, g_cut - 1, g_scored, table, bs, g_cut, g_cut - 1);
             return run(e, st, out, err);
         }},
    };
    return m;
}

struct Diff {
    int n_diff = 0;
    double max_abs = 0;
};

Diff diff(const Scores &a, const Scores &b) {
    Diff d;
    for (int p = 0; p < g_scored; ++p) {
        const bool same = memcmp(&a.lp[p], &b.lp[p], 4) == 0 && a.greedy[p] == b.greedy[p] &&
                          memcmp(&a.top_ids[(size_t)p * kTopN], &b.top_ids[(size_t)p * kTopN], kTopN * 4) == 0 &&
                          memcmp(&a.top_lp[(size_t)p * kTopN], &b.top_lp[(size_t)p * kTopN], kTopN * 4) == 0;
        if (!same) d.n_diff++;
        d.max_abs = std::max(d.max_abs, (double)fabsf(a.lp[p] - b.lp[p]));
    }
    return d;
}

const char *arch_name(int a) { return test_arch_name(a); }

// Scores the sequence in every mode on one engine; results[0] is "alone".
bool score_modes(Engine &e, const ModelShape &shape, int bs, const std::vector<int32_t> &s, const std::string &name,
                 std::vector<Scores> *results) {
    Blocks blk;
    blk.bs = bs;
    blk.limit = e.n_blocks();
    Rng rng(4242);
    results->assign(modes().size(), Scores());
    for (size_t m = 0; m < modes().size(); ++m) {
        std::string err;
        const bool ok = modes()[m].run(e, rng, blk, shape.n_vocab, s, &(*results)[m], &err) && blk.ok();
        if (!ok || (*results)[m].filled != g_scored) {
            R.check(false, name + " " + modes()[m].name + " run", "%s (%d of %d positions scored, %d blocks used of %d)",
                    err.empty() ? "plan error" : err.c_str(), (*results)[m].filled, g_scored, blk.next, blk.limit);
            return false;
        }
    }
    return true;
}

void test_model(const Abi &cuda, const char *label, const ModelShape &shape, uint64_t seed, bool fp32_only = false) {
    set_length(shape.n_swa > 0 ? 150 : 45);
    RandomModel m(shape, seed);
    Rng rng(seed + 1);
    std::vector<int32_t> s(g_len);
    for (int32_t &t : s) t = rng.below(shape.n_vocab);
    for (int precision : {LMSCORE_PRECISION_FP32, LMSCORE_PRECISION_BF16})
        for (int bs : {1, 16}) {
            if (fp32_only && precision != LMSCORE_PRECISION_FP32) continue;
            char name[96];
            snprintf(name, sizeof name, "%s %s bs=%d", label, precision == LMSCORE_PRECISION_FP32 ? "fp32" : "bf16", bs);
            // Room for every mode's fresh blocks: about 2,100 tokens in all.
            Engine e(cuda, m.desc(), precision, bs, 2600 / bs + 64, 1024, 1024);
            if (!R.check(e.ok(), std::string(name) + " load", "%s", e.ok() ? "ok" : e.error().c_str())) continue;
            std::vector<Scores> res;
            if (!score_modes(e, shape, bs, s, name, &res)) continue;
            for (size_t k = 1; k < res.size(); ++k) {
                const Diff d = diff(res[0], res[k]);
                R.check(d.n_diff == 0, std::string(name) + " " + modes()[k].name + " vs alone",
                        "%d of %d positions differ (logprob, is_greedy or top-%d), max |dlogprob| %.3g", d.n_diff, g_scored,
                        kTopN, d.max_abs);
            }
        }
}

// The same comparison with cuBLAS choosing per call (the core before its
// fixed GEMM plans), for contrast: INFO only, since whether cuBLAS changes
// its choice on these small shapes is up to cuBLAS.
void contrast_heuristic(const Abi &cuda, const ModelShape &shape, uint64_t seed) {
    set_length(shape.n_swa > 0 ? 150 : 45);
    RandomModel m(shape, seed);
    Rng rng(seed + 1);
    std::vector<int32_t> s(g_len);
    for (int32_t &t : s) t = rng.below(shape.n_vocab);
    setenv("LMSCORE_CUDA_GEMM", "heuristic", 1);
    {
        Engine e(cuda, m.desc(), LMSCORE_PRECISION_BF16, 16, 2600 / 16 + 64, 1024, 1024);
        std::vector<Scores> res;
        if (e.ok() && score_modes(e, shape, 16, s, "heuristic", &res)) {
            std::string line;
            for (size_t k = 1; k < res.size(); ++k) {
                const Diff d = diff(res[0], res[k]);
                char buf[96];
                snprintf(buf, sizeof buf, " %s: %d differ (max %.3g);", modes()[k].name, d.n_diff, d.max_abs);
                line += buf;
            }
            R.info("%s bf16 bs=16 with LMSCORE_CUDA_GEMM=heuristic (cublasGemmEx per call), vs alone:%s",
                   arch_name(shape.arch), line.c_str());
        } else {
            R.info("heuristic contrast did not run: %s", e.ok() ? "see above" : e.error().c_str());
        }
    }
    // The A/B value of the measured GEMM choices is accepted.
    setenv("LMSCORE_CUDA_GEMM", "untuned", 1);
    {
        Engine e(cuda, m.desc(), LMSCORE_PRECISION_BF16, 16, 64, 64, 64);
        R.check(e.ok(), "LMSCORE_CUDA_GEMM=untuned is accepted", "%s", e.ok() ? "ok" : e.error().c_str());
    }
    // A bad value is refused with a message naming it.
    setenv("LMSCORE_CUDA_GEMM", "fastest", 1);
    {
        Engine e(cuda, m.desc(), LMSCORE_PRECISION_BF16, 16, 64, 64, 64);
        R.check(!e.ok() && e.error().find("LMSCORE_CUDA_GEMM=fastest") != std::string::npos,
                "LMSCORE_CUDA_GEMM=fastest is refused", "\"%s\"", e.error().c_str());
    }
    unsetenv("LMSCORE_CUDA_GEMM");
}

// One value of a test knob of the core's environment; value null: unset.
struct EnvSetting {
    const char *value, *label;
};

void set_env(const char *var, const char *value) {
    if (value)
        setenv(var, value, 1);
    else
        unsetenv(var);
}

// Scores the sequence in every mode under each of two settings of var and
// checks the two give the same bits, mode by mode; then that var=refused
// fails the engine's opening with a message naming it. var is unset after.
void check_same_bits_under_env(const Abi &cuda, const ModelShape &shape, uint64_t seed, const char *var,
                               const EnvSetting (&settings)[2], const char *refused, const std::string &name) {
    set_length(shape.n_swa > 0 ? 150 : 45);
    RandomModel m(shape, seed);
    Rng rng(seed + 1);
    std::vector<int32_t> s(g_len);
    for (int32_t &t : s) t = rng.below(shape.n_vocab);
    std::vector<Scores> res[2];
    std::string errors;
    for (int k : {0, 1}) {
        set_env(var, settings[k].value);
        Engine e(cuda, m.desc(), LMSCORE_PRECISION_BF16, 16, 2600 / 16 + 64, 1024, 1024);
        if (!e.ok() || !score_modes(e, shape, 16, s, settings[k].label, &res[k]))
            errors += e.ok() ? " (a mode failed, see above)" : " " + e.error();
    }
    unsetenv(var);
    if (!errors.empty() || res[0].size() != res[1].size()) {
        R.check(false, name, "did not run:%s", errors.c_str());
        return;
    }
    std::string line;
    bool same = true;
    for (size_t k = 0; k < res[0].size(); ++k) {
        const Diff d = diff(res[0][k], res[1][k]);
        same = same && d.n_diff == 0;
        char buf[96];
        snprintf(buf, sizeof buf, " %s: %d differ (max %.3g);", modes()[k].name, d.n_diff, d.max_abs);
        line += buf;
    }
    R.check(same, name, "%s", line.c_str());
    const std::string bad = std::string(var) + "=" + refused;
    setenv(var, refused, 1);
    {
        Engine e(cuda, m.desc(), LMSCORE_PRECISION_BF16, 16, 64, 64, 64);
        R.check(!e.ok() && e.error().find(bad) != std::string::npos, bad + " is refused", "\"%s\"", e.error().c_str());
    }
    unsetenv(var);
}

// Head stacking in attention (LMSCORE_CUDA_ATTN_STACK, on by default) must
// give the same bits as one head per tile, in every mode: a model with
// grouped-query heads on the tensor-core path (bf16, head_dim 64).
void check_attention_stacking(const Abi &cuda, const ModelShape &shape, uint64_t seed) {
    const std::string name = std::string(arch_name(shape.arch)) + " head_dim 64 bf16 bs=16 attention heads stacked vs not" +
                             (shape.n_swa > 0 ? " (sliding window " + std::to_string(shape.n_swa) + ")" : std::string());
    check_same_bits_under_env(cuda, shape, seed, "LMSCORE_CUDA_ATTN_STACK", {{"0", "unstacked"}, {"1", "stacked"}}, "2",
                              name);
}

// A dense FFN runs over a step in chunks of rows (step.cpp, 2048 by
// default, more than these steps hold): chunks of 7 rows must give the same
// bits as one chunk, in every mode, with the down projection added into the
// residual by its GEMM (llama), through a bias (gpt2) or a post-norm (gemma2).
void check_ffn_chunks(const Abi &cuda, const ModelShape &shape, uint64_t seed) {
    check_same_bits_under_env(cuda, shape, seed, "LMSCORE_CUDA_FFN_ROWS",
                              {{nullptr, "one ffn chunk"}, {"7", "ffn chunks of 7"}}, "0",
                              std::string(arch_name(shape.arch)) + " bf16 bs=16 FFN in chunks of 7 rows vs one chunk");
}

// The KV pool mapped onto a reserved range (virtual memory management, the
// default where the driver has it) and the pool reallocated as it grows
// (LMSCORE_CUDA_KV_VMM=0) must give the same bits in every mode.
void check_kv_pool_kinds(const Abi &cuda, const ModelShape &shape, uint64_t seed) {
    check_same_bits_under_env(cuda, shape, seed, "LMSCORE_CUDA_KV_VMM", {{"0", "reallocated pool"}, {nullptr, "mapped pool"}},
                              "2", std::string(arch_name(shape.arch)) + " bf16 bs=16 KV pool mapped vs reallocated");
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: batch_invariance_tests path/to/liblmscore_cuda.so [--cpu-only]\n");
        return 2;
    }
    const bool cpu_only = argc > 2 && !strcmp(argv[2], "--cpu-only");
    const ModelShape llama = {ARCH_LLAMA, 512, 128, 2, 4, 2, 256, 1024, LMSCORE_ROPE_TYPE_NORM, 10000.f, 1e-5f, true};
    const ModelShape llama64 = {ARCH_LLAMA, 1000, 256, 2, 4, 2, 512, 1024, LMSCORE_ROPE_TYPE_NORM, 10000.f, 1e-5f, false};
    const ModelShape qwen2 = {ARCH_QWEN2, 300, 64, 2, 4, 1, 160, 1024, LMSCORE_ROPE_TYPE_NEOX, 1000000.f, 1e-6f, false};
    const ModelShape gpt2 = {ARCH_GPT2, 256, 128, 2, 2, 2, 512, 1024, LMSCORE_ROPE_TYPE_NONE, 0.f, 1e-5f, true};
    // The ABI-3 features (model_tests.cpp's shapes): sliding windows shorter
    // than the 150-token sequence, soft-capping, post-norms, partial rotary,
    // parallel residual, whole-projection q/k norms.
    ModelShape gemma2{ARCH_GEMMA2, 384, 128, 2, 4, 2, 256, 1024, LMSCORE_ROPE_TYPE_NEOX, 10000.f, 1e-6f, true};
    gemma2.head_dim = 64;
    gemma2.n_swa = 19;
    ModelShape gemma3{ARCH_GEMMA3, 320, 96, 3, 3, 1, 192, 1024, LMSCORE_ROPE_TYPE_NEOX, 1000000.f, 1e-6f, true};
    gemma3.head_dim = 32;
    gemma3.n_swa = 23;
    ModelShape mistral{ARCH_MISTRAL, 512, 128, 2, 4, 1, 256, 1024, LMSCORE_ROPE_TYPE_NORM, 10000.f, 1e-5f, false};
    mistral.head_dim = 64;
    mistral.n_swa = 37;
    const ModelShape phi3 = {ARCH_PHI3, 300, 128, 2, 4, 4, 224, 1024, LMSCORE_ROPE_TYPE_NEOX, 10000.f, 1e-5f, false};
    const ModelShape neox = {ARCH_NEOX, 280, 128, 2, 4, 4, 384, 1024, LMSCORE_ROPE_TYPE_NEOX, 10000.f, 1e-5f, false};
    const ModelShape olmo2 = {ARCH_OLMO2, 256, 128, 2, 4, 4, 192, 1024, LMSCORE_ROPE_TYPE_NEOX, 500000.f, 1e-6f, false};
    // Mixtures of experts (model_tests.cpp's shapes): each expert's GEMM
    // runs over however many of a step's tokens chose it, 0 to all.
    ModelShape mixtral{ARCH_MIXTRAL, 384, 128, 2, 4, 2, 256, 1024, LMSCORE_ROPE_TYPE_NORM, 10000.f, 1e-5f, false};
    mixtral.n_expert = 4;
    mixtral.n_expert_used = 2;
    mixtral.n_ff_exp = 72;
    ModelShape qwen2moe{ARCH_QWEN2MOE, 300, 96, 2, 3, 1, 192, 1024, LMSCORE_ROPE_TYPE_NEOX, 1000000.f, 1e-6f, false};
    qwen2moe.n_expert = 4;
    qwen2moe.n_expert_used = 2;
    qwen2moe.n_ff_exp = 40;
    qwen2moe.n_ff_shexp = 88;
    ModelShape qwen3moe{ARCH_QWEN3MOE, 320, 128, 2, 4, 2, 192, 1024, LMSCORE_ROPE_TYPE_NEOX, 1000000.f, 1e-6f, true};
    qwen3moe.head_dim = 64;
    qwen3moe.n_expert = 6;
    qwen3moe.n_expert_used = 3;
    qwen3moe.n_ff_exp = 56;
    if (cpu_only) {
#ifdef LMSCORE_WITH_CPU_CORE
        Abi cpu = Abi::linked();
        R.info("--cpu-only: the CPU core as the subject, checking this harness");
        test_model(cpu, "llama", llama, 11, true);
        test_model(cpu, "gpt2", gpt2, 33, true);
        test_model(cpu, "mixtral", mixtral, 111, true);
        test_model(cpu, "qwen2moe", qwen2moe, 122, true);
        return R.finish("batch_invariance_tests --cpu-only");
#else
        fprintf(stderr, "--cpu-only needs the CPU core: build the batch_invariance_tests_cpu target\n");
        return 2;
#endif
    }
    Abi cuda;
    std::string err;
    if (!cuda.open(argv[1], &err)) {
        R.check(false, "dlopen", "%s: %s", argv[1], err.c_str());
        return R.finish("batch_invariance_tests");
    }
    // The tests mean the default (fixed) GEMMs, whatever the caller's environment.
    unsetenv("LMSCORE_CUDA_GEMM");
    unsetenv("LMSCORE_CUDA_ATTN_STACK");
    {
        RandomModel probe(llama, 1);
        lmscore_model *mm = nullptr;
        const lmscore_status st = cuda.model_load(&probe.desc(), cuda.backend_default_params(), &mm);
        if (st == LMSCORE_STATUS_DEVICE_ERROR) {
            printf("SKIP batch_invariance_tests: no CUDA device (%s)\n", cuda.last_error());
            return 0;
        }
        if (mm) cuda.model_free(mm);
    }
    test_model(cuda, "llama", llama, 11);
    test_model(cuda, "llama head_dim 64", llama64, 12);
    test_model(cuda, "qwen2", qwen2, 22);
    test_model(cuda, "gpt2", gpt2, 33);
    test_model(cuda, "gemma2", gemma2, 44);
    test_model(cuda, "gemma3", gemma3, 55);
    test_model(cuda, "phi3", phi3, 66);
    test_model(cuda, "neox", neox, 77);
    test_model(cuda, "olmo2", olmo2, 88);
    test_model(cuda, "mistral", mistral, 99);
    test_model(cuda, "mixtral", mixtral, 111);
    test_model(cuda, "qwen2moe", qwen2moe, 122);
    test_model(cuda, "qwen3moe", qwen3moe, 133);
    contrast_heuristic(cuda, llama64, 12);
    check_attention_stacking(cuda, llama64, 12);
    check_attention_stacking(cuda, gemma2, 44);
    check_attention_stacking(cuda, mistral, 99);
    check_ffn_chunks(cuda, llama, 11);
    check_ffn_chunks(cuda, gpt2, 33);
    check_ffn_chunks(cuda, gemma2, 44);
    check_kv_pool_kinds(cuda, llama, 55);
    check_kv_pool_kinds(cuda, gemma2, 66);
    return R.finish("batch_invariance_tests");
}
