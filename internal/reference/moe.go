package reference

import (
	"fmt"
	"math"

	"github.com/lmscore/lmscore/model"
)

// experts is one layer's mixture of experts (model.Config.NExpert > 0):
// the router and every expert's matrices, sliced out of the stacked
// tensors (expert e's rows follow expert e-1's), and the shared expert.
type experts struct {
	router               matrix   // n_expert rows of n_embd
	gate, up, down       []matrix // per expert
	shGate, shUp, shDown matrix   // the shared expert; shUp.w nil: none
	shGateInp            []float64
}

// rowsOf is rows [first, first+n) of m.
func rowsOf(m matrix, first, n int) matrix {
	return matrix{n: n, k: m.k, w: m.w[first*m.k : (first+n)*m.k]}
}

// decodeExperts decodes a layer's experts; nil for a dense model.
func decodeExperts(cfg model.Config, lt *[model.LayerRoleCount]*model.Tensor) (*experts, error) {
	if cfg.NExpert == 0 {
		return nil, nil
	}
	ex := &experts{}
	var gate, up, down matrix
	var err error
	for _, p := range []struct {
		dst  *matrix
		role model.LayerRole
	}{{&ex.router, model.FFNGateInp}, {&gate, model.FFNGateExps}, {&up, model.FFNUpExps}, {&down, model.FFNDownExps},
		{&ex.shGate, model.FFNGateShexp}, {&ex.shUp, model.FFNUpShexp}, {&ex.shDown, model.FFNDownShexp}} {
		if *p.dst, err = decodeMatrix(lt[p.role]); err != nil {
			return nil, err
		}
	}
	if ex.shGateInp, err = decode(lt[model.FFNGateInpShexp]); err != nil {
		return nil, err
	}
	if ex.router.w == nil || gate.w == nil || up.w == nil || down.w == nil {
		return nil, fmt.Errorf("a layer of %d experts lacks its router or expert tensors", cfg.NExpert)
	}
	ff, e := cfg.NFFExp, cfg.NEmbd
	for x := 0; x < cfg.NExpert; x++ {
		ex.gate = append(ex.gate, rowsOf(gate, x*ff, ff))
		ex.up = append(ex.up, rowsOf(up, x*ff, ff))
		ex.down = append(ex.down, rowsOf(down, x*e, e))
	}
	return ex, nil
}

// Route returns the experts a token goes to and their weights, as
// lmscore.h specifies: a softmax over every expert's router logit, the
// used largest probabilities (the lower expert id first on ties), divided
// by their sum when norm is set; ids in increasing order.
func Route(logits []float64, used int, norm bool) (ids []int, weights []float64) {
	probs := LogSoftmax(logits)
	for i, lp := range probs {
		probs[i] = math.Exp(lp)
	}
	taken := make([]bool, len(probs))
	for j := 0; j < used; j++ {
		best := -1
		for e, p := range probs {
			if !taken[e] && (best < 0 || p > probs[best]) {
				best = e
			}
		}
		taken[best] = true
	}
	var sum float64
	for e, t := range taken {
		if t {
			ids = append(ids, e)
			weights = append(weights, probs[e])
			sum += probs[e]
		}
	}
	if norm {
		for j := range weights {
			weights[j] /= sum
		}
	}
	return ids, weights
}

// swiglu returns down(silu(gate h) * up h).
func swiglu(gate, up, down matrix, h []float64, rd Rounding) []float64 {
	g, u := roundBF16(rd.Activations, gate.apply(h, nil)), roundBF16(rd.Activations, up.apply(h, nil))
	act := make([]float64, len(g))
	for j := range g {
		act[j] = silu(g[j]) * u[j]
	}
	return down.apply(roundBF16(rd.Activations, act), nil)
}

// expertFFN is the FFN of a layer of experts for the normed state h: the
// routed experts' outputs weighted and summed, plus the shared expert's,
// scaled by sigmoid(shGateInp · h) when that gate is there.
func (r *Model) expertFFN(ex *experts, h []float64, rd Rounding) []float64 {
	ids, weights := Route(ex.router.apply(h, nil), r.cfg.NExpertUsed, r.cfg.ExpertWeightsNorm)
	out := make([]float64, r.cfg.NEmbd)
	for j, e := range ids {
		y := swiglu(ex.gate[e], ex.up[e], ex.down[e], h, rd)
		for i := range out {
			out[i] += weights[j] * y[i]
		}
	}
	if ex.shUp.w != nil {
		scale := 1.0
		if ex.shGateInp != nil {
			var z float64
			for i, w := range ex.shGateInp {
				z += w * h[i]
			}
			scale = 1 / (1 + math.Exp(-z))
		}
		y := swiglu(ex.shGate, ex.shUp, ex.shDown, h, rd)
		for i := range out {
			out[i] += scale * y[i]
		}
	}
	return out
}
