// The paged KV pool. Layout, for layer l and block b:
//   base = data + (l * n_blocks + b) * block_floats
//   K of KV head h: base + h * block_size * head_dim, transposed:
//     element d of the key at offset o is at [d * block_size + o]
//   V of KV head h: base + (n_head_kv + h) * block_size * head_dim,
//     one row of head_dim values per offset
// Keys lie transposed so that attention scores read W keys side by side
// (one vector) for each d, straight from the block; values lie in rows
// because the weighted sum reads one value row at a time.
//
// n_blocks is a ceiling, not an allocation: the whole pool is one mapping
// of address space with no memory behind it, and kv_reserve commits (zeroed)
// memory for blocks 0..n-1, in segments, as steps first reach them. A small
// job on a large budget touches little memory; block ids and the layout
// never change.
#pragma once

#include "common.hpp"
#include "model.hpp"

struct lmscore_kv {
    const lmscore_model *model = nullptr;
    int32_t block_size = 0;
    int32_t n_blocks = 0;     // the ceiling: block ids run 0..n_blocks-1
    int64_t block_floats = 0; // one layer, one block, K and V
    int64_t seg_blocks = 1;   // blocks committed at a time
    int64_t reserved = 0;     // blocks 0..reserved-1 have memory behind them
    float *data = nullptr;
    size_t map_bytes = 0;              // the mapping's size; 0 when data is heap
    lmscore::AlignedBuffer<float> heap; // where there is no mmap: the whole pool

    lmscore_kv() = default;
    lmscore_kv(const lmscore_kv &) = delete;
    lmscore_kv &operator=(const lmscore_kv &) = delete;
    ~lmscore_kv();

    float *block(int layer, int32_t b) { return data + (int64_t(layer) * n_blocks + b) * block_floats; }
};

namespace lmscore {
// kv_block_floats is the floats one block holds for one layer (K and V).
int64_t kv_block_floats(const Hparams &hp, int32_t block_size);
std::unique_ptr<lmscore_kv> make_kv(const lmscore_model &m, int32_t block_size, int32_t n_blocks);
// kv_reserve gives blocks 0..n-1 memory. Failure throws
// LMSCORE_STATUS_OUT_OF_MEMORY and leaves the pool usable as it was.
void kv_reserve(lmscore_kv &kv, int64_t n);
// kv_reserve_batch reserves every block a validated batch names.
void kv_reserve_batch(lmscore_kv &kv, const lmscore_batch &b);
} // namespace lmscore
