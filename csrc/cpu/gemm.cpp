#include "gemm.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace lmscore {

void PackedMatrix::init(int64_t n, int64_t k) {
    n_ = n;
    k_ = k;
    quantized_ = false;
    k_align_ = 8;
    rows_.clear();
    int64_t panels = ceil_div(n, kPanel);
    data_.reset(size_t(checked_mul(checked_mul(panels, k, "packed weight"), kPanel, "packed weight")),
                /*zero=*/true);
}

void PackedMatrix::set_row(int64_t row, const float *values) {
    float *dst = data_.data() + (row / kPanel) * k_ * kPanel + row % kPanel;
    for (int64_t i = 0; i < k_; i++) dst[i * kPanel] = values[i];
}

void PackedMatrix::init_quantized(int64_t n, int64_t k) {
    n_ = n;
    k_ = k;
    quantized_ = true;
    k_align_ = 8;
    rows_.clear();
    data_.reset(0);
}

void PackedMatrix::add_rows(const lmscore_tensor &t, int64_t first) {
    const BlockType *bt = block_type(t.type);
    if (!quantized_ || bt == nullptr || t.ne[0] != k_ || t.ne[0] % bt->values != 0 || first + t.ne[1] > n_)
        fail(LMSCORE_STATUS_INTERNAL, "gemm: rows of type %d do not fit the quantized matrix", int(t.type));
    Rows r;
    r.first = first;
    r.count = t.ne[1];
    r.row_bytes = k_ / bt->values * bt->bytes;
    r.type = bt;
    const uint8_t *src = static_cast<const uint8_t *>(t.data);
    r.data.assign(src, src + checked_mul(r.count, r.row_bytes, "quantized weight"));
    // Block sizes are 1, 32 or 256, each dividing the next.
    k_align_ = std::max(k_align_, bt->values);
    rows_.push_back(std::move(r));
}

const PackedMatrix::Rows &PackedMatrix::rows_of(int64_t row) const {
    for (const Rows &r : rows_)
        if (row >= r.first && row < r.first + r.count) return r;
    fail(LMSCORE_STATUS_INTERNAL, "gemm: row %lld of a quantized matrix was never loaded", (long long)row);
}

void PackedMatrix::dequant_panel(const Kernels &kern, int64_t p, int64_t k0, int kc, float *out,
                                 float *tmp) const {
    // A whole panel of one type, rows evenly spaced: the kernel's panel
    // decoder, if it has one for the type, writes the panel directly.
    if ((p + 1) * kPanel <= n_) {
        const Rows &r = rows_of(p * kPanel);
        if (p * kPanel + kPanel <= r.first + r.count && r.row_bytes * kPanel <= INT32_MAX) {
            const BlockType &bt = *r.type;
            const uint8_t *rows = r.data.data() + (p * kPanel - r.first) * r.row_bytes + k0 / bt.values * bt.bytes;
            if (kern.decode_panel(bt, rows, r.row_bytes, kc / bt.values, out)) return;
        }
    }
    const uint8_t *row_data[kPanel];
    const BlockType *row_type[kPanel];
    for (int j = 0; j < kPanel; j++) {
        const int64_t row = p * kPanel + j;
        row_data[j] = nullptr;
        if (row >= n_) continue;
        const Rows &r = rows_of(row);
        row_data[j] = r.data.data() + (row - r.first) * r.row_bytes;
        row_type[j] = r.type;
    }
    // k0 and kc are multiples of k_align(), the largest block size among
    // the rows' types, and chunks start at multiples of kDequantChunk, so
    // every chunk is whole blocks of every row's type.
    for (int c0 = 0; c0 < kc; c0 += kDequantChunk) {
        const int n = std::min(kDequantChunk, kc - c0);
        for (int j = 0; j < kPanel; j++) {
            float *dst = tmp + j * kDequantChunk;
            if (row_data[j] == nullptr) {
                std::memset(dst, 0, sizeof(float) * size_t(n));
                continue;
            }
            const BlockType &bt = *row_type[j];
            kern.dequant(bt, row_data[j] + (k0 + c0) / bt.values * bt.bytes, n / bt.values, dst);
        }
        kern.transpose_panel(tmp, kDequantChunk, n, out + int64_t(c0) * kPanel);
    }
}

void PackedMatrix::get_row(int64_t row, float *values) const {
    if (quantized_) {
        const Rows &r = rows_of(row);
        dequant_range(*r.type, r.data.data() + (row - r.first) * r.row_bytes, 0, k_, values);
        return;
    }
    const float *src = data_.data() + (row / kPanel) * k_ * kPanel + row % kPanel;
    for (int64_t i = 0; i < k_; i++) values[i] = src[i * kPanel];
}

namespace {

struct KBlocks {
    int n_blocks;
    int size; // every block but the last has this many; the last the rest
};

// k_blocks splits k into at most kMaxKC-sized blocks starting at multiples
// of align (8, or a quantized matrix's block size, which divides kMaxKC).
KBlocks k_blocks(int64_t k, int align) {
    int n = int(ceil_div(k, kMaxKC));
    if (n < 1) n = 1;
    int size = int(round_up(ceil_div(k, n), align));
    return {int(std::max<int64_t>(1, ceil_div(k, size))), size};
}

// multiply_panel: C[m0.., col..] (+)= A block x panel bp for one row block
// of A (rows rows) and one panel (p) of one K block (kc).
void multiply_panel(const Kernels &kern, const float *a_block, int rows, int kc, const float *bp, int64_t p,
                    int64_t n, float *c, int64_t ldc, int64_t m0, bool accumulate, float *tile) {
    const int mr = kern.mr;
    const int64_t col = p * kPanel;
    const int cols = int(std::min<int64_t>(kPanel, n - col));
    for (int s = 0; s < rows; s += mr) {
        const int r = std::min(mr, rows - s);
        const float *as = a_block + int64_t(s) * kc;
        float *cs = c + (m0 + s) * ldc + col;
        if (cols == kPanel) {
            kern.gemm_tile(kc, as, bp, cs, ldc, r, accumulate);
            continue;
        }
        // A partial panel: run the same kernel on a full-width tile and
        // copy the valid columns, carrying the chain through the tile
        // exactly as through C.
        if (accumulate)
            for (int i = 0; i < r; i++) std::memcpy(tile + i * kPanel, cs + i * ldc, sizeof(float) * cols);
        kern.gemm_tile(kc, as, bp, tile, kPanel, r, accumulate);
        for (int i = 0; i < r; i++) std::memcpy(cs + i * ldc, tile + i * kPanel, sizeof(float) * cols);
    }
}

int row_block(const Kernels &kern) { return kern.mr * 8; }

} // namespace

void GemmBuffers::reserve(const Kernels &kern, int64_t max_m, int64_t max_k, int n_threads) {
    a_packed_.reset(size_t(checked_mul(round_up(max_m, kern.mr), round_up(max_k, 8), "packed activations")));
    tiles_.resize(size_t(n_threads));
    for (auto &t : tiles_) t.reset(size_t(kern.mr) * kPanel);
    dequant_.resize(size_t(n_threads));
    for (auto &d : dequant_) d.grow(size_t(kQuantPanels) * kMaxKC * kPanel + size_t(kPanel) * kDequantChunk);
}

void gemm(ThreadPool &pool, const Kernels &kern, GemmBuffers &buf, const float *a, int64_t lda,
          int64_t m, const PackedMatrix &w, float *c, int64_t ldc) {
    if (m <= 0) return;
    const int64_t n = w.n(), k = w.k();
    const int mr = kern.mr;
    const int mc = row_block(kern);
    const KBlocks kb = k_blocks(k, w.quantized() ? std::max(8, w.k_align()) : 8);
    const int64_t n_panels = w.n_panels();
    const int64_t m_blocks = ceil_div(m, mc);
    const int64_t m_pad = round_up(m, mr);
    if (m_pad * round_up(k, 8) > buf.a_packed_floats()) {
        fail(LMSCORE_STATUS_INTERNAL, "gemm: %lld x %lld exceeds the step's packing buffer", (long long)m,
             (long long)k);
    }

    // 1. Pack A: for each K block (offset k0, length kc), strips of mr rows
    //    laid out [k][mr], at a_packed + m_pad*k0 + strip_row*kc.
    float *a_packed = buf.a_packed();
    pool.run(m_blocks * kb.n_blocks, [&](int64_t task, int) {
        const int64_t mi = task / kb.n_blocks, ki = task % kb.n_blocks;
        const int64_t m0 = mi * mc, k0 = ki * kb.size;
        const int rows = int(std::min<int64_t>(mc, m - m0));
        const int kc = int(std::min<int64_t>(kb.size, k - k0));
        kern.pack_a(a + m0 * lda + k0, lda, rows, kc, a_packed + m_pad * k0 + m0 * kc);
    });

    // 2a. A quantized W: each task dequantizes a few panels of one K block
    //     and multiplies every row block of A by them, so each weight is
    //     decoded once per product. With one row block there is no block
    //     of A to reuse across panels, and a panel a task balances the
    //     threads best (a 64-token step ran ~4% faster so).
    if (w.quantized()) {
        const int64_t per_task =
            m_blocks == 1 ? 1
                          : std::max<int64_t>(1, std::min<int64_t>(kQuantPanels, n_panels / (int64_t(pool.size()) * 2)));
        pool.run(ceil_div(n_panels, per_task), [&](int64_t task, int thread) {
            const int64_t p_begin = task * per_task;
            const int64_t p_end = std::min(n_panels, p_begin + per_task);
            float *panels = buf.dequant(thread);
            float *row_tmp = panels + int64_t(kQuantPanels) * kMaxKC * kPanel;
            float *tile = buf.tile(thread);
            for (int64_t k0 = 0; k0 < k; k0 += kb.size) {
                const int kc = int(std::min<int64_t>(kb.size, k - k0));
                for (int64_t p = p_begin; p < p_end; p++)
                    w.dequant_panel(kern, p, k0, kc, panels + (p - p_begin) * kc * kPanel, row_tmp);
                for (int64_t mi = 0; mi < m_blocks; mi++) {
                    const int64_t m0 = mi * mc;
                    const int rows = int(std::min<int64_t>(mc, m - m0));
                    const float *a_block = a_packed + m_pad * k0 + m0 * kc;
                    for (int64_t p = p_begin; p < p_end; p++)
                        multiply_panel(kern, a_block, rows, kc, panels + (p - p_begin) * kc * kPanel, p, n, c, ldc,
                                       m0, k0 > 0, tile);
                }
            }
        });
        return;
    }

    // 2. Multiply. Enough tasks to balance the threads, a few panels each
    //    so that a task reuses its block of A from cache.
    int64_t panels_per_task = 4;
    const int64_t want_tasks = int64_t(pool.size()) * 4;
    if (m_blocks * ceil_div(n_panels, panels_per_task) < want_tasks) {
        const int64_t n_chunks = ceil_div(want_tasks, m_blocks);
        panels_per_task = std::max<int64_t>(1, n_panels / n_chunks);
    }
    const int64_t n_chunks = ceil_div(n_panels, panels_per_task);
    pool.run(m_blocks * n_chunks, [&](int64_t task, int thread) {
        const int64_t mi = task / n_chunks, ni = task % n_chunks;
        const int64_t m0 = mi * mc;
        const int rows = int(std::min<int64_t>(mc, m - m0));
        const int64_t p_begin = ni * panels_per_task;
        const int64_t p_end = std::min(n_panels, p_begin + panels_per_task);
        float *tile = buf.tile(thread);
        for (int64_t k0 = 0; k0 < k; k0 += kb.size) {
            const int kc = int(std::min<int64_t>(kb.size, k - k0));
            const bool accumulate = k0 > 0;
            const float *a_block = a_packed + m_pad * k0 + m0 * kc;
            for (int64_t p = p_begin; p < p_end; p++)
                multiply_panel(kern, a_block, rows, kc, w.panel(p) + k0 * kPanel, p, n, c, ldc, m0, accumulate, tile);
        }
    });
}

} // namespace lmscore
