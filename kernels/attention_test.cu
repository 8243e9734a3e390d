// attention_test.cu — paged_attention against a float64 reference: both of
// its kernels, the SIMT one (attention.cu: fp32, and bf16 with force_simt)
// and the tensor-core one (attention_tc.cu: bf16, head_dim 64 and 128),
// against the one reference, plus the tensor-core kernel's head stacking
// checked bitwise against unstacked tiles; and their timings.
#include <numeric>

#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

namespace {

// out (n_tokens, n_head * D): token tk of segment s (tokens seg_start[s] ..
// seg_start[s+1]) attends to positions 0..positions[tk] of its sequence, the
// K/V of position p at slot indices[indptr[s] + p / bs] * bs + p % bs of
// k_cache, v_cache (n_slots, n_head_kv * D); score q.k * scale (scale 0:
// 1/sqrt(D)), then softcap * tanh(score / softcap) when softcap > 0; with
// window > 0 only positions > positions[tk] - window; query head h reads kv
// head h / (n_head / n_head_kv).
std::vector<double> attention_ref(const std::vector<float> &q, const std::vector<float> &kc, const std::vector<float> &vc,
                                  const std::vector<int32_t> &indptr, const std::vector<int32_t> &indices,
                                  const std::vector<int32_t> &seg_start, const std::vector<int32_t> &positions, int bs,
                                  int D, int H, int Hkv, int window = 0, double softcap = 0, double scale = 0) {
    if (scale == 0) scale = 1.0 / sqrt((double)D);
    const int q_dim = H * D, kv_dim = Hkv * D, n_seg = (int)seg_start.size() - 1;
    std::vector<double> ref((size_t)positions.size() * q_dim);
    std::vector<double> sc;
    for (int s = 0; s < n_seg; ++s)
        for (int tk = seg_start[s]; tk < seg_start[s + 1]; ++tk)
            for (int h = 0; h < H; ++h) {
                const int kvh = h / (H / Hkv);
                const int P = positions[tk];
                const int lo = window > 0 ? std::max(0, P - window + 1) : 0;
                sc.assign(P + 1, 0);
                double mx = -INFINITY;
                for (int pp = lo; pp <= P; ++pp) {
                    const size_t slot = (size_t)indices[indptr[s] + pp / bs] * bs + pp % bs;
                    double d = 0;
                    for (int i = 0; i < D; ++i) d += (double)q[(size_t)tk * q_dim + h * D + i] * kc[slot * kv_dim + kvh * D + i];
                    sc[pp] = d * scale;
                    if (softcap > 0) sc[pp] = softcap * tanh(sc[pp] / softcap);
                    mx = std::max(mx, sc[pp]);
                }
                double sum = 0;
                for (int pp = lo; pp <= P; ++pp) sum += (sc[pp] = exp(sc[pp] - mx));
                for (int i = 0; i < D; ++i) {
                    double acc = 0;
                    for (int pp = lo; pp <= P; ++pp) {
                        const size_t slot = (size_t)indices[indptr[s] + pp / bs] * bs + pp % bs;
                        acc += sc[pp] * vc[slot * kv_dim + kvh * D + i];
                    }
                    ref[(size_t)tk * q_dim + h * D + i] = acc / sum;
                }
            }
    return ref;
}

struct AttnCase {
    int block_size, head_dim, n_head, n_head_kv;
    std::vector<int> cached, queries; // per segment: positions already cached, tokens in this step
    bool share_prefix;                // segments 1.. share segment 0's full leading blocks
    int window = 0;                   // sliding window (0: none)
    float softcap = 0, scale = 0;     // scale 0: 1/sqrt(head_dim)
};

void run_attention_case(Rng &rng, const AttnCase &c, DType t, const char *label, bool force_simt = false) {
    const int bs = c.block_size, D = c.head_dim, H = c.n_head, Hkv = c.n_head_kv;
    const int n_seg = (int)c.queries.size();
    const int kv_dim = Hkv * D, q_dim = H * D;
    // Block tables from a shuffled pool, so a segment's blocks are scattered.
    int total_blocks = 0;
    for (int s = 0; s < n_seg; ++s) total_blocks += (c.cached[s] + c.queries[s] + bs - 1) / bs;
    const int n_blocks = total_blocks + 5;
    std::vector<int> perm(n_blocks);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng.gen);
    int next = 0;
    std::vector<int32_t> indptr{0}, indices, seg_start{0}, positions;
    for (int s = 0; s < n_seg; ++s) {
        const int len = c.cached[s] + c.queries[s];
        const int nb = (len + bs - 1) / bs;
        for (int b = 0; b < nb; ++b) {
            // Shared prefix: full blocks that lie inside both this segment's
            // and segment 0's cached part come from segment 0's table.
            const bool share = c.share_prefix && s > 0 && (b + 1) * bs <= std::min(c.cached[s], c.cached[0]);
            indices.push_back(share ? indices[b] : perm[next++]);
        }
        indptr.push_back((int32_t)indices.size());
        for (int i = 0; i < c.queries[s]; ++i) positions.push_back(c.cached[s] + i);
        seg_start.push_back((int32_t)positions.size());
    }
    const int N = (int)positions.size();
    const size_t n_slots = (size_t)n_blocks * bs;
    // K/V: NaN everywhere except the slots the tables reach, so a read
    // outside a table poisons the output; with a window, also NaN at the
    // positions before every window of the segment's queries (before
    // cached - window + 1), so a kernel that reads them rather than skipping
    // them fails.
    std::vector<float> kc(n_slots * kv_dim, NAN), vc(n_slots * kv_dim, NAN);
    for (int s = 0; s < n_seg; ++s)
        for (int p = c.window > 0 ? std::max(0, c.cached[s] - c.window + 1) : 0; p < c.cached[s] + c.queries[s]; ++p) {
            const size_t slot = (size_t)indices[indptr[s] + p / bs] * bs + p % bs;
            if (!std::isnan(kc[slot * kv_dim])) continue; // shared block, already filled
            for (int j = 0; j < kv_dim; ++j) {
                kc[slot * kv_dim + j] = round_bf16(rng.normal());
                vc[slot * kv_dim + j] = round_bf16(rng.normal());
            }
        }
    std::vector<float> q = stored(randn(rng, (size_t)N * q_dim), t);
    kc = stored(kc, t);
    vc = stored(vc, t);

    std::vector<AttnTile> tiles;
    for (int s = 0; s < n_seg; ++s)
        for (int tb = seg_start[s]; tb < seg_start[s + 1]; tb += kAttnTileQ)
            tiles.push_back({tb, std::min(tb + kAttnTileQ, seg_start[s + 1]), indptr[s], indptr[s + 1] - indptr[s]});

    Buf dq(q, t), dk(kc, t), dv(vc, t), out((size_t)N * q_dim, t);
    IntBuf dpos(positions), dind(indices);
    std::vector<int32_t> tiles_raw(tiles.size() * 4);
    memcpy(tiles_raw.data(), tiles.data(), tiles_raw.size() * 4);
    IntBuf dtiles(tiles_raw);
    AttentionParams p{};
    p.q = dq.p;
    p.k_cache = dk.p;
    p.v_cache = dv.p;
    p.positions = dpos.p;
    p.tiles = (const AttnTile *)dtiles.p;
    p.block_indices = dind.p;
    p.out = out.p;
    p.n_tiles = (int)tiles.size();
    p.n_head = H;
    p.n_head_kv = Hkv;
    p.head_dim = D;
    p.block_size = bs;
    p.scale = c.scale > 0 ? c.scale : 1.f / sqrtf((float)D);
    p.softcap = c.softcap;
    p.window = c.window;
    p.force_simt = force_simt;
    CUDA_OK(paged_attention(p, t, 0));
    sync_check("paged_attention");

    const std::vector<double> ref = attention_ref(q, kc, vc, indptr, indices, seg_start, positions, bs, D, H, Hkv,
                                                  c.window, c.softcap, p.scale);
    // The chain: a D-term dot product, then the softmax-weighted sum over
    // the longest sequence's keys (at most the window's).
    int longest = 0;
    for (int s = 0; s < n_seg; ++s) longest = std::max(longest, c.cached[s] + c.queries[s]);
    if (c.window > 0) longest = std::min(longest, c.window);
    char name[160];
    const char *path = t == DType::BF16 && attention_tc_supports(D) && !force_simt ? "tensor-core" : "simt";
    snprintf(name, sizeof name, "attention %s %s %s bs=%d D=%d H=%d/%d%s", path, label, dname(t), bs, D, H, Hkv,
             c.window > 0 ? (" window=" + std::to_string(c.window)).c_str() : "");
    const std::vector<float> got = out.download();
    R.err(name, compare(got, ref), tolerance(t, D + longest));

    // Head stacking must not change a bit: the same queries, cut into
    // tiles of 64 / G tokens x G heads, against the unstacked output.
    const int G = attention_stack_heads(t, D, H, Hkv);
    if (force_simt || G <= 1) return;
    std::vector<AttnTile> stacked;
    for (int s = 0; s < n_seg; ++s)
        for (int tb = seg_start[s]; tb < seg_start[s + 1]; tb += kAttnTileQ / G)
            stacked.push_back({tb, std::min(tb + kAttnTileQ / G, seg_start[s + 1]), indptr[s], indptr[s + 1] - indptr[s]});
    std::vector<int32_t> stacked_raw(stacked.size() * 4);
    memcpy(stacked_raw.data(), stacked.data(), stacked_raw.size() * 4);
    IntBuf dstacked(stacked_raw);
    out.poison();
    p.tiles = (const AttnTile *)dstacked.p;
    p.n_tiles = (int)stacked.size();
    p.stack_heads = G;
    CUDA_OK(paged_attention(p, t, 0));
    sync_check("paged_attention stacked");
    const std::vector<float> got_stacked = out.download();
    size_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += memcmp(&got[i], &got_stacked[i], 4) != 0;
    snprintf(name, sizeof name, "attention tensor-core %s %s bs=%d D=%d H=%d/%d, %d heads stacked per tile", label,
             dname(t), bs, D, H, Hkv, G);
    R.check(differ == 0, name, "%zu of %zu outputs differ bitwise from unstacked tiles (%zu tiles vs %zu)", differ,
            got.size(), stacked.size(), tiles.size());
}

} // namespace

void attention_check(Rng &rng) {
    for (DType t : {DType::F32, DType::BF16})
        for (int bs : {1, 16, 64}) {
            // Lengths not multiples of the block size or tile: 17, 37, 65, 130;
            // cached prefixes before some segments; single-token segments.
            AttnCase mixed{bs, 64, 8, 2, {0, 0, 23, 100, 5, 0}, {17, 37, 1, 65, 130, 1}, false};
            run_attention_case(rng, mixed, t, "mixed");
            AttnCase shared{bs, 64, 4, 4, {150, 150, 150, 150}, {1, 3, 7, 2}, true};
            run_attention_case(rng, shared, t, "shared-prefix");
            if (t == DType::BF16) { // the SIMT kernel, which bf16 D=64 no longer takes by default
                run_attention_case(rng, mixed, t, "mixed", true);
                run_attention_case(rng, shared, t, "shared-prefix", true);
            }
        }
    for (DType t : {DType::F32, DType::BF16}) {
        AttnCase d128{16, 128, 4, 1, {0, 70}, {37, 17}, false};
        run_attention_case(rng, d128, t, "head128");
        if (t == DType::BF16) run_attention_case(rng, d128, t, "head128", true);
        AttnCase d16{16, 16, 2, 2, {3, 0}, {17, 64}, false};
        run_attention_case(rng, d16, t, "head16");
        AttnCase d8{16, 8, 8, 4, {5, 0, 40}, {17, 37, 1}, false}; // stories260K's heads
        run_attention_case(rng, d8, t, "head8");
    }
    // Sliding windows (Mistral, Gemma 2/3): windows shorter and longer than
    // the 64-key tile and not multiples of it or of the block size, prefixes
    // far past them (key tiles before every window skipped), single-token
    // segments; with soft-capping and a scale of its own (Gemma 2).
    for (DType t : {DType::F32, DType::BF16})
        for (int bs : {1, 16}) {
            AttnCase win{bs, 64, 8, 2, {0, 150, 300, 77, 0}, {130, 1, 70, 37, 200}, false, 19};
            run_attention_case(rng, win, t, "window");
            AttnCase wide{bs, 64, 4, 4, {200, 200, 0}, {90, 3, 170}, true, 70};
            run_attention_case(rng, wide, t, "window-shared");
            AttnCase capped{bs, 128, 4, 1, {0, 260}, {150, 41}, false, 33, 5.f, 0.3f};
            run_attention_case(rng, capped, t, "window+softcap");
            AttnCase cap_only{bs, 32, 4, 2, {0, 90}, {75, 9}, false, 0, 3.f, 0.25f};
            run_attention_case(rng, cap_only, t, "softcap");
            if (t == DType::BF16) {
                run_attention_case(rng, win, t, "window", true);
                run_attention_case(rng, capped, t, "window+softcap", true);
            }
        }
}

// The attention kernels on a Llama-3.2-1B-shaped step: 8 segments of 1024
// tokens, 32 query heads of 64 over 8 KV heads, block size 16; then the
// metaicl16 pattern on the same shape: 512 short segments (3 query tokens
// each) at positions 780..782 over one shared 780-token prefix, with and
// without head stacking.
void attention_perf(Rng &rng) {
    const int H = 32, Hkv = 8, D = 64, bs = 16;
    const DType t = DType::BF16;
    {
        const int n_seg = 8, len = 1024, N = n_seg * len;
        std::vector<int32_t> indptr{0}, indices, positions(N);
        std::vector<AttnTile> tiles;
        for (int s = 0; s < n_seg; ++s) {
            for (int b = 0; b < len / bs; ++b) indices.push_back((int32_t)indices.size());
            indptr.push_back((int32_t)indices.size());
            for (int i = 0; i < len; ++i) positions[s * len + i] = i;
            for (int tb = s * len; tb < (s + 1) * len; tb += kAttnTileQ) tiles.push_back({tb, tb + kAttnTileQ, indptr[s], len / bs});
        }
        Buf dq(randn(rng, (size_t)N * H * D), t), dk(randn(rng, (size_t)N * Hkv * D), t), dv(randn(rng, (size_t)N * Hkv * D), t);
        Buf out((size_t)N * H * D, t);
        IntBuf dpos(positions), dind(indices);
        std::vector<int32_t> raw(tiles.size() * 4);
        memcpy(raw.data(), tiles.data(), raw.size() * 4);
        IntBuf dtiles(raw);
        // Causal: each query sees (its position + 1) keys; 4 flops per q.k.v pair element.
        double flops = 0;
        for (int i = 0; i < len; ++i) flops += 4.0 * (i + 1) * D * H;
        flops *= n_seg;
        for (int force_simt : {0, 1}) {
            AttentionParams p{dq.p, dk.p, dv.p, dpos.p, (const AttnTile *)dtiles.p, dind.p, out.p, (int)tiles.size(), H, Hkv, D, bs,
                              1.f / 8.f, force_simt};
            const double ms = median_ms(launches([&] { return paged_attention(p, t, 0); }), 3, 10);
            R.info("perf attention %s bf16 8x1024 tokens H=32/8 D=64 bs=16: median %.3f ms, %.1f TFLOP/s (causal flops)",
                   force_simt ? "simt" : "tensor-core", ms, flops / (ms * 1e-3) / 1e12);
        }
    }
    {
        const int n_seg = 512, prefix = 780, nq = 3, N = n_seg * nq;
        const int prefix_blocks = prefix / bs; // full shared blocks; the rest is private per segment
        const int own_blocks = (prefix + nq + bs - 1) / bs - prefix_blocks;
        std::vector<int32_t> indptr{0}, indices, positions(N);
        int next = prefix_blocks;
        for (int s = 0; s < n_seg; ++s) {
            for (int b = 0; b < prefix_blocks; ++b) indices.push_back(b);
            for (int b = 0; b < own_blocks; ++b) indices.push_back(next++);
            indptr.push_back((int32_t)indices.size());
            for (int i = 0; i < nq; ++i) positions[s * nq + i] = prefix + i;
        }
        const size_t n_slots = (size_t)next * bs;
        Buf dq(randn(rng, (size_t)N * H * D), t), dk(randn(rng, n_slots * Hkv * D), t), dv(randn(rng, n_slots * Hkv * D), t);
        Buf out((size_t)N * H * D, t);
        IntBuf dpos(positions), dind(indices);
        for (int G : {1, H / Hkv}) {
            std::vector<AttnTile> tiles;
            for (int s = 0; s < n_seg; ++s)
                for (int tb = s * nq; tb < (s + 1) * nq; tb += kAttnTileQ / G)
                    tiles.push_back({tb, std::min(tb + kAttnTileQ / G, (s + 1) * nq), indptr[s], indptr[s + 1] - indptr[s]});
            std::vector<int32_t> raw(tiles.size() * 4);
            memcpy(raw.data(), tiles.data(), raw.size() * 4);
            IntBuf dtiles(raw);
            AttentionParams p{dq.p, dk.p, dv.p, dpos.p, (const AttnTile *)dtiles.p, dind.p, out.p, (int)tiles.size(), H, Hkv, D, bs,
                              1.f / 8.f, 0, G};
            const double ms = median_ms(launches([&] { return paged_attention(p, t, 0); }), 3, 10);
            R.info("perf attention tensor-core bf16 %d segments of %d tokens over a %d-token prefix H=32/8 D=64 bs=16, "
                   "%s: median %.3f ms",
                   n_seg, nq, prefix, G > 1 ? "4 heads stacked per tile" : "one head per tile", ms);
        }
    }
}

} // namespace lmscore_test
