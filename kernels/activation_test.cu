// activation_test.cu — activation.cu (SwiGLU, GeGLU, GELU tanh and erf with
// bias, the residual add with bias) against float64 references, and their timing.
#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

static double act_ref(Activation a, double x) {
    if (a == Activation::Silu) return x / (1 + exp(-x));
    if (a == Activation::GeluTanh) return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}
static const char *act_name(Activation a) {
    return a == Activation::Silu ? "silu" : a == Activation::GeluTanh ? "gelu_tanh" : "gelu_erf";
}

void activation_check(Rng &rng) {
    const int N = 29, F = 300, E = 96; // not multiples of the kernels' 256 threads
    for (DType t : {DType::F32, DType::BF16}) {
        // gu is (N, 2F) of type t: gate | up; out (N, F) = act(gate) * up.
        // SwiGLU and GeGLU (Gemma). F = 300 takes the 4-wide path, 301 the
        // one-column path. The reference reads gu as stored.
        for (int Fg : {F, F + 1}) {
            for (Activation a : {Activation::Silu, Activation::GeluTanh}) {
                const std::vector<float> gu = stored(randn(rng, (size_t)N * 2 * Fg, 2.f), t);
                Buf dgu(gu, t), out((size_t)N * Fg, t);
                CUDA_OK(gated_activation(a, dgu.p, N, Fg, out.p, t, 0));
                sync_check("gated_activation");
                std::vector<double> gref((size_t)N * Fg);
                for (int i = 0; i < N; ++i)
                    for (int f = 0; f < Fg; ++f) {
                        const double g = gu[(size_t)i * 2 * Fg + f], u = gu[(size_t)i * 2 * Fg + Fg + f];
                        gref[(size_t)i * Fg + f] = act_ref(a, g) * u;
                    }
                R.err(std::string("gated ") + act_name(a) + " " + dname(t) + " width " + std::to_string(Fg),
                      compare(out.download(), gref), tolerance(t, 1));
            }
        }
        // More rows than a grid's y dimension holds (65535): the row loop.
        {
            const int NT = 65537, FT = 8;
            const std::vector<float> gu = stored(randn(rng, (size_t)NT * 2 * FT, 2.f), t);
            Buf dgu(gu, t), out((size_t)NT * FT, t);
            CUDA_OK(gated_activation(Activation::Silu, dgu.p, NT, FT, out.p, t, 0));
            sync_check("gated_activation rows");
            std::vector<double> gref((size_t)NT * FT);
            for (int i = 0; i < NT; ++i)
                for (int f = 0; f < FT; ++f)
                    gref[(size_t)i * FT + f] = act_ref(Activation::Silu, gu[(size_t)i * 2 * FT + f]) * gu[(size_t)i * 2 * FT + FT + f];
            R.err(std::string("gated silu ") + dname(t) + " 65537 rows", compare(out.download(), gref), tolerance(t, 1));
        }

        // up is (N, F), bias (F): gpt2's GELU (tanh) and GPT-NeoX's exact one.
        // F = 300 takes the 4-wide path, 301 the one-column path, and 65537
        // rows the row loop past the grid's y limit.
        struct Shape { int n, f; };
        for (Shape sh : {Shape{N, F}, Shape{N, F + 1}, Shape{65537, 8}}) {
            for (Activation a : {Activation::GeluTanh, Activation::GeluErf}) {
                // up in the output's type, as the up GEMM writes it; stored()
                // is what the kernel reads, so the reference starts from it too.
                const size_t n = (size_t)sh.n * sh.f;
                std::vector<float> up = stored(randn(rng, n, 2.f), t), bias = randn(rng, sh.f, 0.5f);
                Buf dup(up, t), db(bias, DType::F32), out2(n, t);
                CUDA_OK(activation_bias(a, dup.p, db.as<float>(), sh.n, sh.f, out2.p, t, 0));
                sync_check("activation_bias");
                std::vector<double> bref(n);
                for (size_t i = 0; i < n; ++i) bref[i] = act_ref(a, (double)up[i] + bias[i % sh.f]);
                R.err(std::string(act_name(a)) + "+bias " + dname(t) + " " + std::to_string(sh.n) + " x " +
                          std::to_string(sh.f),
                      compare(out2.download(), bref), tolerance(t, 1));
            }
        }

        // x, y are (N, E), b (E); x += y + b, always fp32, so checked once,
        // at a 4-wide width, a one-column one and past 65535 rows.
        if (t == DType::F32) {
            for (Shape sh : {Shape{N, E}, Shape{N, E + 1}, Shape{65537, 4}}) {
                for (bool with_bias : {true, false}) {
                    const size_t n = (size_t)sh.n * sh.f;
                    std::vector<float> x = randn(rng, n), y = randn(rng, n), b = randn(rng, sh.f);
                    Buf dx(x, DType::F32), dy(y, DType::F32), dbb(b, DType::F32);
                    CUDA_OK(residual_add(dx.as<float>(), dy.as<float>(), with_bias ? dbb.as<float>() : nullptr,
                                         sh.n, sh.f, 0));
                    sync_check("residual");
                    std::vector<double> rref(n);
                    for (size_t i = 0; i < n; ++i) rref[i] = (double)x[i] + y[i] + (with_bias ? b[i % sh.f] : 0.0);
                    R.err(std::string("residual_add") + (with_bias ? "+bias" : "") + " f32 " + std::to_string(sh.n) +
                              " x " + std::to_string(sh.f),
                          compare(dx.download(), rref), tolerance(DType::F32, 3));
                }
            }
        }
    }
}

// A Llama-3.2-1B step's FFN: SwiGLU over 8192 tokens x 8192 in bf16, and
// the residual add of 8192 x 2048.
void activation_perf(Rng &rng) {
    const int N = 8192, F = 8192, E = 2048;
    Buf gu(randn(rng, (size_t)N * 2 * F), DType::BF16), out((size_t)N * F, DType::BF16);
    const double ms = median_ms(
        launches([&] { return gated_activation(Activation::Silu, gu.p, N, F, out.p, DType::BF16, 0); }), 3, 10);
    R.info("perf swiglu bf16 8192 x 8192: median %.3f ms, %.0f GB/s", ms, gb_per_s(gu.bytes() + out.bytes(), ms));
    // gpt2-large's FFN: GELU with bias over 8192 tokens x 5120.
    const int FG = 5120;
    Buf up(randn(rng, (size_t)N * FG), DType::BF16), bias(randn(rng, FG), DType::F32), act((size_t)N * FG, DType::BF16);
    const double gms = median_ms(launches([&] {
        return activation_bias(Activation::GeluTanh, up.p, bias.as<float>(), N, FG, act.p, DType::BF16, 0);
    }), 3, 10);
    R.info("perf gelu+bias bf16 8192 x 5120: median %.3f ms, %.0f GB/s", gms, gb_per_s(up.bytes() + act.bytes(), gms));
    Buf x(randn(rng, (size_t)N * E), DType::F32), y(randn(rng, (size_t)N * E), DType::F32);
    const double rms = median_ms(launches([&] { return residual_add(x.as<float>(), y.as<float>(), nullptr, N, E, 0); }), 3, 10);
    R.info("perf residual_add f32 8192 x 2048: median %.3f ms, %.0f GB/s", rms, gb_per_s(3.0 * x.bytes(), rms));
}

} // namespace lmscore_test
