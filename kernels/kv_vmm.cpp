// kv_vmm.cpp — the KV pool's planes in reserved virtual memory, grown by
// mapping more physical memory behind them.
//
// Why: the pool grows on demand (kv_pool.cpp). Grown by reallocation, a
// pool of B bytes becoming 2B holds 3B while it copies, and that transient
// was most of the "other" memory of an 8B model's bench run. Here each
// plane (a layer's K or V) owns an address range sized for the pool's
// ceiling; growing maps new physical memory at the end of every plane, so
// nothing moves, nothing is copied, and the device holds what is mapped
// plus at most one granule per plane.
//
// The driver's virtual memory calls are taken through the runtime's entry
// point query, so the library still needs no link against libcuda. Where
// the driver or device lacks them, or LMSCORE_CUDA_KV_VMM=0, kv_pool.cpp
// reallocates as before.
#include <cuda.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "internal.h"

namespace lmscore_cuda {
namespace {

struct Driver {
    decltype(&cuMemGetAllocationGranularity) granularity = nullptr;
    decltype(&cuMemAddressReserve) reserve = nullptr;
    decltype(&cuMemAddressFree) address_free = nullptr;
    decltype(&cuMemCreate) create = nullptr;
    decltype(&cuMemRelease) release = nullptr;
    decltype(&cuMemMap) map = nullptr;
    decltype(&cuMemUnmap) unmap = nullptr;
    decltype(&cuMemSetAccess) set_access = nullptr;
    decltype(&cuDeviceGet) device_get = nullptr;
    decltype(&cuDeviceGetAttribute) attribute = nullptr;
    bool ok = false;
};

template <typename F> bool entry(const char *name, F *fn) {
    cudaDriverEntryPointQueryResult q{};
    void *p = nullptr;
    if (cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess || !p) {
        cudaGetLastError();
        return false;
    }
    *fn = reinterpret_cast<F>(p);
    return true;
}

const Driver &driver() {
    static const Driver d = [] {
        Driver x;
        x.ok = entry("cuMemGetAllocationGranularity", &x.granularity) && entry("cuMemAddressReserve", &x.reserve) &&
               entry("cuMemAddressFree", &x.address_free) && entry("cuMemCreate", &x.create) &&
               entry("cuMemRelease", &x.release) && entry("cuMemMap", &x.map) && entry("cuMemUnmap", &x.unmap) &&
               entry("cuMemSetAccess", &x.set_access) && entry("cuDeviceGet", &x.device_get) &&
               entry("cuDeviceGetAttribute", &x.attribute);
        return x;
    }();
    return d;
}

CUmemAllocationProp prop_for(int device) {
    CUmemAllocationProp p;
    memset(&p, 0, sizeof p);
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = device;
    return p;
}

size_t round_up(size_t n, size_t g) { return (n + g - 1) / g * g; }

} // namespace

bool kv_vmm_reserve(lmscore_kv *kv) {
    const char *env = getenv("LMSCORE_CUDA_KV_VMM");
    if (env && !strcmp(env, "0")) return false;
    const Driver &d = driver();
    if (!d.ok) return false;
    CUdevice dev = 0;
    int supported = 0;
    if (d.device_get(&dev, kv->model->device) != CUDA_SUCCESS ||
        d.attribute(&supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev) != CUDA_SUCCESS ||
        !supported)
        return false;
    const CUmemAllocationProp prop = prop_for(kv->model->device);
    size_t gran = 0;
    if (d.granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS || gran == 0) return false;
    const lmscore_model *m = kv->model;
    const size_t esize = dtype_size(m->dtype);
    const size_t row = (size_t)kv->block_size * m->kv_dim * esize; // one block of one plane
    const size_t pitch = round_up((size_t)kv->n_blocks * row, gran);
    const size_t n_planes = 2 * (size_t)m->hp.n_layer;
    CUdeviceptr base = 0;
    if (d.reserve(&base, pitch * n_planes, gran, 0, 0) != CUDA_SUCCESS) return false;
    kv->vmm = true;
    kv->vmm_granule = gran;
    kv->vmm_pitch = pitch;
    kv->vmm_mapped = 0;
    kv->data = (void *)base;
    kv->plane_elems = (int64_t)(pitch / esize);
    kv->n_alloc = 0;
    return true;
}

lmscore_status kv_vmm_grow(lmscore_kv *kv, int64_t n_alloc) {
    const Driver &d = driver();
    const lmscore_model *m = kv->model;
    const size_t esize = dtype_size(m->dtype);
    const size_t row = (size_t)kv->block_size * m->kv_dim * esize;
    const size_t n_planes = 2 * (size_t)m->hp.n_layer;
    const size_t want = std::min(kv->vmm_pitch, round_up((size_t)n_alloc * row, kv->vmm_granule));
    if (want <= kv->vmm_mapped) {
        kv->n_alloc = std::min<int64_t>(kv->n_blocks, (int64_t)(kv->vmm_mapped / row));
        return LMSCORE_STATUS_OK;
    }
    const size_t ext = want - kv->vmm_mapped;
    const CUmemAllocationProp prop = prop_for(m->device);
    CUmemGenericAllocationHandle h = 0;
    char what[192];
    snprintf(what, sizeof what, "growing the KV pool from %lld to %lld of its %d blocks x %d slots (%zu bytes more)",
             (long long)kv->n_alloc, (long long)n_alloc, kv->n_blocks, kv->block_size, ext * n_planes);
    if (d.create(&h, ext * n_planes, &prop, 0) != CUDA_SUCCESS)
        return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "kv: %s: out of device memory", what);
    // One physical allocation, a piece at the end of every plane. Released
    // at once: the mappings keep it alive until they are unmapped.
    size_t mapped = 0;
    CUresult r = CUDA_SUCCESS;
    for (; mapped < n_planes && r == CUDA_SUCCESS; ++mapped) {
        const CUdeviceptr at = (CUdeviceptr)kv->data + mapped * kv->vmm_pitch + kv->vmm_mapped;
        r = d.map(at, ext, mapped * ext, h, 0);
        if (r != CUDA_SUCCESS) break;
        CUmemAccessDesc access;
        memset(&access, 0, sizeof access);
        access.location = prop.location;
        access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
        r = d.set_access(at, ext, &access, 1);
        if (r != CUDA_SUCCESS) {
            d.unmap(at, ext);
            break;
        }
    }
    if (r != CUDA_SUCCESS) {
        for (size_t i = 0; i < mapped; ++i)
            d.unmap((CUdeviceptr)kv->data + i * kv->vmm_pitch + kv->vmm_mapped, ext);
        d.release(h);
        return fail(LMSCORE_STATUS_DEVICE_ERROR, "kv: %s: mapping failed (CUresult %d)", what, (int)r);
    }
    d.release(h);
    kv->vmm_pieces.push_back({kv->vmm_mapped, ext});
    // Zeros rather than garbage, as kv_pool.cpp's reallocation: a scheduler
    // bug that reads an unwritten slot gives a wrong score, not a NaN that
    // depends on the allocator. Before any step can read them.
    cudaError_t err = cudaSuccess;
    for (size_t i = 0; i < n_planes && err == cudaSuccess; ++i)
        err = cudaMemset((char *)kv->data + i * kv->vmm_pitch + kv->vmm_mapped, 0, ext);
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    kv->vmm_mapped = want;
    kv->n_alloc = std::min<int64_t>(kv->n_blocks, (int64_t)(want / row));
    if (err != cudaSuccess) return cuda_fail(err, "zeroing the KV pool's new blocks");
    return LMSCORE_STATUS_OK;
}

void kv_vmm_free(lmscore_kv *kv) {
    const Driver &d = driver();
    const size_t n_planes = 2 * (size_t)kv->model->hp.n_layer;
    // Steps may still run on their streams; then each mapping as it was made
    // (cuMemUnmap takes whole mappings).
    cudaDeviceSynchronize();
    for (size_t i = 0; i < n_planes; ++i)
        for (const auto &piece : kv->vmm_pieces)
            d.unmap((CUdeviceptr)kv->data + i * kv->vmm_pitch + piece.first, piece.second);
    kv->vmm_pieces.clear();
    d.address_free((CUdeviceptr)kv->data, kv->vmm_pitch * n_planes);
    kv->data = nullptr;
    kv->vmm_mapped = 0;
}

} // namespace lmscore_cuda
