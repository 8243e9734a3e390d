// validate.h — the one check of what lmscore.h accepts, shared by the CPU
// core (csrc/cpu) and the CUDA core (kernels/): a model description before
// any weight is converted, and a batch before it touches the KV pool.
//
// Plain C++ with no exceptions and no allocation, so that each core wraps it
// in its own error idiom (the CPU throws lmscore::Error, the CUDA core
// returns the status). On failure the message, naming the field, index and
// value, is written to msg (cap bytes, always NUL-terminated).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "../include/lmscore.h"

namespace lmscore_common {

// What a batch is checked against: the model, the KV pool and the step.
struct BatchLimits {
    int32_t n_vocab, n_ctx_train;
    int32_t block_size, n_blocks;
    int32_t max_tokens, max_outputs;
};

// validate_batch checks b (and the result buffers it needs) against lim.
// slot_scratch holds at least lim.max_tokens values: the duplicate-slot
// check sorts the written slots there, so the hot path never allocates. On
// success *max_keys is the longest attention row (the last position + 1).
// Messages start with "batch: ".
lmscore_status validate_batch(const lmscore_batch *b, const lmscore_batch_result *res,
                              const BatchLimits &lim, int32_t *slot_scratch, int32_t *max_keys,
                              char *msg, size_t cap);

// The model description in two halves, so that a core can put its own
// limits (precision, head sizes its kernels have) in between and report an
// unsupported size as that rather than as the tensor shapes it implies.
//
// validate_model_hparams: architecture, sizes, RoPE and norm parameters.
lmscore_status validate_model_hparams(const lmscore_model_desc &d, char *msg, size_t cap);
// validate_model_tensors: every tensor present or absent as the
// architecture needs, of a supported type and of the expected shape. Fused
// QKV (gpt2's layout) and separate q/k/v are both accepted for every
// architecture, and every bias (and, but for qwen3, the q/k head norms) is
// optional, so variants of the families load too. Call after validate_model_hparams succeeded.
lmscore_status validate_model_tensors(const lmscore_model_desc &d, char *msg, size_t cap);

// The width of one attention head: d.head_dim, or n_embd / n_head where
// that is 0. Both cores take it from here.
int32_t model_head_dim(const lmscore_model_desc &d);

// The GGUF name of a layer role ("attn_k.weight"), for messages.
const char *layer_role_name(int role);

// A tensor type's GGML name and block: values per block (1 for F32, F16,
// BF16) and bytes per block. False for a value that is not an lmscore_type.
struct TypeInfo {
    const char *name;
    int block, bytes;
};
bool type_info(int32_t type, TypeInfo *out);
const char *type_name(int32_t type); // "unknown" for a value lmscore.h lacks

// validate_model_types: every tensor present has a type supported()
// accepts; otherwise UNSUPPORTED naming the tensor, its type, the core and
// list (the types it reads, for the message). For a core that reads only
// some of lmscore_type; call after validate_model_tensors.
lmscore_status validate_model_types(const lmscore_model_desc &d, bool (*supported)(int32_t type),
                                    const char *core, const char *list, char *msg, size_t cap);

} // namespace lmscore_common
