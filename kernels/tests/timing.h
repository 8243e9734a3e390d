// timing.h — the one timing loop of the device tests and probes: warm-up
// calls, then repeated calls each bracketed by CUDA events, and the median.
// CUDA runtime only, so the ABI-only programs (throughput.cpp) can use it.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

namespace lmscore_test {

// Milliseconds of one call of run(), the median of `repeats` timed calls
// after `warmup` untimed ones; events recorded on `stream` around each call.
// The median (the upper one for an even count) rather than the mean, so a
// stray slow call (clock ramp, another process) does not move the figure.
// run returns false on failure, which stops the loop and gives -1.
//
// A call that only enqueues work on `stream` is timed on the GPU. A call
// that returns only when its work is done (an ABI step, whose results are
// on the host when it returns) is timed from the first event to a second
// recorded after it returned, i.e. its wall time, host work included.
// Set by a program's --perf-once (kernel_tests): every median_ms then runs
// its call once, untimed warm-up skipped, so that a profiler that replays
// each launch (ncu) sees one launch per measurement, in order.
inline bool &timing_once() {
    static bool once = false;
    return once;
}

template <typename Run> double median_ms(Run &&run, int warmup, int repeats, cudaStream_t stream = 0) {
    if (timing_once()) {
        warmup = 0;
        repeats = 1;
    }
    for (int i = 0; i < warmup; ++i)
        if (!run()) return -1;
    cudaEvent_t a, b;
    if (cudaEventCreate(&a) != cudaSuccess) return -1;
    if (cudaEventCreate(&b) != cudaSuccess) {
        cudaEventDestroy(a);
        return -1;
    }
    std::vector<float> ms;
    bool ok = true;
    for (int i = 0; i < repeats && ok; ++i) {
        cudaEventRecord(a, stream);
        ok = run();
        cudaEventRecord(b, stream);
        float m = 0;
        ok = ok && cudaEventSynchronize(b) == cudaSuccess && cudaEventElapsedTime(&m, a, b) == cudaSuccess;
        ms.push_back(m);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    if (!ok || ms.empty()) return -1;
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

} // namespace lmscore_test
