package bench

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/model"
)

// BF16Variant is one choice of what a bf16 engine keeps in bf16.
type BF16Variant struct {
	Name        string
	FP32LMHead  bool // the LM head's weights (and input) stay fp32
	Rounding    reference.Rounding
	MeanAbsDiff float64 // mean |Δ logprob| against the float64 pass, filled by BF16Budget
	MaxAbsDiff  float64
}

// BF16Variants are the CUDA core's bf16 mode as specified (weights, GEMM
// inputs and the KV pool in bf16) and the cheapest departures from it.
func BF16Variants() []BF16Variant {
	spec := reference.Rounding{Activations: true, KV: true, LMHeadInput: true}
	return []BF16Variant{
		{Name: "as specified: weights, GEMM inputs, KV in bf16", Rounding: spec},
		{Name: "LM head input as a bf16 pair (hi + lo)", Rounding: reference.Rounding{Activations: true, KV: true}},
		{Name: "LM head in fp32 (output rows only)", FP32LMHead: true, Rounding: reference.Rounding{Activations: true, KV: true}},
		{Name: "KV pool (q, k, v) in fp32", Rounding: reference.Rounding{Activations: true, LMHeadInput: true}},
		{Name: "LM head and KV pool in fp32", FP32LMHead: true, Rounding: reference.Rounding{Activations: true}},
		{Name: "weights alone in bf16", Rounding: reference.Rounding{}},
	}
}

// BF16Budget measures, in float64, what each variant's bf16 storage costs on
// m: the floor under any bf16 kernel's error against an exact engine. It
// scores n random sequences of 30-59 tokens (seeded).
func BF16Budget(m *model.Model, n int, seed uint64) ([]BF16Variant, error) {
	exact, err := reference.New(m)
	if err != nil {
		return nil, err
	}
	bf, err := m.Weights.Convert(model.TypeBF16)
	if err != nil {
		return nil, err
	}
	rounded, err := reference.New(&model.Model{Config: m.Config, Weights: *bf})
	if err != nil {
		return nil, err
	}
	// The same bf16 weights with the LM head left in fp32 (for a tied head,
	// an fp32 copy of the embedding).
	head := *bf
	head.Output = m.Weights.Output
	if head.Output == nil {
		head.Output = m.Weights.TokEmbd
	}
	roundedFP32Head, err := reference.New(&model.Model{Config: m.Config, Weights: head})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	seqs := make([][]int32, n)
	for i := range seqs {
		seqs[i] = make([]int32, 30+rng.IntN(30))
		for j := range seqs[i] {
			seqs[i][j] = int32(1 + rng.IntN(m.Config.NVocab-1))
		}
	}
	want := make([][][]float64, n)
	for i, s := range seqs {
		if want[i], err = exact.LogProbs(s); err != nil {
			return nil, err
		}
	}
	vs := BF16Variants()
	for k := range vs {
		r := rounded
		if vs[k].FP32LMHead {
			r = roundedFP32Head
		}
		var sum float64
		count := 0
		for i, s := range seqs {
			got, err := r.LogProbsRounded(s, vs[k].Rounding)
			if err != nil {
				return nil, err
			}
			for p := 0; p+1 < len(s); p++ {
				d := math.Abs(got[p][s[p+1]] - want[i][p][s[p+1]])
				sum += d
				vs[k].MaxAbsDiff = math.Max(vs[k].MaxAbsDiff, d)
				count++
			}
		}
		if count == 0 {
			return nil, fmt.Errorf("bench: no tokens to score")
		}
		vs[k].MeanAbsDiff = sum / float64(count)
	}
	return vs, nil
}
