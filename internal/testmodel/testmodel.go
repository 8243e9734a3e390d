// Package testmodel makes small seeded random models of every supported
// architecture, as *model.Model, for tests and benchmarks across the repo.
// The same Options always give the same weights.
package testmodel

import (
	"fmt"

	"github.com/lmscore/lmscore/model"
)

// Options shape a random model. Zero fields take the defaults below, so
// Options{Arch: model.ArchQwen2} is a complete request.
type Options struct {
	Arch    model.Arch // default llama
	Seed    uint64
	NLayer  int              // default 2
	NEmbd   int              // default 64
	NHead   int              // default 4
	NHeadKV int              // default NHead/2 for llama, qwen2 and qwen3 (grouped-query attention), NHead for gpt2
	HeadDim int              // default NEmbd/NHead; qwen3: 2*NEmbd/NHead, as Qwen3-0.6B's 128 with 1024 and 16 heads
	NFF     int              // default 3*NEmbd (rounded to whole Q8_0 blocks)
	NVocab  int              // default 256
	NCtx    int              // default 512
	Type    model.TensorType // matrix type, default F32 (vectors are always F32)

	// RopeFreqBase defaults to 10000; NormEps to 1e-5.
	RopeFreqBase float32
	NormEps      float32
	// TiedOutput drops the output matrix of llama, qwen2 and qwen3 so that
	// the LM head reads the token embedding (gpt2 is always tied).
	TiedOutput bool
}

// Config fills the defaults of o and returns the model configuration.
func (o Options) Config() model.Config {
	if o.Arch == 0 {
		o.Arch = model.ArchLlama
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.NLayer, 2)
	def(&o.NEmbd, 64)
	def(&o.NHead, 4)
	if o.Arch == model.ArchGPT2 {
		def(&o.NHeadKV, o.NHead)
	} else {
		def(&o.NHeadKV, max(1, o.NHead/2))
	}
	if o.Arch == model.ArchQwen3 {
		def(&o.HeadDim, 2*o.NEmbd/o.NHead)
	}
	def(&o.NFF, (3*o.NEmbd+31)/32*32)
	def(&o.NVocab, 256)
	def(&o.NCtx, 512)
	if o.RopeFreqBase == 0 {
		o.RopeFreqBase = 10000
	}
	if o.NormEps == 0 {
		o.NormEps = 1e-5
	}
	rope := map[model.Arch]model.RopeType{model.ArchLlama: model.RopeNorm, model.ArchQwen2: model.RopeNeox,
		model.ArchGPT2: model.RopeNone, model.ArchQwen3: model.RopeNeox}[o.Arch]
	cfg := model.Config{
		Arch: o.Arch, NVocab: o.NVocab, NEmbd: o.NEmbd, NLayer: o.NLayer, NHead: o.NHead,
		NHeadKV: o.NHeadKV, NFF: o.NFF, NCtxTrain: o.NCtx, RopeType: rope, NormEps: o.NormEps,
	}
	if o.HeadDim != 0 && o.HeadDim*o.NHead != o.NEmbd {
		cfg.NEmbdHead = o.HeadDim // 0 spells the default, as model.ConfigFromGGUF reads it
	}
	if rope != model.RopeNone {
		cfg.RopeFreqBase = o.RopeFreqBase
	}
	return cfg
}

// New builds the random model o describes (weights from model.RandomWeights).
func New(o Options) (*model.Model, error) {
	cfg := o.Config()
	typ := o.Type // TypeF32 is the zero value
	w, err := model.RandomWeights(cfg, o.Seed, typ)
	if err != nil {
		return nil, fmt.Errorf("testmodel: %w", err)
	}
	if o.TiedOutput {
		w.Output = nil
	}
	return &model.Model{Config: cfg, Weights: *w}, nil
}

// Must is New for tests: it panics on an error, which only a bad Options
// literal in the test itself can cause.
func Must(o Options) *model.Model {
	m, err := New(o)
	if err != nil {
		panic(err)
	}
	return m
}

// Arches lists every supported architecture, for table-driven tests.
var Arches = []model.Arch{model.ArchLlama, model.ArchQwen2, model.ArchGPT2, model.ArchQwen3}

// Types lists every supported weight type, for table-driven tests.
var Types = []model.TensorType{model.TypeF32, model.TypeF16, model.TypeBF16, model.TypeQ8_0}
