// throughput.cpp — a first throughput figure for the CUDA core: tokens/s on
// a Llama-3.2-1B-shaped model with random bf16 weights (vocab 128256, 16
// layers, 2048 wide, 32 heads over 8 KV heads, FF 8192, tied embeddings),
// 8192-token steps of 8 sequences x 1024 tokens, block size 16; and, in the
// same run, the card's bf16 GEMM rate through cuBLAS (8192^3, random data),
// so the model's rate can be given as a fraction of it. The steps run twice:
// with the core's fixed, batch-invariant GEMM plans (the default) and with
// cuBLAS choosing per call (LMSCORE_CUDA_GEMM=heuristic), so the cost of
// batch invariance is measured in the same run.
//
// Usage: throughput path/to/liblmscore_cuda.so
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "abi.h"
#include "plan.h"
#include "test_util.h"
#include "timing.h"

using namespace lmscore_test;

namespace {

constexpr int V = 128256, E = 2048, L = 16, H = 32, HKV = 8, D = 64, FF = 8192;

// Fills n bf16 values uniformly in [-a, a] from a counter hash, on all cores.
void fill_bf16(std::vector<uint16_t> &v, float a, uint64_t seed) {
    const unsigned n_threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> th;
    const size_t chunk = (v.size() + n_threads - 1) / n_threads;
    for (unsigned t = 0; t < n_threads; ++t)
        th.emplace_back([&, t]() {
            const size_t lo = t * chunk, hi = std::min(v.size(), lo + chunk);
            for (size_t i = lo; i < hi; ++i) {
                uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
                x ^= x >> 31;
                x *= 0xBF58476D1CE4E5B9ull;
                x ^= x >> 29;
                const float u = (float)(x >> 40) / (float)(1ull << 24); // [0, 1)
                v[i] = f32_to_bf16((2.f * u - 1.f) * a);
            }
        });
    for (auto &t : th) t.join();
}

// cuBLAS bf16 GEMM, m = n = k = 8192, fp32 accumulation, on random data.
double gemm_peak_tflops() {
    const int n = 8192;
    std::vector<uint16_t> h((size_t)n * n);
    void *A, *B, *C;
    if (cudaMalloc(&A, h.size() * 2) || cudaMalloc(&B, h.size() * 2) || cudaMalloc(&C, h.size() * 2)) return -1;
    fill_bf16(h, 1.f, 1);
    cudaMemcpy(A, h.data(), h.size() * 2, cudaMemcpyHostToDevice);
    fill_bf16(h, 1.f, 2);
    cudaMemcpy(B, h.data(), h.size() * 2, cudaMemcpyHostToDevice);
    cublasHandle_t handle;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) return -1;
    const float alpha = 1.f, beta = 0.f;
    auto run = [&]() {
        return cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, A, CUDA_R_16BF, n, B, CUDA_R_16BF, n,
                            &beta, C, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    const double ms = median_ms([&] { return run() == CUBLAS_STATUS_SUCCESS; }, 5, 20);
    cublasDestroy(handle);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    return ms > 0 ? 2.0 * n * n * (double)n / (ms * 1e-3) / 1e12 : -1;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: throughput path/to/liblmscore_cuda.so\n");
        return 2;
    }
    Report R;
    Abi cuda;
    std::string err;
    if (!cuda.open(argv[1], &err)) {
        R.check(false, "dlopen", "%s", err.c_str());
        return R.finish("throughput");
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
        printf("SKIP throughput: no CUDA device\n");
        return 0;
    }
    R.info("device: %s", prop.name);

    // Weights: matrices bf16 uniform with the variance of N(0, 1/fan_in)-ish
    // scaling, norms fp32 ones.
    auto t0 = std::chrono::steady_clock::now();
    std::vector<uint16_t> tok((size_t)V * E);
    fill_bf16(tok, 0.05f, 100);
    std::vector<float> ones(FF, 1.f);
    std::vector<std::vector<uint16_t>> mats;
    std::vector<lmscore_tensor> layers((size_t)L * LMSCORE_LAYER_ROLE_COUNT);
    auto mat = [&](int n_in, int n_out, uint64_t seed) {
        mats.emplace_back((size_t)n_in * n_out);
        fill_bf16(mats.back(), 1.7f / sqrtf((float)n_in), seed);
        return lmscore_tensor{mats.back().data(), LMSCORE_TYPE_BF16, {n_in, n_out}};
    };
    mats.reserve((size_t)L * 7);
    for (int l = 0; l < L; ++l) {
        lmscore_tensor *t = &layers[(size_t)l * LMSCORE_LAYER_ROLE_COUNT];
        t[LMSCORE_LAYER_ATTN_NORM] = {ones.data(), LMSCORE_TYPE_F32, {E, 1}};
        t[LMSCORE_LAYER_FFN_NORM] = {ones.data(), LMSCORE_TYPE_F32, {E, 1}};
        t[LMSCORE_LAYER_WQ] = mat(E, H * D, 1000 + l * 10);
        t[LMSCORE_LAYER_WK] = mat(E, HKV * D, 1001 + l * 10);
        t[LMSCORE_LAYER_WV] = mat(E, HKV * D, 1002 + l * 10);
        t[LMSCORE_LAYER_WO] = mat(H * D, E, 1003 + l * 10);
        t[LMSCORE_LAYER_FFN_GATE] = mat(E, FF, 1004 + l * 10);
        t[LMSCORE_LAYER_FFN_UP] = mat(E, FF, 1005 + l * 10);
        t[LMSCORE_LAYER_FFN_DOWN] = mat(FF, E, 1006 + l * 10);
    }
    lmscore_model_desc d{};
    d.n_vocab = V;
    d.n_embd = E;
    d.n_layer = L;
    d.n_head = H;
    d.n_head_kv = HKV;
    d.n_ff = FF;
    d.n_ctx_train = 131072;
    d.rope_type = LMSCORE_ROPE_TYPE_NORM;
    d.rope_freq_base = 500000.f;
    d.norm_eps = 1e-5f;
    d.tok_embd = {tok.data(), LMSCORE_TYPE_BF16, {E, V}};
    d.output_norm = {ones.data(), LMSCORE_TYPE_F32, {E, 1}};
    d.layers = layers.data();
    const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const int seqs = 8, len = 1024, N = seqs * len, bs = 16;
    t0 = std::chrono::steady_clock::now();
    Engine e(cuda, d, LMSCORE_PRECISION_BF16, bs, N / bs + 64, N, N);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!R.check(e.ok(), "load 1B-shaped model", "%s (weights generated in %.1f s, loaded in %.1f s)",
                 e.ok() ? "ok" : e.error().c_str(), gen_s, load_s))
        return R.finish("throughput");

    const double peak = gemm_peak_tflops();
    R.info("cuBLAS bf16 GEMM 8192^3: %.1f TFLOP/s (median of 20, random data)", peak);

    const double params_per_layer = (double)E * (H * D + 2 * HKV * D) + (double)H * D * E + 3.0 * E * FF;
    double attn_flops = 0;
    for (int i = 0; i < len; ++i) attn_flops += 4.0 * (i + 1) * D * H * L;
    attn_flops *= seqs;
    // The same steps with the core's fixed GEMM plans (the default, batch
    // invariant) and with cuBLAS choosing per call (LMSCORE_CUDA_GEMM=heuristic,
    // what the core did before the plans), on the same model and pool: what
    // batch invariance costs.
    auto measure = [&](lmscore_step *step, const char *gemms) {
        Rng rng(7);
        for (int n_out : {N / 8, N}) {
            StepBuilder sb;
            for (int s = 0; s < seqs; ++s) {
                std::vector<int32_t> toks(len), table(len / bs);
                for (int32_t &t : toks) t = rng.below(V);
                std::iota(table.begin(), table.end(), s * (len / bs));
                sb.add_segment(toks, 0, table, bs, 0);
            }
            for (int o = 0; o < n_out; ++o) {
                const int t = (int)((int64_t)o * N / n_out);
                sb.add_output(t, rng.below(V), 0, 0);
            }
            const lmscore_batch b = sb.batch();
            std::vector<float> lp(n_out);
            std::vector<uint8_t> g(n_out);
            lmscore_batch_result r{lp.data(), g.data(), nullptr, nullptr};
            // step_run returns when the step's results are on the host, so
            // the events around it time the whole call, as a caller sees it.
            const double ms = median_ms([&] { return cuda.step_run(step, e.kv(), &b, &r) == LMSCORE_STATUS_OK; }, 2, 10);
            const bool ok = ms >= 0;
            bool finite = true;
            for (float x : lp) finite = finite && std::isfinite(x) && x <= 0.f;
            char name[128];
            snprintf(name, sizeof name, "step 8x1024 tokens, %d output rows, %s GEMMs", n_out, gemms);
            if (!R.check(ok && finite, name, "%s", ok ? (finite ? "ran, logprobs finite and <= 0" : "bad logprobs") : cuda.last_error()))
                continue;
            const double t = ms * 1e-3;
            const double flops = 2.0 * N * params_per_layer * L + attn_flops + 2.0 * n_out * (double)E * V;
            R.info("throughput bf16, %s GEMMs, %d output rows: median step %.2f ms, %.0f tokens/s, %.1f TFLOP/s = %.1f%% of "
                   "the measured GEMM peak (flops: linear %.1f T, attention %.2f T, LM head %.2f T)",
                   gemms, n_out, t * 1e3, N / t, flops / t / 1e12, 100.0 * flops / t / 1e12 / peak,
                   2.0 * N * params_per_layer * L / 1e12, attn_flops / 1e12, 2.0 * n_out * (double)E * V / 1e12);
        }
    };
    measure(e.step(), "fixed");
    setenv("LMSCORE_CUDA_GEMM", "heuristic", 1);
    lmscore_step *heuristic = nullptr;
    const lmscore_status hs = cuda.step_init(e.model(), N, N, &heuristic);
    unsetenv("LMSCORE_CUDA_GEMM");
    if (R.check(hs == LMSCORE_STATUS_OK, "step executor with LMSCORE_CUDA_GEMM=heuristic", "%s",
                hs == LMSCORE_STATUS_OK ? "ok" : cuda.last_error())) {
        measure(heuristic, "per-call heuristic");
        cuda.step_free(heuristic);
    }
    return R.finish("throughput");
}
