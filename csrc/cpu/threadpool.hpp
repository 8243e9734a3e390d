// A persistent pool of worker threads. The forward pass runs a dozen
// parallel regions per layer, so threads are started once per model and
// woken per region rather than created each time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace lmscore {

class ThreadPool {
  public:
    // n_threads counts the calling thread too; <= 0 means every core, and
    // more than available_cores() is capped to it. A thread that fails to
    // start is an Error (LMSCORE_STATUS_OUT_OF_MEMORY) after the threads
    // already started are joined, never std::terminate.
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool &operator=(const ThreadPool &) = delete;

    int size() const { return n_threads_; }

    // available_cores is the number of cores this process may run on (its
    // CPU affinity mask), at least 1.
    static int available_cores();

    // run calls fn(task, thread) for every task in [0, n_tasks), handing
    // tasks out dynamically, and returns when all are done. thread is in
    // [0, size()) and names per-thread scratch. fn must not throw. Which
    // thread runs a task never changes its result: tasks own disjoint
    // outputs and never split a reduction (see gemm.cpp).
    template <typename Fn> void run(int64_t n_tasks, Fn &&fn) {
        run_impl(n_tasks, &fn, [](void *ctx, int64_t task, int thread) {
            (*static_cast<Fn *>(ctx))(task, thread);
        });
    }

  private:
    using TaskFn = void (*)(void *ctx, int64_t task, int thread);
    void run_impl(int64_t n_tasks, void *ctx, TaskFn fn);
    void worker(int index);
    void drain(int thread);
    void stop_workers();

    int n_threads_;
    std::vector<std::thread> workers_;

    std::mutex mu_;
    std::condition_variable wake_;
    std::condition_variable done_cv_;
    uint64_t generation_ = 0; // bumped per region; guarded by mu_
    bool stop_ = false;

    // The current region, published under mu_ before generation_ moves.
    void *ctx_ = nullptr;
    TaskFn fn_ = nullptr;
    int64_t n_tasks_ = 0;
    std::atomic<int64_t> next_{0};
    std::atomic<int> busy_{0}; // workers still inside the current region
};

} // namespace lmscore
