// Shared plumbing of the CPU core: errors that become status codes at the
// ABI boundary, aligned buffers, and overflow-checked sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <utility>

#include "../include/lmscore.h"

// No contraction of a*b+c into a fused multiply-add behind our back: where
// the compiler fuses depends on inlining and optimization, so the same
// expression could round differently in two call sites and break batch
// invariance. Fused operations are written out (Vec::fma, std::fma).
// cgo does not pass -ffp-contract=off, hence the pragmas.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lmscore {

// Error carries a status code and a message across the C++ code; the ABI
// entry points (api.cpp) catch it and turn it into a status plus
// lmscore_last_error(). No exception ever crosses the C ABI.
class Error : public std::exception {
  public:
    Error(lmscore_status status, std::string message)
        : status_(status), message_(std::move(message)) {}
    lmscore_status status() const { return status_; }
    const char *what() const noexcept override { return message_.c_str(); }

  private:
    lmscore_status status_;
    std::string message_;
};

// fail formats a message (printf style) and throws Error.
[[noreturn]] void fail(lmscore_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// set_last_error stores the message lmscore_last_error() returns on this thread.
void set_last_error(const char *message);

// checked_mul multiplies sizes and fails with INVALID_ARGUMENT on overflow,
// so that absurd shapes from a corrupt file become an error, not a crash.
int64_t checked_mul(int64_t a, int64_t b, const char *what);

// AlignedBuffer owns a 64-byte-aligned array of T (a cache line, and the
// width of one AVX-512 vector). Allocation failure throws std::bad_alloc,
// which the ABI boundary turns into LMSCORE_STATUS_OUT_OF_MEMORY.
template <typename T> class AlignedBuffer {
  public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(size_t n, bool zero = false) { reset(n, zero); }
    ~AlignedBuffer() { std::free(data_); }
    AlignedBuffer(const AlignedBuffer &) = delete;
    AlignedBuffer &operator=(const AlignedBuffer &) = delete;
    AlignedBuffer(AlignedBuffer &&o) noexcept : data_(o.data_), size_(o.size_) {
        o.data_ = nullptr;
        o.size_ = 0;
    }
    AlignedBuffer &operator=(AlignedBuffer &&o) noexcept {
        std::swap(data_, o.data_);
        std::swap(size_, o.size_);
        return *this;
    }

    void reset(size_t n, bool zero = false) {
        std::free(data_);
        data_ = nullptr;
        size_ = 0;
        if (n == 0) return;
        if (n > (SIZE_MAX - 63) / sizeof(T)) throw std::bad_alloc();
        size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
        void *p = std::aligned_alloc(64, bytes);
        if (p == nullptr) throw std::bad_alloc();
        if (zero) __builtin_memset(p, 0, bytes);
        data_ = static_cast<T *>(p);
        size_ = n;
    }
    // grow keeps nothing: it only makes sure at least n elements exist.
    void grow(size_t n) {
        if (n > size_) reset(n);
    }

    T *data() { return data_; }
    const T *data() const { return data_; }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    T &operator[](size_t i) { return data_[i]; }
    const T &operator[](size_t i) const { return data_[i]; }

  private:
    T *data_ = nullptr;
    size_t size_ = 0;
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

} // namespace lmscore
