// attention_tiles.h — the host's plan of a step's attention work items: its
// segments cut into tiles (AttnTile) and, on the tensor-core path, runs of
// short segments over a common prefix grouped into one work item
// (AttnGroup). Pure host code, no CUDA: kernels/tests/attention_tiles_test
// checks it without a device.
#pragma once

#include <stdint.h>

#include <vector>

#include "kernels.h"

namespace lmscore_cuda {

// A step's segments as lmscore_batch gives them: segment s holds tokens
// token_start[s] .. token_start[s + 1] and its block table is
// block_indices[block_indptr[s] .. block_indptr[s + 1]).
struct AttnSegments {
    int n_segments;
    const int32_t *token_start;  // (n_segments + 1)
    const int32_t *block_indptr; // (n_segments + 1)
    const int32_t *block_indices;
    int block_size;
};

// Groups cover a shared prefix of at least this many positions: two key
// tiles of the kernel. Below that the per-member passes cost as much as the
// shared ones save.
constexpr int kAttnMinSharedKeys = 128;

// Cuts every segment into tiles of at most tile_tokens consecutive tokens
// (attention_tile_rows / stack_heads). With group set, also fills groups: the tiles
// in order, each a group of its own, except that consecutive segments of at
// most tile_tokens tokens (one tile each) whose tables share their first
// blocks, kAttnMinSharedKeys positions or more, join one group while their
// tokens fit one tile; shared_keys is the common prefix of the group's
// tables, in positions. Without group, groups is left empty.
void plan_attention_tiles(const AttnSegments &segs, int tile_tokens, bool group, std::vector<AttnTile> &tiles,
                          std::vector<AttnGroup> &groups);

} // namespace lmscore_cuda
