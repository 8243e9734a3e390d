// tp_check.cpp — csrc/common/tp_barrier's rules driven by threads, for
// binding/tpbarrier_test.go (test use only: cgo cannot be used in _test.go
// files, and no step of the CPU core fails after its start, so a broken
// group is reached only here). Returns 0, or 1 with what went wrong in msg.
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "../common/tp_barrier.h"

namespace {

// run calls f(rank) on size threads at once and joins them.
template <typename F> void run(int size, F &&f) {
    std::vector<std::thread> ts;
    for (int r = 0; r < size; ++r) ts.emplace_back([&f, r] { f(r); });
    for (std::thread &t : ts) t.join();
}

std::string check() {
    using lmscore_common::TpBarrier;
    using lmscore_common::TpPassage;
    // One rank fails before the start: the others get its status and a
    // message naming it, the failed rank nothing more; then a clean step.
    {
        TpBarrier b(3);
        lmscore_status st[3];
        std::string err[3];
        run(3, [&](int r) {
            st[r] = b.start(r, r != 1, r == 1 ? "no host memory" : "", &err[r], LMSCORE_STATUS_OUT_OF_MEMORY);
        });
        if (st[1] != LMSCORE_STATUS_OK) return "the failed rank got status " + std::to_string(st[1]);
        for (int r : {0, 2})
            if (st[r] != LMSCORE_STATUS_OUT_OF_MEMORY || err[r].find("rank 1 failed") == std::string::npos ||
                err[r].find("no host memory") == std::string::npos)
                return "rank " + std::to_string(r) + " got " + std::to_string(st[r]) + " \"" + err[r] + "\"";
        run(3, [&](int r) { st[r] = b.start(r, true, "", &err[r]); });
        for (int r = 0; r < 3; ++r)
            if (st[r] != LMSCORE_STATUS_OK) return "the step after a failed one: rank " + std::to_string(r) + ": " + err[r];
    }
    // A rank fails after the start (TpPassage::failed abandons): the ranks
    // waiting at a sum wake with an error naming it, and every later step
    // fails at once.
    {
        TpBarrier b(3);
        lmscore_status st[3];
        std::string err[3];
        run(3, [&](int r) {
            TpPassage p(&b, r);
            st[r] = p.open(&err[r]);
            if (st[r] != LMSCORE_STATUS_OK) return;
            if (r == 1) {
                p.failed("a device fault", LMSCORE_STATUS_DEVICE_ERROR);
                return;
            }
            st[r] = b.wait(&err[r]);
        });
        for (int r : {0, 2})
            if (st[r] == LMSCORE_STATUS_OK || err[r].find("rank 1 failed: a device fault") == std::string::npos)
                return "a waiter after rank 1 broke the group: " + std::to_string(st[r]) + " \"" + err[r] + "\"";
        run(3, [&](int r) { st[r] = b.start(r, true, "", &err[r]); });
        for (int r = 0; r < 3; ++r)
            if (st[r] == LMSCORE_STATUS_OK || err[r].find("broken") == std::string::npos)
                return "a step on a broken group: rank " + std::to_string(r) + " \"" + err[r] + "\"";
    }
    // Many steps of starts and sums' meetings, one rank failing now and
    // then before its start: no hang, and every step's outcome right.
    {
        TpBarrier b(4);
        std::atomic<int> wrong{0};
        run(4, [&](int r) {
            for (int step = 0; step < 2000; ++step) {
                const int bad = step % 7 == 3 ? step % 4 : -1;
                TpPassage p(&b, r);
                std::string err;
                if (r == bad) {
                    p.failed("bad batch");
                    continue;
                }
                const lmscore_status st = p.open(&err);
                if ((st == LMSCORE_STATUS_OK) != (bad < 0)) wrong++;
                if (st != LMSCORE_STATUS_OK) continue;
                for (int sum = 0; sum < 3; ++sum)
                    if (b.wait(&err) != LMSCORE_STATUS_OK) wrong++;
            }
        });
        if (wrong) return std::to_string(wrong.load()) + " wrong outcomes in 2000 steps of 4 ranks";
    }
    return "";
}

} // namespace

extern "C" int lmscore_go_tp_barrier_check(char *msg, size_t cap) {
    const std::string why = check();
    snprintf(msg, cap, "%s", why.c_str());
    return why.empty() ? 0 : 1;
}
