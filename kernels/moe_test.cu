// moe_test.cu — moe.cu (routing, grouping by expert, the gather and the
// weighted sum) against host references, and their timing.
//
// Routing is checked against two: the CPU core's fp32 rule as a host loop
// (csrc/cpu/moe.cpp's route, the order of every operation), whose expert
// ids must match exactly, ties included; and float64, which the weights
// must match within the fp32 tolerance. Rows with tied logits (values on a
// grid of 1/4, so many probabilities are bitwise equal) check that the
// lower expert id wins a tie. Grouping is a stable counting sort, checked
// exactly; the gather is a copy, checked bitwise.
#include <math.h>

#include <functional>

#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

namespace {

// The CPU core's route(), on the host in fp32: p (n_expert) is overwritten.
void route_ref(float *p, int n_expert, int k, bool norm, int32_t *chosen, float *weight) {
    float mx = p[0];
    for (int e = 1; e < n_expert; ++e) mx = std::max(mx, p[e]);
    float sum = 0.f;
    for (int e = 0; e < n_expert; ++e) {
        p[e] = std::exp(p[e] - mx);
        sum += p[e];
    }
    for (int e = 0; e < n_expert; ++e) p[e] = p[e] / sum;
    for (int j = 0; j < k; ++j) {
        int best = -1;
        for (int e = 0; e < n_expert; ++e) {
            if (p[e] == -1.f) continue;
            if (best < 0 || p[e] > p[best]) best = e;
        }
        chosen[j] = best;
        weight[j] = p[best];
        p[best] = -1.f;
    }
    for (int j = 1; j < k; ++j)
        for (int i = j; i > 0 && chosen[i - 1] > chosen[i]; --i) {
            std::swap(chosen[i - 1], chosen[i]);
            std::swap(weight[i - 1], weight[i]);
        }
    if (norm) {
        float total = 0.f;
        for (int j = 0; j < k; ++j) total += weight[j];
        for (int j = 0; j < k; ++j) weight[j] = weight[j] / total;
    }
}

// The weights in float64 for the experts ids names (as chosen).
void weights_f64(const float *logits, int n_expert, int k, bool norm, const int32_t *ids, double *w) {
    double mx = -INFINITY, sum = 0;
    for (int e = 0; e < n_expert; ++e) mx = std::max(mx, (double)logits[e]);
    for (int e = 0; e < n_expert; ++e) sum += exp((double)logits[e] - mx);
    double total = 0;
    for (int j = 0; j < k; ++j) total += (w[j] = exp((double)logits[ids[j]] - mx) / sum);
    if (norm)
        for (int j = 0; j < k; ++j) w[j] /= total;
}

std::vector<int32_t> download_ints(const int32_t *p, size_t n) {
    std::vector<int32_t> v(n);
    if (n) CUDA_OK(cudaMemcpy(v.data(), p, n * 4, cudaMemcpyDeviceToHost));
    return v;
}

// The stable counting sort moe_group does: expert by expert, tokens in order.
std::vector<int32_t> group_ref(const std::vector<int32_t> &chosen, int n_tokens, int n_expert, int k, int align,
                               std::vector<int32_t> *counts) {
    counts->assign(n_expert, 0);
    for (int32_t c : chosen) (*counts)[c]++;
    std::vector<int32_t> start(n_expert + 1);
    moe_expert_starts(counts->data(), n_expert, align, start.data());
    std::vector<int32_t> pos((size_t)n_tokens * k, -1);
    for (int x = 0; x < n_expert; ++x) {
        int32_t next = start[x];
        for (int t = 0; t < n_tokens; ++t)
            for (int j = 0; j < k; ++j)
                if (chosen[(size_t)t * k + j] == x) pos[(size_t)t * k + j] = next++;
    }
    return pos;
}

void check_route(Rng &rng, int n_tokens, int n_expert, int k, bool norm, bool tied) {
    const int stride = n_expert + 1; // as with a shared expert's gate column after the experts'
    std::vector<float> logits((size_t)n_tokens * stride);
    for (float &z : logits) z = tied ? rng.range(-8, 8) * 0.25f : rng.normal(1.5f);
    if (tied && n_tokens > 2) {
        // Whole rows of one value: every expert ties, so the k lowest ids.
        for (int e = 0; e < stride; ++e) logits[e] = 0.5f;
        for (int e = 0; e < stride; ++e) logits[(size_t)stride + e] = -3.f;
    }
    Buf d_logits(logits, DType::F32);
    IntBuf d_chosen(std::vector<int32_t>((size_t)n_tokens * k, -7)), d_counts(std::vector<int32_t>(n_expert, 99));
    Buf d_weight((size_t)n_tokens * k, DType::F32);
    CUDA_OK(moe_route(d_logits.as<float>(), n_tokens, stride, n_expert, k, norm, d_chosen.p, d_weight.as<float>(),
                      d_counts.p, 0));
    sync_check("moe_route");
    const std::vector<int32_t> chosen = download_ints(d_chosen.p, (size_t)n_tokens * k);
    const std::vector<int32_t> counts = download_ints(d_counts.p, n_expert);
    const std::vector<float> weight = d_weight.download(), after = d_logits.download();

    int id_bad = 0, ties = 0, gate_bad = 0;
    std::vector<int32_t> want_counts(n_expert, 0);
    std::vector<double> w64((size_t)n_tokens * k);
    std::vector<float> w32((size_t)n_tokens * k);
    for (int t = 0; t < n_tokens; ++t) {
        std::vector<float> p(logits.begin() + (size_t)t * stride, logits.begin() + (size_t)t * stride + n_expert);
        std::vector<int32_t> c(k);
        route_ref(p.data(), n_expert, k, norm, c.data(), &w32[(size_t)t * k]);
        for (int j = 0; j < k; ++j) {
            id_bad += c[j] != chosen[(size_t)t * k + j];
            want_counts[c[j]]++;
        }
        weights_f64(&logits[(size_t)t * stride], n_expert, k, norm, c.data(), &w64[(size_t)t * k]);
        // A tie at the cut: the k-th and the next-best logit are equal.
        std::vector<float> z(logits.begin() + (size_t)t * stride, logits.begin() + (size_t)t * stride + n_expert);
        std::sort(z.begin(), z.end(), std::greater<float>());
        if (k < n_expert && z[k - 1] == z[k]) ++ties;
        // The gate's column is the caller's: untouched.
        gate_bad += memcmp(&after[(size_t)t * stride + n_expert], &logits[(size_t)t * stride + n_expert], 4) != 0;
    }
    char name[128];
    snprintf(name, sizeof name, "moe_route %d tokens, top %d of %d%s%s", n_tokens, k, n_expert, norm ? ", renormalized" : "",
             tied ? ", tied logits" : "");
    R.check(id_bad == 0 && gate_bad == 0 && (!tied || ties > 0), std::string(name) + " ids",
            "%d of %d ids differ from the CPU core's rule; %d rows tied at the cut; %d gate columns touched", id_bad,
            n_tokens * k, ties, gate_bad);
    R.check(counts == want_counts, std::string(name) + " counts", "%s", counts == want_counts ? "equal" : "DIFFERENT");
    // n: the longest fp32 chain is the softmax's sum over the experts.
    R.err(std::string(name) + " weights vs float64", compare(weight, w64), tolerance(DType::F32, n_expert));
    R.err(std::string(name) + " weights vs the CPU core's fp32", compare(weight, w32), tolerance(DType::F32, 1));
}

void check_group(Rng &rng, int n_tokens, int n_expert, int k, int align) {
    // Each token's k distinct experts, increasing, as moe_route leaves them;
    // expert 0 is everyone's favourite and the last expert nobody's, so
    // counts range from every token to none.
    std::vector<int32_t> chosen((size_t)n_tokens * k);
    for (int t = 0; t < n_tokens; ++t) {
        std::vector<int32_t> ids(n_expert - 1);
        for (int e = 0; e < n_expert - 1; ++e) ids[e] = e;
        std::shuffle(ids.begin() + 1, ids.end(), rng.gen);
        std::sort(ids.begin(), ids.begin() + k);
        for (int j = 0; j < k; ++j) chosen[(size_t)t * k + j] = ids[j];
    }
    std::vector<int32_t> counts;
    const std::vector<int32_t> want = group_ref(chosen, n_tokens, n_expert, k, align, &counts);
    IntBuf d_chosen(chosen), d_counts(counts), d_pos(std::vector<int32_t>((size_t)n_tokens * k, -1));
    CUDA_OK(moe_group(d_chosen.p, d_counts.p, n_tokens, n_expert, k, align, d_pos.p, 0));
    sync_check("moe_group");
    const std::vector<int32_t> got = download_ints(d_pos.p, (size_t)n_tokens * k);
    char name[128];
    snprintf(name, sizeof name, "moe_group %d tokens, top %d of %d, row_align %d", n_tokens, k, n_expert, align);
    int bad = 0;
    for (size_t i = 0; i < got.size(); ++i) bad += got[i] != want[i];
    R.check(bad == 0, name, "%d of %zu rows differ from the stable counting sort (experts %d to %d tokens)", bad,
            got.size(), *std::min_element(counts.begin(), counts.end()), *std::max_element(counts.begin(), counts.end()));

    // The gather of those rows and the weighted sum back.
    const int E = 75; // not a multiple of anything the kernels tile by
    std::vector<int32_t> start(n_expert + 1);
    moe_expert_starts(counts.data(), n_expert, align, start.data());
    const int rows = start[n_expert];
    for (DType dt : {DType::F32, DType::BF16}) {
        const std::vector<float> h = stored(randn(rng, (size_t)n_tokens * E), dt);
        Buf d_h(h, dt), d_rows((size_t)rows * E, dt);
        CUDA_OK(moe_gather(d_h.p, d_pos.p, n_tokens, k, E, d_rows.p, dt, 0));
        sync_check("moe_gather");
        const std::vector<float> g = d_rows.download();
        int wrong = 0;
        for (size_t i = 0; i < want.size(); ++i)
            wrong += memcmp(&g[(size_t)want[i] * E], &h[(i / k) * E], (size_t)E * 4) != 0;
        snprintf(name, sizeof name, "moe_gather %s %d tokens x %d, %d rows", dname(dt), n_tokens, k, rows);
        R.check(wrong == 0, name, "%d of %zu gathered rows differ from their token's", wrong, want.size());
    }
    for (bool shared : {false, true})
        for (bool gated : {false, true}) {
            if (gated && !shared) continue;
            const std::vector<float> y = randn(rng, (size_t)rows * E), w = randn(rng, (size_t)n_tokens * k, 0.5f);
            const std::vector<float> sh = randn(rng, (size_t)n_tokens * E), gl = randn(rng, (size_t)n_tokens * 3, 2.f);
            Buf d_y(y, DType::F32), d_w(w, DType::F32), d_sh(sh, DType::F32), d_gl(gl, DType::F32);
            // In place over the shared expert's output, as step.cpp runs it.
            Buf d_out((size_t)n_tokens * E, DType::F32);
            float *out = shared ? d_sh.as<float>() : d_out.as<float>();
            CUDA_OK(moe_combine(d_y.as<float>(), d_pos.p, d_w.as<float>(), n_tokens, k, E,
                                shared ? d_sh.as<float>() : nullptr, gated ? d_gl.as<float>() + 1 : nullptr, 3, out, 0));
            sync_check("moe_combine");
            std::vector<double> ref((size_t)n_tokens * E);
            for (int t = 0; t < n_tokens; ++t) {
                const double s = gated ? 1 / (1 + exp(-(double)gl[(size_t)t * 3 + 1])) : 1;
                for (int c = 0; c < E; ++c) {
                    double acc = 0;
                    for (int j = 0; j < k; ++j)
                        acc += (double)w[(size_t)t * k + j] * y[(size_t)want[(size_t)t * k + j] * E + c];
                    ref[(size_t)t * E + c] = acc + (shared ? s * sh[(size_t)t * E + c] : 0);
                }
            }
            const std::vector<float> got_out = shared ? d_sh.download() : d_out.download();
            snprintf(name, sizeof name, "moe_combine %d tokens, top %d%s%s", n_tokens, k, shared ? ", shared expert" : "",
                     gated ? " gated" : "");
            R.err(name, compare(got_out, ref), tolerance(DType::F32, k + 1));
        }
}

} // namespace

void moe_check(Rng &rng) {
    // Token counts around the kernels' 128- and 256-thread blocks.
    check_route(rng, 1, 4, 2, true, false);
    check_route(rng, 300, 4, 2, true, false);
    check_route(rng, 300, 4, 2, false, true);
    check_route(rng, 257, 6, 3, true, true);
    check_route(rng, 1000, 60, 8, false, false);
    check_route(rng, 513, 60, 8, true, true);
    check_group(rng, 1, 4, 2, 1);
    check_group(rng, 300, 4, 2, 4);
    check_group(rng, 257, 6, 3, 2);
    check_group(rng, 1000, 65, 8, 1);
    check_group(rng, 777, 65, 8, 8);
}

// A Qwen3-30B-A3B-shaped layer at 8192 tokens: 128 experts, top 8, n_embd
// 2048 in bf16.
void moe_perf(Rng &rng) {
    const int N = 8192, NE = 128, K = 8, E = 2048;
    Buf logits(randn(rng, (size_t)N * NE, 1.5f), DType::F32), weight((size_t)N * K, DType::F32);
    IntBuf chosen(std::vector<int32_t>((size_t)N * K, 0)), counts(std::vector<int32_t>(NE, 0)),
        pos(std::vector<int32_t>((size_t)N * K, 0));
    CUDA_OK(moe_route(logits.as<float>(), N, NE, NE, K, true, chosen.p, weight.as<float>(), counts.p, 0));
    sync_check("moe_route");
    // Routing overwrites the logits in place; timing it again on
    // probabilities does the same work.
    const double route_ms = median_ms(
        launches([&] { return moe_route(logits.as<float>(), N, NE, NE, K, true, chosen.p, weight.as<float>(), counts.p, 0); }),
        3, 10);
    const double group_ms = median_ms(launches([&] { return moe_group(chosen.p, counts.p, N, NE, K, 1, pos.p, 0); }), 3, 10);
    Buf h((size_t)N * E, DType::BF16), rows((size_t)N * K * E, DType::BF16), y((size_t)N * K * E, DType::F32),
        out((size_t)N * E, DType::F32);
    CUDA_OK(cudaMemset(y.p, 0, y.bytes()));
    const double gather_ms =
        median_ms(launches([&] { return moe_gather(h.p, pos.p, N, K, E, rows.p, DType::BF16, 0); }), 3, 10);
    const double combine_ms = median_ms(launches([&] {
        return moe_combine(y.as<float>(), pos.p, weight.as<float>(), N, K, E, nullptr, nullptr, 0, out.as<float>(), 0);
    }), 3, 10);
    R.info("perf moe 8192 tokens, top 8 of 128, n_embd 2048 bf16: route %.3f ms, group %.3f ms, gather %.3f ms "
           "(%.0f GB/s), combine %.3f ms (%.0f GB/s)",
           route_ms, group_ms, gather_ms, gb_per_s(h.bytes() * K + rows.bytes(), gather_ms), combine_ms,
           gb_per_s(y.bytes() + out.bytes(), combine_ms));
}

} // namespace lmscore_test
