package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// RandomWeights makes a model of cfg's shape with reproducible random
// weights (a PCG stream seeded by seed, stable across Go releases), for
// tests and benchmarks that need no trained model. Matrices are uniform
// with variance 1/fan-in so activations keep their scale through the
// layers; norm weights are near 1 and biases near 0. Matrices are encoded
// as typ (Q8_0 falls back to F16 for rows that are not whole blocks, as
// llama.cpp's converter does); vectors are always F32. Families that tie the
// output to the embedding (gpt2, Gemma) get none, the others an untied
// output matrix; set Output to nil to tie one. RopeFreqs stays nil (no RoPE scaling); set it
// from Llama3Rope.RopeFreqsTensor for a Llama 3.1-style model.
//
// A fixture file, which llama.cpp loads too:
//
//	w, err := model.RandomWeights(cfg, seed, model.TypeF32)
//	tok, err := model.FixtureTokenizer(cfg.NVocab) // cfg.NVocab >= 259
//	err = model.WriteGGUF(path, cfg, w, tok...)
func RandomWeights(cfg Config, seed uint64, typ TensorType) (*Weights, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !typ.Supported() {
		return nil, fmt.Errorf("model: %w %s", ErrUnsupportedType, typ)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6c6d73636f7265)) // "lmscore"
	w := &Weights{}
	for _, s := range specs(cfg, w) {
		// Optional tensors stay absent (no extra biases, no RoPE scaling),
		// but for an untied output where the family has one.
		if s.presence == absent || s.presence == derived || isRopeFactors(s.name) || (s.presence == optional && s.name != NameOutput) ||
			(s.name == NameOutput && families[cfg.Arch].tied) {
			continue
		}
		n := s.shape[0] * s.shape[1]
		x := make([]float32, n)
		var lo, hi float64
		switch {
		case s.shape[1] > 1 && s.name != NameTokEmbd && s.name != NamePosEmbd:
			a := math.Sqrt(3 / float64(s.shape[0]))
			lo, hi = -a, a
		case s.shape[1] > 1:
			lo, hi = -1, 1
		case isNormName(s.name):
			lo, hi = 0.9, 1.1
		default:
			lo, hi = -0.1, 0.1
		}
		for i := range x {
			x[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		t, err := NewTensor(s.name, StorageType(typ, s.shape), s.shape, x)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		*s.slot = t
	}
	return w, nil
}

func isNormName(name string) bool {
	return name == NameOutputNorm || strings.HasSuffix(name, "_norm.weight")
}

// StorageType is the type a tensor of this shape gets when a model is
// written as typ, as llama.cpp's converter chooses: vectors (norms, biases)
// stay F32, and a quantized type falls back to F16 for rows that are not
// whole blocks.
func StorageType(typ TensorType, shape [2]int64) TensorType {
	if shape[1] == 1 {
		return TypeF32
	}
	if typ.IsBlockQuant() && shape[0]%int64(typ.BlockSize()) != 0 {
		return TypeF16
	}
	return typ
}

// Convert re-encodes every matrix as typ and every vector as F32, the way
// llama.cpp's converter chooses types (see RandomWeights).
func (w *Weights) Convert(typ TensorType) (*Weights, error) {
	if !typ.Supported() {
		return nil, fmt.Errorf("model: %w %s", ErrUnsupportedType, typ)
	}
	conv := func(t *Tensor) (*Tensor, error) {
		if t == nil {
			return nil, nil
		}
		return t.Convert(StorageType(typ, t.Shape))
	}
	return w.Map(conv)
}

// Map returns the weights with every tensor (nil ones stay nil) replaced by
// conv's result: the one walk over a model's tensors that re-encoding them
// (Convert, QuantizeWeights) needs.
func (w *Weights) Map(conv func(*Tensor) (*Tensor, error)) (*Weights, error) {
	out := &Weights{Layers: make([][LayerRoleCount]*Tensor, len(w.Layers))}
	var err error
	for _, p := range []struct{ dst, src **Tensor }{{&out.TokEmbd, &w.TokEmbd}, {&out.PosEmbd, &w.PosEmbd},
		{&out.OutputNorm, &w.OutputNorm}, {&out.OutputNormB, &w.OutputNormB}, {&out.Output, &w.Output},
		{&out.RopeFactorsLong, &w.RopeFactorsLong}, {&out.RopeFactorsShort, &w.RopeFactorsShort}} {
		if *p.dst, err = conv(*p.src); err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
	}
	// RopeFreqs is Phi-3's LongRoPE factors or a tensor of its own.
	switch {
	case w.RopeFreqs != nil && w.RopeFreqs == w.RopeFactorsLong:
		out.RopeFreqs = out.RopeFactorsLong
	case w.RopeFreqs != nil && w.RopeFreqs == w.RopeFactorsShort:
		out.RopeFreqs = out.RopeFactorsShort
	default:
		if out.RopeFreqs, err = conv(w.RopeFreqs); err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
	}
	for l := range w.Layers {
		for r := range w.Layers[l] {
			if out.Layers[l][r], err = conv(w.Layers[l][r]); err != nil {
				return nil, fmt.Errorf("model: %w", err)
			}
		}
	}
	return out, nil
}
