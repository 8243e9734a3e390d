// Built by TestThreadPoolStartFailure with -DLMSCORE_TEST_CORES=16: starts a
// pool of 16 threads under an address-space limit that leaves room for only
// a few thread stacks. The pool must report the failure as an Error after
// joining the threads it started (before, std::terminate aborted).
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "../../csrc/cpu/common.cpp"
#include "../../csrc/cpu/threadpool.cpp"

static long vm_size_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmSize:", 0) == 0) return std::stol(line.substr(7));
    return -1;
}

int main() {
    {
        lmscore::ThreadPool warm(2); // a first thread start maps what any start needs
    }
    const long vm = vm_size_kib();
    if (vm <= 0) return 3;
    // Room for about three 8 MiB thread stacks.
    const rlim_t limit = rlim_t(vm + 28 * 1024) * 1024;
    rlimit rl{limit, limit};
    if (setrlimit(RLIMIT_AS, &rl) != 0) return 4;
    try {
        lmscore::ThreadPool pool(16);
        std::printf("started all %d threads: the limit did not bite\n", pool.size());
        return 5;
    } catch (const lmscore::Error &e) {
        std::printf("status %d: %s\n", int(e.status()), e.what());
        return e.status() == LMSCORE_STATUS_OUT_OF_MEMORY ? 0 : 6;
    }
}
