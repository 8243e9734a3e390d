#include "common.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace lmscore {

namespace {
// One message per thread, as lmscore.h promises; a fixed array so that
// recording an error can never itself fail to allocate.
thread_local char last_error[1024];
} // namespace

void set_last_error(const char *message) {
    std::snprintf(last_error, sizeof last_error, "%s", message ? message : "");
}

const char *get_last_error() { return last_error; }

void fail(lmscore_status status, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    throw Error(status, buf);
}

int64_t checked_mul(int64_t a, int64_t b, const char *what) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) {
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "%s: size %lld x %lld overflows", what,
             (long long)a, (long long)b);
    }
    return r;
}

} // namespace lmscore
