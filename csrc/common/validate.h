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

// Features of lmscore_model_desc beyond what every core computes, one bit
// each. A core passes the mask of those it implements; a model using one
// outside the mask is UNSUPPORTED by name, never computed without it. The
// default, kFeaturesNone, is a core that has none of them; both cores now
// pass every bit (csrc/cpu/validate.cpp, kernels/model_load.cpp).
enum Feature : uint32_t {
    kFeatureGeGLU = 1u << 0,             // ffn_type GEGLU
    kFeatureGeluErf = 1u << 1,           // ffn_type GELU_ERF
    kFeatureQKNormFull = 1u << 2,        // qk_norm FULL
    kFeatureParallelResidual = 1u << 3,  // parallel_residual
    kFeatureEmbdScale = 1u << 4,         // embd_scale other than 0 or 1
    kFeatureAttnScale = 1u << 5,         // attn_scale
    kFeatureAttnSoftcap = 1u << 6,       // attn_softcap
    kFeatureFinalSoftcap = 1u << 7,      // final_softcap
    kFeatureSlidingWindow = 1u << 8,     // n_swa, swa_layers and the sliding layers' RoPE
    kFeaturePartialRotary = 1u << 9,     // n_rot < head_dim
    kFeatureRopeFreqScale = 1u << 10,    // rope_freq_scale other than 0 or 1
    kFeatureRopeAttnFactor = 1u << 11,   // rope_attn_factor other than 0 or 1
    kFeaturePostNorms = 1u << 12,        // ATTN_POST_NORM, FFN_POST_NORM
    kFeatureOptionalPreNorms = 1u << 13, // ATTN_NORM or FFN_NORM absent (identity)
    kFeatureFusedGateUp = 1u << 14,      // FFN_UP of 2 n_ff rows, FFN_GATE absent
    kFeatureMoE = 1u << 15,              // n_expert > 0 and the expert roles
};
constexpr uint32_t kFeaturesNone = 0;
// Every dense feature: what the CPU core computes.
constexpr uint32_t kFeaturesDense = (kFeatureFusedGateUp << 1) - 1;

// The model description in two halves, so that a core can put its own
// limits (precision, head sizes its kernels have) in between and report an
// unsupported size as that rather than as the tensor shapes it implies.
// `implemented` is the core's mask of Feature bits.
//
// validate_model_hparams: sizes, features, RoPE and norm parameters.
lmscore_status validate_model_hparams(const lmscore_model_desc &d, char *msg, size_t cap,
                                      uint32_t implemented = kFeaturesNone);
// validate_model_tensors: every tensor present or absent as the features
// need, of a supported type and of the expected shape. Fused QKV (gpt2's
// layout) and separate q/k/v are both accepted, and every bias (and, but
// for QK_NORM_HEAD/FULL, the q/k norms) is optional, so variants of the
// families load too. Call after validate_model_hparams succeeded.
lmscore_status validate_model_tensors(const lmscore_model_desc &d, char *msg, size_t cap,
                                      uint32_t implemented = kFeaturesNone);

// Whether layer l of a validated description is a sliding-window layer.
bool model_layer_sliding(const lmscore_model_desc &d, int32_t l);

// The number of values of a head RoPE rotates: n_rot, or head_dim where
// that is 0.
int32_t model_rot_dim(const lmscore_model_desc &d);

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
