//go:build cgo

package binding

// #include "../csrc/include/lmscore.h"
import "C"

import (
	"fmt"
	"strings"

	"github.com/lmscore/lmscore/model"
)

// fillFeatures writes the features of cfg's architecture and the model's
// own options into desc: the cores know features, not architectures
// (model/archs.go says which family uses which).
func fillFeatures(desc *C.lmscore_model_desc, cfg model.Config) error {
	if !cfg.Arch.Known() {
		return &Error{Status: StatusUnsupported, Op: "model load",
			Message: fmt.Sprintf("unsupported architecture %s (lmscore supports %s)", cfg.Arch, strings.Join(model.SupportedArchs(), ", "))}
	}
	b := func(v bool) C.int32_t {
		if v {
			return 1
		}
		return 0
	}
	desc.norm_type = C.int32_t(cfg.NormType())
	desc.ffn_type = C.int32_t(cfg.FFNType())
	desc.qk_norm = C.int32_t(cfg.QKNorm())
	desc.parallel_residual = b(cfg.ParallelResidual())
	desc.embd_scale = C.float(cfg.EmbdScale())
	desc.attn_scale = C.float(cfg.AttnScale)
	desc.attn_softcap = C.float(cfg.AttnSoftcap)
	desc.final_softcap = C.float(cfg.FinalSoftcap)
	desc.n_swa = C.int32_t(clampInt32(cfg.NSWA))
	desc.n_rot = C.int32_t(clampInt32(cfg.NRot))
	desc.rope_freq_scale = C.float(cfg.RopeFreqScale)
	desc.rope_attn_factor = C.float(cfg.RopeAttnFactor)
	desc.rope_freq_base_swa = C.float(cfg.RopeFreqBaseSWA)
	desc.rope_freq_scale_swa = C.float(cfg.RopeFreqScaleSWA)
	desc.n_expert = C.int32_t(clampInt32(cfg.NExpert))
	desc.n_expert_used = C.int32_t(clampInt32(cfg.NExpertUsed))
	desc.n_ff_exp = C.int32_t(clampInt32(cfg.NFFExp))
	desc.n_ff_shexp = C.int32_t(clampInt32(cfg.NFFShexp))
	desc.expert_weights_norm = b(cfg.ExpertWeightsNorm)
	return nil
}
