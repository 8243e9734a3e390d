// embed_test.cu — embed.cu (token plus learned position embeddings into the
// fp32 residual) against a float64 reference, and its timing.
#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

// x (n_tokens, n_embd) = tok[ids] * scale + pos[positions], tables (rows, n_embd).
static std::vector<double> embed_ref(const std::vector<float> &tok, const std::vector<float> &pos,
                                     const std::vector<int32_t> &ids, const std::vector<int32_t> &ps, int E,
                                     double scale) {
    std::vector<double> ref(ids.size() * E);
    for (size_t i = 0; i < ids.size(); ++i)
        for (int e = 0; e < E; ++e)
            ref[i * E + e] = (double)tok[(size_t)ids[i] * E + e] * scale + (pos.empty() ? 0.0 : pos[(size_t)ps[i] * E + e]);
    return ref;
}

void embed_check(Rng &rng) {
    for (DType t : {DType::F32, DType::BF16}) {
        const int V = 50, E = 40, P = 30, N = 17;
        std::vector<float> tok = stored(randn(rng, (size_t)V * E), t), pos = stored(randn(rng, (size_t)P * E), t);
        std::vector<int32_t> ids(N), ps(N);
        for (int i = 0; i < N; ++i) {
            ids[i] = rng.below(V);
            ps[i] = rng.below(P);
        }
        Buf dtok(tok, t), dpos(pos, t), x((size_t)N * E, DType::F32);
        IntBuf dids(ids), dps(ps);
        CUDA_OK(embed(dids.p, dps.p, dtok.p, dpos.p, t, N, E, 1.f, x.as<float>(), 0));
        sync_check("embed");
        // The output is fp32 whatever the tables: one sum of two terms.
        R.err(std::string("embed+pos ") + dname(t), compare(x.download(), embed_ref(tok, pos, ids, ps, E, 1.0)),
              tolerance(DType::F32, 2));
        // Gemma's scale (sqrt(n_embd)), no positions: one product.
        const float scale = sqrtf((float)E);
        x.poison();
        CUDA_OK(embed(dids.p, dps.p, dtok.p, nullptr, t, N, E, scale, x.as<float>(), 0));
        sync_check("embed scaled");
        R.err(std::string("embed*sqrt(E) ") + dname(t), compare(x.download(), embed_ref(tok, {}, ids, ps, E, scale)),
              tolerance(DType::F32, 1));
    }
}

// A Llama-3.2-1B step's embedding: 8192 tokens of 2048 from a bf16 table.
void embed_perf(Rng &rng) {
    const int V = 128256, E = 2048, N = 8192;
    Buf tok((size_t)V * E, DType::BF16), x((size_t)N * E, DType::F32);
    CUDA_OK(cudaMemset(tok.p, 0, tok.bytes()));
    std::vector<int32_t> ids(N), ps(N);
    for (int i = 0; i < N; ++i) {
        ids[i] = rng.below(V);
        ps[i] = i;
    }
    IntBuf dids(ids), dps(ps);
    const double ms = median_ms(launches([&] { return embed(dids.p, dps.p, tok.p, nullptr, DType::BF16, N, E, 1.f, x.as<float>(), 0); }), 3, 10);
    R.info("perf embed bf16 8192 tokens x 2048: median %.3f ms, %.0f GB/s", ms, gb_per_s((double)N * E * (2 + 4), ms));
}

} // namespace lmscore_test
