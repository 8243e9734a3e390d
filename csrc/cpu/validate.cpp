#include "validate.hpp"

#include "step.hpp"

// The shared checks are compiled with the CPU core through this file, so
// that every build of the core that takes csrc/cpu/*.cpp (cgo's unity file
// binding/core_cpu.cpp, kernels/tests' LMSCORE_CPU_SOURCES) gets them; the
// CUDA core compiles csrc/common/validate.cpp itself.
#include "../common/validate.cpp"

namespace lmscore {

namespace {

void throw_if_failed(lmscore_status st, const char *msg) {
    if (st != LMSCORE_STATUS_OK) throw Error(st, msg);
}

} // namespace

int32_t validate_batch(lmscore_step &st, const lmscore_kv &kv, const lmscore_batch &b,
                       const lmscore_batch_result &res) {
    const Hparams &hp = st.model->hp;
    const lmscore_common::BatchLimits lim{hp.n_vocab,   hp.n_ctx_train, kv.block_size,
                                          kv.n_blocks,  st.max_tokens,  st.max_outputs};
    char msg[1024];
    int32_t max_keys = 0;
    throw_if_failed(lmscore_common::validate_batch(&b, &res, lim, st.slot_check.data(), &max_keys,
                                                   msg, sizeof msg),
                    msg);
    return max_keys;
}

void validate_model_desc(const lmscore_model_desc &d) {
    char msg[1024];
    // The CPU core computes every dense feature and experts (moe.cpp).
    constexpr uint32_t kImplemented = lmscore_common::kFeaturesDense | lmscore_common::kFeatureMoE;
    throw_if_failed(lmscore_common::validate_model_hparams(d, msg, sizeof msg, kImplemented), msg);
    throw_if_failed(lmscore_common::validate_model_tensors(d, msg, sizeof msg, kImplemented), msg);
}

} // namespace lmscore
