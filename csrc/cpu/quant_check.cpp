// Entry points for binding's tests and benchmarks of the dequantization
// kernels (binding/quantcheck.go; cgo cannot be used from _test.go files).
// Each runs the kernels of select_isa(), so LMSCORE_CPU_ISA picks the set,
// and returns a status, never throws.
#include <algorithm>
#include <chrono>

#include "common.hpp"
#include "gemm.hpp"
#include "kernels.hpp"
#include "quant.hpp"

namespace {

template <typename F> int32_t checked(F &&f) {
    try {
        f();
        return LMSCORE_STATUS_OK;
    } catch (const lmscore::Error &e) {
        return e.status();
    } catch (...) {
        return LMSCORE_STATUS_INTERNAL;
    }
}

// quantized_matrix: part i (types[i], rows[i] rows of k values) one after
// the other, their blocks back to back at data (one buffer, since cgo may
// not pass an array of Go pointers).
void quantized_matrix(lmscore::PackedMatrix &w, int n_parts, const int32_t *types, const int64_t *rows,
                      const uint8_t *data, int64_t k) {
    int64_t n = 0;
    for (int i = 0; i < n_parts; i++) n += rows[i];
    w.init_quantized(n, k);
    int64_t first = 0;
    for (int i = 0; i < n_parts; i++) {
        const lmscore::BlockType *bt = lmscore::block_type(types[i]);
        if (bt == nullptr || k % bt->values != 0)
            lmscore::fail(LMSCORE_STATUS_UNSUPPORTED, "type %d, k %lld", int(types[i]), (long long)k);
        w.add_rows(lmscore_tensor{data, types[i], {k, rows[i]}}, first);
        data += rows[i] * (k / bt->values * bt->bytes);
        first += rows[i];
    }
}

} // namespace

extern "C" {

// lmscore_go_dequant: Kernels::dequant of n_blocks blocks of type.
int32_t lmscore_go_dequant(int32_t type, const void *src, int64_t n_blocks, float *out) {
    return checked([&] {
        const lmscore::BlockType *bt = lmscore::block_type(type);
        if (bt == nullptr) lmscore::fail(LMSCORE_STATUS_UNSUPPORTED, "type %d", int(type));
        lmscore::kernels_for(lmscore::select_isa()).dequant(*bt, static_cast<const uint8_t *>(src), n_blocks, out);
    });
}

// lmscore_go_dequant_panel: PackedMatrix::dequant_panel of panel p for
// k in [k0, k0 + kc) of the matrix made of the parts, into out
// (kc * kPanel floats).
int32_t lmscore_go_dequant_panel(int n_parts, const int32_t *types, const int64_t *rows, const uint8_t *data,
                                 int64_t k, int64_t p, int64_t k0, int32_t kc, float *out) {
    return checked([&] {
        lmscore::PackedMatrix w;
        quantized_matrix(w, n_parts, types, rows, data, k);
        if (p < 0 || p >= w.n_panels() || k0 < 0 || kc <= 0 || k0 + kc > k || k0 % w.k_align() != 0 ||
            kc % w.k_align() != 0)
            lmscore::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "panel %lld, k %lld + %d", (long long)p, (long long)k0,
                          int(kc));
        lmscore::AlignedBuffer<float> tmp(size_t(lmscore::kPanel) * lmscore::kDequantChunk);
        w.dequant_panel(lmscore::kernels_for(lmscore::select_isa()), p, k0, kc, out, tmp.data());
    });
}

// lmscore_go_dequant_matrix_seconds: the time to dequantize every panel of
// the matrix, in the K blocks gemm uses, reps times (into one panel's
// buffer, which stays in cache, as gemm's does): the decoders' own speed.
int32_t lmscore_go_dequant_matrix_seconds(int n_parts, const int32_t *types, const int64_t *rows,
                                          const uint8_t *data, int64_t k, int32_t reps, double *seconds) {
    return checked([&] {
        lmscore::PackedMatrix w;
        quantized_matrix(w, n_parts, types, rows, data, k);
        const lmscore::Kernels &kern = lmscore::kernels_for(lmscore::select_isa());
        const int kc = int(std::min<int64_t>(k, lmscore::kMaxKC));
        if (k % kc != 0 || kc % w.k_align() != 0)
            lmscore::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "k %lld: want a multiple of %d", (long long)k, kc);
        lmscore::AlignedBuffer<float> out(size_t(kc) * lmscore::kPanel);
        lmscore::AlignedBuffer<float> tmp(size_t(lmscore::kPanel) * lmscore::kDequantChunk);
        const auto start = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; r++)
            for (int64_t p = 0; p < w.n_panels(); p++)
                for (int64_t k0 = 0; k0 < k; k0 += kc) w.dequant_panel(kern, p, k0, kc, out.data(), tmp.data());
        *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
}

} // extern "C"
