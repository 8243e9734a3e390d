// Matrix products against packed weights: C[m x n] = A[m x k] * W^T, W
// being n rows of k values (nn.Linear's layout), packed once at load.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"
#include "kernels.hpp"
#include "threadpool.hpp"

namespace lmscore {

// PackedMatrix holds W in panels of kPanel rows (output columns): panel p
// is k x kPanel floats, element (k, j) = W[p*kPanel + j][k], zero past n.
class PackedMatrix {
  public:
    void init(int64_t n, int64_t k);
    int64_t n() const { return n_; }
    int64_t k() const { return k_; }
    bool empty() const { return n_ == 0; }
    int64_t n_panels() const { return ceil_div(n_, kPanel); }
    const float *panel(int64_t p) const { return data_.data() + p * k_ * kPanel; }
    // set_row stores W[row][0..k) (row < n).
    void set_row(int64_t row, const float *values);
    // get_row copies W[row][0..k) out (for embeddings tied to the output).
    void get_row(int64_t row, float *values) const;

  private:
    int64_t n_ = 0, k_ = 0;
    AlignedBuffer<float> data_;
};

// Blocking of the K dimension: at most kMaxKC per pass, in equal blocks.
// The block edges depend only on k, and the micro-kernel carries each
// element's chain across them through C, so they never change a result.
constexpr int kMaxKC = 512;

// GemmBuffers is the scratch gemm() needs: all of A packed once per call
// (every task then reads it instead of packing its own copy), and one
// small tile per thread for partial panels. Sized once, for the largest
// product a step runs.
class GemmBuffers {
  public:
    void reserve(const Kernels &kern, int64_t max_m, int64_t max_k, int n_threads);
    float *a_packed() { return a_packed_.data(); }
    float *tile(int thread) { return tiles_[size_t(thread)].data(); }
    int64_t a_packed_floats() const { return int64_t(a_packed_.size()); }

  private:
    AlignedBuffer<float> a_packed_;
    std::vector<AlignedBuffer<float>> tiles_;
};

// gemm computes C = A * W^T for m rows, C of row stride ldc. The work is
// split over blocks of rows and panels of columns, never over k, so every
// element is the same chain whatever m is or which thread computes it.
void gemm(ThreadPool &pool, const Kernels &kern, GemmBuffers &buf, const float *a, int64_t lda,
          int64_t m, const PackedMatrix &w, float *c, int64_t ldc);

} // namespace lmscore
