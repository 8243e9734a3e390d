package testmodel

import (
	"fmt"

	"github.com/lmscore/lmscore/model"
)

// Experts shape the mixture of experts of a random MoE model.
type Experts struct {
	N, Used int  // experts, and experts per token
	NFFExp  int  // each expert's width; default the dense NFF
	Shared  int  // the shared expert's width (qwen2moe needs one); default NFF for qwen2moe
	Norm    bool // renormalize the chosen experts' weights to sum 1 (ExpertWeightsNorm)
}

// denseOf is the dense family an MoE family's attention and defaults follow.
var denseOf = map[model.Arch]model.Arch{
	model.ArchLlama:    model.ArchLlama, // Mixtral is a llama with experts
	model.ArchQwen2MoE: model.ArchQwen2,
	model.ArchQwen3MoE: model.ArchQwen3,
}

// MoEArches lists the families that may have experts, for table-driven tests.
var MoEArches = []model.Arch{model.ArchLlama, model.ArchQwen2MoE, model.ArchQwen3MoE}

// NewMoE builds the random mixture-of-experts model of arch (one of
// MoEArches) that o and ex describe (o.Arch is ignored; weights from
// model.RandomWeights).
func NewMoE(arch model.Arch, o Options, ex Experts) (*model.Model, error) {
	dense, ok := denseOf[arch]
	if !ok {
		return nil, fmt.Errorf("testmodel: %s has no experts", arch)
	}
	o.Arch = dense
	cfg := o.Config()
	cfg.Arch = arch
	cfg.NExpert, cfg.NExpertUsed, cfg.ExpertWeightsNorm = ex.N, ex.Used, ex.Norm
	cfg.NFFExp = ex.NFFExp
	if cfg.NFFExp == 0 {
		cfg.NFFExp = cfg.NFF
	}
	cfg.NFFShexp = ex.Shared
	if arch == model.ArchQwen2MoE && cfg.NFFShexp == 0 {
		cfg.NFFShexp = cfg.NFF
	}
	w, err := model.RandomWeights(cfg, o.Seed, o.Type)
	if err != nil {
		return nil, fmt.Errorf("testmodel: %w", err)
	}
	if o.TiedOutput {
		w.Output = nil
	}
	return &model.Model{Config: cfg, Weights: *w}, nil
}

// MustMoE is NewMoE for tests: it panics on an error, which only a bad
// literal in the test itself can cause.
func MustMoE(arch model.Arch, o Options, ex Experts) *model.Model {
	m, err := NewMoE(arch, o, ex)
	if err != nil {
		panic(err)
	}
	return m
}
