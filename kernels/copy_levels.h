// copy_levels.h — a step's block copies, put into levels that run one
// launch each. The ABI runs copies in array order; a copy depends on an
// earlier one when it reads that one's destination, writes its source
// (which that one must read first) or writes its destination again. Every
// copy goes one level past the deepest earlier copy it depends on, so the
// copies of a level touch no block another one of the level writes and may
// run in parallel, and the levels in turn keep the ABI's order. Usually
// there is one level; a branch whose own partial block is copied again by
// its children in the same step makes a second.
#pragma once

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace lmscore_cuda {

struct CopyLevels {
    // The copies that move anything (src != dst, n > 0), level by level,
    // in array order within a level.
    std::vector<int32_t> src, dst, n;
    std::vector<int32_t> start; // level k is [start[k], start[k+1])
    int n_levels() const { return start.empty() ? 0 : (int)start.size() - 1; }
};

// Expected O(count), with two hash maps keyed by block id (ids are below
// the pool's size; the planner's steps hold a few hundred copies).
inline void plan_copy_levels(const int32_t *src, const int32_t *dst, const int32_t *n, int count, CopyLevels &out) {
    out.src.clear();
    out.dst.clear();
    out.n.clear();
    out.start.clear();
    std::vector<int32_t> level((size_t)count, -1);
    std::unordered_map<int32_t, int32_t> written, read; // block -> deepest level that writes / reads it
    int32_t top = -1;
    auto deepest = [](const std::unordered_map<int32_t, int32_t> &m, int32_t blk) {
        const auto it = m.find(blk);
        return it == m.end() ? -1 : it->second;
    };
    for (int i = 0; i < count; ++i) {
        if (src[i] == dst[i] || n[i] == 0) continue;
        const int32_t lv =
            1 + std::max(deepest(written, src[i]), std::max(deepest(written, dst[i]), deepest(read, dst[i])));
        level[(size_t)i] = lv;
        written[dst[i]] = lv; // past every earlier write of dst, by its rule
        read[src[i]] = std::max(deepest(read, src[i]), lv);
        top = std::max(top, lv);
    }
    // Counting sort by level, stable: array order within each level.
    out.start.assign((size_t)top + 2, 0);
    for (int i = 0; i < count; ++i)
        if (level[(size_t)i] >= 0) out.start[(size_t)level[(size_t)i] + 1]++;
    for (size_t k = 1; k < out.start.size(); ++k) out.start[k] += out.start[k - 1];
    const size_t kept = out.start.empty() ? 0 : (size_t)out.start.back();
    out.src.resize(kept);
    out.dst.resize(kept);
    out.n.resize(kept);
    std::vector<int32_t> at(out.start.begin(), out.start.end());
    for (int i = 0; i < count; ++i) {
        const int32_t lv = level[(size_t)i];
        if (lv < 0) continue;
        const int32_t k = at[(size_t)lv]++;
        out.src[(size_t)k] = src[i];
        out.dst[(size_t)k] = dst[i];
        out.n[(size_t)k] = n[i];
    }
}

} // namespace lmscore_cuda
