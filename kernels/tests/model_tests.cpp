// model_tests.cpp — the CUDA core, loaded with dlopen exactly as binding/
// loads it, run end to end on random llama, qwen2 and gpt2 models, and on
// random models of the ABI-3 features (ref_model.cpp: Gemma-2-, Gemma-3-,
// Phi-3-, GPT-NeoX-, OLMo-2- and Mistral-like, the sliding-window ones on
// contexts longer than their windows; Mixtral-, Qwen2-MoE- and
// Qwen3-MoE-like mixtures of experts), and compared with:
//   - the float64 reference forward pass (ref_model.cpp), always;
//   - the CPU core through the same ABI, when this program was built with
//     it (LMSCORE_WITH_CPU_CORE; see kernels/tests/CMakeLists.txt);
//   - itself: cached (contexts once, shared blocks, copy-on-write of the
//     partial block, chunked prefill, shuffled order) against uncached.
// It also checks bad input, out-of-memory and a missing GPU.
//
// Bounds (issue 7): fp32 within 1e-3 per-token logprob; bf16 mean |delta|
// <= 0.02 and the same multiple-choice pick wherever the reference's margin
// between its top two choices exceeds 0.1; cached vs uncached identical picks
// and |delta| <= 1e-3. Where bf16 storage alone (the float64 pass rounding
// weights, GEMM inputs and the KV pool to bf16, as the core stores them)
// already costs more than 0.02 on a model, a bf16 engine cannot be expected
// to meet 0.02, and the bf16 bound is that cost plus kBf16Slack: a stated
// relaxation, the same rule as the Go test TestCUDAAgainstCPU. The core's
// mean error must also sit within kBf16Slack of that cost either way.
// On the mixtures of experts the bf16 checks leave out the positions whose
// routes are near a tie (kRouteClear says why).
//
// Usage: model_tests path/to/liblmscore_cuda.so [--quick] [--cpu-only]
//   --quick: one block size and fewer tasks (for compute-sanitizer runs).
//   --cpu-only (model_tests_cpu): the CPU core as the subject, no GPU needed.
//   --no-oom: skip the out-of-memory checks (compute-sanitizer reports the
//     deliberately failed allocations as API errors).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <map>

#include "abi.h"
#include "plan.h"
#include "ref_model.h"
#include "test_util.h"

using namespace lmscore_test;

namespace {

Report R;

ModelShape llama_shape() {
    return {ARCH_LLAMA, 512, 128, 2, 4, 2, 256, 1024, LMSCORE_ROPE_TYPE_NORM, 10000.f, 1e-5f, true};
}
ModelShape qwen2_shape() {
    return {ARCH_QWEN2, 300, 64, 2, 4, 1, 160, 1024, LMSCORE_ROPE_TYPE_NEOX, 1000000.f, 1e-6f, false};
}
ModelShape gpt2_shape() {
    return {ARCH_GPT2, 256, 128, 2, 2, 2, 512, 256, LMSCORE_ROPE_TYPE_NONE, 0.f, 1e-5f, true};
}
// The feature families: sizes not powers of two where the kernels allow,
// head_dim 64 where the bf16 runs should take the tensor-core attention
// (Gemma 2 with head stacking, Mistral with 4 heads per kv head), 32
// elsewhere (the SIMT kernel in both precisions); windows of 19, 23 and 37
// tokens, not multiples of a block or a key tile.
ModelShape gemma2_shape() {
    ModelShape s{ARCH_GEMMA2, 384, 128, 2, 4, 2, 256, 1024, LMSCORE_ROPE_TYPE_NEOX, 10000.f, 1e-6f, true};
    s.head_dim = 64;
    s.n_swa = 19;
    return s;
}
ModelShape gemma3_shape() {
    ModelShape s{ARCH_GEMMA3, 320, 96, 3, 3, 1, 192, 1024, LMSCORE_ROPE_TYPE_NEOX, 1000000.f, 1e-6f, true};
    s.head_dim = 32;
    s.n_swa = 23;
    return s;
}
ModelShape phi3_shape() {
    return {ARCH_PHI3, 300, 128, 2, 4, 4, 224, 1024, LMSCORE_ROPE_TYPE_NEOX, 10000.f, 1e-5f, false};
}
ModelShape neox_shape() {
    return {ARCH_NEOX, 280, 128, 2, 4, 4, 384, 1024, LMSCORE_ROPE_TYPE_NEOX, 10000.f, 1e-5f, false};
}
ModelShape olmo2_shape() {
    return {ARCH_OLMO2, 256, 128, 2, 4, 4, 192, 1024, LMSCORE_ROPE_TYPE_NEOX, 500000.f, 1e-6f, false};
}
ModelShape mistral_shape() {
    ModelShape s{ARCH_MISTRAL, 512, 128, 2, 4, 1, 256, 1024, LMSCORE_ROPE_TYPE_NORM, 10000.f, 1e-5f, false};
    s.head_dim = 64;
    s.n_swa = 37;
    return s;
}
// Mixture of experts, as lmscore.h's three kinds: Mixtral-like (4
// experts, top 2, renormalized; the SIMT attention), Qwen2-MoE-like (a
// gated shared expert beside 4 experts, top 2 raw, layer 1 without the
// gate; n_embd 96, so expert rows are not 256-byte multiples and the
// gathered layout pads), Qwen3-MoE-like (q/k head norms, top 3 of 6,
// renormalized; head_dim 64, the tensor-core attention in bf16). Expert
// widths not multiples of a GEMM tile.
ModelShape mixtral_shape() {
    ModelShape s{ARCH_MIXTRAL, 384, 128, 2, 4, 2, 256, 1024, LMSCORE_ROPE_TYPE_NORM, 10000.f, 1e-5f, false};
    s.n_expert = 4;
    s.n_expert_used = 2;
    s.n_ff_exp = 72;
    return s;
}
ModelShape qwen2moe_shape() {
    ModelShape s{ARCH_QWEN2MOE, 300, 96, 2, 3, 1, 192, 1024, LMSCORE_ROPE_TYPE_NEOX, 1000000.f, 1e-6f, false};
    s.n_expert = 4;
    s.n_expert_used = 2;
    s.n_ff_exp = 40;
    s.n_ff_shexp = 88;
    return s;
}
ModelShape qwen3moe_shape() {
    ModelShape s{ARCH_QWEN3MOE, 320, 128, 2, 4, 2, 192, 1024, LMSCORE_ROPE_TYPE_NEOX, 1000000.f, 1e-6f, true};
    s.head_dim = 64;
    s.n_expert = 6;
    s.n_expert_used = 3;
    s.n_ff_exp = 56;
    return s;
}
const char *arch_name(int a) { return test_arch_name(a); }

// Multiple-choice tasks: a context of ctx_min..ctx_max tokens (20..70 by
// default) and 4 continuations of 1..9.
std::vector<Pair> make_tasks(Rng &rng, int n_vocab, int n_tasks, int ctx_min = 20, int ctx_max = 70) {
    std::vector<Pair> pairs;
    for (int t = 0; t < n_tasks; ++t) {
        std::vector<int32_t> ctx(rng.range(ctx_min, ctx_max));
        for (int32_t &x : ctx) x = rng.below(n_vocab);
        for (int c = 0; c < 4; ++c) {
            Pair p;
            p.tokens = ctx;
            const int n = rng.range(1, 9);
            for (int j = 0; j < n; ++j) p.tokens.push_back(rng.below(n_vocab));
            p.ctx_len = (int)ctx.size();
            p.task = t;
            pairs.push_back(p);
        }
    }
    return pairs;
}

// The reference's per-token log-probabilities, top-5 and the gap between
// the target's logit and the best other logit (for is_greedy checks).
struct RefScore {
    std::vector<double> logprob, greedy_gap;
    std::vector<std::vector<std::pair<double, int>>> top; // (logprob, id), best first
    // Whether the scored position's token, and every token before it in its
    // sequence, has a clear route in every layer (always, without experts):
    // see kRouteClear.
    std::vector<char> clear_route;
};

// Mixture of experts in bf16: a token whose k-th and (k+1)-th router logits
// are close in the float64 pass may go to the other expert under bf16
// rounding, in any bf16 engine (the float64 emulation of bf16 storage
// included), and then moves by up to ~2 in logprob, where rounding alone
// moves a token by ~0.1. On these models the emulation flips routes at
// gaps up to 0.035 logits; a gap over kRouteClear counts as clear. A flip
// also moves every later token of the sequence, through the K/V attention
// reads, so a position counts as clear only when it and every position
// before it are. The bf16 checks run on the clear positions; the others are
// counted and reported (INFO). fp32 checks every position.
constexpr double kRouteClear = 0.1;

std::vector<RefScore> reference(const RandomModel &m, const std::vector<Pair> &pairs, bool bf16_points = false) {
    std::vector<RefScore> out(pairs.size());
    std::map<std::vector<int32_t>, std::vector<std::vector<double>>> cache;
    for (size_t i = 0; i < pairs.size(); ++i) {
        const Pair &p = pairs[i];
        std::vector<double> margin;
        const auto logits = m.forward(std::vector<int32_t>(p.tokens.begin(), p.tokens.end() - 1), bf16_points, &margin);
        for (int j = 0; j < (int)p.tokens.size() - p.ctx_len; ++j) {
            const std::vector<double> &z = logits[p.ctx_len - 1 + j];
            const int target = p.tokens[p.ctx_len + j];
            double mx = -INFINITY, other = -INFINITY;
            for (int v = 0; v < (int)z.size(); ++v) {
                mx = std::max(mx, z[v]);
                if (v != target) other = std::max(other, z[v]);
            }
            double sum = 0;
            for (double x : z) sum += exp(x - mx);
            const double lse = mx + log(sum);
            out[i].logprob.push_back(z[target] - lse);
            out[i].greedy_gap.push_back(z[target] - other);
            bool clear = true;
            for (int q = 0; q <= p.ctx_len - 1 + j; ++q) clear = clear && margin[q] > kRouteClear;
            out[i].clear_route.push_back(clear);
            std::vector<std::pair<double, int>> all;
            for (int v = 0; v < (int)z.size(); ++v) all.push_back({z[v] - lse, v});
            std::partial_sort(all.begin(), all.begin() + 6, all.end(),
                              [](auto a, auto b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
            all.resize(6);
            out[i].top.push_back(all);
        }
    }
    return out;
}

// Sum of continuation logprobs per pair; the pick per task is its arg-max.
std::vector<int> picks(const std::vector<Pair> &pairs, const std::vector<double> &sums, std::vector<double> *margin) {
    int n_tasks = 0;
    for (const Pair &p : pairs) n_tasks = std::max(n_tasks, p.task + 1);
    std::vector<int> best(n_tasks, -1);
    std::vector<double> b1(n_tasks, -INFINITY), b2(n_tasks, -INFINITY);
    for (size_t i = 0; i < pairs.size(); ++i) {
        const int t = pairs[i].task;
        if (sums[i] > b1[t]) {
            b2[t] = b1[t];
            b1[t] = sums[i];
            best[t] = (int)i;
        } else if (sums[i] > b2[t]) {
            b2[t] = sums[i];
        }
    }
    if (margin)
        for (int t = 0; t < n_tasks; ++t) margin->push_back(b1[t] - b2[t]);
    return best;
}

std::vector<double> sums_of(const std::vector<PairScore> &s) {
    std::vector<double> out;
    for (const PairScore &p : s) {
        double acc = 0;
        for (float x : p.logprob) acc += x;
        out.push_back(acc);
    }
    return out;
}
std::vector<double> sums_of(const std::vector<RefScore> &s) {
    std::vector<double> out;
    for (const RefScore &p : s) {
        double acc = 0;
        for (double x : p.logprob) acc += x;
        out.push_back(acc);
    }
    return out;
}

struct Delta {
    double max_abs = 0, mean_abs = 0;
    bool non_finite = false;
    size_t n = 0;
};

// clear_of (optional): only the positions whose route is clear there.
template <typename A, typename B>
Delta delta(const std::vector<A> &a, const std::vector<B> &b, const std::vector<RefScore> *clear_of = nullptr) {
    Delta d;
    for (size_t i = 0; i < a.size(); ++i)
        for (size_t j = 0; j < a[i].logprob.size(); ++j) {
            if (clear_of && !(*clear_of)[i].clear_route[j]) continue;
            const double x = a[i].logprob[j], y = b[i].logprob[j];
            if (!std::isfinite(x) || !std::isfinite(y)) d.non_finite = true;
            d.max_abs = std::max(d.max_abs, fabs(x - y));
            d.mean_abs += fabs(x - y);
            d.n++;
        }
    if (d.n) d.mean_abs /= d.n;
    return d;
}

// Same pick on every task whose margin (in `margin_of`'s scores) exceeds min_margin.
bool same_picks(const std::vector<Pair> &pairs, const std::vector<double> &a, const std::vector<double> &b,
                double min_margin, int *compared, int *n_tasks) {
    std::vector<double> margin;
    const std::vector<int> pa = picks(pairs, a, &margin), pb = picks(pairs, b, nullptr);
    *compared = 0;
    *n_tasks = (int)pa.size();
    bool ok = true;
    for (size_t t = 0; t < pa.size(); ++t) {
        if (margin[t] <= min_margin) continue;
        ++*compared;
        if (pa[t] != pb[t]) ok = false;
    }
    return ok;
}

std::string label(const ModelShape &s, const char *prec, int bs) {
    char buf[96];
    snprintf(buf, sizeof buf, "%s %s bs=%d", arch_name(s.arch), prec, bs);
    return buf;
}

// How far the core's mean bf16 error may sit from the error of bf16 storage
// alone, either way: two bf16 engines round at different points (the
// tensor-core attention also rounds its probabilities to bf16, which the
// emulation does not) and land on different values.
constexpr double kBf16Slack = 0.005;

// The bf16 mean bound given what bf16 storage alone costs (the header).
double bf16_bound(double floor) { return floor > 0.02 ? floor + kBf16Slack : 0.02; }

// The bf16 mean error against the float64 reference, checked against the
// bound and against the emulated cost of bf16 storage.
void check_bf16_mean(const std::string &name, const Delta &d, double bf16_floor) {
    const double bound = bf16_bound(bf16_floor);
    R.check(!d.non_finite && d.mean_abs <= bound, name,
            "mean |dlogprob| %.4f max %.3g over %zu tokens (bound mean %.4f; bf16 storage alone %.4f)", d.mean_abs,
            d.max_abs, d.n, bound, bf16_floor);
    R.check(fabs(d.mean_abs - bf16_floor) <= kBf16Slack, name + " near bf16 storage's cost",
            "mean |dlogprob| %.4f against %.4f (within %.3f)", d.mean_abs, bf16_floor, kBf16Slack);
}

void check_against_ref(const std::string &name, const std::vector<Pair> &pairs, const std::vector<PairScore> &got,
                       const std::vector<RefScore> &ref, bool fp32, int top_n, double bf16_floor) {
    const Delta d = delta(got, ref, fp32 ? nullptr : &ref);
    if (fp32) {
        R.check(!d.non_finite && d.max_abs <= 1e-3, name + " vs float64 reference",
                "max |dlogprob| %.3g mean %.3g over %zu tokens (bound max 1e-3)", d.max_abs, d.mean_abs, d.n);
    } else {
        check_bf16_mean(name + " vs float64 reference", d, bf16_floor);
    }
    int compared = 0, n_tasks = 0;
    const bool ok = same_picks(pairs, sums_of(ref), sums_of(got), 0.1, &compared, &n_tasks);
    R.check(ok, name + " multiple-choice picks", "%d of %d tasks with reference margin > 0.1 compared, %s", compared,
            n_tasks, ok ? "all equal" : "DIFFERENT");
    // is_greedy wherever the reference is clear about it.
    int g_cmp = 0, g_bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
        for (size_t j = 0; j < got[i].greedy.size(); ++j) {
            if (fabs(ref[i].greedy_gap[j]) < (fp32 ? 1e-3 : 0.1) || (!fp32 && !ref[i].clear_route[j])) continue;
            ++g_cmp;
            if (got[i].greedy[j] != (ref[i].greedy_gap[j] > 0 ? 1 : 0)) ++g_bad;
        }
    R.check(g_bad == 0, name + " is_greedy", "%d clear cases compared, %d wrong", g_cmp, g_bad);
    if (top_n > 0) {
        int t_cmp = 0, t_bad = 0;
        double t_max = 0;
        for (size_t i = 0; i < got.size(); ++i)
            for (size_t j = 0; j < got[i].logprob.size(); ++j)
                for (int k = 0; k < top_n; ++k) {
                    if (!fp32 && !ref[i].clear_route[j]) continue;
                    const auto &rt = ref[i].top[j];
                    // Only where the reference order is clear on both sides.
                    const double gap_prev = k > 0 ? rt[k - 1].first - rt[k].first : 1.0;
                    const double gap_next = rt[k].first - rt[k + 1].first;
                    // bf16 logits err by up to ~0.1, so a rank is clear only
                    // when both neighbours are more than twice that away.
                    if (std::min(gap_prev, gap_next) < (fp32 ? 1e-3 : 0.25)) continue;
                    ++t_cmp;
                    if (got[i].top_ids[j * top_n + k] != rt[k].second) ++t_bad;
                    t_max = std::max(t_max, fabs(got[i].top_logprobs[j * top_n + k] - rt[k].first));
                }
        const double bound = fp32 ? 1e-3 : 0.15;
        R.check(t_bad == 0 && t_max <= bound, name + " top-" + std::to_string(top_n),
                "%d clear ranks compared, %d wrong ids, max |dlogprob| %.3g (bound %.1g)", t_cmp, t_bad, t_max, bound);
    }
}

void check_cached(const std::string &name, const std::vector<Pair> &pairs, const std::vector<PairScore> &cached,
                  const std::vector<PairScore> &uncached) {
    const Delta d = delta(cached, uncached);
    int compared = 0, n_tasks = 0;
    const bool picks_ok = same_picks(pairs, sums_of(uncached), sums_of(cached), 0.0, &compared, &n_tasks);
    R.check(!d.non_finite && d.max_abs <= 1e-3 && picks_ok, name + " cached vs uncached",
            "max |dlogprob| %.3g mean %.3g over %zu tokens (bound 1e-3), picks %s on %d tasks", d.max_abs, d.mean_abs,
            d.n, picks_ok ? "identical" : "DIFFERENT", n_tasks);
}

bool bitwise_equal(const std::vector<PairScore> &a, const std::vector<PairScore> &b) {
    for (size_t i = 0; i < a.size(); ++i)
        if (memcmp(a[i].logprob.data(), b[i].logprob.data(), a[i].logprob.size() * 4) != 0 || a[i].greedy != b[i].greedy)
            return false;
    return true;
}

// ------------------------------------------------------------ per model

// subject: the core under test (the CUDA core; or, with --cpu-only, the
// CPU core, which checks this harness and the reference on a machine
// without a GPU). cpu: the CPU core to compare with, if linked in.
void test_model(const Abi &cuda, const Abi *cpu, const ModelShape &shape, uint64_t seed, bool quick, bool fp32_only) {
    RandomModel m(shape, seed);
    Rng rng(seed * 7 + 1);
    // With a sliding window, contexts reach well past it and past the 64-key
    // tiles, so whole tiles before the window are skipped; 6 tasks, so that
    // the unsplit cached plan's contexts (one step) stay within the step's
    // 1024 tokens (740 to 910 on these seeds).
    const std::vector<Pair> pairs = shape.n_swa > 0 ? make_tasks(rng, shape.n_vocab, quick ? 3 : 6, 60, 190)
                                                    : make_tasks(rng, shape.n_vocab, quick ? 3 : 8);
    const std::vector<RefScore> ref = reference(m, pairs);
    // What bf16 storage alone costs on this model: float64 with bf16
    // rounding where the core rounds, against the exact pass.
    const std::vector<RefScore> emu = fp32_only ? ref : reference(m, pairs, true);
    const double bf16_floor = delta(emu, ref, &ref).mean_abs;
    if (shape.n_expert > 0) {
        int n_pos = 0, n_unclear = 0;
        double unclear_max = 0;
        for (size_t i = 0; i < ref.size(); ++i)
            for (size_t j = 0; j < ref[i].logprob.size(); ++j) {
                ++n_pos;
                if (ref[i].clear_route[j]) continue;
                ++n_unclear;
                unclear_max = std::max(unclear_max, fabs(emu[i].logprob[j] - ref[i].logprob[j]));
            }
        R.info("%s: %d of %d scored positions have a route within %.2g logits of a tie (float64); the bf16 checks "
               "leave them out; there bf16 storage alone moves them by max |dlogprob| %.3g",
               arch_name(shape.arch), n_unclear, n_pos, kRouteClear, unclear_max);
    }
    const int top_n = 5;
    const std::vector<int> block_sizes = quick ? std::vector<int>{16} : std::vector<int>{1, 16, 64};

    for (int precision : {LMSCORE_PRECISION_FP32, LMSCORE_PRECISION_BF16}) {
        const bool fp32 = precision == LMSCORE_PRECISION_FP32;
        if (!fp32 && fp32_only) continue;
        for (int bs : block_sizes) {
            if (!fp32 && bs != 16 && !quick) continue; // bf16: one block size; paging is precision-blind
            const std::string name = label(shape, fp32 ? "fp32" : "bf16", bs);
            // max_tokens 512 forces the uncached pairs into several steps.
            Engine e(cuda, m.desc(), precision, bs, 4096 / bs + 200, 1024, 512);
            if (!R.check(e.ok(), name + " load", "%s", e.ok() ? "ok" : e.error().c_str())) continue;
            std::vector<PairScore> unc, cac, cac2;
            std::string err;
            if (!R.check(score_uncached(e, pairs, top_n, &unc, &err), name + " uncached run", "%s", err.empty() ? "ok" : err.c_str()))
                continue;
            check_against_ref(name, pairs, unc, ref, fp32, top_n, bf16_floor);
            if (!fp32) {
                const Delta gpu = delta(unc, emu, &ref);
                R.info("%s: bf16 emulated in float64 is off the float64 reference by mean |dlogprob| %.4f; the GPU "
                       "is off that emulation by mean %.4f (max %.3g)%s",
                       name.c_str(), bf16_floor, gpu.mean_abs, gpu.max_abs,
                       shape.n_expert > 0 ? " on the positions with clear routes" : "");
                if (shape.n_expert > 0) {
                    const Delta all = delta(unc, ref), floor_all = delta(emu, ref);
                    R.info("%s: over every position, the GPU's mean |dlogprob| %.4f (max %.3g), bf16 storage's %.4f",
                           name.c_str(), all.mean_abs, all.max_abs, floor_all.mean_abs);
                }
            }
            if (!R.check(score_cached(e, pairs, 0, true, 12345, &cac, &err), name + " cached run", "%s", err.empty() ? "ok" : err.c_str()))
                continue;
            check_cached(name, pairs, cac, unc);
            // Same cached plan, unshuffled and unsplit: order and chunking must not matter.
            if (score_cached(e, pairs, 0, false, 0, &cac2, &err)) {
                const Delta d = delta(cac2, cac);
                R.check(d.max_abs <= 1e-3 && !d.non_finite, name + " order/chunking invariance",
                        "max |dlogprob| %.3g, %s", d.max_abs, bitwise_equal(cac, cac2) ? "bitwise identical" : "not bitwise identical");
            } else {
                R.check(false, name + " order/chunking invariance", "%s", err.c_str());
            }
            // Each context with its continuations in one step: the copies
            // read what the step writes. Step composition must not matter.
            std::vector<PairScore> one;
            if (score_cached_one_step(e, pairs, 0, &one, &err)) {
                R.check(bitwise_equal(one, cac2), name + " copies in the context's own step",
                        "%s the two-step plan's scores", bitwise_equal(one, cac2) ? "bitwise equal to" : "differ from");
            } else {
                R.check(false, name + " copies in the context's own step", "%s", err.c_str());
            }
        }
    }

    if (cpu && cpu != &cuda) {
        // The CPU core is the reference the issue names: fp32 within 1e-3,
        // bf16 mean within 0.02 and the same picks where it is clear.
        Engine ce(*cpu, m.desc(), LMSCORE_PRECISION_FP32, 16, 4096 / 16 + 200, 1024, 512);
        std::vector<PairScore> cpu_s;
        std::string err;
        if (ce.status() == LMSCORE_STATUS_UNSUPPORTED) {
            // A feature the CPU core does not compute yet: the float64
            // reference above is the comparison.
            R.info("%s: the CPU core refuses this model (\"%s\"); compared with the float64 reference only",
                   label(shape, "cpu", 16).c_str(), ce.error().c_str());
            return;
        }
        if (!R.check(ce.ok() && score_uncached(ce, pairs, 0, &cpu_s, &err), label(shape, "cpu", 16) + " cpu core run",
                     "%s", ce.ok() ? err.c_str() : ce.error().c_str()))
            return;
        for (int precision : {LMSCORE_PRECISION_FP32, LMSCORE_PRECISION_BF16}) {
            const bool fp32 = precision == LMSCORE_PRECISION_FP32;
            Engine e(cuda, m.desc(), precision, 16, 4096 / 16 + 200, 1024, 512);
            std::vector<PairScore> s;
            if (!e.ok() || !score_uncached(e, pairs, 0, &s, &err)) {
                R.check(false, label(shape, fp32 ? "fp32" : "bf16", 16) + " vs cpu core", "%s", e.ok() ? err.c_str() : e.error().c_str());
                continue;
            }
            const Delta d = delta(s, cpu_s, fp32 ? nullptr : &ref);
            int compared = 0, n_tasks = 0;
            const bool picks_ok = same_picks(pairs, sums_of(cpu_s), sums_of(s), 0.1, &compared, &n_tasks);
            if (fp32)
                R.check(!d.non_finite && d.max_abs <= 1e-3 && picks_ok, label(shape, "fp32", 16) + " vs cpu core",
                        "max |dlogprob| %.3g mean %.3g (bound 1e-3), picks %s on %d/%d tasks", d.max_abs, d.mean_abs,
                        picks_ok ? "equal" : "DIFFERENT", compared, n_tasks);
            else {
                check_bf16_mean(label(shape, "bf16", 16) + " vs cpu core", d, bf16_floor);
                R.check(picks_ok, label(shape, "bf16", 16) + " vs cpu core picks",
                        "picks %s on %d/%d tasks with margin > 0.1", picks_ok ? "equal" : "DIFFERENT", compared, n_tasks);
            }
        }
    }
}

// ----------------------------------------------------------------- errors

void test_errors(const Abi &cuda, bool oom) {
    const ModelShape shape = llama_shape();
    RandomModel m(shape, 99);
    Rng rng(5);
    const std::vector<Pair> pairs = make_tasks(rng, shape.n_vocab, 2);
    const int bs = 16;
    Engine e(cuda, m.desc(), LMSCORE_PRECISION_FP32, bs, 64, 512, 256);
    if (!R.check(e.ok(), "errors: load", "%s", e.error().c_str())) return;
    std::vector<PairScore> before, after;
    std::string err;
    if (!R.check(score_uncached(e, pairs, 3, &before, &err), "errors: baseline run", "%s", err.empty() ? "ok" : err.c_str())) return;

    // One valid step to mutate: the first pair, uncached.
    const Pair &p = pairs[0];
    auto base = [&]() {
        StepBuilder sb;
        const int n = (int)p.tokens.size() - 1;
        std::vector<int32_t> table((n + bs - 1) / bs);
        std::iota(table.begin(), table.end(), 0);
        sb.add_segment(std::vector<int32_t>(p.tokens.begin(), p.tokens.end() - 1), 0, table, bs, 0);
        sb.copy_src = {40};
        sb.copy_dst = {41};
        sb.copy_n = {3};
        sb.add_output(n - 1, p.tokens.back(), 0, 0);
        return sb;
    };
    struct Mutation {
        const char *what;
        void (*apply)(StepBuilder &, int n_vocab, int n_slots);
        int top_n;
    };
    const Mutation muts[] = {
        {"token id = n_vocab", [](StepBuilder &s, int v, int) { s.ids[3] = v; }, 0},
        {"negative token id", [](StepBuilder &s, int, int) { s.ids[0] = -1; }, 0},
        {"position >= n_ctx_train", [](StepBuilder &s, int, int) { s.pos[2] = 1 << 20; }, 0},
        {"slot past the pool", [](StepBuilder &s, int, int n) { s.slots[1] = n; }, 0},
        {"slot < -1", [](StepBuilder &s, int, int) { s.slots[1] = -2; }, 0},
        {"block index past the pool", [](StepBuilder &s, int, int) { s.indices[0] = 64; }, 0},
        {"seg_token_start not ending at n_tokens", [](StepBuilder &s, int, int) { s.seg_start.back() -= 1; }, 0},
        {"block table too short", [](StepBuilder &s, int, int) { s.indptr.back() -= 1; }, 0},
        // The shared validator's (csrc/common) stricter rules, now the CUDA core's too.
        {"positions not consecutive", [](StepBuilder &s, int, int) { s.pos[2] += 1; }, 0},
        {"slot off its block table", [](StepBuilder &s, int, int) { s.slots[1] += 1; }, 0},
        {"out_token_index = n_tokens", [](StepBuilder &s, int, int) { s.out_index[0] = (int)s.ids.size(); }, 0},
        {"out_target = n_vocab", [](StepBuilder &s, int v, int) { s.out_target[0] = v; }, 0},
        {"copy_n_tokens > block_size", [](StepBuilder &s, int, int) { s.copy_n[0] = 17; }, 0},
        {"copy_dst past the pool", [](StepBuilder &s, int, int) { s.copy_dst[0] = 64; }, 0},
        {"top_n > n_vocab", [](StepBuilder &, int, int) {}, 513},
    };
    for (const Mutation &mu : muts) {
        StepBuilder sb = base();
        mu.apply(sb, shape.n_vocab, 64 * bs);
        sb.top_n = mu.top_n;
        std::vector<PairScore> scratch = empty_scores(pairs, sb.top_n);
        std::string msg;
        const lmscore_status st = run_step(e, sb, scratch, &msg);
        R.check(st == LMSCORE_STATUS_INVALID_ARGUMENT && !msg.empty(), std::string("errors: ") + mu.what,
                "status %d, message \"%s\"", (int)st, msg.c_str());
    }
    // Too many tokens for the step executor.
    {
        StepBuilder sb;
        std::vector<int32_t> toks(513, 1), table(33);
        std::iota(table.begin(), table.end(), 0);
        sb.add_segment(toks, 0, table, bs, 0);
        std::vector<PairScore> scratch;
        std::string msg;
        const lmscore_status st = run_step(e, sb, scratch, &msg);
        R.check(st == LMSCORE_STATUS_INVALID_ARGUMENT, "errors: n_tokens > max_tokens", "status %d, message \"%s\"",
                (int)st, msg.c_str());
    }
    // Device out-of-memory: a pool and a workspace no GPU has. (Skipped
    // under compute-sanitizer, which reports the failed cudaMalloc calls.)
    if (oom) {
        // The pool's size is a ceiling (it grows as steps reach blocks):
        // a 1 TiB pool opens, and the step that reaches its last block is
        // the one that runs out of memory, leaving the pool usable.
        lmscore_kv *kv = nullptr;
        const lmscore_status st = cuda.kv_init(e.model(), 64, 1 << 24, &kv);
        R.check(st == LMSCORE_STATUS_OK && kv, "errors: a huge KV pool is a ceiling, not an allocation", "status %d, \"%s\"",
                (int)st, cuda.last_error());
        if (kv) {
            lmscore_step *step = nullptr;
            const lmscore_status sst = cuda.step_init(e.model(), 16, 16, &step);
            if (sst == LMSCORE_STATUS_OK) {
                const int32_t src = (1 << 24) - 1, dst = (1 << 24) - 2, n = 1;
                lmscore_batch b{};
                b.n_copies = 1;
                b.copy_src = &src;
                b.copy_dst = &dst;
                b.copy_n_tokens = &n;
                lmscore_batch_result res{};
                const lmscore_status rst = cuda.step_run(step, kv, &b, &res);
                const std::string msg = cuda.last_error();
                R.check(rst == LMSCORE_STATUS_OUT_OF_MEMORY, "errors: growing a huge KV pool is OUT_OF_MEMORY",
                        "status %d, \"%s\"", (int)rst, msg.c_str());
                cuda.step_free(step);
            } else {
                R.check(false, "errors: growing a huge KV pool is OUT_OF_MEMORY", "step_init: status %d, \"%s\"",
                        (int)sst, cuda.last_error());
            }
            cuda.kv_free(kv);
        }
        lmscore_step *step = nullptr;
        const lmscore_status st2 = cuda.step_init(e.model(), 1 << 30, 16, &step);
        R.check(st2 == LMSCORE_STATUS_OUT_OF_MEMORY && !step, "errors: huge workspace is OUT_OF_MEMORY",
                "status %d, \"%s\"", (int)st2, cuda.last_error());
        if (step) cuda.step_free(step);
    }
    // After all of that, the same handle scores exactly as before.
    const bool ran = score_uncached(e, pairs, 3, &after, &err);
    R.check(ran && bitwise_equal(before, after), "errors: handle still works after failed calls", "%s",
            ran ? (bitwise_equal(before, after) ? "bitwise identical scores" : "scores changed") : err.c_str());

    // Bad model descriptions name the tensor.
    {
        lmscore_model_desc d = m.desc();
        std::vector<lmscore_tensor> layers(d.layers, d.layers + (size_t)d.n_layer * LMSCORE_LAYER_ROLE_COUNT);
        layers[LMSCORE_LAYER_ROLE_COUNT + LMSCORE_LAYER_WK].ne[1] += 1;
        d.layers = layers.data();
        lmscore_model *mm = nullptr;
        lmscore_status st = cuda.model_load(&d, cuda.backend_default_params(), &mm);
        const std::string msg = cuda.last_error();
        R.check(st == LMSCORE_STATUS_INVALID_ARGUMENT && msg.find("blk.1.attn_k.weight") != std::string::npos,
                "errors: bad tensor shape names the tensor", "status %d, \"%s\"", (int)st, msg.c_str());
        if (mm) cuda.model_free(mm);
        d = m.desc();
        d.n_embd = 120; // head_dim 30
        st = cuda.model_load(&d, cuda.backend_default_params(), &mm);
        R.check(st == LMSCORE_STATUS_UNSUPPORTED, "errors: unsupported head_dim", "status %d, \"%s\"", (int)st,
                cuda.last_error());
        if (mm) cuda.model_free(mm);
        // A gated FFN's up-projection bias, which the gated activation does
        // not apply: refused by layer rather than scored without it.
        d = m.desc();
        if (d.ffn_type == LMSCORE_FFN_SWIGLU || d.ffn_type == LMSCORE_FFN_GEGLU) {
            std::vector<lmscore_tensor> gl(d.layers, d.layers + (size_t)d.n_layer * LMSCORE_LAYER_ROLE_COUNT);
            const std::vector<float> bias((size_t)d.n_ff, 0.25f);
            gl[LMSCORE_LAYER_ROLE_COUNT + LMSCORE_LAYER_FFN_UP_B] = {bias.data(), LMSCORE_TYPE_F32, {d.n_ff, 1}};
            d.layers = gl.data();
            mm = nullptr;
            st = cuda.model_load(&d, cuda.backend_default_params(), &mm);
            const std::string bmsg = cuda.last_error();
            R.check(st == LMSCORE_STATUS_UNSUPPORTED && bmsg.find("layer 1") != std::string::npos && !mm,
                    "errors: a gated FFN's up bias is refused by layer", "status %d, \"%s\"", (int)st, bmsg.c_str());
            if (mm) cuda.model_free(mm);
        } else {
            R.check(false, "errors: a gated FFN's up bias is refused by layer", "the test model is not gated");
        }
    }
}

// What the CUDA core still refuses among the ABI-3 features, and bad values
// of the ones it computes: each by name, before any weight is uploaded.
void test_feature_errors(const Abi &cuda) {
    RandomModel m(gemma2_shape(), 5);
    struct Case {
        const char *what;
        void (*apply)(lmscore_model_desc &);
        lmscore_status want;
        const char *names;
    };
    const Case cases[] = {
        {"GeGLU experts are refused by name",
         [](lmscore_model_desc &d) {
             d.n_expert = 8;
             d.n_expert_used = 2;
             d.n_ff_exp = 64;
         },
         LMSCORE_STATUS_UNSUPPORTED, "SwiGLU experts only"},
        {"negative n_swa", [](lmscore_model_desc &d) { d.n_swa = -1; }, LMSCORE_STATUS_INVALID_ARGUMENT, "n_swa"},
        {"odd n_rot", [](lmscore_model_desc &d) { d.n_rot = 7; }, LMSCORE_STATUS_INVALID_ARGUMENT, "n_rot"},
        {"n_rot past head_dim", [](lmscore_model_desc &d) { d.n_rot = 66; }, LMSCORE_STATUS_INVALID_ARGUMENT, "n_rot"},
        {"negative attn_softcap", [](lmscore_model_desc &d) { d.attn_softcap = -1.f; }, LMSCORE_STATUS_INVALID_ARGUMENT,
         "attn_softcap"},
        {"NaN final_softcap", [](lmscore_model_desc &d) { d.final_softcap = NAN; }, LMSCORE_STATUS_INVALID_ARGUMENT,
         "final_softcap"},
    };
    for (const Case &c : cases) {
        lmscore_model_desc d = m.desc();
        c.apply(d);
        lmscore_model *mm = nullptr;
        const lmscore_status st = cuda.model_load(&d, cuda.backend_default_params(), &mm);
        const std::string msg = cuda.last_error();
        R.check(st == c.want && msg.find(c.names) != std::string::npos && !mm, std::string("features: ") + c.what,
                "status %d, \"%s\"", (int)st, msg.c_str());
        if (mm) cuda.model_free(mm);
    }
    // Experts without their router, or with a stacked matrix of the wrong
    // height, name the tensor.
    {
        RandomModel moe(qwen2moe_shape(), 6);
        for (int role : {LMSCORE_LAYER_FFN_GATE_INP, LMSCORE_LAYER_FFN_DOWN_EXPS}) {
            lmscore_model_desc d = moe.desc();
            std::vector<lmscore_tensor> layers(d.layers, d.layers + (size_t)d.n_layer * LMSCORE_LAYER_ROLE_COUNT);
            lmscore_tensor &t = layers[LMSCORE_LAYER_ROLE_COUNT + role];
            if (role == LMSCORE_LAYER_FFN_GATE_INP)
                t = lmscore_tensor{};
            else
                t.ne[1] -= d.n_embd; // one expert short
            d.layers = layers.data();
            lmscore_model *mm = nullptr;
            const lmscore_status st = cuda.model_load(&d, cuda.backend_default_params(), &mm);
            const std::string msg = cuda.last_error();
            const char *want = role == LMSCORE_LAYER_FFN_GATE_INP ? "blk.1.ffn_gate_inp.weight" : "blk.1.ffn_down_exps.weight";
            R.check(st == LMSCORE_STATUS_INVALID_ARGUMENT && msg.find(want) != std::string::npos && !mm,
                    std::string("features: experts with a bad ") + want + " name it", "status %d, \"%s\"", (int)st,
                    msg.c_str());
            if (mm) cuda.model_free(mm);
        }
    }
    // A post-norm of the wrong length names the tensor.
    {
        lmscore_model_desc d = m.desc();
        std::vector<lmscore_tensor> layers(d.layers, d.layers + (size_t)d.n_layer * LMSCORE_LAYER_ROLE_COUNT);
        layers[LMSCORE_LAYER_ROLE_COUNT + LMSCORE_LAYER_FFN_POST_NORM].ne[0] -= 1;
        d.layers = layers.data();
        lmscore_model *mm = nullptr;
        const lmscore_status st = cuda.model_load(&d, cuda.backend_default_params(), &mm);
        const std::string msg = cuda.last_error();
        R.check(st == LMSCORE_STATUS_INVALID_ARGUMENT && msg.find("blk.1.post_ffw_norm.weight") != std::string::npos,
                "features: bad post-norm shape names the tensor", "status %d, \"%s\"", (int)st, msg.c_str());
        if (mm) cuda.model_free(mm);
    }
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: model_tests path/to/liblmscore_cuda.so [--quick]\n");
        return 2;
    }
    bool quick = false, cpu_only = false, oom = true;
    for (int i = 2; i < argc; ++i) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        if (!strcmp(argv[i], "--no-oom")) oom = false;
        if (!strcmp(argv[i], "--cpu-only")) cpu_only = true;
    }
#ifdef LMSCORE_WITH_CPU_CORE
    if (cpu_only) {
        // The harness itself, on any machine: the CPU core against the
        // float64 reference, through the same planner and checks.
        Abi cpu = Abi::linked();
        R.info("--cpu-only: checking the CPU core and this harness against the float64 reference");
        test_model(cpu, nullptr, llama_shape(), 11, quick, true);
        test_model(cpu, nullptr, qwen2_shape(), 22, quick, true);
        test_model(cpu, nullptr, gpt2_shape(), 33, quick, true);
        test_model(cpu, nullptr, mixtral_shape(), 111, quick, true);
        test_model(cpu, nullptr, qwen2moe_shape(), 122, quick, true);
        test_model(cpu, nullptr, qwen3moe_shape(), 133, quick, true);
        return R.finish("model_tests --cpu-only");
    }
#else
    if (cpu_only) {
        fprintf(stderr, "--cpu-only needs the CPU core: build the model_tests_cpu target\n");
        return 2;
    }
#endif
    Abi cuda;
    std::string err;
    if (!cuda.open(argv[1], &err)) {
        R.check(false, "dlopen", "%s: %s", argv[1], err.c_str());
        return R.finish("model_tests");
    }
    R.check(cuda.abi_version() == LMSCORE_ABI_VERSION && !strcmp(cuda.backend_name(), "cuda"), "abi",
            "version %d (header %d), backend \"%s\"", cuda.abi_version(), LMSCORE_ABI_VERSION, cuda.backend_name());

    // Probe for a GPU through the library itself: with none, loading must
    // fail with DEVICE_ERROR and say so; nothing else can run.
    {
        RandomModel m(qwen2_shape(), 3);
        lmscore_model *mm = nullptr;
        const lmscore_status st = cuda.model_load(&m.desc(), cuda.backend_default_params(), &mm);
        if (st == LMSCORE_STATUS_DEVICE_ERROR) {
            R.check(strstr(cuda.last_error(), "no usable CUDA device") != nullptr, "no GPU: clear error",
                    "\"%s\"", cuda.last_error());
            printf("SKIP model_tests: no CUDA device, only the missing-GPU error was checked\n");
            return R.finish("model_tests");
        }
        R.check(st == LMSCORE_STATUS_OK, "probe load", "status %d %s", (int)st, cuda.last_error());
        if (mm) cuda.model_free(mm);
    }

#ifdef LMSCORE_WITH_CPU_CORE
    Abi cpu = Abi::linked();
    const Abi *cpu_ptr = &cpu;
    R.info("comparing with the CPU core linked into this program");
#else
    const Abi *cpu_ptr = nullptr;
    R.info("built without the CPU core: comparing with the float64 reference only");
#endif
    test_model(cuda, cpu_ptr, llama_shape(), 11, quick, false);
    test_model(cuda, cpu_ptr, qwen2_shape(), 22, quick, false);
    test_model(cuda, cpu_ptr, gpt2_shape(), 33, quick, false);
    test_model(cuda, cpu_ptr, gemma2_shape(), 44, quick, false);
    test_model(cuda, cpu_ptr, gemma3_shape(), 55, quick, false);
    test_model(cuda, cpu_ptr, phi3_shape(), 66, quick, false);
    test_model(cuda, cpu_ptr, neox_shape(), 77, quick, false);
    test_model(cuda, cpu_ptr, olmo2_shape(), 88, quick, false);
    test_model(cuda, cpu_ptr, mistral_shape(), 99, quick, false);
    test_model(cuda, cpu_ptr, mixtral_shape(), 111, quick, false);
    test_model(cuda, cpu_ptr, qwen2moe_shape(), 122, quick, false);
    test_model(cuda, cpu_ptr, qwen3moe_shape(), 133, quick, false);
    test_feature_errors(cuda);
    test_errors(cuda, oom);
    return R.finish("model_tests");
}
