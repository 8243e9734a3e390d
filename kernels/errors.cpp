// errors.cpp — the thread-local last error, status mapping and the ABI's small functions.
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

namespace lmscore_cuda {
namespace {
// Per thread, as the ABI promises: Go may run two handles on two threads.
thread_local std::string g_last_error;
} // namespace

lmscore_status fail(lmscore_status status, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_last_error = buf;
    return status;
}

void clear_error() { g_last_error.clear(); }

lmscore_status cuda_fail(cudaError_t err, const char *what) {
    // Clear the per-thread error state so that a recoverable failure (an
    // allocation, a bad launch configuration) does not poison later calls.
    // A sticky error (an illegal address) stays with the context regardless.
    cudaGetLastError();
    const lmscore_status st = err == cudaErrorMemoryAllocation ? LMSCORE_STATUS_OUT_OF_MEMORY
                                                                : LMSCORE_STATUS_DEVICE_ERROR;
    return fail(st, "cuda: %s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

static const char *cublas_name(cublasStatus_t st) {
    switch (st) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cublas status";
    }
}

lmscore_status cublas_fail(cublasStatus_t st, const char *what) {
    cudaGetLastError();
    const lmscore_status status =
        st == CUBLAS_STATUS_ALLOC_FAILED ? LMSCORE_STATUS_OUT_OF_MEMORY : LMSCORE_STATUS_DEVICE_ERROR;
    return fail(status, "cublas: %s: %s (%d)", what, cublas_name(st), (int)st);
}

lmscore_status use_device(int device) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        cudaGetLastError();
        // With no GPU or no driver the runtime says "driver version is
        // insufficient", which misleads; name the likely causes first.
        return fail(LMSCORE_STATUS_DEVICE_ERROR,
                    "cuda: no usable CUDA device (no NVIDIA GPU, or no driver for CUDA 13 or newer): %s (%s)",
                    cudaGetErrorString(err), cudaGetErrorName(err));
    }
    if (n == 0)
        return fail(LMSCORE_STATUS_DEVICE_ERROR, "cuda: no usable CUDA device: the driver reports no GPU");
    if (device < 0 || device >= n)
        return fail(LMSCORE_STATUS_INVALID_ARGUMENT, "cuda: device %d does not exist (%d device%s found)", device, n,
                    n == 1 ? "" : "s");
    err = cudaSetDevice(device);
    if (err != cudaSuccess) return cuda_fail(err, "cudaSetDevice");
    return LMSCORE_STATUS_OK;
}

} // namespace lmscore_cuda

extern "C" {

LMSCORE_API const char *lmscore_last_error(void) { return lmscore_cuda::g_last_error.c_str(); }

LMSCORE_API int32_t lmscore_abi_version(void) { return LMSCORE_ABI_VERSION; }

LMSCORE_API const char *lmscore_backend_name(void) { return "cuda"; }

LMSCORE_API lmscore_backend_params lmscore_backend_default_params(void) {
    lmscore_backend_params p;
    p.n_threads = 0;
    p.device = 0;
    p.precision = LMSCORE_PRECISION_BF16; // fp32 is the check mode
    p.tp_group = nullptr;
    p.tp_rank = 0;
    return p;
}

// Tensor parallelism across GPUs (the ranks' partial sums through NCCL) is
// not built yet: the CPU core splits models (csrc/cpu/tp.hpp).
LMSCORE_API lmscore_status lmscore_tp_group_create(int32_t size, lmscore_tp_group **out) {
    lmscore_cuda::clear_error();
    if (out) *out = nullptr;
    return lmscore_cuda::fail(LMSCORE_STATUS_UNSUPPORTED,
                              "cuda: tensor parallelism (a group of %d ranks) is not built into the CUDA core yet; "
                              "the CPU core splits models",
                              (int)size);
}

LMSCORE_API void lmscore_tp_group_free(lmscore_tp_group *) {}

} // extern "C"
