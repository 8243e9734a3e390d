// tp_barrier.h — the host side of a tensor-parallel group (lmscore.h,
// lmscore_tp_group), in plain C++ for any core: the ranks of a group run one step
// at once, each from its own thread, and meet here. Once per step before
// any rank computes, each with its outcome, so that a rank that failed
// (a bad batch, no memory) stops every rank before it touches its pool;
// then as often as the core's sums need. A failure after the start breaks
// the group: ranks waiting wake with an error, and every later step fails.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "../include/lmscore.h"

namespace lmscore_common {

class TpBarrier {
  public:
    explicit TpBarrier(int size) : size_(size) {}
    int size() const { return size_; }

    // start: rank reaches the step with ok (why and failed_status say what
    // failed when not). LMSCORE_STATUS_OK when every rank may compute;
    // otherwise the lowest failed rank's status and *err naming it (a failed
    // rank's own error is its own to report), or why the group broke.
    lmscore_status start(int rank, bool ok, const std::string &why, std::string *err,
                         lmscore_status failed_status = LMSCORE_STATUS_INVALID_ARGUMENT);
    // wait: every rank meets; an error (and *err) when the group broke.
    lmscore_status wait(std::string *err);
    // abandon breaks the group: rank failed after the start.
    void abandon(int rank, const std::string &why);

  private:
    lmscore_status meet(std::unique_lock<std::mutex> &lk, std::string *err);

    const int size_;
    std::mutex mu_;
    std::condition_variable cv_;
    int arrived_ = 0;
    uint64_t generation_ = 0;
    bool broken_ = false;
    std::string broken_why_;
    // The lowest rank that may not compute: tallied as the ranks reach the
    // start, published by the last one to arrive.
    int pending_rank_ = -1, outcome_rank_ = -1;
    lmscore_status pending_status_ = LMSCORE_STATUS_OK, outcome_status_ = LMSCORE_STATUS_OK;
    std::string pending_why_, outcome_why_;
};

// TpPassage is one rank's way through one step: open() before it computes,
// failed() with what stopped it otherwise, so that it reaches the start
// exactly once per step, and a failure after it breaks the group. Null
// barrier: a whole model, nothing to do.
class TpPassage {
  public:
    TpPassage(TpBarrier *barrier, int rank) : barrier_(barrier), rank_(rank) {}
    lmscore_status open(std::string *err) {
        if (!barrier_) return LMSCORE_STATUS_OK;
        arrived_ = true;
        lmscore_status st = barrier_->start(rank_, true, "", err);
        computing_ = st == LMSCORE_STATUS_OK;
        return st;
    }
    void failed(const std::string &why, lmscore_status status = LMSCORE_STATUS_INVALID_ARGUMENT) noexcept {
        if (!barrier_) return;
        try {
            std::string ignored;
            if (!arrived_) {
                arrived_ = true;
                barrier_->start(rank_, false, why, &ignored, status);
            } else if (computing_) {
                barrier_->abandon(rank_, why);
            }
        } catch (...) {
            // No memory for a message: the other ranks still wake (start
            // arrives and abandon breaks the group before either fails).
        }
    }

  private:
    TpBarrier *barrier_;
    int rank_;
    bool arrived_ = false, computing_ = false;
};

} // namespace lmscore_common
