#include "kv.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define LMSCORE_KV_MMAP 1
#endif

namespace lmscore {

namespace {

// Memory is committed about this many bytes (all layers) at a time: growth
// is rare, and small next to any useful budget.
constexpr int64_t kSegmentBytes = int64_t(4) << 20;

} // namespace

int64_t kv_block_floats(const Hparams &hp, int32_t block_size) {
    return checked_mul(checked_mul(2 * int64_t(hp.n_head_kv), hp.head_dim, "KV block"), block_size,
                       "KV block");
}

std::unique_ptr<lmscore_kv> make_kv(const lmscore_model &m, int32_t block_size, int32_t n_blocks) {
    if (block_size <= 0)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: block_size %d, want > 0", int(block_size));
    if (n_blocks <= 0)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: n_blocks %d, want > 0", int(n_blocks));
    // Slots are int32 in the batch arrays.
    if (int64_t(block_size) * n_blocks > INT32_MAX)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT,
             "kv: %d blocks of %d slots exceed the int32 slot range", int(n_blocks), int(block_size));
    auto kv = std::make_unique<lmscore_kv>();
    kv->model = &m;
    kv->block_size = block_size;
    kv->n_blocks = n_blocks;
    kv->block_floats = kv_block_floats(m.hp, block_size);
    const int64_t total = checked_mul(checked_mul(kv->block_floats, n_blocks, "KV pool"), m.hp.n_layer, "KV pool");
    const int64_t bytes = checked_mul(total, int64_t(sizeof(float)), "KV pool");
    const int64_t block_bytes = kv->block_floats * m.hp.n_layer * int64_t(sizeof(float));
    kv->seg_blocks = std::max<int64_t>(1, kSegmentBytes / block_bytes);
#ifdef LMSCORE_KV_MMAP
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#ifdef MAP_NORESERVE
    flags |= MAP_NORESERVE;
#endif
    // Address space only: PROT_NONE pages count against no memory limit
    // until kv_reserve makes them writable.
    void *p = mmap(nullptr, size_t(bytes), PROT_NONE, flags, -1, 0);
    if (p == MAP_FAILED)
        fail(LMSCORE_STATUS_OUT_OF_MEMORY, "kv: mapping %lld bytes of address space for %d blocks: %s",
             (long long)bytes, int(n_blocks), std::strerror(errno));
    kv->data = static_cast<float *>(p);
    kv->map_bytes = size_t(bytes);
#else
    // Zeroed so that a plan that reads a never-written slot gets the same
    // (wrong) answer every time rather than whatever memory held.
    kv->heap.reset(size_t(total), /*zero=*/true);
    kv->data = kv->heap.data();
    kv->reserved = n_blocks;
#endif
    return kv;
}

void kv_reserve(lmscore_kv &kv, int64_t n) {
    if (n <= kv.reserved) return;
#ifdef LMSCORE_KV_MMAP
    const int64_t want = std::min<int64_t>(round_up(n, kv.seg_blocks), kv.n_blocks);
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t lo_map = uintptr_t(kv.data), hi_map = lo_map + kv.map_bytes;
    for (int l = 0; l < kv.model->hp.n_layer; l++) {
        // Fresh anonymous pages read as zeros: a plan that reads a
        // never-written slot gets the same (wrong) answer every time.
        const uintptr_t lo = uintptr_t(kv.block(l, int32_t(kv.reserved))) / page * page;
        const uintptr_t hi = std::min(hi_map, (uintptr_t(kv.block(l, 0) + want * kv.block_floats) + page - 1) / page * page);
        void *at = reinterpret_cast<void *>(lo);
        int rc = mprotect(at, hi - lo, PROT_READ | PROT_WRITE);
#ifdef MADV_POPULATE_WRITE
        // Commit now, so that memory that is not there is this error rather
        // than the OOM killer in the middle of a step (EINVAL: an old kernel).
        if (rc == 0 && madvise(at, hi - lo, MADV_POPULATE_WRITE) != 0 && errno != EINVAL) rc = -1;
#endif
        if (rc != 0) {
            const int err = errno;
            // Back to no memory, so the pool stays as it was: blocks 0..reserved-1.
            for (int k = 0; k <= l; k++) {
                const uintptr_t a = (uintptr_t(kv.block(k, int32_t(kv.reserved))) + page - 1) / page * page;
                const uintptr_t b = std::min(hi_map, uintptr_t(kv.block(k, 0) + want * kv.block_floats) / page * page);
                if (b > a) {
                    madvise(reinterpret_cast<void *>(a), b - a, MADV_DONTNEED);
                    mprotect(reinterpret_cast<void *>(a), b - a, PROT_NONE);
                }
            }
            fail(LMSCORE_STATUS_OUT_OF_MEMORY,
                 "kv: out of memory growing the KV pool from %lld to %lld of its %d blocks (%lld bytes more): %s",
                 (long long)kv.reserved, (long long)want, int(kv.n_blocks),
                 (long long)((want - kv.reserved) * kv.block_floats * kv.model->hp.n_layer * int64_t(sizeof(float))),
                 std::strerror(err));
        }
    }
    kv.reserved = want;
#else
    (void)n;
#endif
}

void kv_reserve_batch(lmscore_kv &kv, const lmscore_batch &b) {
    int64_t top = -1;
    const int32_t n_idx = b.n_segments > 0 ? b.block_indptr[b.n_segments] : 0;
    for (int32_t i = 0; i < n_idx; i++) top = std::max<int64_t>(top, b.block_indices[i]);
    for (int32_t i = 0; i < b.n_copies; i++)
        top = std::max<int64_t>(top, std::max(b.copy_src[i], b.copy_dst[i]));
    kv_reserve(kv, top + 1);
}

} // namespace lmscore

lmscore_kv::~lmscore_kv() {
#ifdef LMSCORE_KV_MMAP
    if (map_bytes != 0) munmap(data, map_bytes);
#endif
}
