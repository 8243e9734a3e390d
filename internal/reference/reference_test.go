package reference

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

func tokens(n, vocab int) []int32 {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(rng.IntN(vocab))
	}
	return out
}

// Every row is a distribution, and a position's row does not change when
// tokens are appended after it (causality).
func TestNormalizedAndCausal(t *testing.T) {
	for _, arch := range testmodel.Arches {
		m := testmodel.Must(testmodel.Options{Arch: arch, Seed: 3})
		r, err := New(m)
		if err != nil {
			t.Fatal(err)
		}
		toks := tokens(20, m.Config.NVocab)
		long, err := r.LogProbs(toks)
		if err != nil {
			t.Fatal(err)
		}
		short, err := r.LogProbs(toks[:12])
		if err != nil {
			t.Fatal(err)
		}
		for i, row := range long {
			var sum float64
			for _, lp := range row {
				sum += math.Exp(lp)
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Errorf("%s position %d: probabilities sum to %v", arch, i, sum)
			}
			if i < len(short) {
				for j := range row {
					if math.Abs(row[j]-short[i][j]) > 1e-12 {
						t.Fatalf("%s position %d: later tokens changed its row", arch, i)
					}
				}
			}
		}
	}
}

// Grouped-query attention equals multi-head attention with each KV head
// repeated for the query heads that share it: a check of the head mapping
// (query head h reads KV head h / (n_head/n_head_kv), as llama.cpp and
// transformers do).
func TestGroupedQueryAttentionMapping(t *testing.T) {
	gqa := testmodel.Must(testmodel.Options{Arch: model.ArchLlama, Seed: 5, NHead: 4, NHeadKV: 2})
	cfg := gqa.Config
	mha := &model.Model{Config: cfg, Weights: gqa.Weights}
	mha.Config.NHeadKV = cfg.NHead
	mha.Weights.Layers = append([][model.LayerRoleCount]*model.Tensor(nil), gqa.Weights.Layers...)
	hd, group := cfg.HeadDim(), cfg.NHead/cfg.NHeadKV
	for l := range mha.Weights.Layers {
		for _, role := range []model.LayerRole{model.WK, model.WV} {
			src := gqa.Weights.Layers[l][role]
			x, err := src.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			e := int(src.Shape[0])
			var rep []float32
			for h := 0; h < cfg.NHead; h++ {
				kv := h / group
				rep = append(rep, x[kv*hd*e:(kv+1)*hd*e]...)
			}
			tt, err := model.NewTensor(src.Name, model.TypeF32, [2]int64{int64(e), int64(cfg.NHead * hd)}, rep)
			if err != nil {
				t.Fatal(err)
			}
			mha.Weights.Layers[l][role] = tt
		}
	}
	rg, err := New(gqa)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := New(mha)
	if err != nil {
		t.Fatal(err)
	}
	toks := tokens(15, cfg.NVocab)
	a, _ := rg.LogProbs(toks)
	b, _ := rm.LogProbs(toks)
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatalf("position %d token %d: GQA %v, repeated-KV MHA %v", i, j, a[i][j], b[i][j])
			}
		}
	}
}

// Qwen3 normalizes every q and k head before RoPE, so scaling the q and k
// projections leaves the output all but unchanged (only eps tells them
// apart), while scaling the head-norm weights of q changes the attention's
// temperature and with it the output: the norm sits between projection and
// attention, per head.
func TestQwen3HeadNorm(t *testing.T) {
	base := testmodel.Must(testmodel.Options{Arch: model.ArchQwen3, Seed: 9})
	cfg := base.Config
	if cfg.HeadDim()*cfg.NHead == cfg.NEmbd {
		t.Fatalf("the qwen3 test model has head_dim %d = n_embd/n_head; want one of its own", cfg.HeadDim())
	}
	scaled := func(roles []model.LayerRole, by float32) *model.Model {
		m := &model.Model{Config: cfg, Weights: base.Weights}
		m.Weights.Layers = append([][model.LayerRoleCount]*model.Tensor(nil), base.Weights.Layers...)
		for l := range m.Weights.Layers {
			for _, role := range roles {
				src := m.Weights.Layers[l][role]
				x, err := src.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				for i := range x {
					x[i] *= by
				}
				tt, err := model.NewTensor(src.Name, model.TypeF32, src.Shape, x)
				if err != nil {
					t.Fatal(err)
				}
				m.Weights.Layers[l][role] = tt
			}
		}
		return m
	}
	toks := tokens(23, cfg.NVocab)
	run := func(m *model.Model) [][]float64 {
		r, err := New(m)
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.LogProbs(toks)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	maxDiff := func(a, b [][]float64) float64 {
		var d float64
		for i := range a {
			for j := range a[i] {
				d = math.Max(d, math.Abs(a[i][j]-b[i][j]))
			}
		}
		return d
	}
	want := run(base)
	if d := maxDiff(want, run(scaled([]model.LayerRole{model.WQ, model.WK}, 8))); d > 1e-4 {
		t.Errorf("scaling wq and wk by 8 moved a log-probability by %.3g; the head norms should undo it", d)
	}
	if d := maxDiff(want, run(scaled([]model.LayerRole{model.AttnQNorm}, 3))); d < 1e-3 {
		t.Errorf("scaling q_norm by 3 moved log-probabilities by only %.3g", d)
	}
}
