// Tensor parallelism in the CPU core (lmscore.h, lmscore_tp_group): the
// ranks of a group run one step at once, each in its own thread with its
// own thread pool, and meet at barriers: once before any rank computes (so
// that a rank that failed stops every rank before it touches its pool) and
// twice in each sum of partial rows.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common.hpp"

namespace lmscore {
class ThreadPool;
}

struct lmscore_tp_group {
    explicit lmscore_tp_group(int n) : size(n), bufs(size_t(n), nullptr) {}
    const int size;

    // start waits until every rank has reached the step, ok if this rank
    // may compute. It throws an Error when another rank may not (the
    // message names it), or when the group is broken.
    void start(int rank, bool ok, const std::string &why);
    // sum_rows replaces buf (n floats, this rank's partial sums) by the sum
    // over the ranks, added in rank order: every rank gets the same bits,
    // whichever rows share the step. Each rank adds one slice and writes it
    // into every rank's buffer, so the ranks never write what another reads.
    void sum_rows(int rank, float *buf, int64_t n, lmscore::ThreadPool &pool);
    // abandon marks the group broken (a rank failed after start): ranks
    // waiting at a barrier, and every later step, throw.
    void abandon(int rank, const std::string &why);

  private:
    void wait(std::unique_lock<std::mutex> &lk);

    std::mutex mu_;
    std::condition_variable cv_;
    int arrived_ = 0;
    uint64_t generation_ = 0;
    bool broken_ = false;
    std::string broken_why_;
    // The lowest rank that may not compute: tallied as the ranks reach the
    // start barrier, published by the last one.
    int pending_rank_ = -1, outcome_rank_ = -1;
    std::string pending_why_, outcome_why_;
    std::vector<float *> bufs;
};
