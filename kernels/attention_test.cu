// attention_test.cu — paged_attention against a float64 reference: both of
// its kernels, the SIMT one (attention.cu: fp32, and bf16 with force_simt)
// and the tensor-core one (attention_tc.cu: bf16, head_dim 64 and 128),
// against the one reference; every case also checked bitwise against other
// cuts of the same queries into tiles (random sizes, one token per tile,
// heads stacked), which is the batch invariance the scores rest on; and
// their timings.
#include <numeric>

#include "attention_tiles.h"
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

    // Query rows per work item on the path this case takes.
    const int rows = attention_tile_rows(t, D, force_simt);
    std::vector<AttnTile> tiles;
    for (int s = 0; s < n_seg; ++s)
        for (int tb = seg_start[s]; tb < seg_start[s + 1]; tb += rows)
            tiles.push_back({tb, std::min(tb + rows, seg_start[s + 1]), indptr[s], indptr[s + 1] - indptr[s]});

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
    const bool tc = attention_uses_tc(t, D, force_simt);
    const char *path = tc ? "tensor-core" : "simt";
    snprintf(name, sizeof name, "attention %s %s %s bs=%d D=%d H=%d/%d%s", path, label, dname(t), bs, D, H, Hkv,
             c.window > 0 ? (" window=" + std::to_string(c.window)).c_str() : "");
    const std::vector<float> got = out.download();
    R.err(name, compare(got, ref), tolerance(t, D + longest));

    // Batch invariance: a row's bits must not depend on the other rows of
    // its tile, nor on how many key tiles its tile visits (a tile of one
    // token stops at that token, and with a window starts at its window).
    // The same queries, cut into tiles of random sizes, into tiles of one
    // token, and (tensor cores, grouped-query heads) stacked G heads per
    // tile, must give exactly the output of the plain cut.
    const int G = force_simt ? 1 : attention_stack_heads(t, D, H, Hkv);
    auto cut = [&](int max_tokens, bool random_sizes) {
        std::vector<AttnTile> cut_tiles;
        for (int s = 0; s < n_seg; ++s)
            for (int tb = seg_start[s]; tb < seg_start[s + 1];) {
                const int te = std::min(tb + (random_sizes ? rng.range(1, max_tokens) : max_tokens), seg_start[s + 1]);
                cut_tiles.push_back({tb, te, indptr[s], indptr[s + 1] - indptr[s]});
                tb = te;
            }
        return cut_tiles;
    };
    auto check_cut = [&](const std::vector<AttnTile> &cut_tiles, int stack, const char *what,
                         const std::vector<AttnGroup> &groups = {}) {
        std::vector<int32_t> raw(cut_tiles.size() * 4), graw(groups.size() * 3);
        memcpy(raw.data(), cut_tiles.data(), raw.size() * 4);
        memcpy(graw.data(), groups.data(), graw.size() * 4);
        IntBuf dcut(raw), dgroups(graw);
        out.poison();
        p.tiles = (const AttnTile *)dcut.p;
        p.n_tiles = (int)cut_tiles.size();
        p.groups = groups.empty() ? nullptr : (const AttnGroup *)dgroups.p;
        p.n_groups = (int)groups.size();
        p.stack_heads = stack;
        CUDA_OK(paged_attention(p, t, 0));
        sync_check("paged_attention, another tile cut");
        const std::vector<float> again = out.download();
        size_t differ = 0;
        for (size_t i = 0; i < got.size(); ++i) differ += memcmp(&got[i], &again[i], 4) != 0;
        char cname[200];
        snprintf(cname, sizeof cname, "attention %s %s %s bs=%d D=%d H=%d/%d, %s", path, label, dname(t), bs, D, H, Hkv,
                 what);
        R.check(differ == 0, cname, "%zu of %zu outputs differ bitwise from the plain cut (%zu tiles vs %zu)", differ,
                got.size(), cut_tiles.size(), tiles.size());
    };
    check_cut(cut(rows, true), 1, "tiles of random sizes");
    check_cut(cut(1, false), 1, "tiles of one token");
    if (tc) {
        // The K/V stages change no arithmetic: two stages (what devices
        // without sm_90's shared memory take) and, at D 64, three (what
        // sm_90 takes) give the bits of the device's own choice.
        for (const int stages : {2, 3}) {
            if (stages == 3 && D != 64) continue;
            p.force_stages = stages;
            char what_stages[64];
            snprintf(what_stages, sizeof what_stages, "%d K/V stages forced", stages);
            check_cut(cut(rows, false), 1, what_stages);
        }
        p.force_stages = 0;
    }
    if (tc && kAttnTileQ != kAttnTileQTc) check_cut(cut(kAttnTileQ, false), 1, "tiles of the SIMT kernel's 64 rows");
    char what[120];
    if (tc) {
        // Shared-prefix groups as the step plans them (attention_tiles.h);
        // whether any segments were grouped is in the check's name.
        const AttnSegments segs{n_seg, seg_start.data(), indptr.data(), indices.data(), bs};
        const int stacks[2] = {1, G};
        for (int si = 0; si < (G > 1 ? 2 : 1); ++si) {
            const int stack = stacks[si];
            std::vector<AttnTile> gtiles;
            std::vector<AttnGroup> groups;
            plan_attention_tiles(segs, rows / stack, true, gtiles, groups);
            snprintf(what, sizeof what, "%d heads stacked per tile, %zu tiles in %zu shared-prefix groups", stack,
                     gtiles.size(), groups.size());
            check_cut(gtiles, stack, what, groups);
            // Groups the planner would not make: random runs of one-tile
            // segments whatever they share, shared_keys their true common
            // prefix (0 included) or, at random, less.
            std::vector<AttnGroup> any;
            for (int i = 0; i < (int)gtiles.size();) {
                int end = i + 1, tokens = gtiles[i].tok_end - gtiles[i].tok_begin;
                int common = gtiles[i].n_blocks;
                const int want = rng.range(1, 6);
                while (end < (int)gtiles.size() && end - i < want &&
                       tokens + gtiles[end].tok_end - gtiles[end].tok_begin <= rows / stack) {
                    int c = 0;
                    while (c < std::min(common, gtiles[end].n_blocks) &&
                           indices[gtiles[i].blk_begin + c] == indices[gtiles[end].blk_begin + c])
                        ++c;
                    common = c;
                    tokens += gtiles[end].tok_end - gtiles[end].tok_begin;
                    ++end;
                }
                const int shared = common * bs;
                any.push_back({i, end, rng.below(3) == 0 ? rng.range(0, shared) : shared});
                i = end;
            }
            snprintf(what, sizeof what, "%d heads stacked per tile, %zu tiles in %zu arbitrary groups", stack,
                     gtiles.size(), any.size());
            check_cut(gtiles, stack, what, any);
        }
    }
    if (G <= 1) return;
    snprintf(what, sizeof what, "%d heads stacked per tile", G);
    check_cut(cut(rows / G, false), G, what);
    snprintf(what, sizeof what, "%d heads stacked per tile, tiles of random sizes", G);
    check_cut(cut(rows / G, true), G, what);
    snprintf(what, sizeof what, "%d heads stacked per tile, tiles of one token", G);
    check_cut(cut(1, false), G, what);
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
    // Random shapes on the tensor-core path: several segments per step of
    // random cached and query lengths (multiples of nothing), Llama-3's 4
    // query heads per kv head at head_dim 64 and 128, with a shared prefix,
    // a soft cap, or a window.
    for (int trial = 0; trial < 3; ++trial)
        for (int D : {64, 128}) {
            const int bs = trial == 0 ? 1 : trial == 1 ? 16 : 64;
            AttnCase rnd{bs, D, 8, 2, {}, {}, trial == 0};
            const int n_seg = rng.range(3, 7);
            for (int s = 0; s < n_seg; ++s) {
                rnd.cached.push_back(rng.below(3) == 0 ? 0 : rng.range(1, 400));
                rnd.queries.push_back(rng.below(4) == 0 ? rng.range(1, 4) : rng.range(5, 150));
            }
            if (trial == 1) rnd.softcap = 20.f;
            if (trial == 2) rnd.window = rng.range(20, 150);
            run_attention_case(rng, rnd, DType::BF16, trial == 0 ? "random+shared" : trial == 1 ? "random+softcap" : "random+window");
            if (D == 128) run_attention_case(rng, rnd, DType::BF16, "random", true);
        }
    // Shared-prefix groups: many short segments over one long prefix (the
    // few-shot pattern), the prefix past some of them cached privately, so
    // groups hold shared key tiles and per-member ones; with a window and a
    // soft cap too. Block sizes 1, 16 and 12 (not a power of two: the
    // kernel's division path); prefix lengths multiples of nothing.
    for (int bs : {1, 16, 12})
        for (int variant = 0; variant < 3; ++variant) {
            AttnCase few{bs, 128, 8, 2, {}, {}, true};
            if (variant == 1) few.window = 100;
            if (variant == 2) few.softcap = 20.f;
            const int prefix = rng.range(200, 400);
            for (int s = 0; s < 14; ++s) {
                few.cached.push_back(prefix + (s == 0 ? 0 : rng.range(0, 70)));
                few.queries.push_back(rng.range(1, 14));
            }
            few.queries[5] = 40; // a segment too long to join a group of 4-head rows
            run_attention_case(rng, few, DType::BF16, variant == 0 ? "few-shot" : variant == 1 ? "few-shot+window" : "few-shot+softcap");
            AttnCase few64 = few;
            few64.head_dim = 64;
            few64.n_head_kv = 8; // no stacking: tiles of 64 tokens, up to 14 segments per group
            run_attention_case(rng, few64, DType::BF16, "few-shot, no GQA");
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

namespace {

// Tiles of tile_tokens tokens over segments seg_start[s] .. seg_start[s + 1].
std::vector<int32_t> cut_raw(const std::vector<int32_t> &seg_start, const std::vector<int32_t> &indptr, int tile_tokens) {
    std::vector<AttnTile> tiles;
    for (size_t s = 0; s + 1 < seg_start.size(); ++s)
        for (int tb = seg_start[s]; tb < seg_start[s + 1]; tb += tile_tokens)
            tiles.push_back({tb, std::min(tb + tile_tokens, seg_start[s + 1]), indptr[s], indptr[s + 1] - indptr[s]});
    std::vector<int32_t> raw(tiles.size() * 4);
    memcpy(raw.data(), tiles.data(), raw.size() * 4);
    return raw;
}

// Times paged_attention over one layer of a step: segments seg_start, block
// tables indptr/indices over n_slots slots, bf16, block size bs, with each
// kernel the dispatch offers (tensor cores with and without head stacking,
// SIMT), and reports ms and TFLOP/s, counting 4 D flops per (query head,
// visible key) pair: the q.k and p.v products, causal keys only.
void time_attention(Rng &rng, const char *shape, int H, int Hkv, int D, int bs, const std::vector<int32_t> &seg_start,
                    const std::vector<int32_t> &positions, const std::vector<int32_t> &indptr,
                    const std::vector<int32_t> &indices, size_t n_slots) {
    const DType t = DType::BF16;
    const int N = (int)positions.size();
    double flops = 0;
    for (int pos : positions) flops += 4.0 * (pos + 1) * D * H;
    Buf dq(randn(rng, (size_t)N * H * D), t), dk(randn(rng, n_slots * Hkv * D), t), dv(randn(rng, n_slots * Hkv * D), t);
    Buf out((size_t)N * H * D, t);
    IntBuf dpos(positions), dind(indices);
    const int G = attention_stack_heads(t, D, H, Hkv);
    struct Variant {
        const char *name;
        int stack, force_simt;
        bool grouped; // shared-prefix groups as the step plans them
    };
    for (const Variant &v : {Variant{"tensor-core, one head per tile", 1, 0, false},
                             Variant{"tensor-core, heads stacked per tile", G, 0, false},
                             Variant{"tensor-core, heads stacked, shared-prefix groups", G, 0, true},
                             Variant{"simt", 1, 1, false}}) {
        if (v.stack > 1 && G <= 1) continue;
        const int rows = attention_tile_rows(t, D, v.force_simt);
        std::vector<int32_t> raw = cut_raw(seg_start, indptr, rows / v.stack), graw;
        if (v.grouped) {
            std::vector<AttnTile> tiles;
            std::vector<AttnGroup> groups;
            plan_attention_tiles({(int)seg_start.size() - 1, seg_start.data(), indptr.data(), indices.data(), bs},
                                 rows / v.stack, true, tiles, groups);
            if (groups.size() == tiles.size()) continue; // nothing to group: the same as the plain stacked run
            raw.resize(tiles.size() * 4);
            memcpy(raw.data(), tiles.data(), raw.size() * 4);
            graw.resize(groups.size() * 3);
            memcpy(graw.data(), groups.data(), graw.size() * 4);
        }
        IntBuf dtiles(raw), dgroups(graw);
        AttentionParams p{};
        p.q = dq.p;
        p.k_cache = dk.p;
        p.v_cache = dv.p;
        p.positions = dpos.p;
        p.tiles = (const AttnTile *)dtiles.p;
        p.block_indices = dind.p;
        p.out = out.p;
        p.n_tiles = (int)raw.size() / 4;
        p.n_head = H;
        p.n_head_kv = Hkv;
        p.head_dim = D;
        p.block_size = bs;
        p.scale = 1.f / sqrtf((float)D);
        p.force_simt = v.force_simt;
        p.stack_heads = v.stack;
        p.groups = v.grouped ? (const AttnGroup *)dgroups.p : nullptr;
        p.n_groups = (int)graw.size() / 3;
        const double ms = median_ms(launches([&] { return paged_attention(p, t, 0); }), 3, 10);
        R.info("perf attention %s bf16 %s H=%d/%d D=%d bs=%d: median %.3f ms, %.1f TFLOP/s (causal flops)", v.name,
               shape, H, Hkv, D, bs, ms, flops / (ms * 1e-3) / 1e12);
    }
}

// n_seg causal segments of len tokens from position 0, each with its own blocks.
void time_long_segments(Rng &rng, int H, int Hkv, int D, int bs, int n_seg, int len) {
    std::vector<int32_t> indptr{0}, indices, seg_start{0}, positions;
    for (int s = 0; s < n_seg; ++s) {
        for (int b = 0; b < (len + bs - 1) / bs; ++b) indices.push_back((int32_t)indices.size());
        indptr.push_back((int32_t)indices.size());
        for (int i = 0; i < len; ++i) positions.push_back(i);
        seg_start.push_back((int32_t)positions.size());
    }
    char shape[80];
    snprintf(shape, sizeof shape, "%dx%d tokens", n_seg, len);
    time_attention(rng, shape, H, Hkv, D, bs, seg_start, positions, indptr, indices, indices.size() * (size_t)bs);
}

// n_seg segments of nq query tokens at positions prefix.. over one shared
// prefix: its full blocks are the same block ids in every table, the rest private.
void time_shared_prefix(Rng &rng, int H, int Hkv, int D, int bs, int n_seg, int nq, int prefix) {
    const int prefix_blocks = prefix / bs;
    const int own_blocks = (prefix + nq + bs - 1) / bs - prefix_blocks;
    std::vector<int32_t> indptr{0}, indices, seg_start{0}, positions;
    int next = prefix_blocks;
    for (int s = 0; s < n_seg; ++s) {
        for (int b = 0; b < prefix_blocks; ++b) indices.push_back(b);
        for (int b = 0; b < own_blocks; ++b) indices.push_back(next++);
        indptr.push_back((int32_t)indices.size());
        for (int i = 0; i < nq; ++i) positions.push_back(prefix + i);
        seg_start.push_back((int32_t)positions.size());
    }
    char shape[120];
    snprintf(shape, sizeof shape, "%d segments of %d tokens over a %d-token prefix", n_seg, nq, prefix);
    time_attention(rng, shape, H, Hkv, D, bs, seg_start, positions, indptr, indices, (size_t)next * bs);
}

} // namespace

// The attention kernels on one layer of two step shapes, each for the
// Llama-3.2-1B heads (32 query heads of 64 over 8 kv heads) and the
// Llama-3.1-8B heads (32 of 128 over 8), block size 16: 8 segments of 1024
// tokens from position 0 (long sequences, no cache); and the few-shot
// pattern, many short continuations reading one shared prefix (512 x 3
// tokens over 780 for 1B's metaicl16, 64 x 8 over 2048 for 8B's 16-shot);
// and a full step of bench's workloads as the scheduler cuts them: 160
// questions of 50 tokens over a 670-token demonstration prefix (metaicl16,
// 1B heads) and 40 requests of 200 tokens over a 2000-token system prompt
// (sysprompt, 8B heads).
void attention_perf(Rng &rng) {
    time_long_segments(rng, 32, 8, 64, 16, 8, 1024);
    time_shared_prefix(rng, 32, 8, 64, 16, 512, 3, 780);
    time_shared_prefix(rng, 32, 8, 64, 16, 160, 50, 670);
    time_long_segments(rng, 32, 8, 128, 16, 8, 1024);
    time_shared_prefix(rng, 32, 8, 128, 16, 64, 8, 2048);
    time_shared_prefix(rng, 32, 8, 128, 16, 40, 200, 2000);
}

} // namespace lmscore_test
