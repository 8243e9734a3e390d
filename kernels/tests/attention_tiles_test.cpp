// attention_tiles_test.cpp — the host's attention plan (attention_tiles.h)
// without a device: exact tiles and groups for a hand-made step (which
// segments share a prefix, which are too long or share too little), and the
// plan's invariants on random steps; and the launch's choice of K/V stages
// per device. What the kernel does with a group is checked on the device by
// attention_test.cu.
#include <algorithm>
#include <string>

#include "attention_tiles.h"
#include "test_util.h"

using namespace lmscore_cuda;
using namespace lmscore_test;

namespace {

Report R;

struct Step {
    std::vector<int32_t> token_start{0}, indptr{0}, indices;
    int block_size;
    explicit Step(int bs) : block_size(bs) {}
    void add(int n_tokens, const std::vector<int32_t> &table) {
        token_start.push_back(token_start.back() + n_tokens);
        indices.insert(indices.end(), table.begin(), table.end());
        indptr.push_back((int32_t)indices.size());
    }
    AttnSegments segs() const {
        return {(int)token_start.size() - 1, token_start.data(), indptr.data(), indices.data(), block_size};
    }
};

std::vector<int32_t> run_of(int first, int n, std::vector<int32_t> tail = {}) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; ++i) t.push_back(first + i);
    t.insert(t.end(), tail.begin(), tail.end());
    return t;
}

std::string show(const std::vector<AttnGroup> &groups) {
    std::string s;
    for (const AttnGroup &g : groups)
        s += "{" + std::to_string(g.tile_begin) + "," + std::to_string(g.tile_end) + "," + std::to_string(g.shared_keys) + "}";
    return s;
}

void exact_plan() {
    Step st(16);
    st.add(5, run_of(7, 9, {100}));  // 0: 9 blocks = 144 keys shared with 1
    st.add(6, run_of(7, 9, {101}));  // 1
    st.add(8, run_of(7, 9, {102}));  // 2: 5 + 6 + 8 > 16 tokens: a new group
    st.add(3, run_of(7, 9, {103}));  // 3
    st.add(40, run_of(7, 9, {104, 105, 106})); // 4: three tiles, each its own group
    st.add(2, run_of(7, 6, {200}));  // 5: 6 blocks = 96 keys in common with 6: too few
    st.add(2, run_of(7, 6, {201}));  // 6
    st.add(2, run_of(50, 10, {300})); // 7
    st.add(2, run_of(50, 8, {301}));  // 8: 8 blocks = 128 keys with 7
    st.add(1, run_of(60, 10, {400})); // 9
    st.add(1, run_of(60, 10, {401})); // 10: 160 keys with 9
    st.add(1, run_of(60, 8, {402}));  // 11: 128 keys with 9: the group's prefix shrinks
    std::vector<AttnTile> tiles;
    std::vector<AttnGroup> groups;
    plan_attention_tiles(st.segs(), 16, true, tiles, groups);
    const std::vector<AttnGroup> want{{0, 2, 144}, {2, 4, 144}, {4, 5, 0}, {5, 6, 0}, {6, 7, 0}, {7, 8, 0},
                                      {8, 9, 0},   {9, 11, 128}, {11, 14, 128}};
    R.check(show(groups) == show(want), "attention_tiles exact groups", "got %s, want %s", show(groups).c_str(),
            show(want).c_str());
    R.check(tiles.size() == 14 && tiles[4].tok_begin == 22 && tiles[4].tok_end == 38 && tiles[6].tok_end == 62 &&
                tiles[6].blk_begin == 40 && tiles[6].n_blocks == 12,
            "attention_tiles exact tiles", "%zu tiles; the 40-token segment's last tile [%d, %d) table at %d of %d",
            tiles.size(), tiles[6].tok_begin, tiles[6].tok_end, tiles[6].blk_begin, tiles[6].n_blocks);
    plan_attention_tiles(st.segs(), 16, false, tiles, groups);
    R.check(groups.empty() && tiles.size() == 14, "attention_tiles without groups", "%zu groups, %zu tiles",
            groups.size(), tiles.size());
}

// Random steps: the tiles cut every segment in order into pieces of at
// most tile_tokens; the groups cover the tiles in order; a group of several
// holds whole one-tile segments, at most tile_tokens tokens, whose tables
// all agree with the first on [0, shared_keys), shared_keys at least
// kAttnMinSharedKeys and a whole number of blocks.
void random_plans() {
    Rng rng(20261202);
    int bad = 0, grouped = 0, steps = 0;
    std::string first_bad;
    for (int trial = 0; trial < 500; ++trial) {
        const int bs = std::vector<int>{1, 16, 64}[rng.below(3)];
        const int tile_tokens = std::vector<int>{64, 32, 16, 8}[rng.below(4)];
        Step st(bs);
        const int n_seg = rng.range(1, 30);
        int next_block = 1000;
        std::vector<int32_t> prefix = run_of(0, rng.range(0, 600 / bs + 1));
        for (int s = 0; s < n_seg; ++s) {
            const int n_tok = rng.below(4) == 0 ? rng.range(1, 150) : rng.range(1, 20);
            std::vector<int32_t> table(prefix.begin(), prefix.begin() + rng.range(0, (int)prefix.size()));
            if (rng.below(5) == 0) table.clear();
            for (int b = rng.range(1, 4); b > 0; --b) table.push_back(next_block++);
            st.add(n_tok, table);
        }
        std::vector<AttnTile> tiles;
        std::vector<AttnGroup> groups;
        plan_attention_tiles(st.segs(), tile_tokens, true, tiles, groups);
        ++steps;
        auto fail = [&](const char *why) {
            if (!bad++) first_bad = std::string(why) + " (trial " + std::to_string(trial) + ")";
        };
        // Tiles.
        size_t ti = 0;
        for (int s = 0; s < n_seg; ++s)
            for (int t = st.token_start[s]; t < st.token_start[s + 1]; t += tile_tokens, ++ti)
                if (ti >= tiles.size() || tiles[ti].tok_begin != t ||
                    tiles[ti].tok_end != std::min(t + tile_tokens, st.token_start[s + 1]) ||
                    tiles[ti].blk_begin != st.indptr[s] || tiles[ti].n_blocks != st.indptr[s + 1] - st.indptr[s])
                    fail("tiles do not cut the segments in order");
        if (ti != tiles.size()) fail("extra tiles");
        // Groups.
        int covered = 0;
        for (const AttnGroup &g : groups) {
            if (g.tile_begin != covered || g.tile_end <= g.tile_begin) fail("groups do not cover the tiles in order");
            covered = g.tile_end;
            if (g.tile_end - g.tile_begin == 1) continue;
            ++grouped;
            const AttnTile &first = tiles[g.tile_begin];
            int tokens = 0;
            if (g.shared_keys < kAttnMinSharedKeys || g.shared_keys % bs) fail("shared prefix too short or not whole blocks");
            for (int i = g.tile_begin; i < g.tile_end; ++i) {
                const AttnTile &m = tiles[i];
                tokens += m.tok_end - m.tok_begin;
                // A whole segment: its tile starts and ends a segment.
                const bool whole = std::count(st.token_start.begin(), st.token_start.end(), m.tok_begin) &&
                                   std::count(st.token_start.begin(), st.token_start.end(), m.tok_end);
                if (!whole) fail("a group member is not a whole segment");
                if (g.shared_keys / bs > std::min(m.n_blocks, first.n_blocks)) fail("shared prefix past a table");
                for (int b = 0; b < g.shared_keys / bs && b < std::min(m.n_blocks, first.n_blocks); ++b)
                    if (st.indices[m.blk_begin + b] != st.indices[first.blk_begin + b]) fail("tables differ inside the shared prefix");
            }
            if (tokens > tile_tokens) fail("a group holds more than one tile of tokens");
        }
        if (covered != (int)tiles.size()) fail("groups do not cover every tile");
    }
    R.check(bad == 0 && grouped > 0, "attention_tiles random plans", "%d of %d steps broke an invariant%s%s; %d groups of several tiles",
            bad, steps, bad ? ", first: " : "", first_bad.c_str(), grouped);
}

// Three K/V stages only where the blocks per SM the kernel is cut for fit
// with them: at head_dim 64 three blocks of 63 KiB of stages and Q (plus
// the static arrays and the runtime's 1 KB each) fit sm_90's 228 KB but not
// sm_80's 164 KB or sm_86/89's 100 KB; at 128 two blocks of three stages
// (119 KiB each) fit none of them.
void stage_choice() {
    struct Case {
        const char *device;
        size_t smem_per_sm;
        int want64, want128;
    };
    const Case cases[] = {{"sm_90 (H100, H200)", 233472, 3, 2},
                          {"sm_80 (A100)", 167936, 2, 2},
                          {"sm_86/89", 102400, 2, 2}};
    for (const Case &c : cases) {
        const int s64 = attention_tc_stages(64, c.smem_per_sm), s128 = attention_tc_stages(128, c.smem_per_sm);
        R.check(s64 == c.want64 && s128 == c.want128, "attention_tc stages", "%s, %zu B per SM: %d stages at D 64 (want %d), %d at 128 (want %d)",
                c.device, c.smem_per_sm, s64, c.want64, s128, c.want128);
    }
    // More shared memory never takes a stage away.
    bool monotone = true;
    for (size_t smem = 64 << 10; smem <= 512 << 10; smem += 1 << 10)
        monotone = monotone && attention_tc_stages(64, smem) <= attention_tc_stages(64, smem + 1024) &&
                   attention_tc_stages(128, smem) <= attention_tc_stages(128, smem + 1024);
    R.check(monotone, "attention_tc stages monotone", "the stage count never drops as shared memory per SM grows");
}

} // namespace

int main() {
    exact_plan();
    random_plans();
    stage_choice();
    return R.finish("attention_tiles_test");
}
