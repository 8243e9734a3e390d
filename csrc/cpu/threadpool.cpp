#include "threadpool.hpp"

namespace lmscore {

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) {
        unsigned hc = std::thread::hardware_concurrency();
        n_threads = hc == 0 ? 1 : static_cast<int>(hc);
    }
    n_threads_ = n_threads;
    workers_.reserve(n_threads - 1);
    for (int i = 1; i < n_threads; i++) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto &t : workers_) t.join();
}

void ThreadPool::drain(int thread) {
    for (;;) {
        int64_t task = next_.fetch_add(1, std::memory_order_relaxed);
        if (task >= n_tasks_) return;
        fn_(ctx_, task, thread);
    }
}

void ThreadPool::run_impl(int64_t n_tasks, void *ctx, TaskFn fn) {
    if (n_tasks <= 0) return;
    if (n_threads_ == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        ctx_ = ctx;
        fn_ = fn;
        n_tasks_ = n_tasks;
        next_.store(0, std::memory_order_relaxed);
        busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
        generation_++;
    }
    wake_.notify_all();
    drain(0);
    // Wait for the workers to leave the region: they may still be running
    // their last task, and the next region must not reuse ctx_ under them.
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return busy_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
        }
        drain(index);
        if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mu_);
            done_cv_.notify_one();
        }
    }
}

} // namespace lmscore
