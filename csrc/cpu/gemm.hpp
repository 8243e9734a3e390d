// Matrix products against packed weights: C[m x n] = A[m x k] * W^T, W
// being n rows of k values (nn.Linear's layout), packed once at load.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"
#include "kernels.hpp"
#include "quant.hpp"
#include "threadpool.hpp"

namespace lmscore {

// PackedMatrix holds W in panels of kPanel rows (output columns): panel p
// is k x kPanel floats, element (k, j) = W[p*kPanel + j][k], zero past n.
//
// A quantized matrix (init_quantized) instead keeps its rows as the file's
// blocks, in row ranges of one type each (a fused q/k/v may mix Q4_K and
// Q6_K), and gemm dequantizes a panel's K block into a small per-thread
// buffer right before multiplying it: the same fp32 values as the packed
// panel of the dequantized matrix, in the same order, so the products are
// bit for bit those of the F32 model.
class PackedMatrix {
  public:
    void init(int64_t n, int64_t k);
    // init_quantized makes an empty quantized matrix; add_rows fills it.
    void init_quantized(int64_t n, int64_t k);
    int64_t n() const { return n_; }
    int64_t k() const { return k_; }
    bool empty() const { return n_ == 0; }
    bool quantized() const { return quantized_; }
    int64_t n_panels() const { return ceil_div(n_, kPanel); }
    const float *panel(int64_t p) const { return data_.data() + p * k_ * kPanel; }
    // set_row stores W[row][0..k) (row < n); packed matrices only.
    void set_row(int64_t row, const float *values);
    // add_rows copies t's rows (k values each) in as rows first.. of a
    // quantized matrix.
    void add_rows(const lmscore_tensor &t, int64_t first);
    // get_row copies W[row][0..k) out (for embeddings tied to the output).
    void get_row(int64_t row, float *values) const;
    // k_align: K blocks of a quantized matrix start at multiples of this
    // (its types' block size), so that a block is never split.
    int k_align() const { return k_align_; }
    // dequant_panel writes panel p's values for k in [k0, k0 + kc) as
    // panel() lays them out ([k][kPanel], zero past n), with kern's
    // decoders: its panel decoder where all kPanel rows are of one type
    // that has one, else row by row and transposed; tmp holds kPanel *
    // kDequantChunk floats.
    void dequant_panel(const Kernels &kern, int64_t p, int64_t k0, int kc, float *out, float *tmp) const;

  private:
    struct Rows {
        int64_t first, count, row_bytes;
        const BlockType *type;
        std::vector<uint8_t> data;
    };
    const Rows &rows_of(int64_t row) const;

    int64_t n_ = 0, k_ = 0;
    bool quantized_ = false;
    int k_align_ = 8;
    AlignedBuffer<float> data_;
    std::vector<Rows> rows_;
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
    // Room for kQuantPanels dequantized panels of one K block, and the
    // rows of one chunk (dequant_panel's tmp).
    float *dequant(int thread) { return dequant_[size_t(thread)].data(); }
    int64_t a_packed_floats() const { return int64_t(a_packed_.size()); }

  private:
    AlignedBuffer<float> a_packed_;
    std::vector<AlignedBuffer<float>> tiles_;
    std::vector<AlignedBuffer<float>> dequant_;
};

// Panels a task of a quantized product dequantizes per K block (and reuses
// for every row block of A).
constexpr int kQuantPanels = 4;

// dequant_panel decodes a panel's rows kDequantChunk values at a time (one
// K-quant super-block, a multiple of every block size), then transposes
// them into the panel: 32 KiB of rows, so they are still in L1 when read.
constexpr int kDequantChunk = 256;

// gemm computes C = A * W^T for m rows, C of row stride ldc. The work is
// split over blocks of rows and panels of columns, never over k, so every
// element is the same chain whatever m is or which thread computes it.
void gemm(ThreadPool &pool, const Kernels &kern, GemmBuffers &buf, const float *a, int64_t lda,
          int64_t m, const PackedMatrix &w, float *c, int64_t ldc);

} // namespace lmscore
