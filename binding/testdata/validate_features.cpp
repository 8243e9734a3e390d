// Built and run by TestValidateFeatureMask: the shared model checks
// (csrc/common/validate.cpp) refuse every feature outside the calling
// core's mask by name, UNSUPPORTED, and accept it inside; experts are
// refused under the dense mask too. Prints each failure; exits 1 on any.
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "../../csrc/common/validate.cpp"

using namespace lmscore_common;

namespace {

int failures = 0;
float data[4096]; // every tensor's values; only shapes matter here

lmscore_tensor tensor(int64_t ne0, int64_t ne1) { return {data, LMSCORE_TYPE_F32, {ne0, ne1}}; }

struct Desc {
    lmscore_model_desc d{};
    std::vector<lmscore_tensor> layer = std::vector<lmscore_tensor>(LMSCORE_LAYER_ROLE_COUNT);

    // A llama-shaped one-layer model: n_embd 8, 2 heads of 4, n_ff 12.
    Desc() {
        d.n_vocab = 16, d.n_embd = 8, d.n_layer = 1, d.n_head = 2, d.n_head_kv = 2, d.n_ff = 12;
        d.n_ctx_train = 32, d.norm_eps = 1e-5f, d.rope_type = LMSCORE_ROPE_TYPE_NEOX, d.rope_freq_base = 1e4f;
        d.tok_embd = tensor(8, 16), d.output_norm = tensor(8, 1);
        layer[LMSCORE_LAYER_ATTN_NORM] = tensor(8, 1);
        layer[LMSCORE_LAYER_WQ] = layer[LMSCORE_LAYER_WK] = layer[LMSCORE_LAYER_WV] = tensor(8, 8);
        layer[LMSCORE_LAYER_WO] = tensor(8, 8);
        layer[LMSCORE_LAYER_FFN_NORM] = tensor(8, 1);
        layer[LMSCORE_LAYER_FFN_GATE] = layer[LMSCORE_LAYER_FFN_UP] = tensor(8, 12);
        layer[LMSCORE_LAYER_FFN_DOWN] = tensor(12, 8);
    }
    const lmscore_model_desc &get() {
        d.layers = layer.data();
        return d;
    }
};

lmscore_status check(Desc &m, uint32_t mask, char *msg) {
    lmscore_status st = validate_model_hparams(m.get(), msg, 512, mask);
    if (st == LMSCORE_STATUS_OK) st = validate_model_tensors(m.get(), msg, 512, mask);
    return st;
}

// expect runs edit on a fresh model and checks it under the mask: status
// want and, when not OK, a message containing text.
void expect(const char *name, const std::function<void(Desc &)> &edit, uint32_t mask, lmscore_status want,
            const char *text) {
    Desc m;
    edit(m);
    char msg[512] = "";
    const lmscore_status st = check(m, mask, msg);
    if (st != want || (want != LMSCORE_STATUS_OK && std::strstr(msg, text) == nullptr)) {
        std::printf("FAIL %s (mask %#x): status %d, want %d; message \"%s\", want \"%s\"\n", name, mask, int(st),
                    int(want), msg, text);
        failures++;
    }
}

} // namespace

int main() {
    const auto U = LMSCORE_STATUS_UNSUPPORTED, OK = LMSCORE_STATUS_OK, BAD = LMSCORE_STATUS_INVALID_ARGUMENT;
    expect("plain llama", [](Desc &) {}, kFeaturesNone, OK, "");
    const struct {
        const char *name;
        std::function<void(Desc &)> edit;
    } features[] = {
        {"GeGLU", [](Desc &m) { m.d.ffn_type = LMSCORE_FFN_GEGLU; }},
        {"the exact GELU",
         [](Desc &m) {
             m.d.ffn_type = LMSCORE_FFN_GELU_ERF;
             m.layer[LMSCORE_LAYER_FFN_GATE] = {};
         }},
        {"q/k norms over the whole projection",
         [](Desc &m) {
             m.d.qk_norm = LMSCORE_QK_NORM_FULL;
             m.layer[LMSCORE_LAYER_ATTN_Q_NORM] = m.layer[LMSCORE_LAYER_ATTN_K_NORM] = tensor(8, 1);
         }},
        {"parallel residual", [](Desc &m) { m.d.parallel_residual = 1; }},
        {"embedding scale", [](Desc &m) { m.d.embd_scale = 2.8f; }},
        {"attention scale", [](Desc &m) { m.d.attn_scale = 0.25f; }},
        {"attention soft-capping", [](Desc &m) { m.d.attn_softcap = 50; }},
        {"final soft-capping", [](Desc &m) { m.d.final_softcap = 30; }},
        {"sliding-window attention", [](Desc &m) { m.d.n_swa = 4; }},
        {"partial rotary", [](Desc &m) { m.d.n_rot = 2; }},
        {"RoPE frequency scale", [](Desc &m) { m.d.rope_freq_scale = 0.5f; }},
        {"RoPE attention factor", [](Desc &m) { m.d.rope_attn_factor = 1.2f; }},
        {"a post-norm", [](Desc &m) { m.layer[LMSCORE_LAYER_FFN_POST_NORM] = tensor(8, 1); }},
        {"a layer without this norm", [](Desc &m) { m.layer[LMSCORE_LAYER_ATTN_NORM] = {}; }},
        {"a fused gate and up",
         [](Desc &m) {
             m.layer[LMSCORE_LAYER_FFN_GATE] = {};
             m.layer[LMSCORE_LAYER_FFN_UP] = tensor(8, 24);
         }},
    };
    for (const auto &f : features) {
        expect(f.name, f.edit, kFeaturesNone, U, f.name); // the CUDA core's mask
        expect(f.name, f.edit, kFeaturesDense, OK, "");   // the CPU core's
    }
    auto moe = [](Desc &m) {
        m.d.n_expert = 4, m.d.n_expert_used = 2, m.d.n_ff_exp = 4;
    };
    expect("experts", moe, kFeaturesDense, U, "mixture of experts is not supported yet");
    expect("expert router", [](Desc &m) { m.layer[LMSCORE_LAYER_FFN_GATE_INP] = tensor(8, 4); }, kFeaturesDense, U,
           "blk.0.ffn_gate_inp.weight: mixture of experts is not supported yet");

    // Under the CPU core's mask, experts (4 of width 4, top 2) in place of
    // the dense FFN.
    const uint32_t with_moe = kFeaturesDense | kFeatureMoE;
    auto experts = [](Desc &m) {
        m.d.n_expert = 4, m.d.n_expert_used = 2, m.d.n_ff_exp = 4;
        m.layer[LMSCORE_LAYER_FFN_GATE] = m.layer[LMSCORE_LAYER_FFN_UP] = m.layer[LMSCORE_LAYER_FFN_DOWN] = {};
        m.layer[LMSCORE_LAYER_FFN_GATE_INP] = tensor(8, 4);
        m.layer[LMSCORE_LAYER_FFN_GATE_EXPS] = m.layer[LMSCORE_LAYER_FFN_UP_EXPS] = tensor(8, 16);
        m.layer[LMSCORE_LAYER_FFN_DOWN_EXPS] = tensor(4, 32);
    };
    expect("experts", experts, with_moe, OK, "");
    expect("experts beside a dense FFN", moe, with_moe, BAD, "blk.0.ffn_gate.weight: a layer of experts has no dense FFN");
    expect("expert down shape",
           [&](Desc &m) {
               experts(m);
               m.layer[LMSCORE_LAYER_FFN_DOWN_EXPS] = tensor(4, 16);
           },
           with_moe, BAD, "blk.0.ffn_down_exps.weight: shape {4, 16}, want {4, 32}");
    expect("more experts used than there are",
           [&](Desc &m) {
               experts(m);
               m.d.n_expert_used = 5;
           },
           with_moe, BAD, "n_expert_used = 5, want 1 to n_expert = 4");
    expect("a shared expert without its width",
           [&](Desc &m) {
               experts(m);
               m.layer[LMSCORE_LAYER_FFN_UP_SHEXP] = tensor(8, 4);
           },
           with_moe, BAD, "blk.0.ffn_up_shexp.weight: the model has no shared expert (n_ff_shexp 0)");
    expect("GeGLU experts",
           [&](Desc &m) {
               experts(m);
               m.d.ffn_type = LMSCORE_FFN_GEGLU;
           },
           with_moe, U, "SwiGLU experts only");
    expect("expert router in a dense model", [](Desc &m) { m.layer[LMSCORE_LAYER_FFN_GATE_INP] = tensor(8, 4); },
           with_moe, BAD, "blk.0.ffn_gate_inp.weight: the model has no experts (n_expert 0)");

    // Shapes of the new roles, under the dense mask.
    expect("post-norm shape", [](Desc &m) { m.layer[LMSCORE_LAYER_ATTN_POST_NORM] = tensor(4, 1); }, kFeaturesDense,
           BAD, "blk.0.post_attention_norm.weight: shape {4, 1}, want {8, 1}");
    expect("fused gate_up shape",
           [](Desc &m) {
               m.layer[LMSCORE_LAYER_FFN_GATE] = {};
               m.layer[LMSCORE_LAYER_FFN_UP] = tensor(8, 12);
           },
           kFeaturesDense, BAD,
           "blk.0.ffn_gate.weight: missing (a gated FFN needs it, or blk.0.ffn_up.weight of shape {8, 24}, gate and up "
           "fused; that has {8, 12})");
    expect("full q norm shape",
           [](Desc &m) {
               m.d.qk_norm = LMSCORE_QK_NORM_FULL;
               m.layer[LMSCORE_LAYER_ATTN_Q_NORM] = tensor(4, 1);
               m.layer[LMSCORE_LAYER_ATTN_K_NORM] = tensor(8, 1);
           },
           kFeaturesDense, BAD, "blk.0.attn_q_norm.weight: shape {4, 1}, want {8, 1}");
    expect("q norm without qk_norm", [](Desc &m) { m.layer[LMSCORE_LAYER_ATTN_Q_NORM] = tensor(4, 1); },
           kFeaturesDense, BAD, "the model has no q/k norm");
    expect("norm bias without weight",
           [](Desc &m) {
               m.d.norm_type = LMSCORE_NORM_LAYER;
               m.layer[LMSCORE_LAYER_FFN_NORM] = {};
               m.layer[LMSCORE_LAYER_FFN_NORM_B] = tensor(8, 1);
           },
           kFeaturesDense, BAD, "a norm bias without its weight");
    expect("rope_freqs of n_rot/2",
           [](Desc &m) {
               m.d.n_rot = 2;
               data[0] = 1.0f;
               m.d.rope_freqs = tensor(2, 1); // head_dim/2, not n_rot/2
           },
           kFeaturesDense, BAD, "rope_freqs.weight: shape {2, 1}, want {1, 1}");
    expect("odd n_rot", [](Desc &m) { m.d.n_rot = 3; }, kFeaturesDense, BAD, "n_rot 3, want an even number");
    expect("negative window", [](Desc &m) { m.d.n_swa = -1; }, kFeaturesDense, BAD, "n_swa -1");
    expect("NaN soft-cap", [](Desc &m) { m.d.attn_softcap = std::nanf(""); }, kFeaturesDense, BAD, "attn_softcap nan");
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
