// tp_barrier.cpp — tp_barrier.h.
#include "tp_barrier.h"

namespace lmscore_common {

lmscore_status TpBarrier::meet(std::unique_lock<std::mutex> &lk, std::string *err) {
    if (broken_) {
        *err = "tensor-parallel group broken: " + broken_why_;
        return LMSCORE_STATUS_INTERNAL;
    }
    const uint64_t gen = generation_;
    if (++arrived_ == size_) {
        arrived_ = 0;
        generation_++;
        cv_.notify_all();
        return LMSCORE_STATUS_OK;
    }
    cv_.wait(lk, [&] { return generation_ != gen || broken_; });
    if (generation_ == gen) { // broken while waiting
        *err = "tensor-parallel group broken: " + broken_why_;
        return LMSCORE_STATUS_INTERNAL;
    }
    return LMSCORE_STATUS_OK;
}

lmscore_status TpBarrier::start(int rank, bool ok, const std::string &why, std::string *err,
                                lmscore_status failed_status) {
    std::unique_lock<std::mutex> lk(mu_);
    if (!ok && (pending_rank_ < 0 || rank < pending_rank_)) {
        pending_rank_ = rank;
        pending_status_ = failed_status;
        try {
            pending_why_ = why;
        } catch (...) {
            pending_why_.clear(); // no memory for the message: the rank still arrives
        }
    }
    if (!broken_ && arrived_ + 1 == size_) {
        // The last to arrive publishes the outcome and clears the tally for
        // the next step: no rank can complete the next start before every
        // rank has left this one, so the outcome stays until all read it.
        outcome_rank_ = pending_rank_;
        outcome_status_ = pending_status_;
        outcome_why_.swap(pending_why_); // no allocation: the last rank always arrives
        pending_rank_ = -1;
        pending_why_.clear();
    }
    if (lmscore_status st = meet(lk, err)) return st;
    if (ok && outcome_rank_ >= 0) {
        *err = "tensor-parallel rank " + std::to_string(outcome_rank_) + " failed, so no rank ran the step: " +
               (outcome_why_.empty() ? "(no message)" : outcome_why_);
        return outcome_status_; // its cause: a bad batch, no memory, a device
    }
    return LMSCORE_STATUS_OK;
}

lmscore_status TpBarrier::wait(std::string *err) {
    std::unique_lock<std::mutex> lk(mu_);
    return meet(lk, err);
}

void TpBarrier::abandon(int rank, const std::string &why) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!broken_) {
        broken_ = true;
        cv_.notify_all(); // before the message, which may fail to allocate
        broken_why_ = "rank " + std::to_string(rank) + " failed: " + why;
    }
}

} // namespace lmscore_common
