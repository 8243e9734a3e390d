// Tensor parallelism in the CPU core (lmscore.h, lmscore_tp_group): the
// ranks meet at the group's barrier (csrc/common/tp_barrier.h) and sum
// their partial rows here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../common/tp_barrier.h"
#include "common.hpp"

namespace lmscore {
class ThreadPool;
}

struct lmscore_tp_group {
    explicit lmscore_tp_group(int n) : barrier(n), bufs(size_t(n), nullptr) {}
    int size() const { return barrier.size(); }

    // sum_rows replaces buf (n floats, this rank's partial sums) by the sum
    // over the ranks, added in rank order: every rank gets the same bits,
    // whichever rows share the step. Each rank adds one slice and writes it
    // into every rank's buffer, so the ranks never write what another reads.
    void sum_rows(int rank, float *buf, int64_t n, lmscore::ThreadPool &pool);

    lmscore_common::TpBarrier barrier;

  private:
    void wait();
    std::vector<float *> bufs;
};
