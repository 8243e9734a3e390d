// gemm_sweep.cu — batch invariance of the fixed GEMM plans at every row
// count, on the bf16 shapes of the benchmark's models (Llama-3.2-1B,
// Llama-3.1-8B and gpt2-large, bench/shapes.go), each planned as step.cpp
// plans it: the max_rows a step of 8192 tokens gives it (the LM head: its
// chunk of output rows; a dense FFN: its chunk of 2048 rows), its output
// type (bf16 for gate/up and up, kernels.h) and GPT-2's bias epilogue.
//
// kernel_tests checks each plan at 8 row counts; a GEMM kernel whose order
// of summation depended on the number of output tiles (stream-K, or a
// persistent scheduler splitting K when tiles are few) could still vary at
// counts between those. Here every count n in 1..max_rows-1 runs on rows
// [r0, r0 + n) of X, copied to the start of a buffer as a step would hold
// them, and a device-side comparison counts the rows whose bytes differ
// from the same rows of one max_rows call. Nothing is copied to the host
// but the counts, so the whole sweep is a few seconds of GPU time.
//
// Each plan is gemm_plan's, so a measured choice (gemm_choices.cpp) is swept
// like any other; each line's description says which the plan took
// (kernel_tests' gemm_choices_check checks that every entry is taken).
//
// Usage: gemm_sweep [--stride S] [--heuristic] [--tune FILE]
//   --stride S   test n = 1, 1 + S, 1 + 2S, ... and max_rows - 1 (default 1: all)
//   --heuristic  also sweep cublasGemmEx's per-call choice (INFO only: the
//                core before the fixed plans), every 13th count
//   --tune FILE  instead of sweeping: time every candidate of each shape at
//                max_rows, and write the table of measured choices
//                (kernels/gemm_choices.inc) to FILE: this device's entries
//                replaced, other devices' kept. The table is compiled in:
//                rebuild, then run the plain sweep to check the new plans.
#include <cuda_runtime.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "internal.h"
#include "cuda_ok.h"
#include "fill_hash.cuh"
#include "test_util.h"
#include "timing.h"

using namespace lmscore_cuda;
using namespace lmscore_test;

namespace {

Report R;

// y (n, cols) against want (n, cols), bitwise: adds the number of rows with
// any differing word to *bad_rows. One block per row.
__global__ void count_differing_rows(const uint32_t *y, const uint32_t *want, int cols, unsigned long long *bad_rows) {
    const uint32_t *a = y + (size_t)blockIdx.x * cols, *b = want + (size_t)blockIdx.x * cols;
    int differs = 0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) differs |= a[c] != b[c];
    if (__syncthreads_or(differs) && threadIdx.x == 0) atomicAdd(bad_rows, 1ull);
}

struct DevBuf {
    void *p = nullptr;
    explicit DevBuf(size_t bytes) { CUDA_OK(cudaMalloc(&p, std::max<size_t>(bytes, 1))); }
    ~DevBuf() { cudaFree(p); }
    DevBuf(const DevBuf &) = delete;
    DevBuf &operator=(const DevBuf &) = delete;
};

// A GEMM as step.cpp plans and runs it.
struct Shape {
    const char *name;
    int in, out, max_rows;
    DType y = DType::F32; // the gate/up and up GEMMs write bf16 (kernels.h)
    int ld_y = 0;         // the LM head's rows are lm_head_rows apart (internal.h)
    bool bias = false;    // the BIAS epilogue (GPT-2's wo and down: bias_epilogue in step.cpp)
    bool accumulate = false; // adds into the residual (wo and down without a post-norm)
};

// Where row count n takes its rows from: spread over the full call's rows,
// so that a row is compared at another index than its own.
int first_row(int n, int max_rows) { return (int)((37ll * n + 11) % (max_rows - n + 1)); }

// Sweeps plan over the row counts; returns the counts at which some row
// differs (empty: invariant), or {-1} when cuBLAS failed.
std::vector<int> sweep(const GemmContext &ctx, const GemmPlan &plan, const Shape &sh, const DevBuf &w, const DevBuf &x,
                       const float *bias, int stride) {
    const size_t es = dtype_size(plan.dtype), ys_size = dtype_size(plan.y_type);
    const int row_words = (int)(sh.out * ys_size / 4); // every shape's out is even
    DevBuf y_full((size_t)sh.max_rows * sh.out * ys_size), xs((size_t)sh.max_rows * sh.in * es),
        ys((size_t)sh.max_rows * sh.out * ys_size), bad((size_t)sh.max_rows * 8);
    CUDA_OK(cudaMemset(bad.p, 0, (size_t)sh.max_rows * 8));
    if (gemm(ctx, plan, w.p, x.p, y_full.p, sh.max_rows, false, bias) != CUBLAS_STATUS_SUCCESS) return {-1};
    std::vector<int> counts;
    for (int n = 1; n < sh.max_rows; n += stride) counts.push_back(n);
    if (counts.empty() || counts.back() != sh.max_rows - 1) counts.push_back(sh.max_rows - 1);
    for (int n : counts) {
        const int r0 = first_row(n, sh.max_rows);
        CUDA_OK(cudaMemcpyAsync(xs.p, (const char *)x.p + (size_t)r0 * sh.in * es, (size_t)n * sh.in * es,
                                 cudaMemcpyDeviceToDevice, ctx.stream));
        if (gemm(ctx, plan, w.p, xs.p, ys.p, n, false, bias) != CUBLAS_STATUS_SUCCESS) return {-1};
        count_differing_rows<<<n, 256, 0, ctx.stream>>>((const uint32_t *)ys.p,
                                                        (const uint32_t *)y_full.p + (size_t)r0 * row_words, row_words,
                                                        (unsigned long long *)bad.p + n);
    }
    CUDA_OK(cudaStreamSynchronize(ctx.stream));
    CUDA_OK(cudaGetLastError());
    std::vector<unsigned long long> h((size_t)sh.max_rows);
    CUDA_OK(cudaMemcpy(h.data(), bad.p, h.size() * 8, cudaMemcpyDeviceToHost));
    std::vector<int> failing;
    for (int n : counts)
        if (h[n]) failing.push_back(n);
    return failing;
}

std::string list(const std::vector<int> &v, size_t most = 24) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < most; ++i) s += (i ? "," : "") + std::to_string(v[i]);
    if (v.size() > most) s += ",... (" + std::to_string(v.size()) + " in all)";
    return s.empty() ? "none" : s;
}

// LM head rows per chunk, as step.cpp sizes them for max_outputs 8192
// (kLogitsChunkBytes, over the padded vocabulary).
int head_rows(int vocab) {
    int rows = (int)std::min<int64_t>(8192, (int64_t)(128u << 20) / ((int64_t)lm_head_rows(vocab) * 4));
    if (rows < 8192 && rows > 128) rows -= rows % 128;
    return rows;
}

// The LM head as step.cpp plans it: the vocabulary padded, rows that far apart.
Shape head(const char *name, int in, int vocab) {
    return {name, in, lm_head_rows(vocab), head_rows(vocab), DType::F32, lm_head_rows(vocab)};
}

const char *dtype_name(DType t) { return t == DType::F32 ? "DType::F32" : "DType::BF16"; }

// --tune for one shape, among the candidates gemm_plan chooses from
// (gemm_plan_candidates), each timed as the step runs it (accumulating, with
// the bias): the fastest few whose rows are invariant over a sample of row
// counts (every 61st; the plain sweep then checks the chosen plan at every
// count) are re-timed in turn with the default, the first. The fastest of
// them is a table line when it beats the default by kTuneGain; empty
// otherwise. A margin and the re-timing, so that noise does not make an
// entry: one pass over the list read the 8B down projection's default at
// 0.379 ms and, re-timed in turn, at 0.303 ms.
constexpr double kTuneGain = 1.03;
constexpr int kTuneFinalists = 3;

std::string tune(const GemmContext &ctx, const Shape &sh, const DevBuf &w, const DevBuf &x, const float *bias,
                 const char *device, size_t version) {
    GemmPlan plan;
    std::vector<GemmAlgo> cands;
    if (gemm_plan_init(&plan, DType::BF16, sh.y, sh.in, sh.out, sh.max_rows, sh.bias, sh.ld_y) == CUBLAS_STATUS_SUCCESS)
        gemm_plan_candidates(ctx.lt, &plan, ctx.workspace_bytes, &cands);
    if (cands.empty()) {
        R.check(false, sh.name, "tune: no candidates");
        return "";
    }
    const int ld = sh.ld_y ? sh.ld_y : sh.out;
    const double flops = 2.0 * sh.max_rows * sh.in * sh.out;
    DevBuf y((size_t)sh.max_rows * ld * dtype_size(sh.y));
    CUDA_OK(cudaMemset(y.p, 0, (size_t)sh.max_rows * ld * dtype_size(sh.y)));
    auto ms_of = [&](size_t i) {
        gemm_plan_fix(&plan, cands[i]);
        return median_ms(
            [&] { return gemm(ctx, plan, w.p, x.p, y.p, sh.max_rows, sh.accumulate, bias) == CUBLAS_STATUS_SUCCESS; },
            3, 10, ctx.stream);
    };
    ms_of(0); // untimed: the list's first timing would run cold
    std::vector<std::pair<double, size_t>> by_time;
    for (size_t i = 0; i < cands.size(); ++i) {
        const double ms = ms_of(i);
        gemm_plan_fix(&plan, cands[i]);
        R.info("tune %s #%zu: %.3f ms, %.1f TFLOP/s (%s)", sh.name, i, ms, ms > 0 ? flops / (ms * 1e-3) / 1e12 : 0.0,
               gemm_describe(plan).c_str());
        if (ms > 0) by_time.push_back({ms, i});
    }
    std::sort(by_time.begin(), by_time.end());
    std::vector<size_t> finalists = {0};
    for (const auto &[ms, i] : by_time) {
        if ((int)finalists.size() > kTuneFinalists) break;
        if (i == 0) continue;
        gemm_plan_fix(&plan, cands[i]);
        const std::vector<int> bad = sweep(ctx, plan, sh, w, x, bias, 61);
        R.info("tune %s #%zu: %s", sh.name, i, bad.empty() ? "row invariant, a finalist" : "NOT row invariant");
        if (bad.empty()) finalists.push_back(i);
    }
    // Interleaved: the smaller of three medians each.
    std::vector<double> t(finalists.size(), 1e30);
    for (int r = 0; r < 3; ++r)
        for (size_t f = 0; f < finalists.size(); ++f) {
            const double ms = ms_of(finalists[f]);
            if (ms > 0) t[f] = std::min(t[f], ms);
        }
    size_t best = 0;
    for (size_t f = 1; f < finalists.size(); ++f)
        if (t[f] < t[best]) best = f;
    const double gain = t[0] / t[best];
    if (best == 0 || t[0] >= 1e30) {
        R.info("tune %s: the default is the fastest of %zu finalists (%.3f ms)", sh.name, finalists.size(), t[0]);
        return "";
    }
    R.info("tune %s: #%zu %.3f ms against the default's %.3f ms (%.2fx)%s", sh.name, finalists[best], t[best], t[0],
           gain, gain >= kTuneGain ? ": an entry" : ": within the margin, no entry");
    if (gain < kTuneGain) return "";
    const GemmConfig c = gemm_config(cands[finalists[best]].algo);
    char line[512];
    snprintf(line, sizeof line,
             "{\"%s\", %zu, DType::BF16, %s, %s, %d, %d, %d, %d, {%d, %d, %u, %u, %u, %u, %u, %u, %u}}, "
             "// %s: %.3f ms, default %.3f ms",
             device, version, dtype_name(sh.y), sh.bias ? "true" : "false", sh.in, sh.out, ld, sh.max_rows, c.id,
             c.splitk, c.tile, c.stages, c.reduction, c.swizzle, c.custom, (unsigned)c.inner, (unsigned)c.cluster,
             sh.name, t[best], t[0]);
    return line;
}

// Writes the table to path (through path.tmp, renamed when complete): the
// existing file's comments and other devices' (or cuBLASLt versions')
// entries, then this device's. False, saying why, on a line it cannot read.
bool write_table(const char *path, const char *device, size_t version, const std::vector<std::string> &entries) {
    std::vector<std::string> keep;
    {
        std::ifstream in(path);
        for (std::string l; std::getline(in, l);) {
            if (l.rfind("{\"", 0) != 0) {
                keep.push_back(l);
                continue;
            }
            const size_t q = l.find('"', 2);
            char *end = nullptr;
            const unsigned long long v = q == std::string::npos ? 0 : strtoull(l.c_str() + q + 2, &end, 10);
            if (q == std::string::npos || l.compare(q, 3, "\", ") != 0 || !end || *end != ',') {
                fprintf(stderr, "gemm_sweep: %s: cannot read the entry line \"%s\"\n", path, l.c_str());
                return false;
            }
            if (l.compare(2, q - 2, device) != 0 || v != version) keep.push_back(l);
        }
    }
    const std::string tmp = std::string(path) + ".tmp";
    std::ofstream out(tmp, std::ios::trunc);
    for (const std::string &l : keep) out << l << "\n";
    for (const std::string &l : entries) out << l << "\n";
    out.close();
    return !out.fail() && rename(tmp.c_str(), path) == 0;
}

} // namespace

int main(int argc, char **argv) {
    int stride = 1;
    bool heuristic = false;
    const char *tune_file = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--stride") && i + 1 < argc) {
            stride = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--heuristic")) {
            heuristic = true;
        } else if (!strcmp(argv[i], "--tune") && i + 1 < argc) {
            tune_file = argv[++i];
        } else {
            fprintf(stderr, "gemm_sweep: unknown argument %s (usage: gemm_sweep [--stride S] [--heuristic] [--tune FILE])\n", argv[i]);
            return 2;
        }
    }
    if (stride < 1) {
        fprintf(stderr, "gemm_sweep: --stride must be at least 1\n");
        return 2;
    }
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        printf("SKIP gemm_sweep: no CUDA device\n");
        return 0;
    }
    GemmContext ctx;
    if (cublasCreate(&ctx.blas) != CUBLAS_STATUS_SUCCESS || cublasLtCreate(&ctx.lt) != CUBLAS_STATUS_SUCCESS) {
        R.check(false, "gemm_sweep handles", "cublasCreate or cublasLtCreate failed");
        return R.finish("gemm_sweep");
    }
    ctx.workspace_bytes = 32u << 20; // step.cpp's kCublasWorkspace
    CUDA_OK(cudaMalloc(&ctx.workspace, ctx.workspace_bytes));
    CUDA_OK(cudaStreamCreate(&ctx.stream));
    cublasSetStream(ctx.blas, ctx.stream);
    cublasSetWorkspace(ctx.blas, ctx.workspace, ctx.workspace_bytes);

    // {name, in, out, max_rows, Y type, ld_y, bias epilogue, accumulate}
    const bool acc = true;
    const Shape shapes[] = {
        {"Llama-1B qkv", 2048, 3072, 8192},
        {"Llama-1B attention output", 2048, 2048, 8192, DType::F32, 0, false, acc},
        {"Llama-1B gate/up", 2048, 16384, 2048, DType::BF16}, // FFN chunks of 2048 rows (step.cpp)
        {"Llama-1B down", 8192, 2048, 2048, DType::F32, 0, false, acc},
        head("Llama-1B LM head", 2048, 128256),
        {"Llama-8B qkv", 4096, 6144, 8192},
        {"Llama-8B attention output", 4096, 4096, 8192, DType::F32, 0, false, acc},
        {"Llama-8B gate/up", 4096, 28672, 2048, DType::BF16},
        {"Llama-8B down", 14336, 4096, 2048, DType::F32, 0, false, acc},
        head("Llama-8B LM head", 4096, 128256),
        {"gpt2-large qkv", 1280, 3840, 8192},
        {"gpt2-large attention output", 1280, 1280, 8192, DType::F32, 0, true, acc},
        {"gpt2-large up", 1280, 5120, 2048, DType::BF16},
        {"gpt2-large down", 5120, 1280, 2048, DType::F32, 0, true, acc},
        head("gpt2-large LM head", 1280, 50257),
    };
    cudaDeviceProp prop{};
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    const size_t version = cublasLtGetVersion();
    std::vector<std::string> entries;
    uint64_t seed = 7;
    for (const Shape &sh : shapes) {
        char name[160];
        snprintf(name, sizeof name, "gemm sweep bf16 -> %s %s (%d x %d, 1..%d rows%s)", sh.y == DType::F32 ? "f32" : "bf16", sh.name, sh.in,
                 sh.out, sh.max_rows, stride > 1 ? ", sampled" : "");
        DevBuf w((size_t)sh.out * sh.in * 2), x((size_t)sh.max_rows * sh.in * 2), b((size_t)sh.out * 4);
        CUDA_OK(fill_hash(w.p, DType::BF16, (size_t)sh.out * sh.in, 1.7f / sqrtf((float)sh.in), seed++));
        CUDA_OK(fill_hash(x.p, DType::BF16, (size_t)sh.max_rows * sh.in, 2.f, seed++));
        CUDA_OK(fill_hash(b.p, DType::F32, (size_t)sh.out, 0.5f, seed++));
        CUDA_OK(cudaDeviceSynchronize());
        const float *bias = sh.bias ? (const float *)b.p : nullptr;

        if (tune_file) {
            const std::string e = tune(ctx, sh, w, x, bias, prop.name, version);
            if (!e.empty()) entries.push_back(e);
            continue;
        }
        GemmPlan plan;
        if (gemm_plan(ctx.lt, sh.name, DType::BF16, sh.y, sh.in, sh.out, sh.max_rows, ctx.workspace_bytes, &plan,
                      sh.bias, sh.ld_y) != LMSCORE_STATUS_OK) {
            R.check(false, name, "no plan: %s", lmscore_last_error());
            continue;
        }
        // The sweep runs once (it is the check); median_ms of one call is its time.
        std::vector<int> bad;
        const double ms = median_ms([&] { bad = sweep(ctx, plan, sh, w, x, bias, stride); return true; }, 0, 1, ctx.stream);
        const bool failed = !bad.empty() && bad[0] < 0;
        R.check(bad.empty(), name, "%s; row counts with a differing row: %s; %s; sweep %.1f s",
                failed ? "cuBLAS FAILED" : bad.empty() ? "every row bitwise equal to the max-row call" : "NOT invariant",
                failed ? "-" : list(bad).c_str(), gemm_describe(plan).c_str(), ms / 1e3);

        if (heuristic) {
            GemmPlan heur;
            gemm_plan_heuristic(&heur, DType::BF16, sh.y, sh.in, sh.out, sh.max_rows);
            const std::vector<int> hb = sweep(ctx, heur, sh, w, x, nullptr, 13); // no bias epilogue per call
            R.info("%s: cublasGemmEx per call (every 13th count): row counts with a differing row: %s", name,
                   !hb.empty() && hb[0] < 0 ? "cuBLAS FAILED" : list(hb).c_str());
        }
    }
    if (tune_file) {
        const bool ok = write_table(tune_file, prop.name, version, entries);
        R.check(ok, "tune: table written", "%s: %zu entries for %s, cuBLASLt %zu", tune_file, entries.size(),
                prop.name, version);
    }
    cublasDestroy(ctx.blas);
    cublasLtDestroy(ctx.lt);
    cudaFree(ctx.workspace);
    cudaStreamDestroy(ctx.stream);
    return R.finish("gemm_sweep");
}
