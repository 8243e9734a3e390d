// dequant_test.cu — dequant.cu (every GGML type to fp32/bf16 on the device)
// against the naive host reference of tests/dequant_ref.h, and its timing.
//
// Dequantization is exact arithmetic on both sides (fp16 fields widened,
// fp32 products and sums in GGML's order, one rounding to the output), so
// the tolerance the output types allow is zero: fp32 outputs must equal the
// reference bit for bit, bf16 outputs the reference rounded to bf16 (round
// to nearest even) bit for bit.
#include "../csrc/common/validate.h"
#include "dequant_ref.h"
#include "kernel_test.h"

using namespace lmscore_cuda;

namespace lmscore_test {

namespace {

struct DevBytes {
    void *p = nullptr;
    explicit DevBytes(const std::vector<uint8_t> &v) {
        CUDA_OK(cudaMalloc(&p, std::max<size_t>(1, v.size())));
        CUDA_OK(cudaMemcpy(p, v.data(), v.size(), cudaMemcpyHostToDevice));
    }
    ~DevBytes() { cudaFree(p); }
    DevBytes(const DevBytes &) = delete;
    DevBytes &operator=(const DevBytes &) = delete;
};

// Output elements whose bits differ from ref (rounded to t first).
int count_mismatches(const std::vector<float> &out, const std::vector<float> &ref, DType t) {
    if (out.size() != ref.size()) return -1;
    int bad = 0;
    for (size_t i = 0; i < out.size(); ++i) {
        const float want = t == DType::BF16 ? round_bf16(ref[i]) : ref[i];
        bad += memcmp(&out[i], &want, 4) != 0;
    }
    return bad;
}

// Rows of ne0 values, several blocks long, in an odd number of rows.
void check_shape(Rng &rng, int32_t type, int64_t ne0, int64_t n_rows) {
    const std::vector<uint8_t> raw = random_rows(rng, type, ne0, n_rows);
    const std::vector<float> ref = ref_dequantize(type, raw.data(), ne0, n_rows);
    DevBytes src(raw);
    const size_t n = (size_t)(ne0 * n_rows);
    char name[128];
    for (DType t : {DType::F32, DType::BF16}) {
        // The aligned (vector-store) path, then one element off alignment
        // (the scalar path) and convert_tensor, the load path.
        for (int variant = 0; variant < 3; ++variant) {
            const size_t off = variant == 1 ? 1 : 0;
            Buf out(n + off, t);
            void *dst = (char *)out.p + off * dtype_size(t);
            const cudaError_t e = variant == 2 ? convert_tensor(src.p, type, ne0, (int64_t)n, dst, t, 0)
                                               : dequantize_rows(src.p, type, ne0, n_rows, dst, t, 0);
            CUDA_OK(e);
            sync_check("dequantize_rows");
            std::vector<float> got = out.download();
            got.erase(got.begin(), got.begin() + off);
            const int bad = count_mismatches(got, ref, t);
            snprintf(name, sizeof name, "dequant %s %lld x %lld -> %s%s", ref_type_name(type), (long long)n_rows,
                     (long long)ne0, dname(t), variant == 1 ? " unaligned" : variant == 2 ? " via convert_tensor" : "");
            R.check(bad == 0, name, "%d of %zu values differ from the host reference%s", bad, n,
                    t == DType::BF16 ? " rounded to bf16" : "");
        }
    }
}

} // namespace

void dequant_check(Rng &rng) {
    for (int32_t type : kRefTypes) {
        int values = 0, bytes = 0;
        ref_block(type, &values, &bytes);
        lmscore_common::TypeInfo ti{};
        const bool known = lmscore_common::type_info(type, &ti);
        // The loader sizes uploads from validate.cpp's table, the kernel
        // reads rows with dequant.cuh's: they must agree with GGML's.
        const int64_t ne0 = values == 1 ? 40 : 3 * values;
        R.check(dequant_supports(type) && known && ti.block == values && ti.bytes == bytes &&
                    dequant_row_bytes(type, ne0) == ne0 / values * bytes,
                std::string("dequant ") + ref_type_name(type) + " block layout", "%d values in %d bytes; row of %lld: %lld bytes",
                values, bytes, (long long)ne0, (long long)dequant_row_bytes(type, ne0));
        check_shape(rng, type, ne0, 7);
        check_shape(rng, type, values == 1 ? 24 : 5 * values, 3);
        if (values > 1) {
            const cudaError_t e = dequantize_rows(nullptr, type, values + 8, 1, nullptr, DType::BF16, 0);
            R.check(e == cudaErrorInvalidValue, std::string("dequant ") + ref_type_name(type) + " partial block refused",
                    "%s", cudaGetErrorString(e));
        }
    }
    const cudaError_t e = dequantize_rows(nullptr, 999, 256, 1, nullptr, DType::BF16, 0);
    R.check(!dequant_supports(999) && e == cudaErrorInvalidValue, "dequant unknown type refused", "%s",
            cudaGetErrorString(e));
}

// A Llama-3.1-8B gate matrix (14336 rows of 4096) to bf16, as a bf16 step
// dequantizes it before its GEMM; Q4_K is the bulk of a Q4_K_M file.
void dequant_perf(Rng &rng) {
    const int64_t ne0 = 4096, rows = 14336;
    for (int32_t type : {LMSCORE_TYPE_Q4_K, LMSCORE_TYPE_Q6_K, LMSCORE_TYPE_Q8_0}) {
        const std::vector<uint8_t> raw = random_rows(rng, type, ne0, rows);
        DevBytes src(raw);
        Buf out((size_t)(ne0 * rows), DType::BF16);
        const double ms = median_ms(
            launches([&] { return dequantize_rows(src.p, type, ne0, rows, out.p, DType::BF16, 0); }), 3, 20);
        R.info("perf dequant %s -> bf16 %lld x %lld: median %.3f ms, %.0f GB/s (%.1f MB read, %.1f MB written)",
               ref_type_name(type), (long long)ne0, (long long)rows, ms, gb_per_s((double)raw.size() + out.bytes(), ms),
               raw.size() / 1e6, out.bytes() / 1e6);
    }
}

} // namespace lmscore_test
