// attention_tiles.cpp — see attention_tiles.h.
#include "attention_tiles.h"

#include <algorithm>

namespace lmscore_cuda {

namespace {

// Leading entries that the block tables of segments a and b have in common.
int common_blocks(const AttnSegments &segs, int a, int b) {
    const int32_t *ta = segs.block_indices + segs.block_indptr[a], *tb = segs.block_indices + segs.block_indptr[b];
    const int n = std::min(segs.block_indptr[a + 1] - segs.block_indptr[a], segs.block_indptr[b + 1] - segs.block_indptr[b]);
    int i = 0;
    while (i < n && ta[i] == tb[i]) ++i;
    return i;
}

} // namespace

void plan_attention_tiles(const AttnSegments &segs, int tile_tokens, bool group, std::vector<AttnTile> &tiles,
                          std::vector<AttnGroup> &groups) {
    tiles.clear();
    groups.clear();
    // The open group: its first segment and its tokens so far.
    int first_seg = -1, group_tokens = 0;
    for (int seg = 0; seg < segs.n_segments; ++seg) {
        const int t0 = segs.token_start[seg], t1 = segs.token_start[seg + 1];
        const int blk = segs.block_indptr[seg], n_blk = segs.block_indptr[seg + 1] - blk;
        const int tile_begin = (int)tiles.size();
        for (int t = t0; t < t1; t += tile_tokens) tiles.push_back({t, std::min(t + tile_tokens, t1), blk, n_blk});
        if (!group || t1 == t0) continue;
        const int n_tok = t1 - t0;
        if (first_seg >= 0 && n_tok <= tile_tokens && group_tokens + n_tok <= tile_tokens) {
            const int shared = common_blocks(segs, first_seg, seg) * segs.block_size;
            AttnGroup &open = groups.back();
            const int merged = open.tile_end - open.tile_begin == 1 ? shared : std::min(open.shared_keys, shared);
            if (merged >= kAttnMinSharedKeys) {
                open.tile_end = (int)tiles.size();
                open.shared_keys = merged;
                group_tokens += n_tok;
                continue;
            }
        }
        // A group of its own for each of this segment's tiles; the last one
        // stays open to the next segment when the segment is a single tile.
        for (int i = tile_begin; i < (int)tiles.size(); ++i) groups.push_back({i, i + 1, 0});
        const bool one_tile = (int)tiles.size() - tile_begin == 1;
        first_seg = one_tile ? seg : -1;
        group_tokens = one_tile ? n_tok : 0;
    }
}

} // namespace lmscore_cuda
