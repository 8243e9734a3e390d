#include "threadpool.hpp"

#ifdef __linux__
#include <sched.h>
#endif

#include "common.hpp"

namespace lmscore {

int ThreadPool::available_cores() {
#ifdef LMSCORE_TEST_CORES
    return LMSCORE_TEST_CORES; // the thread-start failure test pretends to have more
#else
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : static_cast<int>(hc);
#endif
}

ThreadPool::ThreadPool(int n_threads) {
    const int cores = available_cores();
    if (n_threads <= 0 || n_threads > cores) n_threads = cores;
    n_threads_ = n_threads;
    workers_.reserve(n_threads - 1);
    for (int i = 1; i < n_threads; i++) {
        try {
            workers_.emplace_back([this, i] { worker(i); });
        } catch (const std::exception &e) {
            // A joinable std::thread destroyed by the unwinding would call
            // std::terminate: stop and join the ones that did start.
            stop_workers();
            fail(LMSCORE_STATUS_OUT_OF_MEMORY, "thread pool: starting worker thread %d of %d: %s", i,
                 n_threads - 1, e.what());
        }
    }
}

void ThreadPool::stop_workers() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto &t : workers_) t.join();
    workers_.clear();
}

ThreadPool::~ThreadPool() { stop_workers(); }

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
