// embed_test.cu — embed.cu (token plus learned position embeddings into the
// fp32 residual) against a float64 reference, and its timing.
#include "dequant_ref.h"
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
        CUDA_OK(embed(dids.p, dps.p, dtok.p, t == DType::F32 ? LMSCORE_TYPE_F32 : LMSCORE_TYPE_BF16, dpos.p, t, N, E,
                      1.f, x.as<float>(), 0));
        sync_check("embed");
        // The output is fp32 whatever the tables: one sum of two terms.
        R.err(std::string("embed+pos ") + dname(t), compare(x.download(), embed_ref(tok, pos, ids, ps, E, 1.0)),
              tolerance(DType::F32, 2));
        // Gemma's scale (sqrt(n_embd)), no positions: one product.
        const float scale = sqrtf((float)E);
        x.poison();
        CUDA_OK(embed(dids.p, dps.p, dtok.p, t == DType::F32 ? LMSCORE_TYPE_F32 : LMSCORE_TYPE_BF16, nullptr, t, N, E,
                      scale, x.as<float>(), 0));
        sync_check("embed scaled");
        R.err(std::string("embed*sqrt(E) ") + dname(t), compare(x.download(), embed_ref(tok, {}, ids, ps, E, scale)),
              tolerance(DType::F32, 1));
    }
    // Quantized token tables: only the looked-up rows are dequantized, each
    // value rounded to the run's type, so x must be bitwise what the dense
    // kernel gives over the table converted at load.
    for (DType t : {DType::F32, DType::BF16})
        for (int32_t type : {LMSCORE_TYPE_Q4_K, LMSCORE_TYPE_Q6_K, LMSCORE_TYPE_Q5_0, LMSCORE_TYPE_IQ4_NL,
                             LMSCORE_TYPE_Q8_0, LMSCORE_TYPE_F16}) {
            const int V = 37, E = 512, P = 30, N = 19;
            const std::vector<uint8_t> raw = random_rows(rng, type, E, V);
            const std::vector<float> tok = stored(ref_dequantize(type, raw.data(), E, V), t);
            const std::vector<float> pos = stored(randn(rng, (size_t)P * E), t);
            std::vector<int32_t> ids(N), ps(N);
            for (int i = 0; i < N; ++i) {
                ids[i] = rng.below(V);
                ps[i] = rng.below(P);
            }
            for (bool with_pos : {false, true}) {
                void *dtok;
                CUDA_OK(cudaMalloc(&dtok, raw.size()));
                CUDA_OK(cudaMemcpy(dtok, raw.data(), raw.size(), cudaMemcpyHostToDevice));
                Buf dpos(pos, t), x((size_t)N * E, DType::F32);
                IntBuf dids(ids), dps(ps);
                CUDA_OK(embed(dids.p, dps.p, dtok, type, with_pos ? dpos.p : nullptr, t, N, E, 1.f, x.as<float>(), 0));
                sync_check("embed quantized");
                cudaFree(dtok);
                const std::vector<float> got = x.download();
                int bad = 0;
                for (int i = 0; i < N; ++i)
                    for (int e = 0; e < E; ++e) {
                        float want = tok[(size_t)ids[i] * E + e];
                        if (with_pos) want += pos[(size_t)ps[i] * E + e];
                        bad += memcmp(&got[(size_t)i * E + e], &want, 4) != 0;
                    }
                R.check(bad == 0, std::string("embed ") + ref_type_name(type) + " table" + (with_pos ? "+pos " : " ") + dname(t),
                        "%d of %d values differ from the dequantized table's", bad, N * E);
            }
        }
    {
        const cudaError_t e = embed(nullptr, nullptr, nullptr, LMSCORE_TYPE_Q4_K, nullptr, DType::BF16, 1, 100, 1.f, nullptr, 0);
        R.check(e == cudaErrorInvalidValue, "embed Q4_K table with rows of 100 refused", "%s", cudaGetErrorString(e));
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
    const double ms = median_ms(launches([&] { return embed(dids.p, dps.p, tok.p, LMSCORE_TYPE_BF16, nullptr, DType::BF16, N, E, 1.f, x.as<float>(), 0); }), 3, 10);
    R.info("perf embed bf16 8192 tokens x 2048: median %.3f ms, %.0f GB/s", ms, gb_per_s((double)N * E * (2 + 4), ms));
}

} // namespace lmscore_test
