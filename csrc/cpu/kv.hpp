// The paged KV pool. Layout, for layer l and block b:
//   base = data + (l * n_blocks + b) * block_floats
//   K of KV head h: base + h * block_size * head_dim, transposed:
//     element d of the key at offset o is at [d * block_size + o]
//   V of KV head h: base + (n_head_kv + h) * block_size * head_dim,
//     one row of head_dim values per offset
// Keys lie transposed so that attention scores read W keys side by side
// (one vector) for each d, straight from the block; values lie in rows
// because the weighted sum reads one value row at a time.
#pragma once

#include "common.hpp"
#include "model.hpp"

struct lmscore_kv {
    const lmscore_model *model = nullptr;
    int32_t block_size = 0;
    int32_t n_blocks = 0;
    int64_t block_floats = 0; // one layer, one block, K and V
    lmscore::AlignedBuffer<float> data;

    float *block(int layer, int32_t b) {
        return data.data() + (int64_t(layer) * n_blocks + b) * block_floats;
    }
};

namespace lmscore {
// kv_block_floats is the floats one block holds for one layer (K and V).
int64_t kv_block_floats(const Hparams &hp, int32_t block_size);
std::unique_ptr<lmscore_kv> make_kv(const lmscore_model &m, int32_t block_size, int32_t n_blocks);
} // namespace lmscore
