// kv_pool.cpp — the paged KV pool: every layer's K and V for n_blocks blocks.
#include "internal.h"

using lmscore_cuda::fail;

namespace {

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

} // namespace

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

    const int64_t bytes = block_bytes(model, block_size) * n_blocks;
    void *data = nullptr;
    cudaError_t err = cudaMalloc(&data, (size_t)bytes);
    if (err != cudaSuccess) {
        char what[128];
        snprintf(what, sizeof what, "allocating a KV pool of %d blocks x %d slots (%lld bytes)", n_blocks, block_size,
                 (long long)bytes);
        return lmscore_cuda::cuda_fail(err, what);
    }
    // Zeros rather than garbage: a scheduler bug that reads an unwritten
    // slot then gives a wrong score, not a NaN that depends on the allocator.
    err = cudaMemset(data, 0, (size_t)bytes);
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        cudaFree(data);
        return lmscore_cuda::cuda_fail(err, "clearing the KV pool");
    }
    lmscore_kv *kv = new (std::nothrow) lmscore_kv();
    if (!kv) {
        cudaFree(data);
        return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "kv: out of host memory");
    }
    kv->model = model;
    kv->block_size = block_size;
    kv->n_blocks = n_blocks;
    kv->data = data;
    kv->plane_elems = (int64_t)n_blocks * block_size * model->kv_dim;
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
