// gemm_test.cu — the linear layers of gemm.cpp (cuBLASLt with a fixed plan
// per weight shape, or cublasGemmEx choosing per call) against a float64
// reference, the fixed plans' batch invariance (each row of a call over
// max_rows rows bitwise equal to the same row in calls of 1..max_rows-1
// rows, on stories260K's and a Llama-3.2-1B's shapes; gemm_sweep.cu checks
// every row count), and the timing of a fixed plan.
#include <string.h>

#include "fill_hash.cuh"
#include "internal.h"
#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

namespace {

// cuBLAS handles, workspace and stream for the GEMM plans.
struct GemmEnv {
    GemmContext ctx;
    bool ok = false;
    GemmEnv() {
        if (cublasCreate(&ctx.blas) != CUBLAS_STATUS_SUCCESS || cublasLtCreate(&ctx.lt) != CUBLAS_STATUS_SUCCESS) return;
        ctx.workspace_bytes = 32u << 20;
        CUDA_OK(cudaMalloc(&ctx.workspace, ctx.workspace_bytes));
        ok = cublasSetWorkspace(ctx.blas, ctx.workspace, ctx.workspace_bytes) == CUBLAS_STATUS_SUCCESS;
    }
    ~GemmEnv() {
        if (ctx.blas) cublasDestroy(ctx.blas);
        if (ctx.lt) cublasLtDestroy(ctx.lt);
        if (ctx.workspace) cudaFree(ctx.workspace);
    }
};

void gemm_accuracy_check(Rng &rng) {
    GemmEnv env;
    if (!R.check(env.ok, "gemm handles", "%s", env.ok ? "ok" : "cublasCreate or cublasLtCreate failed")) return;
    const int N = 77, IN = 512, OUT = 300;
    for (bool fixed : {true, false})
        for (DType t : {DType::F32, DType::BF16})
            for (DType yt : {t, DType::F32}) {
                std::vector<float> w = stored(randn(rng, (size_t)OUT * IN), t), x = stored(randn(rng, (size_t)N * IN), t);
                Buf dw(w, t), dx(x, t), y((size_t)N * OUT, yt);
                char name[96];
                snprintf(name, sizeof name, "gemm %s -> %s (%s)", dname(t), dname(yt), fixed ? "fixed plan" : "cublasGemmEx");
                GemmPlan plan;
                if (fixed) {
                    const lmscore_status ps = gemm_plan(env.ctx.lt, "test", t, yt, IN, OUT, 1024, env.ctx.workspace_bytes, &plan);
                    if (!R.check(ps == LMSCORE_STATUS_OK, std::string(name) + " plan", "%s", gemm_describe(plan).c_str()))
                        continue;
                } else {
                    gemm_plan_heuristic(&plan, t, yt, IN, OUT, 1024);
                }
                cublasStatus_t st = gemm(env.ctx, plan, dw.p, dx.p, y.p, N);
                sync_check("gemm");
                std::vector<double> ref((size_t)N * OUT);
                for (int i = 0; i < N; ++i)
                    for (int o = 0; o < OUT; ++o) {
                        double acc = 0;
                        for (int k = 0; k < IN; ++k) acc += (double)x[(size_t)i * IN + k] * w[(size_t)o * IN + k];
                        ref[(size_t)i * OUT + o] = acc;
                    }
                // The chain is the IN-long dot product. fp32 out must be
                // true fp32 accumulation: TF32 (2^-11 per product) would give
                // ~3e-4, a hundred times this bound.
                const double tol = tolerance(yt, IN);
                if (st != CUBLAS_STATUS_SUCCESS)
                    R.check(false, name, "cublas status %d", (int)st);
                else
                    R.err(name, compare(y.download(), ref), tol);
            }
}

void fill(Buf &b, float a, uint64_t seed) { CUDA_OK(fill_hash(b.p, b.t, b.n, a, seed)); }

// Runs plan on rows [r0, r0 + n) of x (copied to a buffer of their own, as
// a step of n tokens holds them) and counts the rows whose bytes differ from
// the same rows of y_full. -1 when cuBLAS fails.
long rows_differing(const GemmEnv &env, const GemmPlan &plan, const Buf &w, const Buf &x, const std::vector<float> &y_full,
                    int r0, int n) {
    const int IN = plan.n_in, OUT = plan.n_out;
    Buf xs((size_t)n * IN, x.t), ys((size_t)n * OUT, plan.y_type);
    CUDA_OK(cudaMemcpy(xs.p, (const char *)x.p + (size_t)r0 * IN * dtype_size(x.t), (size_t)n * IN * dtype_size(x.t),
                       cudaMemcpyDeviceToDevice));
    if (gemm(env.ctx, plan, w.p, xs.p, ys.p, n) != CUBLAS_STATUS_SUCCESS) return -1;
    sync_check("gemm rows");
    // bf16 outputs widen to fp32 exactly: equal floats are equal bits.
    const std::vector<float> y = ys.download();
    const float *want = y_full.data() + (size_t)r0 * OUT;
    if (memcmp(y.data(), want, y.size() * 4) == 0) return 0;
    long bad = 0;
    for (int i = 0; i < n; ++i) bad += memcmp(&y[(size_t)i * OUT], want + (size_t)i * OUT, (size_t)OUT * 4) != 0;
    return bad;
}

// Batch invariance of the fixed plans: every row of a GEMM over max_rows
// rows must be bitwise what the same row gives in a call of 1, 2, 7, ...
// rows, on the shapes of stories260K and of a Llama-3.2-1B (the throughput
// probe's model, LM head chunk included). cublasGemmEx's per-call choice is
// measured on the same data for contrast (INFO only: whether it varies is
// cuBLAS's business, and is why the plans exist).
void gemm_invariance_check() {
    GemmEnv env;
    if (!R.check(env.ok, "gemm invariance handles", "%s", env.ok ? "ok" : "cublasCreate or cublasLtCreate failed")) return;
    struct Shape {
        const char *name;
        int in, out, max_rows;
        bool gate_up = false; // writes the model's type, not fp32 (kernels.h)
    };
    const Shape shapes[] = {
        {"stories260K qkv", 64, 128, 1024},           {"stories260K wo", 64, 64, 1024},
        {"stories260K gate/up", 64, 344, 1024, true}, {"stories260K down", 172, 64, 1024},
        {"stories260K head", 64, 512, 1024},          {"1B qkv", 2048, 3072, 8192},
        {"1B wo", 2048, 2048, 8192},                  {"1B gate/up", 2048, 16384, 2048, true},
        {"1B down", 8192, 2048, 2048},                {"1B head", 2048, 128256, 256},
    };
    const int counts[] = {1, 2, 7, 64, 300, 500, 4097};
    uint64_t seed = 1;
    for (DType t : {DType::BF16, DType::F32})
        for (const Shape &sh : shapes) {
            char name[128];
            snprintf(name, sizeof name, "gemm invariance %s %s (%d x %d, up to %d rows)", dname(t), sh.name, sh.in, sh.out,
                     sh.max_rows);
            const DType yt = sh.gate_up ? t : DType::F32;
            Buf w((size_t)sh.out * sh.in, t), x((size_t)sh.max_rows * sh.in, t), y((size_t)sh.max_rows * sh.out, yt);
            fill(w, 1.7f / sqrtf((float)sh.in), seed++);
            fill(x, 2.f, seed++);
            GemmPlan plan;
            if (gemm_plan(env.ctx.lt, sh.name, t, yt, sh.in, sh.out, sh.max_rows, env.ctx.workspace_bytes, &plan) !=
                LMSCORE_STATUS_OK) {
                R.check(false, name, "no plan: %s", lmscore_last_error());
                continue;
            }
            std::vector<GemmAlgo> cands;
            {
                GemmPlan probe;
                gemm_plan_init(&probe, t, yt, sh.in, sh.out, sh.max_rows);
                gemm_candidates(env.ctx.lt, &probe, 0, &cands);
            }
            auto full_run = [&](const GemmPlan &p, std::vector<float> *out) {
                if (gemm(env.ctx, p, w.p, x.p, y.p, sh.max_rows) != CUBLAS_STATUS_SUCCESS) return false;
                sync_check("gemm full");
                *out = y.download();
                return true;
            };
            std::vector<float> full;
            if (!full_run(plan, &full)) {
                R.check(false, name, "cublasLtMatmul failed on %d rows with %s", sh.max_rows, gemm_describe(plan).c_str());
                continue;
            }
            std::string detail;
            bool ok = true;
            for (int n : counts) {
                if (n >= sh.max_rows) continue;
                const int r0 = (int)((37ll * n + 11) % (sh.max_rows - n + 1));
                const long bad = rows_differing(env, plan, w, x, full, r0, n);
                ok = ok && bad == 0;
                detail += " " + std::to_string(n) + (bad == 0 ? ":same" : bad < 0 ? ":FAILED" : ":" + std::to_string(bad) + "-rows-differ");
            }
            {
                const int n = sh.max_rows - 1;
                const long bad = rows_differing(env, plan, w, x, full, 1, n);
                ok = ok && bad == 0;
                detail += " " + std::to_string(n) + (bad == 0 ? ":same" : bad < 0 ? ":FAILED" : ":" + std::to_string(bad) + "-rows-differ");
            }
            R.check(ok, name, "rows bitwise equal to the %d-row call at row counts%s; %s; %zu workspace-free candidates",
                    sh.max_rows, detail.c_str(), gemm_describe(plan).c_str(), cands.size());

            // Three other candidates, for the record (which would also do).
            std::string others;
            for (size_t c = 0, shown = 0; c < cands.size() && shown < 3; ++c) {
                if (gemm_config(cands[c].algo) == gemm_config(plan.algo)) continue;
                ++shown;
                GemmPlan alt;
                gemm_plan_init(&alt, t, yt, sh.in, sh.out, sh.max_rows);
                gemm_plan_fix(&alt, cands[c]);
                std::vector<float> alt_full;
                long bad = -1;
                if (full_run(alt, &alt_full)) {
                    const long b1 = rows_differing(env, alt, w, x, alt_full, 3, 1);
                    const long b2 = rows_differing(env, alt, w, x, alt_full, 5, std::min(300, sh.max_rows - 5));
                    bad = b1 < 0 || b2 < 0 ? -1 : b1 + b2;
                }
                others += " [" + gemm_describe(alt) + (bad == 0 ? ": invariant at 1 and 300 rows]" : bad < 0 ? ": FAILED]" : ": NOT invariant]");
            }
            if (!others.empty()) R.info("%s other candidates:%s", name, others.c_str());

            // cublasGemmEx's own choice per call on the same data.
            GemmPlan heur;
            gemm_plan_heuristic(&heur, t, yt, sh.in, sh.out, sh.max_rows);
            std::vector<float> hfull;
            if (full_run(heur, &hfull)) {
                int varied = 0, tried = 0;
                for (int n : counts) {
                    if (n >= sh.max_rows) continue;
                    ++tried;
                    varied += rows_differing(env, heur, w, x, hfull, (int)((37ll * n + 11) % (sh.max_rows - n + 1)), n) != 0;
                }
                R.info("%s: cublasGemmEx per call differs from its own %d-row result at %d of %d row counts", name,
                       sh.max_rows, varied, tried);
            }
        }
}

// Rows [r0, r0 + sub) of x accumulated onto the same rows of c in a call of
// their own (with bias where the plan takes one): true when the call
// succeeds and they come out bitwise equal to those rows of full, the
// result of one call over every row.
bool rows_alone_equal(GemmEnv &env, const GemmPlan &plan, const Buf &w, const Buf &x, const Buf &c,
                      const std::vector<float> &full, int r0, int sub, const float *bias) {
    const int IN = plan.n_in, OUT = plan.n_out;
    const size_t es = dtype_size(x.t);
    Buf xs((size_t)sub * IN, x.t), ys((size_t)sub * OUT, DType::F32);
    CUDA_OK(cudaMemcpy(xs.p, (const char *)x.p + (size_t)r0 * IN * es, (size_t)sub * IN * es,
                       cudaMemcpyDeviceToDevice));
    CUDA_OK(cudaMemcpy(ys.p, (const char *)c.p + (size_t)r0 * OUT * 4, (size_t)sub * OUT * 4, cudaMemcpyDeviceToDevice));
    const cublasStatus_t st = gemm(env.ctx, plan, w.p, xs.p, ys.p, sub, true, bias);
    sync_check("gemm accumulate rows");
    const std::vector<float> got = ys.download();
    return st == CUBLAS_STATUS_SUCCESS && memcmp(got.data(), full.data() + (size_t)r0 * OUT, got.size() * 4) == 0;
}

// The BIAS epilogue with accumulate, as the step adds GPT-2's wo and w_down
// with their biases into the residual: Y = C + X W^T + b within fp32's
// rounding of those two additions (cuBLASLt does not document their order),
// a call over a subset of the rows gives those rows the same bits, and a
// call that passes no bias to a bias plan, or one to a plain plan, is
// refused.
void gemm_bias_check(GemmEnv &env) {
    const int IN = 1280, OUT = 1280, MAX = 4096, N = 333, SUB = 5, R0 = 211;
    uint64_t seed = 301;
    for (DType t : {DType::BF16, DType::F32}) {
        char name[96];
        snprintf(name, sizeof name, "gemm bias epilogue %s -> f32 (%d x %d, %d rows)", dname(t), IN, OUT, N);
        Buf w((size_t)OUT * IN, t), x((size_t)N * IN, t), c((size_t)N * OUT, DType::F32), y((size_t)N * OUT, DType::F32),
            b((size_t)OUT, DType::F32);
        fill(w, 1.7f / sqrtf((float)IN), seed++);
        fill(x, 2.f, seed++);
        fill(c, 3.f, seed++);
        fill(b, 0.5f, seed++);
        GemmPlan plain, biased;
        if (gemm_plan(env.ctx.lt, "plain", t, DType::F32, IN, OUT, MAX, env.ctx.workspace_bytes, &plain) !=
                LMSCORE_STATUS_OK ||
            gemm_plan(env.ctx.lt, "bias", t, DType::F32, IN, OUT, MAX, env.ctx.workspace_bytes, &biased, true) !=
                LMSCORE_STATUS_OK) {
            R.check(false, name, "no plan: %s", lmscore_last_error());
            continue;
        }
        const std::vector<float> cv = c.download(), bv = b.download();
        if (gemm(env.ctx, plain, w.p, x.p, y.p, N) != CUBLAS_STATUS_SUCCESS) {
            R.check(false, name, "plain gemm failed");
            continue;
        }
        sync_check("gemm plain");
        const std::vector<float> sums = y.download();
        CUDA_OK(cudaMemcpy(y.p, c.p, cv.size() * 4, cudaMemcpyDeviceToDevice));
        const cublasStatus_t st = gemm(env.ctx, biased, w.p, x.p, y.p, N, true, b.as<float>());
        sync_check("gemm bias");
        const std::vector<float> got = y.download();
        // The sums themselves may differ by the algorithm (the bias plan may
        // fix another): bf16 inputs, fp32 sums over IN terms of |w x| ~ 1.
        double worst = 0;
        for (size_t i = 0; i < got.size(); ++i) {
            const double want = (double)cv[i] + sums[i] + bv[i % OUT];
            worst = std::max(worst, std::fabs(got[i] - want) / (std::fabs(want) + 1.0));
        }
        const double tol = 8 * IN * 0x1p-24 + 4 * 0x1p-24; // reordered fp32 sums, two roundings
        const bool same_rows = rows_alone_equal(env, biased, w, x, c, got, R0, SUB, b.as<float>());
        R.check(st == CUBLAS_STATUS_SUCCESS && worst <= tol && same_rows, name,
                "max relative |Y - (C + sum + b)| %.3g (bound %.3g); rows %d..%d alone %s; %s", worst, tol, R0,
                R0 + SUB - 1, same_rows ? "bitwise equal" : "DIFFER or the call failed", gemm_describe(biased).c_str());
        R.check(gemm(env.ctx, biased, w.p, x.p, y.p, N, true) == CUBLAS_STATUS_INVALID_VALUE &&
                    gemm(env.ctx, plain, w.p, x.p, y.p, N, true, b.as<float>()) == CUBLAS_STATUS_INVALID_VALUE,
                std::string(name) + ": a bias plan without a bias, or a bias to a plain plan, refused", "INVALID_VALUE");
    }
    GemmPlan bf;
    R.check(gemm_plan_init(&bf, DType::BF16, DType::BF16, 64, 64, 16, true) == CUBLAS_STATUS_INVALID_VALUE,
            "gemm bias epilogue into bf16 refused", "INVALID_VALUE");
}

// gemm's accumulate mode, which the step uses to add wo and w_down into the
// residual: Y must become bitwise fl(C + X W^T) of the plain call's sums,
// element by element (what the residual-add kernel computed), and a call
// over a subset of the rows must give those rows the same bits.
void gemm_accumulate_check() {
    GemmEnv env;
    if (!R.check(env.ok, "gemm accumulate handles", "%s", env.ok ? "ok" : "cublasCreate or cublasLtCreate failed")) return;
    const int IN = 2048, OUT = 1000, MAX = 4096, N = 301, SUB = 7, R0 = 100;
    uint64_t seed = 101;
    for (DType t : {DType::BF16, DType::F32}) {
        char name[96];
        snprintf(name, sizeof name, "gemm accumulate %s -> f32 (%d x %d, %d rows)", dname(t), IN, OUT, N);
        Buf w((size_t)OUT * IN, t), x((size_t)N * IN, t), c((size_t)N * OUT, DType::F32), y((size_t)N * OUT, DType::F32);
        fill(w, 1.7f / sqrtf((float)IN), seed++);
        fill(x, 2.f, seed++);
        fill(c, 3.f, seed++);
        GemmPlan plan;
        if (gemm_plan(env.ctx.lt, "accumulate", t, DType::F32, IN, OUT, MAX, env.ctx.workspace_bytes, &plan) !=
            LMSCORE_STATUS_OK) {
            R.check(false, name, "no plan: %s", lmscore_last_error());
            continue;
        }
        const std::vector<float> cv = c.download();
        if (gemm(env.ctx, plan, w.p, x.p, y.p, N) != CUBLAS_STATUS_SUCCESS) {
            R.check(false, name, "plain gemm failed");
            continue;
        }
        sync_check("gemm plain");
        const std::vector<float> sums = y.download();
        CUDA_OK(cudaMemcpy(y.p, c.p, cv.size() * 4, cudaMemcpyDeviceToDevice));
        const cublasStatus_t st = gemm(env.ctx, plan, w.p, x.p, y.p, N, true);
        sync_check("gemm accumulate");
        const std::vector<float> got = y.download();
        long bad = 0;
        for (size_t i = 0; i < got.size(); ++i) {
            const float want = cv[i] + sums[i];
            bad += memcmp(&got[i], &want, 4) != 0;
        }
        const bool same_rows = rows_alone_equal(env, plan, w, x, c, got, R0, SUB, nullptr);
        R.check(st == CUBLAS_STATUS_SUCCESS && bad == 0 && same_rows, name,
                "%ld of %zu elements differ from fl(C + sum); rows %d..%d alone %s; %s", bad, got.size(), R0,
                R0 + SUB - 1, same_rows ? "bitwise equal" : "DIFFER or the call failed", gemm_describe(plan).c_str());
    }
    gemm_bias_check(env);
    // Accumulating into a bf16 Y would round twice: refused.
    GemmPlan bplan;
    gemm_plan_heuristic(&bplan, DType::BF16, DType::BF16, 64, 64, 16);
    R.check(gemm(env.ctx, bplan, nullptr, nullptr, nullptr, 4, true) == CUBLAS_STATUS_INVALID_VALUE,
            "gemm accumulate into bf16 refused", "INVALID_VALUE");
}

// A plan with Y's rows padded (ld_y > n_out), as the LM head's logits are
// for an odd vocabulary: the same sums as the unpadded plan within fp32
// reordering, the padding never written, and a subset of the rows alone
// bitwise equal to the full call's.
void gemm_stride_check() {
    GemmEnv env;
    if (!R.check(env.ok, "gemm stride handles", "%s", env.ok ? "ok" : "cublasCreate or cublasLtCreate failed")) return;
    const int IN = 640, OUT = 1001, LD = 1024, MAX = 700, N = 77, SUB = 9, R0 = 31;
    for (DType t : {DType::BF16, DType::F32}) {
        char name[112];
        snprintf(name, sizeof name, "gemm %s -> f32 rows %d apart (%d x %d, %d rows)", dname(t), LD, IN, OUT, N);
        Buf w((size_t)OUT * IN, t), x((size_t)N * IN, t), y((size_t)N * OUT, DType::F32), yp((size_t)N * LD, DType::F32),
            ys((size_t)SUB * LD, DType::F32);
        fill(w, 1.7f / sqrtf((float)IN), 501);
        fill(x, 2.f, 502);
        GemmPlan plain, padded;
        if (gemm_plan(env.ctx.lt, "plain", t, DType::F32, IN, OUT, MAX, env.ctx.workspace_bytes, &plain) !=
                LMSCORE_STATUS_OK ||
            gemm_plan(env.ctx.lt, "padded", t, DType::F32, IN, OUT, MAX, env.ctx.workspace_bytes, &padded, false, LD) !=
                LMSCORE_STATUS_OK) {
            R.check(false, name, "no plan: %s", lmscore_last_error());
            continue;
        }
        CUDA_OK(cudaMemset(yp.p, 0xff, yp.bytes())); // NaN: the padding must stay so
        CUDA_OK(cudaMemset(ys.p, 0xff, ys.bytes()));
        const size_t es = t == DType::F32 ? 4 : 2;
        const bool ran = gemm(env.ctx, plain, w.p, x.p, y.p, N) == CUBLAS_STATUS_SUCCESS &&
                         gemm(env.ctx, padded, w.p, x.p, yp.p, N) == CUBLAS_STATUS_SUCCESS &&
                         gemm(env.ctx, padded, w.p, (const char *)x.p + (size_t)R0 * IN * es, ys.p, SUB) ==
                             CUBLAS_STATUS_SUCCESS;
        sync_check("gemm stride");
        const std::vector<float> a = y.download(), b = yp.download(), sub = ys.download();
        double worst = 0;
        bool pad_ok = true, rows_ok = true;
        for (int r = 0; r < N; ++r) {
            for (int c = 0; c < OUT; ++c) {
                const double want = a[(size_t)r * OUT + c];
                worst = std::max(worst, std::fabs(b[(size_t)r * LD + c] - want) / (std::fabs(want) + 1.0));
            }
            for (int c = OUT; c < LD; ++c) pad_ok = pad_ok && std::isnan(b[(size_t)r * LD + c]);
        }
        for (int r = 0; r < SUB; ++r)
            for (int c = 0; c < LD; ++c) {
                const float u = sub[(size_t)r * LD + c], v = b[(size_t)(R0 + r) * LD + c];
                rows_ok = rows_ok && (c >= OUT ? std::isnan(u) : memcmp(&u, &v, 4) == 0);
            }
        const double tol = 8 * IN * 0x1p-24; // the two plans may sum in different orders
        R.check(ran && worst <= tol && pad_ok && rows_ok, name,
                "max relative difference to the unpadded plan %.3g (bound %.3g); padding %s; rows %d..%d alone %s; %s",
                worst, tol, pad_ok ? "untouched" : "WRITTEN", R0, R0 + SUB - 1, rows_ok ? "bitwise equal" : "DIFFER",
                gemm_describe(padded).c_str());
    }
    GemmPlan bad;
    R.check(gemm_plan_init(&bad, DType::BF16, DType::F32, 64, 64, 16, false, 63) == CUBLAS_STATUS_INVALID_VALUE,
            "gemm with rows closer than n_out refused", "INVALID_VALUE");
}

} // namespace

// Every entry of the measured-choice table for this device and cuBLASLt
// version (gemm_choices.inc) is among its shape's candidates, so gemm_plan
// takes it: an entry out of date for this library build would otherwise
// leave the default in place unnoticed.
void gemm_choices_check() {
    GemmEnv env;
    if (!env.ok) return;
    int applied = 0;
    for (const GemmChoice &c : gemm_choices()) {
        GemmPlan probe;
        if (gemm_plan_init(&probe, c.dtype, c.y_type, c.n_in, c.n_out, c.rows, c.bias, c.ld_y) != CUBLAS_STATUS_SUCCESS ||
            gemm_choice(probe) != &c)
            continue; // another device or cuBLASLt version
        ++applied;
        char name[160];
        snprintf(name, sizeof name, "gemm measured choice %d x %d%s (ld %d, %d rows)", c.n_in, c.n_out,
                 c.bias ? " with bias" : "", c.ld_y, c.rows);
        GemmPlan plan;
        const bool planned = gemm_plan(env.ctx.lt, name, c.dtype, c.y_type, c.n_in, c.n_out, c.rows,
                                       env.ctx.workspace_bytes, &plan, c.bias, c.ld_y) == LMSCORE_STATUS_OK;
        R.check(planned && plan.choice == GemmPlan::Choice::Measured, name, "%s",
                planned ? gemm_describe(plan).c_str() : lmscore_last_error());
    }
    if (applied == 0) R.info("gemm measured choices: none for this device and cuBLASLt version");
}

void gemm_check(Rng &rng) {
    gemm_accuracy_check(rng);
    gemm_invariance_check();
    gemm_accumulate_check();
    gemm_stride_check();
    gemm_choices_check();
}

// The fixed plan of a Llama-3.2-1B's gate/up projection on a step of 8192
// rows, bf16 in, fp32 out; then gpt2-large's LM head.
void gemm_perf(Rng &) {
    GemmEnv env;
    if (!env.ok) return;
    const int IN = 2048, OUT = 16384, N = 8192;
    Buf w((size_t)OUT * IN, DType::BF16), x((size_t)N * IN, DType::BF16), y((size_t)N * OUT, DType::F32);
    fill(w, 1.7f / sqrtf((float)IN), 1);
    fill(x, 2.f, 2);
    GemmPlan plan;
    if (gemm_plan(env.ctx.lt, "perf", DType::BF16, DType::F32, IN, OUT, N, env.ctx.workspace_bytes, &plan) != LMSCORE_STATUS_OK) {
        R.info("perf gemm: no plan: %s", lmscore_last_error());
        return;
    }
    const double ms = median_ms([&] { return gemm(env.ctx, plan, w.p, x.p, y.p, N) == CUBLAS_STATUS_SUCCESS; }, 3, 10);
    R.info("perf gemm bf16 -> f32 fixed plan %d x %d, %d rows: median %.3f ms, %.1f TFLOP/s (%s)", IN, OUT, N, ms,
           2.0 * N * IN * OUT / (ms * 1e-3) / 1e12, gemm_describe(plan).c_str());
    // gpt2-large's LM head chunk (640 rows of 1280 -> 50257 logits, rows
    // 50304 apart), with the weight as stored and padded to 50304 rows
    // (model_load.cpp, pad_output).
    for (int gout : {50257, 50304}) {
        const int GIN = 1280, GN = 640, LD = 50304;
        Buf gw((size_t)gout * GIN, DType::BF16), gx((size_t)GN * GIN, DType::BF16), gy((size_t)GN * LD, DType::F32);
        fill(gw, 1.7f / sqrtf((float)GIN), 3);
        fill(gx, 2.f, 4);
        GemmPlan gp;
        if (gemm_plan(env.ctx.lt, "perf head", DType::BF16, DType::F32, GIN, gout, GN, env.ctx.workspace_bytes, &gp,
                      false, LD) != LMSCORE_STATUS_OK) {
            R.info("perf gemm head: no plan: %s", lmscore_last_error());
            continue;
        }
        const double gms =
            median_ms([&] { return gemm(env.ctx, gp, gw.p, gx.p, gy.p, GN) == CUBLAS_STATUS_SUCCESS; }, 3, 10);
        R.info("perf gemm bf16 -> f32 fixed plan %d x %d (rows %d apart), %d rows: median %.3f ms, %.1f TFLOP/s (%s)",
               GIN, gout, LD, GN, gms, 2.0 * GN * GIN * gout / (gms * 1e-3) / 1e12, gemm_describe(gp).c_str());
    }
}

} // namespace lmscore_test
