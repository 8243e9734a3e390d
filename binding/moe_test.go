//go:build cgo

package binding

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// moeCases are the three kinds of mixture of experts lmscore reads: a
// Mixtral-like llama (4 experts, top 2, renormalized), a Qwen2-MoE (a gated
// shared expert, raw weights) and a Qwen3-MoE (renormalized). Widths are
// not multiples of the GEMM panel (32) or micro-tile, and F32 experts.
var moeCases = []struct {
	arch model.Arch
	ex   testmodel.Experts
}{
	{model.ArchLlama, testmodel.Experts{N: 4, Used: 2, NFFExp: 72, Norm: true}},
	{model.ArchQwen2MoE, testmodel.Experts{N: 5, Used: 2, NFFExp: 40, Shared: 88}},
	{model.ArchQwen3MoE, testmodel.Experts{N: 6, Used: 3, NFFExp: 56, Norm: true}},
}

// TestMoEAgainstReference: the CPU core's mixture of experts against the
// float64 reference, within checkAgainstReference's 1e-4 per
// log-probability (about 2^10 fp32 ulps of 1: a few layers of K-long fp32
// dot products lose log2(K·layers) of fp32's 24 bits, well inside that),
// for lengths 1, 17 and 300 (the FFN runs 256 rows at a time: 300 tokens
// take two chunks, their experts gathered per chunk) and block sizes 1
// and 16.
func TestMoEAgainstReference(t *testing.T) {
	for _, c := range moeCases {
		t.Run(c.arch.String(), func(t *testing.T) {
			m := testmodel.MustMoE(c.arch, testmodel.Options{Seed: 21 + uint64(c.arch), NVocab: 211, NCtx: 320}, c.ex)
			ref, err := reference.New(m)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(c.arch), 7))
			for _, bs := range []int{1, 16} {
				e := openEngine(t, m, 2, bs, blocksFor(300, bs)+3, 320, 320)
				for _, n := range []int{1, 17, 300} {
					tokens := randomTokens(rng, n, m.Config.NVocab)
					want, err := ref.LogProbs(tokens)
					if err != nil {
						t.Fatal(err)
					}
					t.Run(fmt.Sprintf("len%d/bs%d", n, bs), func(t *testing.T) {
						checkAgainstReference(t, e, want, tokens, refTargets(rng, want, m.Config.NVocab), bs, rng)
					})
				}
			}
		})
	}
}

// TestQuantizedMoEAgainstReference: quantized experts (and router) go
// through the dequantizing GEMM as dense weights do: BF16, Q8_0 on every kind;
// Q4_K, and a mix with gate Q4_K, up Q5_K (one expert matrix of two types)
// and down Q6_K, on a Qwen3-MoE whose experts' rows are whole 256-value
// super-blocks.
func TestQuantizedMoEAgainstReference(t *testing.T) {
	all := func(typ model.TensorType) func(string, [2]int64) model.TensorType {
		return func(string, [2]int64) model.TensorType { return typ }
	}
	mix := func(name string, _ [2]int64) model.TensorType {
		switch {
		case strings.HasSuffix(name, "ffn_up_exps.weight"):
			return model.TypeQ5_K
		case strings.HasSuffix(name, "ffn_down_exps.weight"):
			return model.TypeQ6_K
		}
		return model.TypeQ4_K
	}
	k256 := testmodel.Options{NEmbd: 256, NLayer: 1}
	cases := []struct {
		name   string
		arch   model.Arch
		typeOf func(string, [2]int64) model.TensorType
		o      testmodel.Options
		ex     testmodel.Experts
	}{
		{"BF16", model.ArchQwen2MoE, all(model.TypeBF16), testmodel.Options{}, testmodel.Experts{N: 4, Used: 2, NFFExp: 40, Shared: 88}},
		{"Q8_0", model.ArchLlama, all(model.TypeQ8_0), testmodel.Options{}, testmodel.Experts{N: 4, Used: 2, NFFExp: 96, Norm: true}},
		{"Q8_0", model.ArchQwen2MoE, all(model.TypeQ8_0), testmodel.Options{}, testmodel.Experts{N: 4, Used: 2, NFFExp: 64, Shared: 128}},
		{"Q8_0", model.ArchQwen3MoE, all(model.TypeQ8_0), testmodel.Options{}, testmodel.Experts{N: 4, Used: 2, NFFExp: 96, Norm: true}},
		{"Q4_K", model.ArchQwen3MoE, all(model.TypeQ4_K), k256, testmodel.Experts{N: 4, Used: 2, NFFExp: 256, Norm: true}},
		{"Q4_K/Q5_K/Q6_K mix", model.ArchLlama, mix, k256, testmodel.Experts{N: 4, Used: 2, NFFExp: 256, Norm: true}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.arch, c.name), func(t *testing.T) {
			o := c.o
			o.Seed, o.NVocab, o.NCtx = 31+uint64(c.arch), 150, 64
			f32 := testmodel.MustMoE(c.arch, o, c.ex)
			w, err := f32.Weights.QuantizeWeights(uint64(c.arch), c.typeOf)
			if err != nil {
				t.Fatal(err)
			}
			m := &model.Model{Config: f32.Config, Weights: *w}
			for _, role := range []model.LayerRole{model.FFNGateInp, model.FFNGateExps, model.FFNUpExps, model.FFNDownExps} {
				tn := m.Weights.Layers[0][role]
				if want := c.typeOf(tn.Name, tn.Shape); tn.Type != want {
					t.Fatalf("%s is %s, want %s: the test would not cover that type", tn.Name, tn.Type, want)
				}
			}
			ref, err := reference.New(m)
			if err != nil {
				t.Fatal(err)
			}
			e := openEngine(t, m, 2, 16, blocksFor(37, 16)+3, 64, 64)
			rng := rand.New(rand.NewPCG(uint64(c.arch), 5))
			tokens := randomTokens(rng, 37, m.Config.NVocab)
			want, err := ref.LogProbs(tokens)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstReference(t, e, want, tokens, refTargets(rng, want, m.Config.NVocab), 16, rng)
		})
	}
}

// TestMoETiesGoToTheLowerExpert: a router whose rows are all alike gives
// every expert the same probability, so lmscore.h's tie rule alone decides
// (experts 0 and 1 of 4); the reference follows the same rule, and the
// experts differ, so another choice would show.
func TestMoETiesGoToTheLowerExpert(t *testing.T) {
	m := testmodel.MustMoE(model.ArchLlama, testmodel.Options{Seed: 51, NVocab: 97, NCtx: 64},
		testmodel.Experts{N: 4, Used: 2, NFFExp: 40})
	for l := range m.Weights.Layers {
		r := m.Weights.Layers[l][model.FFNGateInp]
		row := len(r.Data) / int(r.Shape[1])
		for e := 1; e < int(r.Shape[1]); e++ {
			copy(r.Data[e*row:(e+1)*row], r.Data[:row])
		}
	}
	ref, err := reference.New(m)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 1))
	tokens := randomTokens(rng, 29, m.Config.NVocab)
	want, err := ref.LogProbs(tokens)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstReference(t, openEngine(t, m, 2, 16, blocksFor(29, 16)+1, 64, 64), want, tokens,
		refTargets(rng, want, m.Config.NVocab), 16, rng)
}

// TestMoELoadErrors: the core checks the expert tensors' shapes and
// presence and the routing sizes itself (binding passes the Config through
// unchecked).
func TestMoELoadErrors(t *testing.T) {
	base := func() *model.Model {
		return testmodel.MustMoE(model.ArchQwen2MoE, testmodel.Options{NVocab: 97},
			testmodel.Experts{N: 4, Used: 2, NFFExp: 40, Shared: 48})
	}
	cases := []struct {
		name   string
		edit   func(m *model.Model)
		target error
		inMsg  string
	}{
		{"router missing", func(m *model.Model) { m.Weights.Layers[1][model.FFNGateInp] = nil }, ErrInvalidArgument,
			"blk.1.ffn_gate_inp.weight: missing"},
		{"expert rows short", func(m *model.Model) {
			w := m.Weights.Layers[0][model.FFNDownExps]
			w.Shape[1] /= 2
			w.Data = w.Data[:len(w.Data)/2]
		}, ErrInvalidArgument, "blk.0.ffn_down_exps.weight: shape {40, 128}, want {40, 256}"},
		{"dense FFN beside experts", func(m *model.Model) {
			m.Weights.Layers[0][model.FFNUp] = m.Weights.Layers[0][model.FFNUpShexp]
		}, ErrInvalidArgument, "blk.0.ffn_up.weight: a layer of experts has no dense FFN"},
		{"shared expert missing", func(m *model.Model) { m.Weights.Layers[0][model.FFNDownShexp] = nil }, ErrInvalidArgument,
			"blk.0.ffn_down_shexp.weight: missing"},
		{"shared expert without its width", func(m *model.Model) { m.Config.NFFShexp = 0 }, ErrInvalidArgument,
			"no shared expert (n_ff_shexp 0)"},
		{"more used than experts", func(m *model.Model) { m.Config.NExpertUsed = 5 }, ErrInvalidArgument,
			"n_expert_used = 5, want 1 to n_expert = 4"},
		{"experts without n_expert", func(m *model.Model) { m.Config.NExpert = 0 }, ErrInvalidArgument,
			"the model has no experts (n_expert 0)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.edit(m)
			mod, err := OpenCPU(m, 1)
			if err == nil {
				mod.Close()
				t.Fatal("loaded")
			}
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.inMsg) {
				t.Errorf("got %v, want %v mentioning %q", err, c.target, c.inMsg)
			}
		})
	}
}
