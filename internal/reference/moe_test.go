package reference

import (
	"math"
	"slices"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

func maxLogProbDiff(a, b [][]float64) float64 {
	var worst float64
	for i := range a {
		for j := range a[i] {
			worst = math.Max(worst, math.Abs(a[i][j]-b[i][j]))
		}
	}
	return worst
}

func logProbsOf(t *testing.T, m *model.Model, toks []int32) [][]float64 {
	t.Helper()
	r, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := r.LogProbs(toks)
	if err != nil {
		t.Fatal(err)
	}
	return lp
}

func TestRouteTiesAndOrder(t *testing.T) {
	cases := []struct {
		logits []float64
		used   int
		ids    []int
	}{
		{[]float64{0, 3, 1, 2}, 2, []int{1, 3}},       // ids come back increasing, not by weight
		{[]float64{1, 2, 2, 2}, 2, []int{1, 2}},       // a tie at the cut: the lower ids
		{[]float64{5, 5, 5, 5}, 3, []int{0, 1, 2}},    // all tied
		{[]float64{-1, 0.5, 0.25}, 3, []int{0, 1, 2}}, // every expert
	}
	for _, c := range cases {
		for _, norm := range []bool{false, true} {
			ids, w := Route(c.logits, c.used, norm)
			if !slices.Equal(ids, c.ids) {
				t.Errorf("Route(%v, %d): ids %v, want %v", c.logits, c.used, ids, c.ids)
			}
			probs := LogSoftmax(c.logits)
			var sum, wsum float64
			for _, e := range ids {
				sum += math.Exp(probs[e])
			}
			for j, e := range ids {
				want := math.Exp(probs[e])
				if norm {
					want /= sum
				}
				if math.Abs(w[j]-want) > 1e-15 {
					t.Errorf("Route(%v, %d, norm %v): weight of %d is %v, want %v", c.logits, c.used, norm, e, w[j], want)
				}
				wsum += w[j]
			}
			if norm && math.Abs(wsum-1) > 1e-15 {
				t.Errorf("Route(%v, %d): normalized weights sum to %v", c.logits, c.used, wsum)
			}
		}
	}
}

// The routing decides the result: the same weights scored with 2 of 4
// experts and with all 4 differ, and so do renormalized and raw weights
// with 2 of 4. With all 4 used the softmax already sums to 1, so
// renormalizing changes nothing (to float64 rounding).
func TestRoutingMatters(t *testing.T) {
	for _, arch := range testmodel.MoEArches {
		t.Run(arch.String(), func(t *testing.T) {
			base := testmodel.MustMoE(arch, testmodel.Options{Seed: 11, NVocab: 97, NCtx: 64},
				testmodel.Experts{N: 4, Used: 2, NFFExp: 72})
			toks := tokens(23, base.Config.NVocab)
			with := func(used int, norm bool) [][]float64 {
				m := *base
				m.Config.NExpertUsed, m.Config.ExpertWeightsNorm = used, norm
				return logProbsOf(t, &m, toks)
			}
			top2, top4 := with(2, false), with(4, false)
			top2n, top4n := with(2, true), with(4, true)
			t.Logf("max |Δ logprob|: top-2 vs top-4 %.3g, top-2 renormalized vs raw %.3g, top-4 renormalized vs raw %.3g",
				maxLogProbDiff(top2, top4), maxLogProbDiff(top2, top2n), maxLogProbDiff(top4, top4n))
			if d := maxLogProbDiff(top2, top4); d < 1e-3 {
				t.Errorf("top-2 and top-4 differ by at most %.3g", d)
			}
			if d := maxLogProbDiff(top2, top2n); d < 1e-3 {
				t.Errorf("top-2 with and without renormalization differ by at most %.3g", d)
			}
			if d := maxLogProbDiff(top4, top4n); d > 1e-12 {
				t.Errorf("top-4 of 4 with and without renormalization differ by %.3g", d)
			}
		})
	}
}

// A layer of identical experts with renormalized weights is the dense FFN
// of that expert, whatever the router says: a check of the expert slicing
// and the weighted sum against the dense path.
func TestIdenticalExpertsAreTheDenseFFN(t *testing.T) {
	dense := testmodel.Must(testmodel.Options{Arch: model.ArchLlama, Seed: 12, NVocab: 97, NCtx: 64})
	cfg := dense.Config
	moe := testmodel.MustMoE(model.ArchLlama, testmodel.Options{Seed: 13, NVocab: 97, NCtx: 64},
		testmodel.Experts{N: 3, Used: 2, NFFExp: cfg.NFF, Norm: true})
	m := &model.Model{Config: moe.Config, Weights: dense.Weights}
	m.Weights.Layers = slices.Clone(dense.Weights.Layers)
	stack := func(t0 *model.Tensor, role model.LayerRole, l int) *model.Tensor {
		var data []byte
		for range moe.Config.NExpert {
			data = append(data, t0.Data...)
		}
		return &model.Tensor{Name: model.LayerTensorName(l, role), Type: t0.Type,
			Shape: [2]int64{t0.Shape[0], t0.Shape[1] * int64(moe.Config.NExpert)}, Data: data}
	}
	for l := range m.Weights.Layers {
		ly := &m.Weights.Layers[l]
		ly[model.FFNGateInp] = moe.Weights.Layers[l][model.FFNGateInp]
		ly[model.FFNGateExps] = stack(ly[model.FFNGate], model.FFNGateExps, l)
		ly[model.FFNUpExps] = stack(ly[model.FFNUp], model.FFNUpExps, l)
		ly[model.FFNDownExps] = stack(ly[model.FFNDown], model.FFNDownExps, l)
		ly[model.FFNGate], ly[model.FFNUp], ly[model.FFNDown] = nil, nil, nil
	}
	toks := tokens(19, cfg.NVocab)
	if d := maxLogProbDiff(logProbsOf(t, dense, toks), logProbsOf(t, m, toks)); d > 1e-12 {
		t.Errorf("identical experts differ from the dense FFN by %.3g", d)
	}
}
