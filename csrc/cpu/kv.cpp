#include "kv.hpp"

namespace lmscore {

int64_t kv_block_floats(const Hparams &hp, int32_t block_size) {
    return checked_mul(checked_mul(2 * int64_t(hp.n_head_kv), hp.head_dim, "KV block"), block_size,
                       "KV block");
}

std::unique_ptr<lmscore_kv> make_kv(const lmscore_model &m, int32_t block_size, int32_t n_blocks) {
    if (block_size <= 0)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: block_size %d, want > 0", int(block_size));
    if (n_blocks <= 0)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT, "kv: n_blocks %d, want > 0", int(n_blocks));
    // Slots are int32 in the batch arrays.
    if (int64_t(block_size) * n_blocks > INT32_MAX)
        fail(LMSCORE_STATUS_INVALID_ARGUMENT,
             "kv: %d blocks of %d slots exceed the int32 slot range", int(n_blocks), int(block_size));
    auto kv = std::make_unique<lmscore_kv>();
    kv->model = &m;
    kv->block_size = block_size;
    kv->n_blocks = n_blocks;
    kv->block_floats = kv_block_floats(m.hp, block_size);
    int64_t total = checked_mul(checked_mul(kv->block_floats, n_blocks, "KV pool"), m.hp.n_layer, "KV pool");
    // Zeroed so that a plan that reads a never-written slot gets the same
    // (wrong) answer every time rather than whatever memory held.
    kv->data.reset(size_t(total), /*zero=*/true);
    return kv;
}

} // namespace lmscore
