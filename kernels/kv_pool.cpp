// kv_pool.cpp — the paged KV pool: every layer's K and V for up to n_blocks
// blocks. n_blocks is a ceiling: the pool holds memory for the blocks steps
// have named so far, and grows as they name higher block ids.
//
// Two ways to grow. Where the driver offers virtual memory management
// (cuMemCreate/cuMemMap, every GPU since Pascal on Linux), each plane's
// address range is reserved at the ceiling's size once, and physical memory
// is mapped onto its end as steps reach blocks: no copy, no moment when an
// old and a new pool are both allocated, and beyond the live blocks at most
// a mapping granularity (2 MiB) of each plane or 1/32 of the pool, which
// keeps the growths few. The pool can so exceed its ceiling's bytes by up to
// a granule a plane (2 n_layer of them), which its budget does not count. Elsewhere, or
// with LMSCORE_CUDA_KV_VMM=0, the pool is reallocated at least twice as
// large and copied over; that path is kept as it was.
#include <stdlib.h>
#include <string.h>

#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <type_traits>

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

// ------------------------------------------- virtual memory management

// The driver's functions, through the runtime (the core links no libcuda).
struct Driver {
    PFN_cuMemGetAllocationGranularity_v10020 granularity = nullptr;
    PFN_cuMemAddressReserve_v10020 reserve = nullptr;
    PFN_cuMemAddressFree_v10020 address_free = nullptr;
    PFN_cuMemCreate_v10020 create = nullptr;
    PFN_cuMemRelease_v10020 release = nullptr;
    PFN_cuMemMap_v10020 map = nullptr;
    PFN_cuMemUnmap_v10020 unmap = nullptr;
    PFN_cuMemSetAccess_v10020 set_access = nullptr;
    PFN_cuDeviceGet_v2000 device_get = nullptr;
    PFN_cuDeviceGetAttribute_v2000 attribute = nullptr;
    bool ok = false;
};

const Driver &driver() {
    static const Driver d = [] {
        Driver x;
        auto get = [](const char *name, auto *fn) {
            void *p = nullptr;
            cudaDriverEntryPointQueryResult q{};
            if (cudaGetDriverEntryPointByVersion(name, &p, 10020, cudaEnableDefault, &q) != cudaSuccess ||
                q != cudaDriverEntryPointSuccess || !p) {
                cudaGetLastError();
                return false;
            }
            *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(p);
            return true;
        };
        x.ok = get("cuMemGetAllocationGranularity", &x.granularity) && get("cuMemAddressReserve", &x.reserve) &&
               get("cuMemAddressFree", &x.address_free) && get("cuMemCreate", &x.create) &&
               get("cuMemRelease", &x.release) && get("cuMemMap", &x.map) && get("cuMemUnmap", &x.unmap) &&
               get("cuMemSetAccess", &x.set_access) && get("cuDeviceGet", &x.device_get) &&
               get("cuDeviceGetAttribute", &x.attribute);
        return x;
    }();
    return d;
}

CUmemAllocationProp device_prop(int device) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device;
    return prop;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Unmaps and releases kv's mappings from index `from` on.
void vmm_drop(lmscore_kv *kv, size_t from) {
    const Driver &d = driver();
    while (kv->mappings.size() > from) {
        const lmscore_kv::Mapping &m = kv->mappings.back();
        d.unmap((CUdeviceptr)kv->data + m.offset, m.bytes);
        d.release((CUmemGenericAllocationHandle)m.handle);
        kv->mappings.pop_back();
    }
}

// Whether kv should and can reserve its planes; LMSCORE_CUDA_KV_VMM=0 says
// no, any other value than 1 is an error.
lmscore_status vmm_wanted(const lmscore_kv *kv, bool *want) {
    *want = false;
    const char *mode = getenv("LMSCORE_CUDA_KV_VMM");
    if (mode && *mode && strcmp(mode, "0") != 0 && strcmp(mode, "1") != 0)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT,
                    "kv: environment variable LMSCORE_CUDA_KV_VMM=%s: expected 1 (the default) or 0", mode);
    if (mode && !strcmp(mode, "0")) return LMSCORE_STATUS_OK;
    const Driver &d = driver();
    CUdevice dev = 0;
    int supported = 0;
    *want = d.ok && d.device_get(&dev, kv->model->device) == CUDA_SUCCESS &&
            d.attribute(&supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev) == CUDA_SUCCESS &&
            supported != 0;
    return LMSCORE_STATUS_OK;
}

// Reserves every plane at the ceiling's size; false (kv unchanged) where the
// driver will not, and the pool then reallocates instead.
bool vmm_reserve(lmscore_kv *kv) {
    const Driver &d = driver();
    const CUmemAllocationProp prop = device_prop(kv->model->device);
    size_t g = 0;
    if (d.granularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) != CUDA_SUCCESS || g == 0) return false;
    const int64_t row = block_bytes(kv->model, kv->block_size) / (2 * kv->model->hp.n_layer); // one plane's block
    const size_t pitch = round_up((size_t)(kv->n_blocks * row), g);
    const size_t n_planes = 2 * (size_t)kv->model->hp.n_layer;
    if (pitch > SIZE_MAX / n_planes) return false;
    CUdeviceptr base = 0;
    if (d.reserve(&base, pitch * n_planes, g, 0, 0) != CUDA_SUCCESS) return false;
    kv->vmm = true;
    kv->data = (void *)base;
    kv->vmm_reserved = pitch * n_planes;
    kv->vmm_granularity = g;
    kv->vmm_mapped = 0;
    kv->n_alloc = 0;
    kv->plane_elems = (int64_t)(pitch / lmscore_cuda::dtype_size(kv->model->dtype));
    return true;
}

// Maps memory onto every plane up to n_alloc blocks (> kv->n_alloc), zeroed
// (as grow() zeroes: see there). One allocation per plane per growth, each
// mapped at offset 0 of its allocation (a mapping at an offset into one is
// refused on some drivers). On failure kv is unchanged.
lmscore_status vmm_grow(lmscore_kv *kv, int64_t n_alloc) {
    const Driver &d = driver();
    const int64_t row = block_bytes(kv->model, kv->block_size) / (2 * kv->model->hp.n_layer);
    const size_t pitch = (size_t)kv->plane_elems * lmscore_cuda::dtype_size(kv->model->dtype);
    // At least 1/32 more than is mapped: the growths (each a device
    // synchronisation and 2 n_layer mappings) stay logarithmic in the pool's
    // size, for at most 3% of it unused.
    const size_t target = std::max((size_t)(n_alloc * row), kv->vmm_mapped + kv->vmm_mapped / 32);
    const size_t want = std::min(pitch, round_up(target, kv->vmm_granularity));
    const size_t add = want - kv->vmm_mapped, n_planes = 2 * (size_t)kv->model->hp.n_layer;
    const CUmemAllocationProp prop = device_prop(kv->model->device);
    CUmemAccessDesc access{};
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    const size_t before = kv->mappings.size();
    const char *what = nullptr;
    CUresult r = CUDA_SUCCESS;
    try {
        kv->mappings.reserve(before + n_planes);
    } catch (const std::bad_alloc &) {
        return fail(LMSCORE_STATUS_OUT_OF_MEMORY, "kv: out of host memory");
    }
    for (size_t i = 0; i < n_planes && r == CUDA_SUCCESS; ++i) {
        lmscore_kv::Mapping m;
        m.offset = i * pitch + kv->vmm_mapped;
        m.bytes = add;
        CUmemGenericAllocationHandle h = 0;
        if ((r = d.create(&h, add, &prop, 0)) != CUDA_SUCCESS) {
            what = "cuMemCreate";
            break;
        }
        if ((r = d.map((CUdeviceptr)kv->data + m.offset, add, 0, h, 0)) != CUDA_SUCCESS) {
            what = "cuMemMap";
            d.release(h);
            break;
        }
        m.handle = (unsigned long long)h;
        kv->mappings.push_back(m);
        if ((r = d.set_access((CUdeviceptr)kv->data + m.offset, add, &access, 1)) != CUDA_SUCCESS) what = "cuMemSetAccess";
    }
    cudaError_t err = cudaSuccess;
    for (size_t i = 0; r == CUDA_SUCCESS && i < n_planes && err == cudaSuccess; ++i)
        err = cudaMemset((char *)kv->data + i * pitch + kv->vmm_mapped, 0, add);
    if (r == CUDA_SUCCESS && err == cudaSuccess) err = cudaDeviceSynchronize();
    if (r != CUDA_SUCCESS || err != cudaSuccess) {
        if (err != cudaSuccess) cudaDeviceSynchronize(); // no memset of this growth may still run
        vmm_drop(kv, before);
        char msg[256];
        snprintf(msg, sizeof msg,
                 "growing the KV pool from %lld to %lld of its %d blocks x %d slots (%zu more bytes in each of %zu planes)",
                 (long long)kv->n_alloc, (long long)n_alloc, kv->n_blocks, kv->block_size, add, n_planes);
        if (err != cudaSuccess) return lmscore_cuda::cuda_fail(err, msg);
        return fail(r == CUDA_ERROR_OUT_OF_MEMORY ? LMSCORE_STATUS_OUT_OF_MEMORY : LMSCORE_STATUS_DEVICE_ERROR,
                    "cuda: %s: %s failed (CUresult %d)", msg, what ? what : "mapping", (int)r);
    }
    kv->vmm_mapped = want;
    kv->n_alloc = std::min<int64_t>(kv->n_blocks, (int64_t)(want / (size_t)row));
    return LMSCORE_STATUS_OK;
}

void vmm_free(lmscore_kv *kv) {
    vmm_drop(kv, 0);
    if (kv->data) driver().address_free((CUdeviceptr)kv->data, kv->vmm_reserved);
    kv->data = nullptr;
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
    // Mapped memory needs no slack to amortise copies: the step's blocks,
    // to the next granularity.
    if (kv->vmm) return vmm_grow(kv, need);
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
    bool vmm = false;
    st = vmm_wanted(kv, &vmm);
    if (st != LMSCORE_STATUS_OK) {
        delete kv;
        return st;
    }
    if (vmm && !vmm_reserve(kv)) cudaGetLastError(); // reallocation instead
    // One segment up front: a broken device fails here, not in the first step.
    const int64_t first = std::min<int64_t>(n_blocks, segment_blocks(kv));
    st = kv->vmm ? vmm_grow(kv, first) : grow(kv, first);
    if (st != LMSCORE_STATUS_OK && kv->vmm) {
        // A driver that reserves but will not map: reallocate instead.
        vmm_free(kv);
        kv->vmm = false;
        kv->n_alloc = kv->plane_elems = 0;
        lmscore_cuda::clear_error();
        st = grow(kv, first);
    }
    if (st != LMSCORE_STATUS_OK) {
        delete kv;
        return st;
    }
    *out = kv;
    return LMSCORE_STATUS_OK;
}

LMSCORE_API void lmscore_kv_free(lmscore_kv *kv) {
    if (!kv) return;
    if (cudaSetDevice(kv->model->device) == cudaSuccess) {
        // Steps run on their own streams: nothing may still read the pool.
        cudaDeviceSynchronize();
        if (kv->vmm)
            vmm_free(kv);
        else
            cudaFree(kv->data);
    }
    cudaGetLastError();
    delete kv;
}

} // extern "C"
