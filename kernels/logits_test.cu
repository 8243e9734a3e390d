// logits_test.cu — logits.cu (log-softmax at the target, is-greedy, top-n
// ids and log-probabilities in one pass; top_n past kMaxTopN takes the
// second kernel) against a float64 reference with exact ids and tie order;
// and its timing.
#include <numeric>

#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

void logits_check(Rng &rng) {
    const int rows = 9;
    // An odd vocabulary takes the one-value loop; a multiple of 4 the
    // four-wide one, with rows V apart or padded to a multiple of 64 (the
    // LM head's layout, the padding poisoned with NaN: never read).
    struct Shape { int V, stride; };
    for (Shape sh : {Shape{50021, 0}, Shape{50020, 0}, Shape{50020, 50048}})
    // softcap 30: Gemma 2's final soft-capping, c * tanh(x / c), which the
    // kernel applies as it reads each logit.
    for (float cap : {0.f, 30.f})
    for (int K : {0, 5, kMaxTopN, kMaxTopN + 36}) {
        const int V = sh.V, S = sh.stride > 0 ? sh.stride : sh.V;
        std::vector<float> x = randn(rng, (size_t)rows * V, 3.f);
        std::vector<int32_t> target(rows);
        for (int r = 0; r < rows; ++r) target[r] = rng.below(V);
        // Row 1: its target is the arg-max. Row 2: the maximum appears twice;
        // the lower id must come first and both count as greedy.
        {
            float *r1 = &x[(size_t)1 * V];
            target[1] = (int32_t)(std::max_element(r1, r1 + V) - r1);
            float *r2 = &x[(size_t)2 * V];
            r2[100] = r2[40000] = 25.f;
            target[2] = 40000;
        }
        std::vector<float> padded((size_t)rows * S, NAN);
        for (int r = 0; r < rows; ++r) std::copy(&x[(size_t)r * V], &x[(size_t)r * V] + V, &padded[(size_t)r * S]);
        Buf dx(padded, DType::F32);
        IntBuf dt(target);
        Buf lp(rows, DType::F32), tlp((size_t)rows * std::max(K, 1), DType::F32);
        int32_t *greedy, *tids;
        CUDA_OK(cudaMalloc(&greedy, rows * 4));
        CUDA_OK(cudaMalloc(&tids, (size_t)rows * std::max(K, 1) * 4));
        CUDA_OK(cudaMemset(greedy, 0xff, rows * 4));
        LogitsParams p{dx.as<float>(), dt.p, rows, V, K, lp.as<float>(), greedy, tids, tlp.as<float>(), cap, sh.stride};
        CUDA_OK(logits_reduce(p, 0));
        sync_check("logits_reduce");
        std::vector<float> got_lp = lp.download(), got_tlp = tlp.download();
        std::vector<int32_t> got_g(rows), got_ids((size_t)rows * std::max(K, 1));
        CUDA_OK(cudaMemcpy(got_g.data(), greedy, rows * 4, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(got_ids.data(), tids, got_ids.size() * 4, cudaMemcpyDeviceToHost));
        cudaFree(greedy);
        cudaFree(tids);

        std::vector<double> ref_lp(rows), ref_tlp, out_tlp;
        bool greedy_ok = true, ids_ok = true;
        for (int r = 0; r < rows; ++r) {
            const float *xraw = &x[(size_t)r * V];
            // Capping is monotone: the raw maximum is the capped one.
            const float raw_max = *std::max_element(xraw, xraw + V);
            std::vector<double> xc(xraw, xraw + V);
            if (cap > 0)
                for (double &v : xc) v = cap * tanh(v / cap);
            const double *xr = xc.data();
            double mx = -INFINITY;
            for (int i = 0; i < V; ++i) mx = std::max(mx, xr[i]);
            double sum = 0;
            for (int i = 0; i < V; ++i) sum += exp(xr[i] - mx);
            const double lse = mx + log(sum);
            ref_lp[r] = xr[target[r]] - lse;
            if (got_g[r] != (xraw[target[r]] == raw_max ? 1 : 0)) greedy_ok = false;
            std::vector<int> order(V);
            std::iota(order.begin(), order.end(), 0);
            std::partial_sort(order.begin(), order.begin() + K, order.end(),
                              [&](int a, int b) { return xr[a] > xr[b] || (xr[a] == xr[b] && a < b); });
            for (int k = 0; k < K; ++k) {
                if (got_ids[(size_t)r * K + k] != order[k]) ids_ok = false;
                ref_tlp.push_back(xr[order[k]] - lse);
                out_tlp.push_back(got_tlp[(size_t)r * K + k]);
            }
        }
        // The sum of exponentials is a block reduction over V by the
        // kernel's kThreads = 512 threads; then one subtraction, x - lse.
        // Capping adds the division, tanhf and product before it.
        const double tol = tolerance(DType::F32, block_reduction_chain(V, 512) + 1 + (cap > 0 ? 3 : 0));
        char name[128];
        char shape[48];
        snprintf(shape, sizeof shape, "%d%s", V, sh.stride ? (" stride " + std::to_string(S)).c_str() : "");
        snprintf(name, sizeof name, "logits%s V=%s top_n=%d logprob", cap > 0 ? " softcap=30" : "", shape, K);
        R.err(name, compare(got_lp, ref_lp), tol);
        snprintf(name, sizeof name, "logits%s V=%s top_n=%d is_greedy", cap > 0 ? " softcap=30" : "", shape, K);
        R.check(greedy_ok, name, "%s", greedy_ok ? "matches target == max (ties included)" : "mismatch");
        if (K > 0) {
            snprintf(name, sizeof name, "logits%s V=%s top_n=%d top ids", cap > 0 ? " softcap=30" : "", shape, K);
            R.check(ids_ok, name, "%s", ids_ok ? "exact order, ties to the lower id" : "mismatch");
            snprintf(name, sizeof name, "logits%s V=%s top_n=%d top logprobs", cap > 0 ? " softcap=30" : "", shape, K);
            R.err(name, compare(out_tlp, ref_tlp), tol);
        }
    }
}

// A Llama-3.2-1B LM head chunk: 512 rows of 128256 logits, top 5.
void logits_perf(Rng &rng) {
    const int V = 128256, rows = 512, K = 5;
    Buf x(randn(rng, (size_t)rows * V, 3.f), DType::F32);
    std::vector<int32_t> target(rows);
    for (int32_t &t : target) t = rng.below(V);
    IntBuf dt(target);
    Buf lp(rows, DType::F32), tlp((size_t)rows * K, DType::F32);
    int32_t *greedy, *tids;
    CUDA_OK(cudaMalloc(&greedy, rows * 4));
    CUDA_OK(cudaMalloc(&tids, (size_t)rows * K * 4));
    LogitsParams p{x.as<float>(), dt.p, rows, V, K, lp.as<float>(), greedy, tids, tlp.as<float>()};
    const double ms = median_ms(launches([&] { return logits_reduce(p, 0); }), 3, 10);
    R.info("perf logits fp32 %d rows x %d top_n=%d: median %.3f ms, %.0f GB/s", rows, V, K, ms, gb_per_s(x.bytes(), ms));
    p.top_n = 0; // scoring without top-n, the common case
    const double ms0 = median_ms(launches([&] { return logits_reduce(p, 0); }), 3, 10);
    R.info("perf logits fp32 %d rows x %d top_n=0: median %.3f ms, %.0f GB/s", rows, V, ms0, gb_per_s(x.bytes(), ms0));
    cudaFree(greedy);
    cudaFree(tids);
}

} // namespace lmscore_test
