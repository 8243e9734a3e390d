// norm_test.cu — norm.cu (RMSNorm and LayerNorm, optionally over gathered
// rows; the post-norm fused with the residual add; the plain store; per-head
// and whole-projection RMSNorm in place) against a float64 reference, and
// its timing.
#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

// out (n_rows, n) = norm(x[rows[i]]) * w (+ b); x is (rows_in, n), rows null: identity.
static std::vector<double> norm_ref(NormKind kind, const std::vector<float> &x, const int32_t *rows, int n_rows, int n,
                                    const std::vector<float> &w, const std::vector<float> *b, float eps) {
    std::vector<double> ref((size_t)n_rows * n);
    for (int i = 0; i < n_rows; ++i) {
        const float *xr = &x[(size_t)(rows ? rows[i] : i) * n];
        double mean = 0, var = 0;
        if (kind == NormKind::Layer) {
            for (int e = 0; e < n; ++e) mean += xr[e];
            mean /= n;
        }
        for (int e = 0; e < n; ++e) var += (xr[e] - mean) * (xr[e] - mean);
        const double inv = 1.0 / sqrt(var / n + eps);
        for (int e = 0; e < n; ++e) ref[(size_t)i * n + e] = (xr[e] - mean) * inv * w[e] + (b ? (*b)[e] : 0.0);
    }
    return ref;
}

// head_rms_norm on rows laid out as the qkv GEMM writes them: q heads, k
// heads, v heads. Only the normed heads may change; v stays bit for bit.
static void full_norm_check(Rng &rng);

static void head_norm_check(Rng &rng) {
    full_norm_check(rng);
    for (int head_dim : {32, 64, 72, 128, 256}) {
        const int n_tokens = 37, n_head = 4, n_head_kv = 2;
        const int q_dim = n_head * head_dim, kv_dim = n_head_kv * head_dim, stride = q_dim + 2 * kv_dim;
        std::vector<float> x = randn(rng, (size_t)n_tokens * stride, 3.f);
        const std::vector<float> wq = randn(rng, head_dim, 0.5f), wk = randn(rng, head_dim, 0.5f);
        const float eps = 1e-6f;
        Buf dx(x, DType::F32), dwq(wq, DType::F32), dwk(wk, DType::F32);
        CUDA_OK(head_rms_norm(dx.as<float>(), n_tokens, stride, 0, n_head, head_dim, dwq.as<float>(), eps, 0));
        CUDA_OK(head_rms_norm(dx.as<float>(), n_tokens, stride, q_dim, n_head_kv, head_dim, dwk.as<float>(), eps, 0));
        sync_check("head_rms_norm");
        std::vector<double> ref(x.begin(), x.end());
        for (int t = 0; t < n_tokens; ++t)
            for (int h = 0; h < n_head + n_head_kv; ++h) {
                double *v = &ref[(size_t)t * stride + (size_t)h * head_dim];
                const std::vector<float> &w = h < n_head ? wq : wk;
                double ss = 0;
                for (int e = 0; e < head_dim; ++e) ss += v[e] * v[e];
                const double inv = 1.0 / sqrt(ss / head_dim + eps);
                for (int e = 0; e < head_dim; ++e) v[e] = v[e] * inv * w[e];
            }
        const std::vector<float> got = dx.download();
        bool v_same = true;
        for (int t = 0; t < n_tokens; ++t)
            for (int j = q_dim + kv_dim; j < stride; ++j)
                v_same = v_same && got[(size_t)t * stride + j] == x[(size_t)t * stride + j];
        char name[96];
        snprintf(name, sizeof name, "head_rms_norm head_dim=%d", head_dim);
        R.check(v_same, name, "%s", v_same ? "v columns untouched" : "v columns changed");
        R.err(name, compare(got, ref), tolerance(DType::F32, head_dim));
    }
}

// x += norm(y + y_bias) * w (Gemma 2/3 and OLMo 2's post-norms), and the
// plain store where a model has no pre-norm (OLMo 2).
static void post_norm_check(Rng &rng) {
    for (NormKind kind : {NormKind::RMS, NormKind::Layer})
        for (int n : {64, 1000})
            for (bool with_bias : {false, true}) {
                const int rows = 37;
                std::vector<float> x = randn(rng, (size_t)rows * n, 2.f), y = randn(rng, (size_t)rows * n, 3.f);
                for (float &v : y) v += 1.5f;
                std::vector<float> w = randn(rng, n, 0.5f), b = randn(rng, n, 0.5f);
                const float eps = 1e-6f;
                Buf dx(x, DType::F32), dy(y, DType::F32), dw(w, DType::F32), db(b, DType::F32);
                CUDA_OK(norm_residual_add(kind, dy.as<float>(), with_bias ? db.as<float>() : nullptr, rows, n,
                                          dw.as<float>(), eps, dx.as<float>(), 0));
                sync_check("norm_residual_add");
                std::vector<float> yb(y);
                if (with_bias)
                    for (size_t i = 0; i < yb.size(); ++i) yb[i] += b[i % n];
                const std::vector<double> normed = norm_ref(kind, yb, nullptr, rows, n, w, nullptr, eps);
                std::vector<double> ref(normed.size());
                for (size_t i = 0; i < ref.size(); ++i) ref[i] = x[i] + normed[i];
                char name[96];
                snprintf(name, sizeof name, "norm_residual_add %s n=%d%s", kind == NormKind::RMS ? "rms" : "layer", n,
                         with_bias ? " bias" : "");
                // The row sums, as norm's, plus the bias and residual adds.
                R.err(name, compare(dx.download(), ref), tolerance(DType::F32, n + 2));
            }
    for (DType t : {DType::F32, DType::BF16}) {
        const int64_t n = 37 * 301;
        std::vector<float> x = randn(rng, (size_t)n, 2.f);
        Buf dx(x, DType::F32), out((size_t)n, t);
        CUDA_OK(store_rows(dx.as<float>(), n, out.p, t, 0));
        sync_check("store_rows");
        std::vector<double> ref(x.begin(), x.end());
        R.err(std::string("store_rows ") + dname(t), compare(out.download(), ref), tolerance(t, 0));
    }
}

void norm_check(Rng &rng) {
    for (DType t : {DType::F32, DType::BF16})
        for (NormKind kind : {NormKind::RMS, NormKind::Layer})
            // 1000 and 2048: the register kernel; 1001: the two-pass one; 16388: too wide for registers.
            for (int n : {64, 1000, 1001, 2048, 16388})
                for (bool gather : {false, true}) {
                    const int rows_in = 37, n_rows = gather ? 11 : rows_in;
                    std::vector<float> x = randn(rng, (size_t)rows_in * n, 2.f);
                    for (size_t i = 0; i < x.size(); ++i) x[i] += 3.f; // a mean LayerNorm must remove
                    std::vector<float> w = randn(rng, n, 0.5f), b = randn(rng, n, 0.5f);
                    std::vector<int32_t> rows(n_rows);
                    for (int &r : rows) r = rng.below(rows_in);
                    const float eps = 1e-5f;
                    Buf dx(x, DType::F32), dw(w, DType::F32), db(b, DType::F32), out((size_t)n_rows * n, t);
                    IntBuf drows(rows);
                    const bool with_b = kind == NormKind::Layer;
                    CUDA_OK(norm(kind, dx.as<float>(), gather ? drows.p : nullptr, n_rows, n, dw.as<float>(),
                                 with_b ? db.as<float>() : nullptr, eps, out.p, t, 0));
                    sync_check("norm");
                    const std::vector<double> ref =
                        norm_ref(kind, x, gather ? rows.data() : nullptr, n_rows, n, w, with_b ? &b : nullptr, eps);
                    char name[96];
                    snprintf(name, sizeof name, "norm %s %s n=%d%s", kind == NormKind::RMS ? "rms" : "layer",
                             dname(t), n, gather ? " gathered" : "");
                    // The sums over the row (mean, variance) are the chain,
                    // taken at its sequential length n as a bound.
                    R.err(name, compare(out.download(), ref), tolerance(t, n));
                }
    head_norm_check(rng);
    post_norm_check(rng);
}

// OLMo 2's q/k norms: one RMSNorm over the whole q (n_head * head_dim) and
// the whole k projection, as head_rms_norm with one head of that width.
static void full_norm_check(Rng &rng) {
    const int n_tokens = 29, n_head = 5, n_head_kv = 3, head_dim = 48;
    const int q_dim = n_head * head_dim, kv_dim = n_head_kv * head_dim, stride = q_dim + 2 * kv_dim;
    std::vector<float> x = randn(rng, (size_t)n_tokens * stride, 3.f);
    const std::vector<float> wq = randn(rng, q_dim, 0.5f), wk = randn(rng, kv_dim, 0.5f);
    const float eps = 1e-6f;
    Buf dx(x, DType::F32), dwq(wq, DType::F32), dwk(wk, DType::F32);
    CUDA_OK(head_rms_norm(dx.as<float>(), n_tokens, stride, 0, 1, q_dim, dwq.as<float>(), eps, 0));
    CUDA_OK(head_rms_norm(dx.as<float>(), n_tokens, stride, q_dim, 1, kv_dim, dwk.as<float>(), eps, 0));
    sync_check("head_rms_norm full");
    std::vector<double> ref(x.begin(), x.end());
    for (int t = 0; t < n_tokens; ++t)
        for (int part = 0; part < 2; ++part) {
            const int w0 = part ? q_dim : 0, width = part ? kv_dim : q_dim;
            const std::vector<float> &w = part ? wk : wq;
            double *v = &ref[(size_t)t * stride + w0];
            double ss = 0;
            for (int e = 0; e < width; ++e) ss += v[e] * v[e];
            const double inv = 1.0 / sqrt(ss / width + eps);
            for (int e = 0; e < width; ++e) v[e] = v[e] * inv * w[e];
        }
    R.err("head_rms_norm whole projections (q 240, k 144)", compare(dx.download(), ref), tolerance(DType::F32, q_dim));
}

// A Llama-3.2-1B step's RMSNorm: 8192 rows of 2048, bf16 out.
void norm_perf(Rng &rng) {
    const int N = 8192, n = 2048;
    Buf x(randn(rng, (size_t)N * n), DType::F32), w(randn(rng, n), DType::F32), out((size_t)N * n, DType::BF16);
    const double ms = median_ms(launches([&] {
        return norm(NormKind::RMS, x.as<float>(), nullptr, N, n, w.as<float>(), nullptr, 1e-5f, out.p, DType::BF16, 0);
    }), 3, 10);
    R.info("perf norm rms f32 -> bf16 8192 x 2048: median %.3f ms, %.0f GB/s", ms, gb_per_s(x.bytes() + out.bytes(), ms));
}

} // namespace lmscore_test
