package convert

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/lmscore/lmscore/model"
)

// familyFolder writes a synthetic checkpoint of class with Hugging Face's
// tensor names for it, config.json from cfg and a byte-level tokenizer; it
// returns the tensors by name. experts is "per-expert" (save_pretrained's
// original format), "fused" (transformers 5's gate_up_proj) or "".
func familyFolder(t *testing.T, dir, class string, cfg map[string]any, experts string) map[string]hfTensor {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const vocab = 262
	hd := tHD
	if v, ok := cfg["head_dim"].(int); ok {
		hd = v
	}
	q, kv := int64(tH*hd), int64(tKV*hd)
	var ts []hfTensor
	add := func(name string, shape ...int64) { ts = append(ts, randTensor(rng, name, "BF16", shape...)) }
	const nExp, ffExp, ffSh = 4, 24, 40
	switch class {
	case "GPTNeoXForCausalLM":
		add("gpt_neox.embed_in.weight", vocab, tE)
		for l := 0; l < tL; l++ {
			p := fmt.Sprintf("gpt_neox.layers.%d.", l)
			for _, n := range []string{"input_layernorm", "post_attention_layernorm"} {
				add(p+n+".weight", tE)
				add(p+n+".bias", tE)
			}
			add(p+"attention.query_key_value.weight", 3*tE, tE)
			add(p+"attention.query_key_value.bias", 3*tE)
			add(p+"attention.dense.weight", tE, tE)
			add(p+"attention.dense.bias", tE)
			add(p+"mlp.dense_h_to_4h.weight", tFF, tE)
			add(p+"mlp.dense_h_to_4h.bias", tFF)
			add(p+"mlp.dense_4h_to_h.weight", tE, tFF)
			add(p+"mlp.dense_4h_to_h.bias", tE)
		}
		add("gpt_neox.final_layer_norm.weight", tE)
		add("gpt_neox.final_layer_norm.bias", tE)
		add("embed_out.weight", vocab, tE)
	default:
		add("model.embed_tokens.weight", vocab, tE)
		for l := 0; l < tL; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			if class != "Olmo2ForCausalLM" {
				add(p+"input_layernorm.weight", tE)
			}
			if class == "Phi3ForCausalLM" {
				add(p+"self_attn.qkv_proj.weight", q+2*kv, tE)
			} else {
				add(p+"self_attn.q_proj.weight", q, tE)
				add(p+"self_attn.k_proj.weight", kv, tE)
				add(p+"self_attn.v_proj.weight", kv, tE)
			}
			if class == "Qwen2MoeForCausalLM" {
				add(p+"self_attn.q_proj.bias", q)
				add(p+"self_attn.k_proj.bias", kv)
				add(p+"self_attn.v_proj.bias", kv)
			}
			switch class {
			case "Gemma3ForCausalLM", "Qwen3MoeForCausalLM":
				add(p+"self_attn.q_norm.weight", int64(hd))
				add(p+"self_attn.k_norm.weight", int64(hd))
			case "Olmo2ForCausalLM":
				add(p+"self_attn.q_norm.weight", q)
				add(p+"self_attn.k_norm.weight", kv)
			}
			add(p+"self_attn.o_proj.weight", tE, q)
			add(p+"post_attention_layernorm.weight", tE)
			if class == "Gemma2ForCausalLM" || class == "Gemma3ForCausalLM" {
				add(p+"pre_feedforward_layernorm.weight", tE)
			}
			if class == "Gemma2ForCausalLM" || class == "Gemma3ForCausalLM" || class == "Olmo2ForCausalLM" {
				add(p+"post_feedforward_layernorm.weight", tE)
			}
			switch {
			case class == "Phi3ForCausalLM":
				add(p+"mlp.gate_up_proj.weight", 2*tFF, tE)
				add(p+"mlp.down_proj.weight", tE, tFF)
			case experts == "fused":
				add(p+"mlp.gate.weight", nExp, tE)
				add(p+"mlp.experts.gate_up_proj", nExp, 2*ffExp, tE)
				add(p+"mlp.experts.down_proj", nExp, tE, ffExp)
			case experts == "per-expert" && class == "MixtralForCausalLM":
				add(p+"block_sparse_moe.gate.weight", nExp, tE)
				for e := 0; e < nExp; e++ {
					ep := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
					add(ep+"w1.weight", tFF, tE)
					add(ep+"w3.weight", tFF, tE)
					add(ep+"w2.weight", tE, tFF)
				}
			case experts == "per-expert":
				add(p+"mlp.gate.weight", nExp, tE)
				for e := 0; e < nExp; e++ {
					ep := fmt.Sprintf("%smlp.experts.%d.", p, e)
					add(ep+"gate_proj.weight", ffExp, tE)
					add(ep+"up_proj.weight", ffExp, tE)
					add(ep+"down_proj.weight", tE, ffExp)
				}
			default:
				add(p+"mlp.gate_proj.weight", tFF, tE)
				add(p+"mlp.up_proj.weight", tFF, tE)
				add(p+"mlp.down_proj.weight", tE, tFF)
			}
			if class == "Qwen2MoeForCausalLM" {
				add(p+"mlp.shared_expert.gate_proj.weight", ffSh, tE)
				add(p+"mlp.shared_expert.up_proj.weight", ffSh, tE)
				add(p+"mlp.shared_expert.down_proj.weight", tE, ffSh)
				add(p+"mlp.shared_expert_gate.weight", 1, tE)
			}
		}
		add("model.norm.weight", tE)
		if tied, _ := cfg["tie_word_embeddings"].(bool); !tied {
			add("lm_head.weight", vocab, tE)
		}
	}
	writeSafetensors(t, filepath.Join(dir, "model.safetensors"), ts)
	full := map[string]any{"architectures": []string{class}, "hidden_size": tE, "intermediate_size": tFF,
		"num_hidden_layers": tL, "num_attention_heads": tH, "max_position_embeddings": tCtx, "vocab_size": vocab,
		"eos_token_id": 259}
	if class != "GPTNeoXForCausalLM" {
		full["num_key_value_heads"] = tKV
	}
	for k, v := range cfg {
		full[k] = v
	}
	writeJSON(t, filepath.Join(dir, "config.json"), full)
	bpe, merges := byteLevelVocab()
	bpe["<|endoftext|>"] = len(bpe)
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"added_tokens":  []map[string]any{{"id": 259, "content": "<|endoftext|>", "special": true}},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"model":         map[string]any{"type": "BPE", "vocab": bpe, "merges": merges},
	})
	out := map[string]hfTensor{}
	for _, x := range ts {
		out[x.name] = x
	}
	return out
}

// plus1 is x + 1, elementwise.
func plus1(x []float32) []float32 {
	out := slices.Clone(x)
	for i := range out {
		out[i]++
	}
	return out
}

func TestHFGemma(t *testing.T) {
	for _, c := range []struct {
		class string
		cfg   map[string]any
		want  model.Config
	}{
		{"Gemma2ForCausalLM", map[string]any{"head_dim": 24, "query_pre_attn_scalar": 16, "sliding_window": 8,
			"rope_theta": 10000.0, "hidden_activation": "gelu_pytorch_tanh"},
			model.Config{Arch: model.ArchGemma2, NEmbdHead: 24, RopeFreqBase: 10000, NSWA: 8, SWALayers: []bool{true, false},
				AttnSoftcap: 50, FinalSoftcap: 30, AttnScale: float32(1 / math.Sqrt(16))}},
		{"Gemma3ForCausalLM", map[string]any{"head_dim": 16, "sliding_window": 8, "tie_word_embeddings": true,
			"layer_types":     []string{"full_attention", "sliding_attention"},
			"rope_parameters": map[string]any{"full_attention": map[string]any{"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}, "sliding_attention": map[string]any{"rope_type": "default", "rope_theta": 10000.0}}},
			model.Config{Arch: model.ArchGemma3, RopeFreqBase: 1e6, RopeFreqScale: 0.125, NSWA: 8, SWALayers: []bool{false, true},
				RopeFreqBaseSWA: 10000, AttnScale: float32(1 / math.Sqrt(256))}},
	} {
		t.Run(c.class, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			src := familyFolder(t, dir, c.class, c.cfg, "")
			m := convertAndLoad(t, dir, Options{})
			w := c.want
			w.NVocab, w.NEmbd, w.NLayer, w.NHead, w.NHeadKV, w.NFF, w.NCtxTrain = 262, tE, tL, tH, tKV, tFF, tCtx
			w.RopeType, w.NormEps = model.RopeNeox, 1e-6
			if !equalConfig(m.Config, w) {
				t.Fatalf("config\n got %+v\nwant %+v", m.Config, w)
			}
			if m.Weights.Output != nil {
				t.Error("Gemma ties its output, but output.weight was written")
			}
			// Every norm, the q/k norms included, is stored as w+1.
			sameValues(t, "output_norm", values(t, m.Weights.OutputNorm), plus1(src["model.norm.weight"].x))
			for role, hf := range map[model.LayerRole]string{model.AttnNorm: "input_layernorm", model.AttnPostNorm: "post_attention_layernorm",
				model.FFNNorm: "pre_feedforward_layernorm", model.FFNPostNorm: "post_feedforward_layernorm"} {
				sameValues(t, hf, values(t, m.Weights.Layers[1][role]), plus1(src["model.layers.1."+hf+".weight"].x))
			}
			if c.class == "Gemma3ForCausalLM" {
				sameValues(t, "q_norm", values(t, m.Weights.Layers[0][model.AttnQNorm]), plus1(src["model.layers.0.self_attn.q_norm.weight"].x))
			}
			// Projections are not permuted (RoPE NEOX) and not shifted.
			sameValues(t, "q_proj", values(t, m.Weights.Layers[0][model.WQ]), src["model.layers.0.self_attn.q_proj.weight"].x)
		})
	}
}

// GPT-NeoX's per-head q,k,v rows become all q, all k, all v; both config
// styles give the same file.
func TestHFGPTNeoX(t *testing.T) {
	styles := map[string]map[string]any{
		"t4": {"rotary_pct": 0.5, "rotary_emb_base": 20000.0, "layer_norm_eps": 1e-5, "use_parallel_residual": true, "hidden_act": "gelu"},
		"t5": {"rope_parameters": map[string]any{"rope_type": "default", "rope_theta": 20000.0, "partial_rotary_factor": 0.5},
			"layer_norm_eps": 1e-5, "use_parallel_residual": true, "hidden_act": "gelu", "attention_bias": true},
	}
	var first []byte
	var src map[string]hfTensor
	for _, style := range []string{"t4", "t5"} {
		dir := filepath.Join(t.TempDir(), "pythia")
		src = familyFolder(t, dir, "GPTNeoXForCausalLM", styles[style], "")
		out := filepath.Join(t.TempDir(), "out.gguf")
		if err := HF(dir, out, Options{}); err != nil {
			t.Fatalf("%s: %v", style, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Errorf("%s: %d bytes differ from t4's %d", style, len(b), len(first))
		}
	}
	dir := filepath.Join(t.TempDir(), "pythia")
	src = familyFolder(t, dir, "GPTNeoXForCausalLM", styles["t4"], "")
	m := convertAndLoad(t, dir, Options{})
	if m.Config.NRot != tHD/2 || m.Config.RopeFreqBase != 20000 || m.Config.SequentialResidual || m.Config.NHeadKV != tH {
		t.Errorf("config %+v: want n_rot %d, base 20000, parallel residual", m.Config, tHD/2)
	}
	hf := src["gpt_neox.layers.0.attention.query_key_value.weight"].x
	got := values(t, m.Weights.Layers[0][model.WQKV])
	for j := 0; j < 3; j++ { // q, k, v
		for h := 0; h < tH; h++ {
			for i := 0; i < tHD; i++ {
				hfRow, ggRow := (h*3+j)*tHD+i, (j*tH+h)*tHD+i
				if !slices.Equal(got[ggRow*tE:(ggRow+1)*tE], hf[hfRow*tE:(hfRow+1)*tE]) {
					t.Fatalf("attn_qkv row %d is not HF row %d (part %d of head %d)", ggRow, hfRow, j, h)
				}
			}
		}
	}
	hb := src["gpt_neox.layers.0.attention.query_key_value.bias"].x
	gb := values(t, m.Weights.Layers[0][model.BQKV])
	if gb[tE] != hb[tHD] || gb[tHD] != hb[3*tHD] {
		t.Error("attn_qkv.bias is not regrouped as the weight")
	}
	if k, _ := m.File.Bool("gptneox.use_parallel_residual"); !k {
		t.Error("gptneox.use_parallel_residual is not true")
	}
}

// Phi-3 keeps qkv and gate_up fused; LongRoPE becomes llama.cpp's factor
// tensors and attention factor.
func TestHFPhi3LongRope(t *testing.T) {
	long, short := make([]float64, tHD*3/8), make([]float64, tHD*3/8)
	for i := range long {
		long[i], short[i] = 1+float64(i), 1+0.25*float64(i)
	}
	dir := filepath.Join(t.TempDir(), "phi")
	src := familyFolder(t, dir, "Phi3ForCausalLM", map[string]any{"partial_rotary_factor": 0.75, "original_max_position_embeddings": 16,
		"sliding_window": 12, "rope_theta": 10000.0, "tie_word_embeddings": true,
		"rope_scaling": map[string]any{"type": "longrope", "long_factor": long, "short_factor": short}}, "")
	m := convertAndLoad(t, dir, Options{})
	c := m.Config
	wantAttn := float32(math.Sqrt(1 + math.Log(float64(tCtx)/16)/math.Log(16)))
	if c.NRot != tHD*3/4 || c.NCtxOrig != 16 || c.RopeAttnFactor != wantAttn || c.NSWA != 12 || c.SWALayers != nil {
		t.Errorf("config %+v: want n_rot %d, original context 16, attention factor %v, window 12 on every layer", c, tHD*3/4, wantAttn)
	}
	if m.Weights.RopeFreqs != m.Weights.RopeFactorsShort || m.Weights.RopeFactorsLong == nil || c.Window() != 16 {
		t.Errorf("LongRoPE: the short factors apply, up to the original context 16 (window %d)", c.Window())
	}
	sameValues(t, "long factors", values(t, m.Weights.RopeFactorsLong), toF32(long))
	sameValues(t, "short factors", values(t, m.Weights.RopeFactorsShort), toF32(short))
	sameValues(t, "qkv", values(t, m.Weights.Layers[0][model.WQKV]), src["model.layers.0.self_attn.qkv_proj.weight"].x)
	sameValues(t, "gate_up", values(t, m.Weights.Layers[0][model.FFNUp]), src["model.layers.0.mlp.gate_up_proj.weight"].x)
	if m.File.Tensors[0].Name != model.NameRopeFactorsLong {
		t.Errorf("first tensor %q, want %q as llama.cpp writes it", m.File.Tensors[0].Name, model.NameRopeFactorsLong)
	}
}

func toF32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func TestHFOLMo2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "olmo")
	src := familyFolder(t, dir, "Olmo2ForCausalLM", map[string]any{"rms_norm_eps": 1e-6, "rope_theta": 500000.0}, "")
	m := convertAndLoad(t, dir, Options{})
	if m.Weights.Layers[0][model.AttnNorm] != nil || m.Weights.Layers[0][model.FFNNorm] != nil {
		t.Error("OLMo 2 has no pre-norms")
	}
	sameValues(t, "post_attention_layernorm", values(t, m.Weights.Layers[1][model.AttnPostNorm]), src["model.layers.1.post_attention_layernorm.weight"].x)
	sameValues(t, "k_norm", values(t, m.Weights.Layers[1][model.AttnKNorm]), src["model.layers.1.self_attn.k_norm.weight"].x)
	sameValues(t, "k_proj (not permuted)", values(t, m.Weights.Layers[1][model.WK]), src["model.layers.1.self_attn.k_proj.weight"].x)
}

// Experts become llama.cpp's stacked 3-D tensors from either layout.
func TestHFExperts(t *testing.T) {
	for _, c := range []struct {
		class, layout string
		cfg           map[string]any
		gate, up      func(src map[string]hfTensor, e int) []float32
	}{
		{"MixtralForCausalLM", "per-expert", map[string]any{"num_local_experts": 4, "num_experts_per_tok": 2, "rope_theta": 1e6, "sliding_window": nil},
			func(src map[string]hfTensor, e int) []float32 {
				return src[fmt.Sprintf("model.layers.1.block_sparse_moe.experts.%d.w1.weight", e)].x
			},
			func(src map[string]hfTensor, e int) []float32 {
				return src[fmt.Sprintf("model.layers.1.block_sparse_moe.experts.%d.w3.weight", e)].x
			}},
		{"Qwen2MoeForCausalLM", "per-expert", map[string]any{"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 24,
			"shared_expert_intermediate_size": 40, "norm_topk_prob": false},
			func(src map[string]hfTensor, e int) []float32 {
				return src[fmt.Sprintf("model.layers.1.mlp.experts.%d.gate_proj.weight", e)].x
			},
			func(src map[string]hfTensor, e int) []float32 {
				return src[fmt.Sprintf("model.layers.1.mlp.experts.%d.up_proj.weight", e)].x
			}},
		{"Qwen3MoeForCausalLM", "fused", map[string]any{"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 24,
			"norm_topk_prob": true, "head_dim": tHD},
			func(src map[string]hfTensor, e int) []float32 {
				x := src["model.layers.1.mlp.experts.gate_up_proj"].x
				return x[e*2*24*tE : (e*2*24+24)*tE]
			},
			func(src map[string]hfTensor, e int) []float32 {
				x := src["model.layers.1.mlp.experts.gate_up_proj"].x
				return x[(e*2*24+24)*tE : (e+1)*2*24*tE]
			}},
	} {
		t.Run(c.class+" "+c.layout, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "moe")
			src := familyFolder(t, dir, c.class, c.cfg, c.layout)
			m := convertAndLoad(t, dir, Options{})
			cfg := m.Config
			if cfg.NExpert != 4 || cfg.NExpertUsed != 2 {
				t.Fatalf("experts %d used %d", cfg.NExpert, cfg.NExpertUsed)
			}
			ff := cfg.NFFExp
			gate, up := values(t, m.Weights.Layers[1][model.FFNGateExps]), values(t, m.Weights.Layers[1][model.FFNUpExps])
			for e := 0; e < 4; e++ {
				sameValues(t, fmt.Sprintf("gate of expert %d", e), gate[e*ff*tE:(e+1)*ff*tE], c.gate(src, e))
				sameValues(t, fmt.Sprintf("up of expert %d", e), up[e*ff*tE:(e+1)*ff*tE], c.up(src, e))
			}
			ti, _ := m.File.Tensor(model.LayerTensorName(1, model.FFNDownExps))
			if want := []int64{int64(ff), tE, 4}; !slices.Equal(ti.Dims, want) {
				t.Errorf("ffn_down_exps dims %v, want %v", ti.Dims, want)
			}
			switch c.class {
			case "MixtralForCausalLM":
				if !cfg.ExpertWeightsNorm || cfg.NFFExp != tFF || cfg.NSWA != 0 {
					t.Errorf("mixtral config %+v", cfg)
				}
			case "Qwen2MoeForCausalLM":
				if cfg.ExpertWeightsNorm || cfg.NFFShexp != 40 {
					t.Errorf("qwen2moe config %+v", cfg)
				}
				sameValues(t, "shared_expert_gate", values(t, m.Weights.Layers[0][model.FFNGateInpShexp]),
					src["model.layers.0.mlp.shared_expert_gate.weight"].x)
			case "Qwen3MoeForCausalLM":
				if !cfg.ExpertWeightsNorm {
					t.Error("norm_topk_prob true, but expert_weights_norm false")
				}
			}
		})
	}
}

// Mistral attends within its window on every layer; its q and k are
// permuted as llama's.
func TestHFMistral(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mistral")
	src := familyFolder(t, dir, "MistralForCausalLM", map[string]any{"sliding_window": 16, "head_dim": tHD, "rope_theta": 1e6}, "")
	m := convertAndLoad(t, dir, Options{})
	if m.Config.Arch != model.ArchLlama || m.Config.NSWA != 16 || m.Config.SWALayers != nil {
		t.Errorf("config %+v", m.Config)
	}
	hf := src["model.layers.0.self_attn.k_proj.weight"].x
	got := values(t, m.Weights.Layers[0][model.WK])
	// Row 1 of a head is HF's row hd/2 (rotate-half back to pairs).
	if !slices.Equal(got[tE:2*tE], hf[(tHD/2)*tE:(tHD/2+1)*tE]) {
		t.Error("k_proj is not permuted as llama.cpp permutes llama's")
	}
}

// Unsupported values are refused by key.
func TestHFFamilyRefusals(t *testing.T) {
	for _, c := range []struct {
		class string
		cfg   map[string]any
		want  string
	}{
		{"Gemma3ForCausalLM", map[string]any{"head_dim": 16, "rope_parameters": map[string]any{
			"full_attention": map[string]any{"rope_type": "default"}, "sliding_attention": map[string]any{"rope_type": "linear", "factor": 2.0}}},
			`rope_parameters.sliding_attention.rope_type "linear" is not supported: Gemma 3's sliding layers take plain RoPE`},
		{"Qwen2MoeForCausalLM", map[string]any{"num_experts": 4, "num_experts_per_tok": 2, "decoder_sparse_step": 2},
			`decoder_sparse_step 2 is not supported`},
		{"Gemma3ForCausalLM", map[string]any{"head_dim": 16, "attn_logit_softcapping": 50.0}, `attn_logit_softcapping 50 is not supported for gemma3`},
		{"Olmo2ForCausalLM", map[string]any{"rope_scaling": map[string]any{"rope_type": "longrope", "long_factor": []float64{1}}},
			`rope_scaling.rope_type "longrope" is supported for Phi3ForCausalLM only`},
		{"GPTNeoXForCausalLM", map[string]any{"hidden_act": "gelu_new"}, `hidden_act "gelu_new" is not supported for GPTNeoXForCausalLM`},
	} {
		t.Run(c.class, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			familyFolder(t, dir, c.class, c.cfg, "per-expert")
			err := HF(dir, filepath.Join(t.TempDir(), "out.gguf"), Options{})
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// equalConfig compares configs, treating nil and empty SWALayers alike.
func equalConfig(a, b model.Config) bool {
	sa, sb := a.SWALayers, b.SWALayers
	a.SWALayers, b.SWALayers = nil, nil
	return reflect.DeepEqual(a, b) && slices.Equal(sa, sb)
}
