// Package reference is a plain float64 forward pass of every dense family
// model/archs.go describes, through the same features the cores see (norm
// and FFN types, q/k norms, post-norms, parallel residual, scales, soft-
// capping, sliding windows, partial and scaled RoPE): the yardstick the CPU
// core is tested against. It is written for clarity, one token and one head
// at a time, with none of the engine's paging, batching or blocking, so that
// agreement means something. forward.go runs it, ops.go holds its norms,
// RoPE and activations.
//
// Weights are decoded from their stored type (every type lmscore reads,
// through model.Tensor.Float32s, exactly as the engine dequantizes them)
// and widened to float64.
package reference

import (
	"fmt"

	"github.com/lmscore/lmscore/model"
)

// matrix is n rows of k values (nn.Linear's layout).
type matrix struct {
	n, k int
	w    []float64
}

// apply returns W x (+ b when b is non-nil).
func (m matrix) apply(x, b []float64) []float64 {
	y := make([]float64, m.n)
	for i := range y {
		row := m.w[i*m.k : (i+1)*m.k]
		var s float64
		for j, v := range row {
			s += v * x[j]
		}
		if b != nil {
			s += b[i]
		}
		y[i] = s
	}
	return y
}

type layer struct {
	attnNorm, attnNormB []float64 // nil attnNorm: no norm before attention (OLMo 2)
	wq, wk, wv          matrix
	bq, bk, bv          []float64
	qNorm, kNorm        []float64 // q/k RMSNorm weights: per head (head_dim) or the whole projection
	wo                  matrix
	bo                  []float64
	attnPostNorm        []float64 // nil: the attention output goes to the residual as it is
	ffnNorm, ffnNormB   []float64 // nil ffnNorm: no norm before the FFN
	ffnPostNorm         []float64
	gate, up, down      matrix // a fused gate_up is split into gate and up at load
	upB, downB          []float64
	experts             *experts // NExpert > 0: in place of gate, up and down (moe.go)
	sliding             bool     // attends within the last NSWA positions
}

// Model is a model decoded for the reference forward pass.
type Model struct {
	// GELU is gpt2's activation (FFNGELU), by default the tanh
	// approximation in float64. A test may swap in another engine's variant (llama.cpp's
	// fp16 table, say) to account for a difference.
	GELU func(x float64) float64

	cfg            model.Config
	tok, pos       matrix
	outNorm, outNB []float64
	out            matrix
	layers         []layer
	ropeFreqs      []float64 // divides pair i's angle; nil: all 1
}

func decode(t *model.Tensor) ([]float64, error) {
	if t == nil {
		return nil, nil
	}
	x, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out, nil
}

func decodeMatrix(t *model.Tensor) (matrix, error) {
	if t == nil {
		return matrix{}, nil
	}
	w, err := decode(t)
	return matrix{n: int(t.Shape[1]), k: int(t.Shape[0]), w: w}, err
}

// New decodes m's weights.
func New(m *model.Model) (*Model, error) {
	cfg := m.Config
	if err := m.Weights.Check(cfg); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	r := &Model{cfg: cfg, GELU: GELUTanh}
	w := &m.Weights
	var err error
	mat := func(dst *matrix, t *model.Tensor) {
		if err == nil {
			*dst, err = decodeMatrix(t)
		}
	}
	vec := func(dst *[]float64, t *model.Tensor) {
		if err == nil {
			*dst, err = decode(t)
		}
	}
	mat(&r.tok, w.TokEmbd)
	mat(&r.pos, w.PosEmbd)
	vec(&r.outNorm, w.OutputNorm)
	vec(&r.outNB, w.OutputNormB)
	vec(&r.ropeFreqs, w.RopeFreqs)
	if w.Output != nil {
		mat(&r.out, w.Output)
	} else {
		r.out = r.tok
	}
	e := cfg.NEmbd
	qDim, kvDim := cfg.NHead*cfg.HeadDim(), cfg.NHeadKV*cfg.HeadDim()
	r.layers = make([]layer, cfg.NLayer)
	for l := range r.layers {
		lt := &w.Layers[l]
		ly := &r.layers[l]
		vec(&ly.attnNorm, lt[model.AttnNorm])
		vec(&ly.attnNormB, lt[model.AttnNormB])
		if lt[model.WQKV] != nil {
			// Fused rows: q, then k, then v.
			var qkv matrix
			var bqkv []float64
			mat(&qkv, lt[model.WQKV])
			vec(&bqkv, lt[model.BQKV])
			if err != nil {
				break
			}
			split := func(lo, hi int) matrix { return matrix{n: hi - lo, k: e, w: qkv.w[lo*e : hi*e]} }
			ly.wq, ly.wk, ly.wv = split(0, qDim), split(qDim, qDim+kvDim), split(qDim+kvDim, qDim+2*kvDim)
			if bqkv != nil {
				ly.bq, ly.bk, ly.bv = bqkv[:qDim], bqkv[qDim:qDim+kvDim], bqkv[qDim+kvDim:]
			}
		} else {
			mat(&ly.wq, lt[model.WQ])
			mat(&ly.wk, lt[model.WK])
			mat(&ly.wv, lt[model.WV])
			vec(&ly.bq, lt[model.BQ])
			vec(&ly.bk, lt[model.BK])
			vec(&ly.bv, lt[model.BV])
		}
		vec(&ly.qNorm, lt[model.AttnQNorm])
		vec(&ly.kNorm, lt[model.AttnKNorm])
		mat(&ly.wo, lt[model.WO])
		vec(&ly.bo, lt[model.BO])
		vec(&ly.attnPostNorm, lt[model.AttnPostNorm])
		vec(&ly.ffnNorm, lt[model.FFNNorm])
		vec(&ly.ffnNormB, lt[model.FFNNormB])
		vec(&ly.ffnPostNorm, lt[model.FFNPostNorm])
		mat(&ly.gate, lt[model.FFNGate])
		mat(&ly.up, lt[model.FFNUp])
		vec(&ly.upB, lt[model.FFNUpB])
		mat(&ly.down, lt[model.FFNDown])
		vec(&ly.downB, lt[model.FFNDownB])
		if err == nil && cfg.Gated() && ly.gate.w == nil && ly.up.w != nil {
			// Fused gate_up (Phi-3): 2·n_ff rows, the gate's first.
			ff := cfg.NFF
			ly.gate = matrix{n: ff, k: e, w: ly.up.w[:ff*e]}
			ly.up = matrix{n: ff, k: e, w: ly.up.w[ff*e:]}
		}
		ly.sliding = cfg.IsSliding(l)
		if err == nil {
			ly.experts, err = decodeExperts(cfg, lt)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	return r, nil
}
