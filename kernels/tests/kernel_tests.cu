// kernel_tests.cu — runs every kernel's test (kernels/<kernel>_test.cu,
// beside the kernel it tests) in one program: each kernel against a naive
// float64 CPU reference, in fp32 and bf16 storage, on fresh random inputs,
// with each output poisoned (NaN) before the run so that an unwritten
// element fails; tolerances from tolerance.h. One PASS/FAIL line per check,
// then "kernel_tests: N passed, M failed".
//
// Usage: kernel_tests [--perf] [--perf-only] [--perf-once] [--kernel NAME]
//   --perf         also run each kernel's timing entry (INFO perf lines)
//   --perf-only    the timing entries without the checks
//   --perf-once    each timing runs its launch once (for ncu, which replays
//                  every launch it profiles; tests/ncu_attention.sh)
//   --kernel NAME  only the tests of kernels/NAME.cu (e.g. norm, gemm)
#include <string.h>

#include "kernel_test.h"

namespace lmscore_test {

Report R;

namespace {

// In this order, from one seed: the inputs are the same on every run.
const KernelTest kTests[] = {
    {"convert", convert_check, convert_perf},
    {"dequant", dequant_check, dequant_perf},
    {"embed", embed_check, embed_perf},
    {"norm", norm_check, norm_perf},
    {"rope_kv", rope_kv_check, rope_kv_perf},
    {"attention", attention_check, attention_perf}, // attention.cu and attention_tc.cu
    {"block_copy", block_copy_check, block_copy_perf},
    {"logits", logits_check, logits_perf},
    {"activation", activation_check, activation_perf},
    {"moe", moe_check, moe_perf},
    {"gemm", gemm_check, gemm_perf},
};

} // namespace

} // namespace lmscore_test

using namespace lmscore_test;

int main(int argc, char **argv) {
    bool perf = false, checks = true;
    const char *only = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--perf")) {
            perf = true;
        } else if (!strcmp(argv[i], "--perf-only")) {
            perf = true;
            checks = false;
        } else if (!strcmp(argv[i], "--perf-once")) {
            timing_once() = true;
        } else if (!strcmp(argv[i], "--kernel") && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr,
                    "kernel_tests: unknown argument %s (usage: kernel_tests [--perf] [--perf-only] [--perf-once] "
                    "[--kernel NAME])\n",
                    argv[i]);
            return 2;
        }
    }
    if (only) {
        bool known = false;
        for (const KernelTest &k : kTests) known = known || !strcmp(k.kernel, only);
        if (!known) {
            fprintf(stderr, "kernel_tests: no tests for kernel %s\n", only);
            return 2;
        }
    }
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        printf("SKIP kernel_tests: no CUDA device\n");
        return 0;
    }
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    R.info("device: %s, sm_%d%d, %d SMs", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
    Rng rng(20261125);
    for (const KernelTest &k : kTests)
        if (checks && (!only || !strcmp(k.kernel, only))) k.check(rng);
    if (perf)
        for (const KernelTest &k : kTests)
            if (k.perf && (!only || !strcmp(k.kernel, only))) k.perf(rng);
    return R.finish("kernel_tests");
}
