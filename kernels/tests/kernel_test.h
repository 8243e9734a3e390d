// kernel_test.h — what every kernels/<kernel>_test.cu shares: device
// buffers that round uploads to the storage type and poison outputs, the
// report every check goes to, and the list of test entries that
// kernel_tests.cu runs in order.
//
// Each <kernel>_test.cu beside its kernel holds the kernel's naive float64
// CPU reference, a check of the kernel against it on fresh random inputs
// (lengths that are not multiples of a block or tile; block sizes 1, 16 and
// 64 where the kernel takes one), with tolerances from tolerance.h, and a
// timing entry (timing.h) that `kernel_tests --perf` runs.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda_ok.h"
#include "kernels.h"
#include "test_util.h"
#include "timing.h"
#include "tolerance.h"

namespace lmscore_test {

using lmscore_cuda::DType;

// The report of kernel_tests, one for all the test files.
extern Report R;

inline const char *dname(DType t) { return t == DType::F32 ? "f32" : "bf16"; }

// A device buffer holding values of one storage type; uploads round to it.
// New buffers are poisoned (NaN) so that an unwritten output fails.
struct Buf {
    void *p = nullptr;
    size_t n = 0;
    DType t = DType::F32;
    Buf() = default;
    Buf(size_t count, DType type) : n(count), t(type) {
        CUDA_OK(cudaMalloc(&p, std::max<size_t>(1, n * lmscore_cuda::dtype_size(t))));
        poison();
    }
    Buf(const std::vector<float> &v, DType type) : Buf(v.size(), type) { upload(v); }
    ~Buf() {
        if (p) cudaFree(p);
    }
    Buf(const Buf &) = delete;
    Buf &operator=(const Buf &) = delete;
    // 0xffff... is a NaN in fp32 and in bf16.
    void poison() { CUDA_OK(cudaMemset(p, 0xff, std::max<size_t>(1, n * lmscore_cuda::dtype_size(t)))); }
    void upload(const std::vector<float> &v) {
        if (t == DType::F32) {
            CUDA_OK(cudaMemcpy(p, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
        } else {
            std::vector<uint16_t> b(v.size());
            for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]);
            CUDA_OK(cudaMemcpy(p, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
        }
    }
    std::vector<float> download() const {
        std::vector<float> v(n);
        if (t == DType::F32) {
            CUDA_OK(cudaMemcpy(v.data(), p, n * 4, cudaMemcpyDeviceToHost));
        } else {
            std::vector<uint16_t> b(n);
            CUDA_OK(cudaMemcpy(b.data(), p, n * 2, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < n; ++i) v[i] = bf16_to_f32(b[i]);
        }
        return v;
    }
    size_t bytes() const { return n * lmscore_cuda::dtype_size(t); }
    template <typename T> T *as() const { return (T *)p; }
};

struct IntBuf {
    int32_t *p = nullptr;
    explicit IntBuf(const std::vector<int32_t> &v) {
        CUDA_OK(cudaMalloc(&p, std::max<size_t>(1, v.size()) * 4));
        if (!v.empty()) CUDA_OK(cudaMemcpy(p, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    }
    ~IntBuf() { cudaFree(p); }
    IntBuf(const IntBuf &) = delete;
    IntBuf &operator=(const IntBuf &) = delete;
};

// Values as the kernel sees them after upload in storage type t.
inline std::vector<float> stored(std::vector<float> v, DType t) {
    if (t == DType::BF16)
        for (float &x : v) x = round_bf16(x);
    return v;
}

inline std::vector<float> randn(Rng &rng, size_t n, float sd = 1.f) {
    std::vector<float> v(n);
    for (float &x : v) x = rng.normal(sd);
    return v;
}

// A kernel that faults is a broken harness, not a failed check: stop.
inline void sync_check(const char *what) {
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
        fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
        exit(2);
    }
}

// A launcher call for median_ms: true when it enqueued.
template <typename Launch> auto launches(Launch &&launch) {
    return [launch]() { return launch() == cudaSuccess; };
}

// Bytes moved per millisecond as GB/s, for the timing entries' INFO lines.
inline double gb_per_s(double bytes, double ms) { return ms > 0 ? bytes / (ms * 1e-3) / 1e9 : 0; }

// One kernel's entries: check runs always, perf (may be null) under --perf.
struct KernelTest {
    const char *kernel; // the kernel's file in kernels/, without .cu
    void (*check)(Rng &rng);
    void (*perf)(Rng &rng);
};

// Defined in kernels/<kernel>_test.cu.
void convert_check(Rng &rng);
void convert_perf(Rng &rng);
void dequant_check(Rng &rng);
void dequant_perf(Rng &rng);
void embed_check(Rng &rng);
void embed_perf(Rng &rng);
void norm_check(Rng &rng);
void norm_perf(Rng &rng);
void rope_kv_check(Rng &rng);
void rope_kv_perf(Rng &rng);
void attention_check(Rng &rng);
void attention_perf(Rng &rng);
void block_copy_check(Rng &rng);
void block_copy_perf(Rng &rng);
void logits_check(Rng &rng);
void logits_perf(Rng &rng);
void activation_check(Rng &rng);
void activation_perf(Rng &rng);
void moe_check(Rng &rng);
void moe_perf(Rng &rng);
void gemm_check(Rng &rng);
void gemm_perf(Rng &rng);

} // namespace lmscore_test
