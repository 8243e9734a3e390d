package model

import (
	"fmt"
	"math"
)

// Llama3Rope is the RoPE scaling of Llama 3.1, 3.2 and 3.3 (Hugging Face
// rope_type "llama3"). A GGUF file does not keep these numbers: llama.cpp's
// converter turns them into one frequency factor per rotated pair, the
// tensor rope_freqs.weight, and the cores divide each pair's angle by its
// factor. FreqFactors computes that tensor.
type Llama3Rope struct {
	Factor          float64 // "factor": how much the low frequencies slow down
	LowFreqFactor   float64 // "low_freq_factor"
	HighFreqFactor  float64 // "high_freq_factor"
	OriginalContext float64 // "original_max_position_embeddings"
}

// Validate refuses parameters that leave a factor undefined or not positive.
func (p Llama3Rope) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"factor", p.Factor}, {"low_freq_factor", p.LowFreqFactor}, {"high_freq_factor", p.HighFreqFactor},
		{"original_max_position_embeddings", p.OriginalContext}} {
		if !(f.v > 0) || math.IsInf(f.v, 0) {
			return fmt.Errorf("llama3 RoPE %s is %v, want a positive number", f.name, f.v)
		}
	}
	if !(p.LowFreqFactor < p.HighFreqFactor) {
		// Equal factors make the smooth band empty and its formula 0/0.
		return fmt.Errorf("llama3 RoPE low_freq_factor %v is not below high_freq_factor %v", p.LowFreqFactor, p.HighFreqFactor)
	}
	return nil
}

// FreqFactors returns the headDim/2 values of rope_freqs.weight, as
// llama.cpp's convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors)
// writes them: pair i has frequency f = base^(-2i/headDim) and wavelength
// w = 2π/f; its factor is 1 where w < OriginalContext/HighFreqFactor (fast
// pairs keep their speed), Factor where w > OriginalContext/LowFreqFactor,
// and 1/((1-s)/Factor + s) in between, with s = (OriginalContext/w -
// LowFreqFactor)/(HighFreqFactor - LowFreqFactor). Pair i then turns by
// pos·f/factor_i, which is transformers' _compute_llama3_parameters
// (inv_freq times (1-s)/Factor + s). Computed in float64 and rounded once;
// llama.cpp computes in float32, so the two may differ in the last bit.
func (p Llama3Rope) FreqFactors(headDim int, base float32) []float32 {
	out := make([]float32, headDim/2)
	lowWavelen := p.OriginalContext / p.LowFreqFactor
	highWavelen := p.OriginalContext / p.HighFreqFactor
	for i := range out {
		freq := math.Pow(float64(base), -2*float64(i)/float64(headDim))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = float32(p.Factor)
		default:
			s := (p.OriginalContext/wavelen - p.LowFreqFactor) / (p.HighFreqFactor - p.LowFreqFactor)
			out[i] = float32(1 / ((1-s)/p.Factor + s))
		}
	}
	return out
}

// RopeFreqsTensor is rope_freqs.weight for cfg and p, as an F32 tensor.
func (p Llama3Rope) RopeFreqsTensor(cfg Config) (*Tensor, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if cfg.RopeType == RopeNone {
		return nil, fmt.Errorf("model: %s has no RoPE to scale", cfg.Arch)
	}
	hd := cfg.HeadDim()
	return NewTensor(NameRopeFreqs, TypeF32, [2]int64{int64(hd / 2), 1}, p.FreqFactors(hd, cfg.RopeFreqBase))
}

func isRopeFactors(name string) bool {
	return name == NameRopeFreqs || name == NameRopeFactorsLong || name == NameRopeFactorsShort
}

// SelectRopeFactors is which of Phi-3's LongRoPE factors lmscore applies:
// the short ones. transformers switches per call, on the length of the
// sequence (long factors past rope.scaling.original_context_length); that
// would make a token's K/V depend on what follows it, which prefix sharing
// cannot allow, so one choice holds for the whole model. The short factors
// give transformers' scores for every sequence within the original context
// (nearly every evaluation request), and Config.Window stops scoring there,
// so no request is scored with factors transformers would not use.
// llama.cpp picks by its context size instead (long for a 128k context),
// which differs from transformers on every short text. Both factors are
// applied with RopeAttnFactor, as llama.cpp and transformers both do.
func SelectRopeFactors(cfg Config, long, short *Tensor) *Tensor {
	if short == nil {
		return long
	}
	return short
}

// Window is the longest sequence lmscore scores with this model: the
// training context, or for LongRoPE models (whose short factors hold up to
// it, see SelectRopeFactors) the original context.
func (c Config) Window() int {
	if families[c.Arch].ropeFactorsLS && c.NCtxOrig > 0 && c.NCtxOrig < c.NCtxTrain {
		return c.NCtxOrig
	}
	return c.NCtxTrain
}

// ropeFactorsFor is the tensor RopeFreqs must be for a family with
// LongRoPE factors.
func (w *Weights) ropeFactorsFor(cfg Config) *Tensor {
	if !families[cfg.Arch].ropeFactorsLS {
		return nil
	}
	return SelectRopeFactors(cfg, w.RopeFactorsLong, w.RopeFactorsShort)
}

// selectRopeFactors points RopeFreqs at the LongRoPE factors that apply,
// for a family that has them.
func (w *Weights) selectRopeFactors(cfg Config) error {
	if !families[cfg.Arch].ropeFactorsLS {
		return nil
	}
	if (w.RopeFactorsLong == nil) != (w.RopeFactorsShort == nil) {
		return fmt.Errorf("%s and %s come together (one is missing)", NameRopeFactorsLong, NameRopeFactorsShort)
	}
	w.RopeFreqs = w.ropeFactorsFor(cfg)
	return nil
}
