// ref_model.h — small random models of each architecture, described through
// the ABI's lmscore_model_desc, and an independent float64 forward pass over
// whole sequences (no cache, no paging) to score them against.
#pragma once

#include <stdint.h>

#include <vector>

#include "lmscore.h"
#include "test_util.h"

namespace lmscore_test {

// The families these tests build; the ABI itself knows only features
// (RandomModel sets them from the family, ref_model.cpp's header says which).
enum TestArch : int32_t {
    ARCH_LLAMA = 1,
    ARCH_QWEN2 = 2,
    ARCH_GPT2 = 3,
    ARCH_GEMMA2 = 4,
    ARCH_GEMMA3 = 5,
    ARCH_PHI3 = 6,
    ARCH_NEOX = 7,
    ARCH_OLMO2 = 8,
    ARCH_MISTRAL = 9,
    ARCH_MIXTRAL = 10,  // llama with experts, renormalized
    ARCH_QWEN2MOE = 11, // qwen2 with experts and a gated shared expert, raw weights
    ARCH_QWEN3MOE = 12, // per-head q/k norms, experts, renormalized
};

const char *test_arch_name(int32_t arch);

struct ModelShape {
    int32_t arch, n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train, rope_type;
    float rope_freq_base, norm_eps;
    bool tied;
    int32_t head_dim = 0; // 0: n_embd / n_head
    int32_t n_swa = 0;    // the sliding window of the families that have one
    // Mixture of experts (the MoE families): n_expert experts of width
    // n_ff_exp, n_expert_used per token, a shared expert of n_ff_shexp.
    int32_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0, n_ff_shexp = 0;
};

// Weights in fp32 with random values scaled so activations stay O(1) and
// next-token distributions are neither flat nor one-hot.
class RandomModel {
  public:
    RandomModel(const ModelShape &shape, uint64_t seed);
    RandomModel(const RandomModel &) = delete;
    RandomModel &operator=(const RandomModel &) = delete;

    const lmscore_model_desc &desc() const { return desc_; }
    const ModelShape &shape() const { return s_; }
    int head_dim() const { return s_.head_dim ? s_.head_dim : s_.n_embd / s_.n_head; }

    // logits[t] (n_vocab) after tokens[0..t], in float64. With bf16_points,
    // weights and the values the CUDA core stores in bf16 (GEMM inputs, q,
    // k, v, a gated FFN's gate and up outputs) are rounded to bf16 where it
    // rounds them, all else float64: the
    // error bf16 storage itself implies, which no kernel can beat.
    //
    // route_margin (optional; models with experts): per token, the smallest
    // over the layers of the gap between its k-th and (k+1)-th largest
    // router logit in this pass (+inf where every expert is used or there
    // are none): how far its choice of experts is from a tie.
    std::vector<std::vector<double>> forward(const std::vector<int32_t> &tokens, bool bf16_points = false,
                                             std::vector<double> *route_margin = nullptr) const;

  private:
    // The FFN of a layer of experts for one normed row (forward's part).
    // *margin: the gap between its k-th and (k+1)-th router logit.
    std::vector<double> experts(int l, const std::vector<double> &h, double *margin) const;

    struct T {
        std::vector<float> v;
        int64_t ne0 = 0, ne1 = 0;
    };
    T make(Rng &rng, int64_t ne0, int64_t ne1, float sd, float mean = 0.f);
    static lmscore_tensor view(const T &t);
    const T &layer(int l, int role) const { return layers_[(size_t)l * LMSCORE_LAYER_ROLE_COUNT + role]; }

    ModelShape s_;
    T tok_, pos_, out_norm_, out_norm_b_, out_, rope_freqs_;
    std::vector<T> layers_;
    std::vector<uint8_t> swa_layers_;
    std::vector<lmscore_tensor> layer_views_;
    lmscore_model_desc desc_{};
};

} // namespace lmscore_test
