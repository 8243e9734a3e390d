package model

import (
	"bytes"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/gguf"
)

// familyConfigs are one small model of each family with the options it
// has, for round trips through GGUF.
func familyConfigs() map[string]Config {
	base := func(a Arch) Config { return testConfig(a) }
	out := map[string]Config{}
	for a := range families {
		out[a.String()] = base(a)
	}
	mistral := base(ArchLlama)
	mistral.NSWA, mistral.NLayer = 16, 3
	out["mistral"] = mistral

	mixtral := base(ArchLlama)
	mixtral.NExpert, mixtral.NExpertUsed, mixtral.NFFExp, mixtral.ExpertWeightsNorm = 4, 2, mixtral.NFF, true
	out["mixtral"] = mixtral

	g2 := base(ArchGemma2)
	g2.NLayer, g2.NSWA, g2.SWALayers = 3, 8, []bool{true, false, true}
	g2.AttnSoftcap, g2.FinalSoftcap, g2.AttnScale = 50, 30, float32(1/math.Sqrt(24))
	out["gemma2"] = g2

	g3 := base(ArchGemma3)
	g3.NLayer, g3.NSWA, g3.SWALayers = 7, 8, []bool{true, true, true, true, true, false, true}
	g3.RopeFreqBase, g3.RopeFreqBaseSWA, g3.RopeFreqScale = 1e6, 10000, 0.125
	out["gemma3"] = g3
	g3odd := g3
	g3odd.SWALayers = []bool{true, false, true, false, true, false, true} // not the 5:1 default
	out["gemma3 layer_types"] = g3odd

	phi := base(ArchPhi3)
	phi.NRot, phi.RopeAttnFactor, phi.NCtxOrig = 12, 1.19, 16
	out["phi3 longrope"] = phi
	phiSWA := base(ArchPhi3)
	phiSWA.NSWA = 20
	out["phi3 sliding"] = phiSWA

	neox := base(ArchGPTNeoX)
	neox.NRot = 4
	out["gptneox"] = neox
	seq := neox
	seq.SequentialResidual = true
	out["gptneox sequential"] = seq

	q2 := base(ArchQwen2MoE)
	q2.NExpert, q2.NExpertUsed, q2.NFFExp, q2.NFFShexp = 4, 2, 24, 40
	out["qwen2moe"] = q2
	q3 := base(ArchQwen3MoE)
	q3.NExpert, q3.NExpertUsed, q3.NFFExp, q3.ExpertWeightsNorm = 4, 2, 24, true
	out["qwen3moe"] = q3
	return out
}

// phiFactors gives a phi3 config its LongRoPE tensors.
func phiFactors(t *testing.T, cfg Config, w *Weights) {
	if cfg.Arch != ArchPhi3 || cfg.NCtxOrig == 0 {
		return
	}
	n := int64(cfg.RotDim() / 2)
	long, short := make([]float32, n), make([]float32, n)
	for i := range long {
		long[i], short[i] = 1+float32(i), 1+0.5*float32(i)
	}
	var err error
	if w.RopeFactorsLong, err = NewTensor(NameRopeFactorsLong, TypeF32, [2]int64{n, 1}, long); err != nil {
		t.Fatal(err)
	}
	if w.RopeFactorsShort, err = NewTensor(NameRopeFactorsShort, TypeF32, [2]int64{n, 1}, short); err != nil {
		t.Fatal(err)
	}
	w.RopeFreqs = SelectRopeFactors(cfg, w.RopeFactorsLong, w.RopeFactorsShort)
}

// Every family, with its options, reads back from GGUF as written: the
// same Config and the same tensor bytes, experts as llama.cpp's 3-D
// tensors in the file.
func TestFamilyRoundTrip(t *testing.T) {
	for name, cfg := range familyConfigs() {
		t.Run(name, func(t *testing.T) {
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			w, err := RandomWeights(cfg, 7, TypeF32)
			if err != nil {
				t.Fatal(err)
			}
			phiFactors(t, cfg, w)
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := WriteGGUF(path, cfg, w); err != nil {
				t.Fatal(err)
			}
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if !reflect.DeepEqual(m.Config, cfg) {
				t.Fatalf("config\n got %+v\nwant %+v", m.Config, cfg)
			}
			want, got := specs(cfg, w), specs(cfg, &m.Weights)
			for i, s := range want {
				a, b := *s.slot, *got[i].slot
				if (a == nil) != (b == nil) || a != nil && (!bytes.Equal(a.Data, b.Data) || a.Shape != b.Shape) {
					t.Errorf("tensor %s differs after the round trip", s.name)
				}
			}
			if cfg.NExpert > 0 {
				ti, _ := m.File.Tensor(LayerTensorName(0, FFNDownExps))
				if want := []int64{int64(cfg.NFFExp), int64(cfg.NEmbd), int64(cfg.NExpert)}; !slices.Equal(ti.Dims, want) {
					t.Errorf("ffn_down_exps dims %v, want llama.cpp's %v", ti.Dims, want)
				}
			}
			if cfg.Arch == ArchPhi3 && cfg.NCtxOrig != 0 && (m.Weights.RopeFreqs != m.Weights.RopeFactorsShort || m.Config.Window() != cfg.NCtxOrig) {
				t.Errorf("LongRoPE: the short factors apply, within the original context (window %d, want %d)", m.Config.Window(), cfg.NCtxOrig)
			}
		})
	}
}

// rewrite writes a written model's metadata: edit changes the keys.
func rewrite(t *testing.T, cfg Config, edit func(gw *gguf.Writer)) (Config, error) {
	t.Helper()
	w, err := RandomWeights(cfg, 1, TypeF32)
	if err != nil {
		t.Fatal(err)
	}
	phiFactors(t, cfg, w)
	gw, err := NewGGUFWriter(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	edit(gw)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := gw.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		return Config{}, err
	}
	defer m.Close()
	return m.Config, nil
}

// Files as llama.cpp's converter writes them leave out what llama.cpp
// hard-codes per family; those defaults are llama.cpp's.
func TestFamilyDefaults(t *testing.T) {
	g2 := testConfig(ArchGemma2)
	g2.NLayer = 4
	got, err := rewrite(t, g2, func(gw *gguf.Writer) {
		for _, k := range []string{"attention.sliding_window", "attn_logit_softcapping", "final_logit_softcapping"} {
			gw.Delete("gemma2." + k)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.NSWA != 4096 || !slices.Equal(got.SWALayers, []bool{true, false, true, false}) || got.AttnSoftcap != 50 || got.FinalSoftcap != 30 {
		t.Errorf("gemma2 without keys: window %d, layers %v, softcaps %v %v; want 4096, every other layer from 0, 50, 30",
			got.NSWA, got.SWALayers, got.AttnSoftcap, got.FinalSoftcap)
	}

	g3 := testConfig(ArchGemma3)
	g3.NLayer, g3.NSWA, g3.RopeFreqBase, g3.RopeFreqScale = 7, 8, 1e6, 0.125
	g3.RopeFreqBaseSWA, g3.SWALayers = 10000, []bool{true, true, true, true, true, false, true}
	got, err = rewrite(t, g3, func(gw *gguf.Writer) { gw.Delete("gemma3.rope.freq_base_swa") })
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, true, true, true, false, true}; !slices.Equal(got.SWALayers, want) ||
		got.RopeFreqBaseSWA != 10000 || got.RopeFreqScaleSWA != 0 || got.RopeFreqScale != 0.125 {
		t.Errorf("gemma3: layers %v base_swa %v scale %v scale_swa %v; want 5 local : 1 global, 10000, 0.125 on global layers only",
			got.SWALayers, got.RopeFreqBaseSWA, got.RopeFreqScale, got.RopeFreqScaleSWA)
	}
	got, err = rewrite(t, g3, func(gw *gguf.Writer) { gw.Set("gemma3.attention.sliding_window_pattern", uint32(2)) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false, true, false, true}; !slices.Equal(got.SWALayers, want) {
		t.Errorf("gemma3 with a period of 2: layers %v, want %v", got.SWALayers, want)
	}

	// The 27B Gemma's q·k scale without attention.scale: (n_embd/n_head)^-½.
	g27 := testConfig(ArchGemma2)
	g27.NLayer, g27.NEmbdHead = 46, 32
	got, err = rewrite(t, g27, func(gw *gguf.Writer) { gw.Delete("gemma2.attention.scale") })
	if err != nil {
		t.Fatal(err)
	}
	if want := float32(1 / math.Sqrt(16)); got.AttnScale != want {
		t.Errorf("gemma2 with 46 layers: attention scale %v, want %v", got.AttnScale, want)
	}

	q2 := testConfig(ArchQwen2MoE)
	q2.NExpert, q2.NExpertUsed, q2.NFFExp, q2.NFFShexp = 4, 2, q2.NFF/2, q2.NFF
	got, err = rewrite(t, q2, func(gw *gguf.Writer) {
		for _, k := range []string{"expert_feed_forward_length", "expert_shared_feed_forward_length", "expert_weights_norm"} {
			gw.Delete("qwen2moe." + k)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.NFFExp != q2.NFF/2 || got.NFFShexp != q2.NFF || got.ExpertWeightsNorm {
		t.Errorf("qwen2moe defaults: n_ff_exp %d, n_ff_shexp %d, norm %v; want n_ff/n_expert_used %d, n_ff %d, false",
			got.NFFExp, got.NFFShexp, got.ExpertWeightsNorm, q2.NFF/2, q2.NFF)
	}

	q3 := testConfig(ArchQwen3MoE)
	q3.NExpert, q3.NExpertUsed, q3.NFFExp, q3.ExpertWeightsNorm = 4, 2, 24, true
	got, err = rewrite(t, q3, func(gw *gguf.Writer) { gw.Delete("qwen3moe.expert_weights_norm") })
	if err != nil || !got.ExpertWeightsNorm {
		t.Errorf("qwen3moe without expert_weights_norm: norm %v, %v; want true, as llama.cpp's graph", got.ExpertWeightsNorm, err)
	}

	phi := testConfig(ArchPhi3)
	phi.RopeAttnFactor, phi.NCtxOrig = 1.19, 48 // as long as n_ctx_train: the short factors
	w, _ := RandomWeights(phi, 1, TypeF32)
	phiFactors(t, phi, w)
	if w.RopeFreqs != w.RopeFactorsShort {
		t.Error("n_ctx_train equal to the original context: the short factors apply")
	}
}

// Values lmscore does not run are refused by key.
func TestFamilyRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		edit func(gw *gguf.Writer)
		want string
	}{
		{"yarn", testConfig(ArchQwen3), func(gw *gguf.Writer) { gw.Set("qwen3.rope.scaling.type", "yarn") },
			`qwen3.rope.scaling.type is "yarn"`},
		{"qwen2 window", testConfig(ArchQwen2), func(gw *gguf.Writer) { gw.Set("qwen2.attention.sliding_window", uint32(8)) },
			`qwen2.attention.sliding_window is 8, but lmscore (as llama.cpp) has no sliding window for qwen2`},
		{"llama softcap", testConfig(ArchLlama), func(gw *gguf.Writer) { gw.Set("llama.final_logit_softcapping", float32(30)) },
			`llama.final_logit_softcapping is 30, but llama has no soft-capping`},
		{"sigmoid router", func() Config {
			c := testConfig(ArchQwen3MoE)
			c.NExpert, c.NExpertUsed, c.NFFExp = 4, 2, 24
			return c
		}(), func(gw *gguf.Writer) { gw.Set("qwen3moe.expert_gating_func", uint32(2)) },
			`qwen3moe.expert_gating_func is 2; lmscore routes by softmax (1) only`},
		{"moe without experts", func() Config {
			c := testConfig(ArchQwen2MoE)
			c.NExpert, c.NExpertUsed, c.NFFExp, c.NFFShexp = 4, 2, 24, 40
			return c
		}(), func(gw *gguf.Writer) { gw.Delete("qwen2moe.expert_count") },
			`qwen2moe.expert_count is missing or 0, but qwen2moe is a mixture of experts`},
		{"bad pattern", func() Config {
			c := testConfig(ArchGemma3)
			c.NSWA = 8
			return c
		}(), func(gw *gguf.Writer) { gw.Set("gemma3.attention.sliding_window_pattern", []bool{true, false, true}) },
			`gemma3.attention.sliding_window_pattern has 3 layers, the model 2`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := rewrite(t, c.cfg, c.edit)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
