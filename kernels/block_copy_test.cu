// block_copy_test.cu — block_copy.cu (copy-on-write of the first n slots of
// KV blocks, every layer's K and V plane) against a CPU copy, bitwise, for
// block sizes 1, 16 and 64; copies that depend on each other, run level by
// level (copy_levels.h, whose rules tests/copy_levels_test.cpp checks on
// the host), against the same copies one by one in order; and the timing.
#include "copy_levels.h"
#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

// pool is (n_planes, n_blocks * bs, slot_elems): for each copy c, the first
// n_tok[c] slots of block src[c] overwrite block dst[c] in every plane.
static std::vector<float> block_copy_ref(std::vector<float> pool, int n_planes, int64_t plane, int bs, int slot_elems,
                                         const std::vector<int32_t> &src, const std::vector<int32_t> &dst,
                                         const std::vector<int32_t> &n_tok) {
    const std::vector<float> before = pool;
    for (int pl = 0; pl < n_planes; ++pl)
        for (size_t c = 0; c < src.size(); ++c)
            for (int64_t i = 0; i < (int64_t)n_tok[c] * slot_elems; ++i)
                pool[pl * plane + (int64_t)dst[c] * bs * slot_elems + i] = before[pl * plane + (int64_t)src[c] * bs * slot_elems + i];
    return pool;
}

void copy_levels_check(Rng &rng);

void block_copy_check(Rng &rng) {
    for (DType t : {DType::F32, DType::BF16})
        for (int bs : {1, 16, 64}) {
            const int n_layer = 3, kv_dim = 48, n_blocks = 20;
            const int64_t plane = (int64_t)n_blocks * bs * kv_dim;
            std::vector<float> pool = stored(randn(rng, (size_t)plane * 2 * n_layer), t);
            // A full block, a random part of one (0 included) and one past half.
            std::vector<int32_t> src{3, 7, 11}, dst{4, 0, 19}, nt{bs, rng.range(0, bs), std::max(1, bs / 2 + 1)};
            Buf dp(pool, t);
            IntBuf ds(src), dd(dst), dn(nt);
            CUDA_OK(block_copy(dp.p, t, 2 * n_layer, plane, bs, kv_dim, ds.p, dd.p, dn.p, 3, 0));
            sync_check("block_copy");
            const std::vector<float> ref = block_copy_ref(pool, 2 * n_layer, plane, bs, kv_dim, src, dst, nt);
            const std::vector<float> got = dp.download();
            // A copy does no arithmetic: bitwise, every other slot untouched.
            const bool same = memcmp(got.data(), ref.data(), got.size() * 4) == 0;
            char name[64];
            snprintf(name, sizeof name, "block_copy %s bs=%d", dname(t), bs);
            R.check(same, name, "%s", same ? "bitwise equal, other slots untouched" : "differs from the reference");
        }
    copy_levels_check(rng);
}

// The copies one by one, in array order: the ABI's reading of a step's copies.
static std::vector<float> ordered_copy_ref(std::vector<float> pool, int n_planes, int64_t plane, int bs, int slot_elems,
                                           const std::vector<int32_t> &src, const std::vector<int32_t> &dst,
                                           const std::vector<int32_t> &n_tok) {
    for (size_t c = 0; c < src.size(); ++c)
        for (int pl = 0; pl < n_planes; ++pl)
            for (int64_t i = 0; i < (int64_t)n_tok[c] * slot_elems; ++i)
                pool[pl * plane + (int64_t)dst[c] * bs * slot_elems + i] = pool[pl * plane + (int64_t)src[c] * bs * slot_elems + i];
    return pool;
}

void copy_levels_check(Rng &rng) {
    // Random copies among few blocks (so that many depend on each other),
    // level by level on the device, against the in-order copy.
    for (DType t : {DType::F32, DType::BF16})
        for (int bs : {1, 16, 64}) {
            const int n_planes = 4, kv_dim = 48, n_blocks = 12, n_copies = 40;
            const int64_t plane = (int64_t)n_blocks * bs * kv_dim;
            std::vector<float> pool = stored(randn(rng, (size_t)plane * n_planes), t);
            std::vector<int32_t> src(n_copies), dst(n_copies), nt(n_copies);
            for (int c = 0; c < n_copies; ++c) {
                src[c] = rng.range(0, n_blocks - 1);
                dst[c] = rng.range(0, n_blocks - 1);
                nt[c] = rng.range(0, bs);
            }
            CopyLevels cl;
            plan_copy_levels(src.data(), dst.data(), nt.data(), n_copies, cl);
            Buf dp(pool, t);
            IntBuf ds(cl.src), dd(cl.dst), dn(cl.n);
            for (int k = 0; k < cl.n_levels(); ++k) {
                const int at = cl.start[k];
                CUDA_OK(block_copy(dp.p, t, n_planes, plane, bs, kv_dim, ds.p + at, dd.p + at, dn.p + at,
                                   cl.start[k + 1] - at, 0));
            }
            sync_check("block_copy by levels");
            const std::vector<float> ref = ordered_copy_ref(pool, n_planes, plane, bs, kv_dim, src, dst, nt);
            const std::vector<float> got = dp.download();
            const bool same = memcmp(got.data(), ref.data(), got.size() * 4) == 0;
            char name[80];
            snprintf(name, sizeof name, "block_copy by levels %s bs=%d", dname(t), bs);
            R.check(same, name, "%d copies in %d levels: %s", n_copies, cl.n_levels(),
                    same ? "bitwise the in-order copy" : "differs from the in-order copy");
        }
}

// 256 full blocks of 16 slots of a Llama-3.2-1B pool (16 layers, K and V,
// 8 KV heads of 64, bf16): a large copy-on-write step.
void block_copy_perf(Rng &) {
    const int n_planes = 32, bs = 16, kv_dim = 512, n_blocks = 1024, n_copies = 256;
    const int64_t plane = (int64_t)n_blocks * bs * kv_dim;
    Buf pool((size_t)plane * n_planes, DType::BF16);
    std::vector<int32_t> src(n_copies), dst(n_copies), nt(n_copies, bs);
    for (int c = 0; c < n_copies; ++c) {
        src[c] = c;
        dst[c] = n_blocks - 1 - c; // disjoint from every source
    }
    IntBuf ds(src), dd(dst), dn(nt);
    const double ms = median_ms(launches([&] {
        return block_copy(pool.p, DType::BF16, n_planes, plane, bs, kv_dim, ds.p, dd.p, dn.p, n_copies, 0);
    }), 3, 10);
    const double bytes = 2.0 * n_planes * n_copies * bs * kv_dim * 2; // read + write
    R.info("perf block_copy bf16 %d blocks of %d slots x %d planes: median %.3f ms, %.0f GB/s", n_copies, bs, n_planes, ms,
           gb_per_s(bytes, ms));
}

} // namespace lmscore_test
