// convert_test.cu — convert.cu (GGML tensor types to fp32/bf16 at load)
// against the exact dequantised values, and its timing.
#include <cuda_fp16.h>

#include "lmscore.h"

#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

namespace {

// The bytes of n values (row length ne0) of src in GGML type `type`, and
// into *ref their exact dequantised values: what convert_tensor must give
// before its own rounding to the destination type.
std::vector<uint8_t> encode(const std::vector<float> &src, int type, std::vector<double> *ref) {
    const int n = (int)src.size();
    std::vector<uint8_t> raw;
    ref->assign(n, 0);
    if (type == LMSCORE_TYPE_F32) {
        raw.resize((size_t)n * 4);
        memcpy(raw.data(), src.data(), raw.size());
        for (int i = 0; i < n; ++i) (*ref)[i] = src[i];
    } else if (type == LMSCORE_TYPE_F16) {
        raw.resize((size_t)n * 2);
        for (int i = 0; i < n; ++i) {
            __half h = __float2half(src[i]);
            memcpy(&raw[i * 2], &h, 2);
            (*ref)[i] = __half2float(h);
        }
    } else if (type == LMSCORE_TYPE_BF16) {
        raw.resize((size_t)n * 2);
        for (int i = 0; i < n; ++i) {
            uint16_t b = f32_to_bf16(src[i]);
            memcpy(&raw[i * 2], &b, 2);
            (*ref)[i] = bf16_to_f32(b);
        }
    } else { // Q8_0: blocks of 32 int8 with one fp16 scale (34 bytes)
        raw.resize((size_t)n / 32 * 34);
        for (int blk = 0; blk < n / 32; ++blk) {
            float amax = 0;
            for (int j = 0; j < 32; ++j) amax = std::max(amax, fabsf(src[blk * 32 + j]));
            __half d = __float2half(amax / 127.f);
            const float df = __half2float(d);
            memcpy(&raw[blk * 34], &d, 2);
            for (int j = 0; j < 32; ++j) {
                const int8_t q = (int8_t)lrintf(df > 0 ? src[blk * 32 + j] / df : 0.f);
                raw[blk * 34 + 2 + j] = (uint8_t)q;
                (*ref)[blk * 32 + j] = (double)df * q;
            }
        }
    }
    return raw;
}

} // namespace

void convert_check(Rng &rng) {
    // src is (ne1, ne0)
    const int ne0 = 64, ne1 = 5;
    const int n = ne0 * ne1;
    const std::vector<float> src = randn(rng, n);
    for (DType t : {DType::F32, DType::BF16})
        for (int type : {LMSCORE_TYPE_F32, LMSCORE_TYPE_F16, LMSCORE_TYPE_BF16, LMSCORE_TYPE_Q8_0}) {
            std::vector<double> ref;
            const std::vector<uint8_t> raw = encode(src, type, &ref);
            void *dsrc;
            CUDA_OK(cudaMalloc(&dsrc, raw.size()));
            CUDA_OK(cudaMemcpy(dsrc, raw.data(), raw.size(), cudaMemcpyHostToDevice));
            Buf out(n, t);
            CUDA_OK(convert_tensor(dsrc, type, ne0, n, out.p, t, 0));
            sync_check("convert");
            cudaFree(dsrc);
            char name[64];
            snprintf(name, sizeof name, "convert type %d -> %s", type, dname(t));
            // To fp32 every source value is representable: exact. To bf16,
            // one rounding with no arithmetic before it (n = 1).
            R.err(name, compare(out.download(), ref), t == DType::F32 ? 0.0 : tolerance(t, 1));
        }
}

// Q8_0 to bf16 of a Llama-3.2-1B gate/up matrix (2048 x 8192), the load's
// commonest conversion.
void convert_perf(Rng &rng) {
    const int64_t ne0 = 2048, n = ne0 * 8192;
    const std::vector<float> src = randn(rng, 32 * 1024);
    std::vector<double> ref;
    const std::vector<uint8_t> block = encode(src, LMSCORE_TYPE_Q8_0, &ref); // 1024 blocks, repeated
    std::vector<uint8_t> raw((size_t)n / 32 * 34);
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = block[i % block.size()];
    void *dsrc;
    CUDA_OK(cudaMalloc(&dsrc, raw.size()));
    CUDA_OK(cudaMemcpy(dsrc, raw.data(), raw.size(), cudaMemcpyHostToDevice));
    Buf out((size_t)n, DType::BF16);
    const double ms = median_ms(launches([&] { return convert_tensor(dsrc, LMSCORE_TYPE_Q8_0, ne0, n, out.p, DType::BF16, 0); }), 3, 10);
    R.info("perf convert q8_0 -> bf16 2048 x 8192: median %.3f ms, %.0f GB/s", ms, gb_per_s((double)raw.size() + out.bytes(), ms));
    cudaFree(dsrc);
}

} // namespace lmscore_test
