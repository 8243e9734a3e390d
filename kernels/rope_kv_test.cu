// rope_kv_test.cu — rope_kv.cu (q/k/v bias, RoPE NORM/NEOX/none, K/V
// written into their slots) against a float64 reference, and its timing.
#include <numeric>

#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

// How a case rotates beyond base and factors: n_rot 0 is all of the head.
struct RopeVariant {
    const char *name;
    int n_rot; // of D = 64
    float freq_scale, attn_factor;
};

// y (D) = rotate(x + b) by position p: of the first n_rot values, pairs
// (2i, 2i+1) for NORM, (i, i+n_rot/2) for NEOX, by p * scale *
// base^(-2i/n_rot) / ff[i] (ff null: 1), cos and sin times af; the rest as is.
static void rope_ref(RopeKind rope, int D, const RopeVariant &v, double base, const float *ff, const float *x,
                     const float *b, double *y, int p) {
    for (int i = 0; i < D; ++i) y[i] = x[i] + (b ? b[i] : 0.0);
    if (rope == RopeKind::None) return;
    const int R2 = (v.n_rot ? v.n_rot : D) / 2;
    const double scale = v.freq_scale ? v.freq_scale : 1.0, af = v.attn_factor ? v.attn_factor : 1.0;
    for (int i = 0; i < R2; ++i) {
        const int i0 = rope == RopeKind::Neox ? i : 2 * i, i1 = rope == RopeKind::Neox ? i + R2 : 2 * i + 1;
        const double th = p * scale * pow(base, -2.0 * i / (2 * R2)) / (ff ? ff[i] : 1.0);
        const double a = y[i0], c = y[i1];
        y[i0] = af * (a * cos(th) - c * sin(th));
        y[i1] = af * (a * sin(th) + c * cos(th));
    }
}

void rope_kv_check(Rng &rng) {
    const int H = 8, Hkv = 2, D = 64, N = 53, n_slots = 200;
    const int q_dim = H * D, kv_dim = Hkv * D, qkv_dim = q_dim + 2 * kv_dim;
    for (DType t : {DType::F32, DType::BF16})
        for (RopeKind rope : {RopeKind::None, RopeKind::Norm, RopeKind::Neox})
            for (bool bias : {false, true})
            for (bool factors : {false, true})
            // Whole heads; Phi-4-mini's and GPT-NeoX's partial rotary (3/4 and
            // 1/4 of the head), with a linear position scale and Phi-3's
            // LongRoPE attention factor. These take the four-wide path;
            // n_rot = 20 (not a multiple of 8) the one-value path.
            for (const RopeVariant &var : {RopeVariant{"", 0, 0.f, 0.f}, RopeVariant{" n_rot=48 scale=0.25 af=1.19", 48, 0.25f, 1.19f},
                                           RopeVariant{" n_rot=16", 16, 0.f, 0.f}, RopeVariant{" n_rot=20", 20, 0.f, 0.f}}) {
                if ((factors || var.n_rot) && rope == RopeKind::None) continue;
                if (var.n_rot && !bias) continue; // the variants once each per rope kind and factors
                const int R2 = (var.n_rot ? var.n_rot : D) / 2;
                // Llama 3.1-style frequency factors, 1 to 8 across the pairs.
                std::vector<float> ffv(R2);
                for (int i = 0; i < R2; ++i) ffv[i] = 1.0f + 7.0f * i / (R2 - 1);
                const float *ff = factors ? ffv.data() : nullptr;
                std::vector<float> qkv = randn(rng, (size_t)N * qkv_dim); // a GEMM's fp32 output
                std::vector<float> bv = randn(rng, qkv_dim, 0.3f);
                std::vector<int32_t> pos(N), slots(N);
                std::vector<int> perm(n_slots);
                std::iota(perm.begin(), perm.end(), 0);
                std::shuffle(perm.begin(), perm.end(), rng.gen);
                for (int i = 0; i < N; ++i) {
                    pos[i] = rng.below(8000);
                    slots[i] = i % 7 == 3 ? -1 : perm[i]; // some tokens are already cached
                }
                Buf dqkv(qkv, DType::F32), db(bv, DType::F32), dff(ffv, DType::F32), q_out((size_t)N * q_dim, t);
                Buf kc((size_t)n_slots * kv_dim, t), vc((size_t)n_slots * kv_dim, t);
                IntBuf dpos(pos), dslots(slots);
                RopeKVParams p{};
                p.qkv = dqkv.as<float>();
                p.bias = bias ? db.as<float>() : nullptr;
                p.positions = dpos.p;
                p.slots = dslots.p;
                p.q_out = q_out.p;
                p.k_cache = kc.p;
                p.v_cache = vc.p;
                p.n_tokens = N;
                p.n_head = H;
                p.n_head_kv = Hkv;
                p.head_dim = D;
                p.rope = rope;
                p.freq_base = 10000.f;
                p.freq_factors = factors ? dff.as<float>() : nullptr;
                p.n_rot = var.n_rot;
                p.freq_scale = var.freq_scale;
                p.attn_factor = var.attn_factor;
                CUDA_OK(rope_kv_write(p, t, 0));
                sync_check("rope_kv_write");

                // Reference: rotated q; k/v at their slots; everything else still poisoned.
                std::vector<double> ref_q((size_t)N * q_dim);
                std::vector<float> got_q = q_out.download(), got_k = kc.download(), got_v = vc.download();
                std::vector<float> out_kv, out_vv;
                std::vector<double> ref_kv, ref_vv;
                int untouched_ok = 1;
                std::vector<bool> written(n_slots, false);
                for (int tk = 0; tk < N; ++tk) {
                    const float *row = &qkv[(size_t)tk * qkv_dim];
                    for (int h = 0; h < H; ++h)
                        rope_ref(rope, D, var, 10000.0, ff, row + h * D, bias ? &bv[h * D] : nullptr,
                                 &ref_q[(size_t)tk * q_dim + h * D], pos[tk]);
                    if (slots[tk] < 0) continue;
                    written[slots[tk]] = true;
                    std::vector<double> k(D);
                    for (int h = 0; h < Hkv; ++h) {
                        rope_ref(rope, D, var, 10000.0, ff, row + q_dim + h * D, bias ? &bv[q_dim + h * D] : nullptr, k.data(), pos[tk]);
                        for (int i = 0; i < D; ++i) {
                            ref_kv.push_back(k[i]);
                            out_kv.push_back(got_k[(size_t)slots[tk] * kv_dim + h * D + i]);
                        }
                    }
                    for (int j = 0; j < kv_dim; ++j) {
                        ref_vv.push_back(row[q_dim + kv_dim + j] + (bias ? bv[q_dim + kv_dim + j] : 0.0));
                        out_vv.push_back(got_v[(size_t)slots[tk] * kv_dim + j]);
                    }
                }
                for (int s = 0; s < n_slots; ++s)
                    if (!written[s])
                        for (int j = 0; j < kv_dim; ++j)
                            if (!std::isnan(got_k[(size_t)s * kv_dim + j]) || !std::isnan(got_v[(size_t)s * kv_dim + j]))
                                untouched_ok = 0;
                // Chains: q and k are a bias add then a two-term rotation
                // (angles in double, applied in fp32): 3, and one more for the
                // attention factor's product with cos and sin; v is the bias add: 2.
                const double qk_chain = var.attn_factor ? 4 : 3;
                char name[160];
                const char *rn = rope == RopeKind::None ? "none" : rope == RopeKind::Norm ? "norm" : "neox";
                snprintf(name, sizeof name, "rope_kv %s %s%s%s%s q", rn, dname(t), bias ? " bias" : "", factors ? " freq_factors" : "", var.name);
                R.err(name, compare(got_q, ref_q), tolerance(t, qk_chain));
                snprintf(name, sizeof name, "rope_kv %s %s%s%s%s k", rn, dname(t), bias ? " bias" : "", factors ? " freq_factors" : "", var.name);
                R.err(name, compare(out_kv, ref_kv), tolerance(t, qk_chain));
                snprintf(name, sizeof name, "rope_kv %s %s%s%s%s v", rn, dname(t), bias ? " bias" : "", factors ? " freq_factors" : "", var.name);
                R.err(name, compare(out_vv, ref_vv), tolerance(t, 2));
                snprintf(name, sizeof name, "rope_kv %s %s%s%s%s slot -1 and unused slots untouched", rn, dname(t),
                         bias ? " bias" : "", factors ? " freq_factors" : "", var.name);
                R.check(untouched_ok, name, "%s", untouched_ok ? "ok" : "a slot not in the batch was written");
            }
}

// A Llama-3.2-1B step: 8192 tokens, 32 query heads over 8 KV heads of 64, bf16.
void rope_kv_perf(Rng &rng) {
    const int H = 32, Hkv = 8, D = 64, N = 8192;
    const int q_dim = H * D, kv_dim = Hkv * D;
    Buf qkv(randn(rng, (size_t)N * (q_dim + 2 * kv_dim)), DType::F32), q_out((size_t)N * q_dim, DType::BF16);
    Buf kc((size_t)N * kv_dim, DType::BF16), vc((size_t)N * kv_dim, DType::BF16);
    std::vector<int32_t> pos(N), slots(N);
    for (int i = 0; i < N; ++i) {
        pos[i] = i % 1024;
        slots[i] = i;
    }
    IntBuf dpos(pos), dslots(slots);
    RopeKVParams p{};
    p.qkv = qkv.as<float>();
    p.positions = dpos.p;
    p.slots = dslots.p;
    p.q_out = q_out.p;
    p.k_cache = kc.p;
    p.v_cache = vc.p;
    p.n_tokens = N;
    p.n_head = H;
    p.n_head_kv = Hkv;
    p.head_dim = D;
    p.rope = RopeKind::Norm;
    p.freq_base = 500000.f;
    const double ms = median_ms(launches([&] { return rope_kv_write(p, DType::BF16, 0); }), 3, 10);
    R.info("perf rope_kv norm f32 -> bf16 8192 tokens H=32/8 D=64: median %.3f ms, %.0f GB/s", ms,
           gb_per_s(qkv.bytes() + q_out.bytes() + kc.bytes() + vc.bytes(), ms));
    // gpt2-large's: no rotation, 20 heads of 64, the qkv bias.
    {
        const int GH = 20, gq = GH * D;
        Buf gqkv(randn(rng, (size_t)N * 3 * gq), DType::F32), gb(randn(rng, 3 * gq), DType::F32);
        Buf gq_out((size_t)N * gq, DType::BF16), gk((size_t)N * gq, DType::BF16), gv((size_t)N * gq, DType::BF16);
        RopeKVParams g = p;
        g.qkv = gqkv.as<float>();
        g.bias = gb.as<float>();
        g.q_out = gq_out.p;
        g.k_cache = gk.p;
        g.v_cache = gv.p;
        g.n_head = g.n_head_kv = GH;
        g.rope = RopeKind::None;
        const double gms = median_ms(launches([&] { return rope_kv_write(g, DType::BF16, 0); }), 3, 10);
        R.info("perf rope_kv none+bias f32 -> bf16 8192 tokens H=20 D=64: median %.3f ms, %.0f GB/s", gms,
               gb_per_s(gqkv.bytes() + gq_out.bytes() + gk.bytes() + gv.bytes(), gms));
    }
}

} // namespace lmscore_test
