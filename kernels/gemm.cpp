// gemm.cpp — the linear layers through cuBLASLt, one algorithm per weight
// shape, chosen once at lmscore_step_init and used for every row count.
//
// Why fixed: cuBLAS picks its kernel (tile shape, split-K) per call from the
// problem's size, and the order in which each output is summed over K comes
// with the kernel. A token's K/V and hidden state then depended on how many
// tokens shared its step (a bf16 ulp apart between a 7-token and a 300-token
// step), so a cached prefix scored differently from a recomputed one. With
// one algorithm, no split-K (SPLITK_NUM 1, reduction scheme NONE) and, where
// cuBLASLt offers one, no workspace (which leaves no room for partial tiles
// reduced across thread blocks either), each output element is summed over K
// by one thread block in an order that the algorithm's configuration alone
// fixes: a row of Y no longer depends on the other rows of the call.
//
// Seen on an H100 with cuBLASLt 13.1 (kernels/tests/results/
// h100-gemm-invariance.log): fp32 and stories260K's bf16 shapes
// get workspace-free algorithms; the Llama-1B bf16 shapes have none, and
// get Hopper kernels that ask for 4 bytes of workspace (a counter, not
// partial tiles). kernel_tests checks every plan bitwise at 1..max_rows-1
// rows against max_rows; the throughput probe found the fixed plans as fast
// as cuBLAS's per-call choice on the 1B-shaped step. Which candidate a
// plan takes: the measured choice where there is one (gemm_choices.cpp).
#include <stdint.h>
#include <string.h>

#include <algorithm>

#include "internal.h"

namespace lmscore_cuda {
namespace {

cudaDataType_t cuda_type(DType t) { return t == DType::F32 ? CUDA_R_32F : CUDA_R_16BF; }

// Row counts at which a candidate must be accepted besides max_rows. A step
// may hold any count from 1 to max_rows; cuBLASLt checks an algorithm per
// problem size, so a sample of small, odd and power-of-two-adjacent counts
// stands in for the whole range.
constexpr int kProbeRows[] = {1,   2,   3,   4,    5,    7,    8,    9,    15,   16,   17,   31,   32,
                              33,  63,  64,  65,   127,  128,  129,  255,  256,  257,  500,  511,  512,
                              513, 1000, 1023, 1024, 1025, 2047, 2048, 4095, 4096, 4097, 8191, 8192, 16384};

// How many algorithms to ask the heuristic for at each row count.
constexpr int kHeuristicCount = 32;

// Layouts of X (n_rows, n_in) and Y (n_rows, n_out), row-major, as cuBLASLt's
// column-major (n_in, n_rows) and (n_out, n_rows).
cublasStatus_t row_layouts(const GemmPlan &p, int n_rows, cublasLtMatrixLayoutOpaque_t *x,
                           cublasLtMatrixLayoutOpaque_t *y) {
    cublasStatus_t st = cublasLtMatrixLayoutInit(x, cuda_type(p.dtype), (uint64_t)p.n_in, (uint64_t)n_rows, p.n_in);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutInit(y, cuda_type(p.y_type), (uint64_t)p.n_out, (uint64_t)n_rows, p.ld_y);
    return st;
}

template <typename T> bool config(const cublasLtMatmulAlgo_t &a, cublasLtMatmulAlgoConfigAttributes_t attr, T *v) {
    size_t written = 0;
    *v = T{};
    return cublasLtMatmulAlgoConfigGetAttribute(&a, attr, v, sizeof *v, &written) == CUBLAS_STATUS_SUCCESS;
}

// True when algo sums over K in one pass (no split-K) and cuBLASLt accepts
// it, within max_workspace bytes, at every probed row count up to max_rows.
bool accepted_for_all_rows(cublasLtHandle_t lt, GemmPlan &p, const cublasLtMatmulAlgo_t &algo, size_t max_workspace,
                           size_t *workspace) {
    int32_t splitk = 1;
    uint32_t reduction = 0;
    if (!config(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk) || splitk > 1) return false;
    if (!config(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &reduction) || reduction != CUBLASLT_REDUCTION_SCHEME_NONE)
        return false;
    *workspace = 0;
    auto accepts = [&](int rows) {
        cublasLtMatrixLayoutOpaque_t x, y;
        if (row_layouts(p, rows, &x, &y) != CUBLAS_STATUS_SUCCESS) return false;
        cublasLtMatmulHeuristicResult_t r{};
        if (cublasLtMatmulAlgoCheck(lt, &p.op, &p.w_layout, &x, &y, &y, &algo, &r) != CUBLAS_STATUS_SUCCESS)
            return false;
        if (r.workspaceSize > max_workspace) return false;
        if (r.workspaceSize > *workspace) *workspace = r.workspaceSize;
        return true;
    };
    for (int rows : kProbeRows)
        if (rows < p.max_rows && !accepts(rows)) return false;
    return accepts(p.max_rows);
}

// Appends the heuristic's algorithms for `rows` rows, best first, that are
// not already in out.
void heuristic_algos(cublasLtHandle_t lt, GemmPlan &p, int rows, size_t max_workspace, bool mask_reduction,
                     std::vector<cublasLtMatmulAlgo_t> *out) {
    cublasLtMatmulPreferenceOpaque_t pref;
    if (cublasLtMatmulPreferenceInit(&pref) != CUBLAS_STATUS_SUCCESS) return;
    const uint64_t ws = max_workspace;
    cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    if (mask_reduction) {
        // Only configurations that reduce over K in one sequence.
        const uint32_t mask = CUBLASLT_REDUCTION_SCHEME_NONE;
        cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask);
    }
    if (p.dtype == DType::F32) {
        // fp32 mode is the check mode: plain fp32 FMA only, never TF32 or
        // the bf16x9 emulation, whatever cuBLAS's defaults become.
        const uint64_t impl = ~(uint64_t)CUBLASLT_NUMERICAL_IMPL_FLAGS_TENSOR_OP_MASK;
        cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_IMPL_MASK, &impl, sizeof impl);
    }
    cublasLtMatrixLayoutOpaque_t x, y;
    if (row_layouts(p, rows, &x, &y) != CUBLAS_STATUS_SUCCESS) return;
    cublasLtMatmulHeuristicResult_t res[kHeuristicCount];
    int n = 0;
    if (cublasLtMatmulAlgoGetHeuristic(lt, &p.op, &p.w_layout, &x, &y, &y, &pref, kHeuristicCount, res, &n) !=
        CUBLAS_STATUS_SUCCESS)
        return;
    for (int i = 0; i < n; ++i) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
        bool seen = false;
        for (const cublasLtMatmulAlgo_t &a : *out) seen = seen || memcmp(&a, &res[i].algo, sizeof a) == 0;
        if (!seen) out->push_back(res[i].algo);
    }
}

} // namespace

cublasStatus_t gemm_plan_init(GemmPlan *p, DType dtype, DType y_type, int n_in, int n_out, int max_rows, bool bias,
                              int ld_y) {
    if (bias && y_type != DType::F32) return CUBLAS_STATUS_INVALID_VALUE; // a bias of Y's type would be rounded
    if (ld_y != 0 && ld_y < n_out) return CUBLAS_STATUS_INVALID_VALUE;
    p->ld_y = ld_y > 0 ? ld_y : n_out;
    p->dtype = dtype;
    p->bias = bias;
    p->y_type = y_type;
    p->n_in = n_in;
    p->n_out = n_out;
    p->max_rows = max_rows;
    p->fixed = false;
    p->workspace_bytes = 0;
    memset(&p->algo, 0, sizeof p->algo);
    // CUBLAS_COMPUTE_32F: fp32 accumulation; for fp32 inputs no TF32 unless
    // asked for (and the candidates' implementation mask excludes it too).
    cublasStatus_t st = cublasLtMatmulDescInit(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    // Y^T (n_out, n_rows) = W X^T: W, row-major (n_out, n_in), is read
    // column-major as (n_in, n_out), hence OP_T.
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    st = cublasLtMatmulDescSetAttribute(&p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(&p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutInit(&p->w_layout, cuda_type(dtype), (uint64_t)n_in, (uint64_t)n_out, n_in);
    if (st == CUBLAS_STATUS_SUCCESS && bias) {
        // The heuristic and the checks read the bias pointer's alignment only;
        // until a call names the real one, a stand-in with the 256-byte
        // alignment that cudaMalloc gives every bias (model_load.cpp).
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        const int32_t bias_type = CUDA_R_32F;
        const void *stand_in = reinterpret_cast<const void *>(uintptr_t{256});
        st = cublasLtMatmulDescSetAttribute(&p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulDescSetAttribute(&p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulDescSetAttribute(&p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &stand_in, sizeof stand_in);
    }
    return st;
}

cublasStatus_t gemm_candidates(cublasLtHandle_t lt, GemmPlan *p, size_t max_workspace, std::vector<GemmAlgo> *out) {
    out->clear();
    std::vector<cublasLtMatmulAlgo_t> algos;
    // Best for the largest step first (where the time goes), then what suits
    // a single row, then a few sizes between.
    for (int rows : {p->max_rows, 1, std::min(p->max_rows, 64), std::min(p->max_rows, 512)}) {
        heuristic_algos(lt, *p, rows, max_workspace, true, &algos);
        if (algos.empty()) heuristic_algos(lt, *p, rows, max_workspace, false, &algos);
    }
    for (const cublasLtMatmulAlgo_t &a : algos) {
        size_t ws = 0;
        if (accepted_for_all_rows(lt, *p, a, max_workspace, &ws)) out->push_back({a, ws});
    }
    return CUBLAS_STATUS_SUCCESS;
}

void gemm_plan_candidates(cublasLtHandle_t lt, GemmPlan *p, size_t max_workspace, std::vector<GemmAlgo> *out) {
    // No workspace first: nothing can then be reduced across thread blocks.
    // A workspace is allowed only if cuBLASLt has nothing without one; split-K
    // stays excluded either way.
    gemm_candidates(lt, p, 0, out);
    if (out->empty() && max_workspace > 0) gemm_candidates(lt, p, max_workspace, out);
}

void gemm_plan_fix(GemmPlan *p, const GemmAlgo &a) {
    p->algo = a.algo;
    p->workspace_bytes = a.workspace_bytes;
    p->fixed = true;
    p->choice = GemmPlan::Choice::Default;
}

lmscore_status gemm_plan(cublasLtHandle_t lt, const char *what, DType dtype, DType y_type, int n_in, int n_out,
                         int max_rows, size_t max_workspace, GemmPlan *p, bool bias, int ld_y, bool measured) {
    cublasStatus_t st = gemm_plan_init(p, dtype, y_type, n_in, n_out, max_rows, bias, ld_y);
    if (st != CUBLAS_STATUS_SUCCESS) return cublas_fail(st, "describing a GEMM");
    std::vector<GemmAlgo> c;
    gemm_plan_candidates(lt, p, max_workspace, &c);
    if (c.empty())
        return fail(LMSCORE_STATUS_UNSUPPORTED,
                    "step: cuBLASLt offers no algorithm without split-K for every row count of the %s GEMM "
                    "(%d inputs, %d outputs, %s%s, 1..%d rows), so its results could not be made independent of the "
                    "step's size",
                    what, n_in, n_out, dtype == DType::F32 ? "fp32" : "bf16", bias ? ", bias epilogue" : "",
                    max_rows);
    // The measured choice where there is one: cuBLASLt's heuristic order is
    // not its speed order (gemm_choices.cpp). It is one of the same
    // candidates, so it meets the same conditions as the default.
    const GemmAlgo *pick = &c[0];
    GemmPlan::Choice how = GemmPlan::Choice::Default;
    if (const GemmChoice *want = measured ? gemm_choice(*p) : nullptr) {
        how = GemmPlan::Choice::NotACandidate;
        for (const GemmAlgo &a : c)
            if (gemm_config(a.algo) == want->config) {
                pick = &a;
                how = GemmPlan::Choice::Measured;
                break;
            }
    }
    gemm_plan_fix(p, *pick);
    p->choice = how;
    return LMSCORE_STATUS_OK;
}

void gemm_plan_heuristic(GemmPlan *p, DType dtype, DType y_type, int n_in, int n_out, int max_rows, int ld_y) {
    gemm_plan_init(p, dtype, y_type, n_in, n_out, max_rows, false, ld_y);
    p->fixed = false;
}

GemmConfig gemm_config(const cublasLtMatmulAlgo_t &algo) {
    GemmConfig c;
    config(algo, CUBLASLT_ALGO_CONFIG_ID, &c.id);
    config(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &c.tile);
    config(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &c.splitk);
    config(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &c.reduction);
    config(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &c.swizzle);
    config(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &c.custom);
    config(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &c.stages);
    config(algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &c.inner);
    config(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &c.cluster);
    return c;
}

std::string gemm_describe(const GemmPlan &p) {
    if (!p.fixed) return "cublasGemmEx, algorithm chosen per call";
    const GemmConfig c = gemm_config(p.algo);
    char buf[256];
    snprintf(buf, sizeof buf,
             "cuBLASLt algo %d tile %u stages %u split-k %d reduction %u swizzle %u custom %u inner %u cluster %u, "
             "workspace %zu B%s",
             c.id, c.tile, c.stages, c.splitk, c.reduction, c.swizzle, c.custom, (unsigned)c.inner,
             (unsigned)c.cluster, p.workspace_bytes,
             p.choice == GemmPlan::Choice::Measured        ? ", the measured choice"
             : p.choice == GemmPlan::Choice::NotACandidate ? ", the default: the measured choice is not a candidate"
                                                           : "");
    return buf;
}

cublasStatus_t gemm(const GemmContext &ctx, const GemmPlan &p, const void *W, const void *X, void *Y, int n_rows,
                     bool accumulate, const float *bias) {
    if (n_rows == 0) return CUBLAS_STATUS_SUCCESS;
    if (n_rows < 0 || n_rows > p.max_rows) return CUBLAS_STATUS_INVALID_VALUE; // the plan was not made for it
    // Accumulating (beta 1, C = D = Y) adds each fp32 sum to Y's element in
    // the epilogue: fl(Y + sum), the same single rounding the residual-add
    // kernel it replaces performed, per element, so a row still depends on
    // nothing but itself. It saves that kernel's pass over Y and the sum.
    if (accumulate && p.y_type != DType::F32) return CUBLAS_STATUS_INVALID_VALUE;
    if (p.bias != (bias != nullptr)) return CUBLAS_STATUS_INVALID_VALUE; // the plan's algorithm was chosen for it
    const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
    if (!p.fixed) {
        // cuBLAS's own choice per call (LMSCORE_CUDA_GEMM=heuristic): what
        // the core did before, kept to measure what fixing costs.
        return cublasGemmEx(ctx.blas, CUBLAS_OP_T, CUBLAS_OP_N, p.n_out, n_rows, p.n_in, &alpha, W, cuda_type(p.dtype),
                            p.n_in, X, cuda_type(p.dtype), p.n_in, &beta, Y, cuda_type(p.y_type), p.ld_y,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    if (p.workspace_bytes > ctx.workspace_bytes) return CUBLAS_STATUS_INVALID_VALUE;
    cublasLtMatrixLayoutOpaque_t x, y;
    cublasStatus_t st = row_layouts(p, n_rows, &x, &y);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    // The plan's own descriptor is only read here, but for the bias pointer
    // of this call (a step's plans are used by one thread at a time, and
    // cuBLASLt reads the descriptor when the call is enqueued); cuBLASLt
    // takes it by non-const pointer.
    auto *op = const_cast<cublasLtMatmulDescOpaque_t *>(&p.op);
    if (bias) {
        st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
    }
    return cublasLtMatmul(ctx.lt, op, &alpha, W,
                          const_cast<cublasLtMatrixLayoutOpaque_t *>(&p.w_layout), X, &x, &beta, Y, &y, Y, &y,
                          &p.algo, p.workspace_bytes ? ctx.workspace : nullptr, p.workspace_bytes, ctx.stream);
}

} // namespace lmscore_cuda
