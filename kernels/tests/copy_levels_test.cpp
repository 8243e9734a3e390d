// copy_levels_test.cpp — the levels of a step's block copies (copy_levels.h)
// without a device: a hand-made case with chains, overwrites and no-ops,
// exact; and on random copies among few blocks, that no two copies of a
// level touch a block one of them writes, and that running each level as
// the device does (every copy of a level reads before any writes) gives
// what the copies one by one in array order give. block_copy_test.cu runs
// the levels on the device.
#include <string>

#include "copy_levels.h"
#include "test_util.h"

using namespace lmscore_cuda;
using namespace lmscore_test;

namespace {

Report R;

bool level_conflicts(const CopyLevels &cl) {
    for (int k = 0; k < cl.n_levels(); ++k)
        for (int i = cl.start[k]; i < cl.start[k + 1]; ++i)
            for (int j = cl.start[k]; j < cl.start[k + 1]; ++j)
                if (i != j && (cl.dst[i] == cl.src[j] || cl.dst[i] == cl.dst[j])) return true;
    return false;
}

// A block is a vector of slots; a copy moves the first n.
using Pool = std::vector<std::vector<int>>;

Pool in_order(Pool p, const std::vector<int32_t> &src, const std::vector<int32_t> &dst, const std::vector<int32_t> &n) {
    for (size_t c = 0; c < src.size(); ++c)
        for (int i = 0; i < n[c]; ++i) p[dst[c]][i] = p[src[c]][i];
    return p;
}

// Each level as one launch: all its copies read the pool as it was before
// the level, then write.
Pool by_levels(Pool p, const CopyLevels &cl) {
    for (int k = 0; k < cl.n_levels(); ++k) {
        const Pool before = p;
        for (int c = cl.start[k]; c < cl.start[k + 1]; ++c)
            for (int i = 0; i < cl.n[c]; ++i) p[cl.dst[c]][i] = before[cl.src[c]][i];
    }
    return p;
}

void fixed_case() {
    // 0->1->2->3 (each reads the one before's destination), 4->0 after
    // 0->1 read block 0, no-ops (src == dst, n == 0), independent copies.
    const std::vector<int32_t> src{0, 1, 2, 9, 4, 5, 7, 8, 6}, dst{1, 2, 3, 9, 0, 6, 7, 10, 11},
        n{5, 7, 9, 4, 3, 2, 0, 1, 8};
    CopyLevels cl;
    plan_copy_levels(src.data(), dst.data(), n.data(), (int)src.size(), cl);
    // Level 0: 0->1, 5->6, 8->10; level 1: 1->2, 4->0, 6->11; level 2: 2->3.
    const std::vector<int32_t> want_src{0, 5, 8, 1, 4, 6, 2}, want_start{0, 3, 6, 7};
    R.check(cl.src == want_src && cl.start == want_start && !level_conflicts(cl), "copy levels: chains, overwrites, no-ops",
            "%d levels, %zu copies kept", cl.n_levels(), cl.src.size());
    CopyLevels none;
    plan_copy_levels(nullptr, nullptr, nullptr, 0, none);
    R.check(none.n_levels() == 0 && none.src.empty(), "copy levels: no copies", "%d levels", none.n_levels());
}

void random_cases() {
    Rng rng(7);
    int worst = 0;
    bool ok = true;
    for (int round = 0; round < 500 && ok; ++round) {
        const int n_blocks = rng.range(2, 12), n_copies = rng.range(1, 40), bs = rng.range(1, 16);
        Pool p(n_blocks, std::vector<int>(bs));
        for (int b = 0; b < n_blocks; ++b)
            for (int i = 0; i < bs; ++i) p[b][i] = b * 1000 + i;
        std::vector<int32_t> src(n_copies), dst(n_copies), n(n_copies);
        for (int c = 0; c < n_copies; ++c) {
            src[c] = rng.range(0, n_blocks - 1);
            dst[c] = rng.range(0, n_blocks - 1);
            n[c] = rng.range(0, bs);
        }
        CopyLevels cl;
        plan_copy_levels(src.data(), dst.data(), n.data(), n_copies, cl);
        ok = !level_conflicts(cl) && by_levels(p, cl) == in_order(p, src, dst, n);
        worst = std::max(worst, cl.n_levels());
    }
    R.check(ok, "copy levels: 500 random steps", "%s (up to %d levels)",
            ok ? "levels run as launches give the in-order result, no conflict inside a level"
               : "a level conflicts or differs from the in-order copy",
            worst);
}

} // namespace

int main() {
    fixed_case();
    random_cases();
    return R.finish("copy_levels_test");
}
