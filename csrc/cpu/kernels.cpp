#include "kernels.hpp"

#include <cstdlib>
#include <cstring>

#include "common.hpp"

namespace lmscore {

const char *isa_name(Isa isa) {
    switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    }
    return "?";
}

namespace {

bool cpu_supports(Isa isa) {
    switch (isa) {
    case Isa::Scalar: return true;
#if defined(LMSCORE_HAVE_X86_KERNELS)
    case Isa::Avx2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case Isa::Avx512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    default: return false;
#endif
    }
    return false;
}

} // namespace

Isa select_isa() {
    const char *want = std::getenv("LMSCORE_CPU_ISA");
    if (want != nullptr && *want != '\0') {
        Isa isa;
        if (std::strcmp(want, "scalar") == 0) {
            isa = Isa::Scalar;
        } else if (std::strcmp(want, "avx2") == 0) {
            isa = Isa::Avx2;
        } else if (std::strcmp(want, "avx512") == 0) {
            isa = Isa::Avx512;
        } else {
            fail(LMSCORE_STATUS_INVALID_ARGUMENT,
                 "LMSCORE_CPU_ISA=%s: want scalar, avx2 or avx512", want);
        }
        if (!cpu_supports(isa)) {
            fail(LMSCORE_STATUS_UNSUPPORTED, "LMSCORE_CPU_ISA=%s: this CPU does not support it",
                 want);
        }
        return isa;
    }
    if (cpu_supports(Isa::Avx512)) return Isa::Avx512;
    if (cpu_supports(Isa::Avx2)) return Isa::Avx2;
    return Isa::Scalar;
}

const Kernels &kernels_for(Isa isa) {
    switch (isa) {
#if defined(LMSCORE_HAVE_X86_KERNELS)
    case Isa::Avx512: return avx512::kernels;
    case Isa::Avx2: return avx2::kernels;
#endif
    default: return scalar::kernels;
    }
}

int64_t attn_scratch_floats(int head_dim, int n_keys) {
    // Scores (one row per tile row, padded to a whole AVX-512 vector),
    // the transposed key chunk, and one softmax sum per row.
    int64_t row = round_up(n_keys, 16);
    return int64_t(kAttnMaxRows) * row + int64_t(head_dim) * kAttnKeyChunk + kAttnMaxRows + 64;
}

} // namespace lmscore
