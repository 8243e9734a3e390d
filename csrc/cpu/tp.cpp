// tp.cpp — the CPU core's tensor-parallel group (tp.hpp).
#include "tp.hpp"

#include <algorithm>

#include "threadpool.hpp"

void lmscore_tp_group::wait(std::unique_lock<std::mutex> &lk) {
    const uint64_t gen = generation_;
    if (++arrived_ == size) {
        arrived_ = 0;
        generation_++;
        cv_.notify_all();
        return;
    }
    cv_.wait(lk, [&] { return generation_ != gen || broken_; });
    if (generation_ == gen) // broken while waiting
        lmscore::fail(LMSCORE_STATUS_INTERNAL, "tensor-parallel group broken: %s", broken_why_.c_str());
}

void lmscore_tp_group::start(int rank, bool ok, const std::string &why) {
    std::unique_lock<std::mutex> lk(mu_);
    if (broken_) lmscore::fail(LMSCORE_STATUS_INTERNAL, "tensor-parallel group broken: %s", broken_why_.c_str());
    if (!ok && (pending_rank_ < 0 || rank < pending_rank_)) {
        pending_rank_ = rank;
        pending_why_ = why;
    }
    if (arrived_ + 1 == size) {
        // The last to arrive publishes the outcome and clears the tally for
        // the next step: no rank can complete the next start before every
        // rank has left this one, so the outcome stays until all read it.
        outcome_rank_ = pending_rank_;
        outcome_why_ = pending_why_;
        pending_rank_ = -1;
        pending_why_.clear();
    }
    wait(lk);
    if (outcome_rank_ >= 0 && outcome_rank_ != rank)
        lmscore::fail(LMSCORE_STATUS_INVALID_ARGUMENT, "tensor-parallel rank %d failed, so no rank ran the step: %s",
                      outcome_rank_, outcome_why_.c_str());
}

void lmscore_tp_group::sum_rows(int rank, float *buf, int64_t n, lmscore::ThreadPool &pool) {
    {
        std::unique_lock<std::mutex> lk(mu_);
        bufs[size_t(rank)] = buf;
        wait(lk);
    }
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
    std::unique_lock<std::mutex> lk(mu_);
    wait(lk);
}

void lmscore_tp_group::abandon(int rank, const std::string &why) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!broken_) {
        broken_ = true;
        broken_why_ = "rank " + std::to_string(rank) + " failed: " + why;
    }
    cv_.notify_all();
}
