// kv_pool.cpp — the paged KV pool: every layer's K and V for up to n_blocks
// blocks. n_blocks is a ceiling: the pool starts at one segment and grows,
// by reallocation, as steps name higher block ids.
#include <algorithm>

#include "internal.h"

using lmscore_cuda::fail;

namespace {

// The pool starts with, and grows by at least, about this many bytes; it
// also at least doubles, so a pool reaching its ceiling is copied O(log) times.
constexpr int64_t kSegmentBytes = int64_t(64) << 20;

lmscore_status check_geometry(const lmscore_model *model, int32_t block_size, int64_t n_blocks) {
    if (!model) return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: model is null");
    if (block_size <= 0) return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: block_size %d must be positive", block_size);
    if (n_blocks <= 0) return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: n_blocks %lld must be positive", (long long)n_blocks);
    // Slots are int32 in the batch.
    if ((int64_t)block_size * n_blocks > INT32_MAX)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: %lld blocks of %d slots overflow int32 slot numbers",
                    (long long)n_blocks, block_size);
    return LMSCORE_STATUS_OK;
}

int64_t block_bytes(const lmscore_model *model, int32_t block_size) {
    return 2LL * model->hp.n_layer * block_size * model->kv_dim * (int64_t)lmscore_cuda::dtype_size(model->dtype);
}

// grow reallocates kv's planes for n_alloc blocks (> kv->n_alloc), copying
// the blocks it had and zeroing the rest. On failure kv is unchanged.
lmscore_status grow(lmscore_kv *kv, int64_t n_alloc) {
    const lmscore_model *m = kv->model;
    const int64_t esize = (int64_t)lmscore_cuda::dtype_size(m->dtype);
    const int64_t row = (int64_t)kv->block_size * m->kv_dim * esize; // one block of one plane
    const size_t old_pitch = (size_t)(kv->n_alloc * row), new_pitch = (size_t)(n_alloc * row);
    const size_t n_planes = 2 * (size_t)m->hp.n_layer;
    const int64_t bytes = (int64_t)new_pitch * (int64_t)n_planes;
    void *data = nullptr;
    cudaError_t err = cudaMalloc(&data, (size_t)bytes);
    if (err != cudaSuccess) {
        char what[192];
        snprintf(what, sizeof what, "growing the KV pool from %lld to %lld of its %d blocks x %d slots (%lld bytes)",
                 (long long)kv->n_alloc, (long long)n_alloc, kv->n_blocks, kv->block_size, (long long)bytes);
        return lmscore_cuda::cuda_fail(err, what);
    }
    // Zeros rather than garbage: a scheduler bug that reads an unwritten
    // slot then gives a wrong score, not a NaN that depends on the allocator.
    // Steps run on their own streams: the old planes are final only once
    // the device is idle.
    // Plane by plane, not cudaMemcpy2D: a plane may exceed the 2D copies' pitch limit.
    err = cudaDeviceSynchronize();
    for (size_t i = 0; i < n_planes && err == cudaSuccess; i++) {
        char *dst = (char *)data + i * new_pitch;
        if (old_pitch > 0)
            err = cudaMemcpy(dst, (const char *)kv->data + i * old_pitch, old_pitch, cudaMemcpyDeviceToDevice);
        if (err == cudaSuccess) err = cudaMemset(dst + old_pitch, 0, new_pitch - old_pitch);
    }
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        cudaFree(data);
        return lmscore_cuda::cuda_fail(err, "copying the KV pool into its larger allocation");
    }
    cudaFree(kv->data);
    kv->data = data;
    kv->n_alloc = n_alloc;
    kv->plane_elems = n_alloc * kv->block_size * m->kv_dim;
    return LMSCORE_STATUS_OK;
}

int64_t segment_blocks(const lmscore_kv *kv) {
    return std::max<int64_t>(1, kSegmentBytes / block_bytes(kv->model, kv->block_size));
}

} // namespace

namespace lmscore_cuda {

lmscore_status kv_reserve_batch(lmscore_kv *kv, const lmscore_batch *b) {
    int64_t top = -1;
    const int32_t n_idx = b->n_segments > 0 ? b->block_indptr[b->n_segments] : 0;
    for (int32_t i = 0; i < n_idx; i++) top = std::max<int64_t>(top, b->block_indices[i]);
    for (int32_t i = 0; i < b->n_copies; i++) top = std::max<int64_t>(top, std::max(b->copy_src[i], b->copy_dst[i]));
    const int64_t need = top + 1;
    if (need <= kv->n_alloc) return LMSCORE_STATUS_OK;
    const int64_t want = std::min<int64_t>(kv->n_blocks, std::max({need, 2 * kv->n_alloc, kv->n_alloc + segment_blocks(kv)}));
    lmscore_status st = grow(kv, want);
    if (st != LMSCORE_STATUS_OK && want > need) {
        // Doubling is a convenience: try exactly what the step needs.
        st = grow(kv, need);
        if (st == LMSCORE_STATUS_OK) clear_error();
    }
    return st;
}

} // namespace lmscore_cuda

extern "C" {

LMSCORE_API lmscore_status lmscore_kv_block_bytes(const lmscore_model *model, int32_t block_size,
                                                  int64_t *out_bytes) {
    lmscore_cuda::clear_error();
    lmscore_status st = check_geometry(model, block_size, 1);
    if (st != LMSCORE_STATUS_OK) return st;
    if (!out_bytes) return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: out_bytes is null");
    *out_bytes = block_bytes(model, block_size);
    return LMSCORE_STATUS_OK;
}

LMSCORE_API lmscore_status lmscore_kv_init(lmscore_model *model, int32_t block_size, int32_t n_blocks,
                                           lmscore_kv **out) {
    lmscore_cuda::clear_error();
    if (!out) return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: out is null");
    *out = nullptr;
    lmscore_status st = check_geometry(model, block_size, n_blocks);
    if (st != LMSCORE_STATUS_OK) return st;
    st = lmscore_cuda::use_device(model->device);
    if (st != LMSCORE_STATUS_OK) return st;

    lmscore_kv *kv = new (std::nothrow) lmscore_kv();
    if (!kv) return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "kv: out of host memory");
    kv->model = model;
    kv->block_size = block_size;
    kv->n_blocks = n_blocks;
    // One segment up front: a broken device fails here, not in the first step.
    st = grow(kv, std::min<int64_t>(n_blocks, segment_blocks(kv)));
    if (st != LMSCORE_STATUS_OK) {
        delete kv;
        return st;
    }
    *out = kv;
    return LMSCORE_STATUS_OK;
}

LMSCORE_API void lmscore_kv_free(lmscore_kv *kv) {
    if (!kv) return;
    if (cudaSetDevice(kv->model->device) == cudaSuccess) cudaFree(kv->data);
    cudaGetLastError();
    delete kv;
}

} // extern "C"
