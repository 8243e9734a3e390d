package reference

import (
	"math"

	"github.com/lmscore/lmscore/model"
)

// norm returns the model's norm of x with weights w and bias b (nil: none):
// LayerNorm or RMSNorm as the family has it. A nil w is no norm at all, a
// copy of x (OLMo 2's absent pre-norms).
func (r *Model) norm(x, w, b []float64) []float64 {
	y := append([]float64(nil), x...)
	if w == nil {
		return y
	}
	n := float64(len(x))
	eps := float64(r.cfg.NormEps)
	if r.cfg.NormType() == model.NormLayer {
		var mean, variance float64
		for _, v := range x {
			mean += v
		}
		mean /= n
		for _, v := range x {
			variance += (v - mean) * (v - mean)
		}
		variance /= n
		s := 1 / math.Sqrt(variance+eps)
		for i, v := range x {
			y[i] = (v - mean) * s * w[i]
			if b != nil {
				y[i] += b[i]
			}
		}
		return y
	}
	rmsNorm(y, w, eps)
	return y
}

// rmsNorm RMS-normalizes x in place with weights w.
func rmsNorm(x, w []float64, eps float64) {
	var ms float64
	for _, v := range x {
		ms += v * v
	}
	s := 1 / math.Sqrt(ms/float64(len(x))+eps)
	for i := range x {
		x[i] = x[i] * s * w[i]
	}
}

// qkNorm RMS-normalizes q or k (heads of head_dim) in place with w: each
// head with the same weights (QKNormHead: Qwen3, Gemma 3) or the whole
// projection at once (QKNormFull: OLMo 2); nil w: nothing.
func (r *Model) qkNorm(x, w []float64) {
	if w == nil {
		return
	}
	eps := float64(r.cfg.NormEps)
	if r.cfg.QKNorm() == model.QKNormFull {
		rmsNorm(x, w, eps)
		return
	}
	d := r.cfg.HeadDim()
	for h := 0; h < len(x)/d; h++ {
		rmsNorm(x[h*d:(h+1)*d], w, eps)
	}
}

// rope rotates each head of x (heads of head_dim) for position pos in a
// layer that slides or not. Pair i of the first n_rot values turns by
// pos·scale·base^(-2i/n_rot)/ropeFreqs[i], as llama.cpp's ggml_rope_ext
// applies freq_scale and freq_factors, and cos and sin are multiplied by
// the attention factor; sliding layers have a base and scale of their own.
// The values past n_rot pass unrotated.
func (r *Model) rope(x []float64, pos int, sliding bool) {
	cfg := r.cfg
	d, nRot := cfg.HeadDim(), cfg.RotDim()
	base, scale := float64(cfg.RopeFreqBase), orOne(cfg.RopeFreqScale)
	if sliding {
		scale = orOne(cfg.RopeFreqScaleSWA)
		if cfg.RopeFreqBaseSWA != 0 {
			base = float64(cfg.RopeFreqBaseSWA)
		}
	}
	factor := orOne(cfg.RopeAttnFactor)
	for h := 0; h < len(x)/d; h++ {
		v := x[h*d : (h+1)*d]
		for i := 0; i < nRot/2; i++ {
			theta := float64(pos) * scale * math.Pow(base, -2*float64(i)/float64(nRot))
			if r.ropeFreqs != nil {
				theta /= r.ropeFreqs[i]
			}
			c, s := factor*math.Cos(theta), factor*math.Sin(theta)
			a, b := 2*i, 2*i+1 // NORM: consecutive pairs
			if cfg.RopeType == model.RopeNeox {
				a, b = i, i+nRot/2
			}
			x0, x1 := v[a], v[b]
			v[a] = x0*c - x1*s
			v[b] = x0*s + x1*c
		}
	}
}

// orOne is a scale that 0 spells as 1, as in lmscore_model_desc.
func orOne(v float32) float64 {
	if v == 0 {
		return 1
	}
	return float64(v)
}

// softcap is Gemma 2's c·tanh(x/c); c 0 is none.
func softcap(x []float64, c float32) {
	if c == 0 {
		return
	}
	for i, v := range x {
		x[i] = float64(c) * math.Tanh(v/float64(c))
	}
}

func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

// GELUTanh is the tanh approximation of GELU that GPT-2 and Gemma use.
func GELUTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// GELUErf is the exact GELU, x·Φ(x) (GPT-NeoX).
func GELUErf(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

// LogSoftmax returns log(softmax(x)), max-subtracted.
func LogSoftmax(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(v - m)
	}
	ls := math.Log(sum)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v - m - ls
	}
	return out
}

// Argmax returns the index of the largest value (the first on ties).
func Argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
