// tp.cpp — the CPU core's tensor-parallel group (tp.hpp).
#include "tp.hpp"

#include <algorithm>

#include "threadpool.hpp"

// Compiled with the CPU core through this file, as validate.cpp brings in
// ../common/validate.cpp.
#include "../common/tp_barrier.cpp"

void lmscore_tp_group::wait() {
    std::string err;
    if (lmscore_status st = barrier.wait(&err)) lmscore::fail(st, "%s", err.c_str());
}

void lmscore_tp_group::sum_rows(int rank, float *buf, int64_t n, lmscore::ThreadPool &pool) {
    bufs[size_t(rank)] = buf; // read by the others only after the barrier
    wait();
    const int size = this->size();
    const int64_t lo = n * rank / size, hi = n * (rank + 1) / size;
    constexpr int64_t kChunk = 4096;
    pool.run((hi - lo + kChunk - 1) / kChunk, [&](int64_t task, int) {
        const int64_t a = lo + task * kChunk, b = std::min(hi, a + kChunk);
        for (int64_t i = a; i < b; i++) {
            float s = bufs[0][i];
            for (int r = 1; r < size; r++) s += bufs[size_t(r)][i];
            for (int r = 0; r < size; r++) bufs[size_t(r)][i] = s;
        }
    });
    wait(); // every slice is in every buffer
}
