package convert

import (
	"fmt"
	"math"
	"slices"

	"github.com/lmscore/lmscore/model"
)

// modelConfig turns config.json into lmscore's Config, with each class's
// transformers defaults for absent keys, refusing options the cores do
// not implement rather than ignoring them.
func (c *hfConfig) modelConfig(path string) (model.Config, error) {
	var cfg model.Config
	cl, err := c.class(path)
	if err != nil {
		return cfg, err
	}
	cfg.Arch = cl.arch
	fail := func(format string, args ...any) (model.Config, error) {
		return cfg, fmt.Errorf("convert: %s: %s", path, fmt.Sprintf(format, args...))
	}
	need := func(key string, p *int, def int, dst *int) {
		switch {
		case err != nil:
		case p != nil:
			*dst = *p
		case def != 0:
			*dst = def
		default:
			err = fmt.Errorf("convert: %s: missing %q", path, key)
		}
	}
	need("vocab_size", c.VocabSize, 0, &cfg.NVocab)
	if cl.arch == model.ArchGPT2 {
		if err != nil {
			return cfg, err
		}
		return c.gpt2Config(path, cfg)
	}
	need("hidden_size", c.HiddenSize, 0, &cfg.NEmbd)
	need("intermediate_size", c.IntermediateSize, 0, &cfg.NFF)
	need("num_hidden_layers", c.NumHiddenLayers, 0, &cfg.NLayer)
	need("num_attention_heads", c.NumAttentionHeads, 0, &cfg.NHead)
	need("max_position_embeddings", c.MaxPositionEmbeddings, cl.ctx, &cfg.NCtxTrain)
	if err != nil {
		return cfg, err
	}
	cfg.RopeType = model.RopeNeox
	if cl.arch == model.ArchLlama {
		cfg.RopeType = model.RopeNorm
	}
	cfg.NHeadKV = cfg.NHead
	if c.NumKeyValueHeads != nil {
		cfg.NHeadKV = *c.NumKeyValueHeads
	}
	eps, epsKey := c.RMSNormEps, "rms_norm_eps"
	if cl.arch == model.ArchGPTNeoX {
		eps, epsKey = c.LayerNormEps, "layer_norm_eps"
	}
	cfg.NormEps = float32(cl.eps)
	if eps != nil {
		cfg.NormEps = float32(*eps)
	}
	if math.IsNaN(float64(cfg.NormEps)) {
		return fail("%s is NaN", epsKey)
	}
	// head_dim equal to hidden_size/heads is the default, spelled out.
	hd := cl.headDim
	if c.HeadDim != nil {
		hd = *c.HeadDim
	}
	if hd != 0 && cfg.NHead > 0 && hd*cfg.NHead != cfg.NEmbd {
		cfg.NEmbdHead = hd
	}

	actKey, act := "hidden_act", c.HiddenAct
	if c.HiddenActivation != nil { // Gemma reads hidden_activation
		actKey, act = "hidden_activation", c.HiddenActivation
	}
	if act != nil && !slices.Contains(hfActivations[cl.act], *act) {
		return fail("%s %q is not supported for %s (want %q)", actKey, *act, c.Architectures[0], hfActivations[cl.act])
	}
	if msg := c.biasProblem(cl.arch); msg != "" {
		return fail("%s", msg)
	}
	if err := c.slidingWindow(&cfg, cl); err != nil {
		return fail("%v", err)
	}
	if err := c.applyRope(&cfg, cl); err != nil {
		return fail("%v", err)
	}
	if err := c.gemmaScales(&cfg, cl, hd); err != nil {
		return fail("%v", err)
	}
	if cl.arch == model.ArchGPTNeoX && c.UseParallelResidual != nil && !*c.UseParallelResidual {
		cfg.SequentialResidual = true
	}
	if err := c.experts(&cfg, cl); err != nil {
		return fail("%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("convert: %s: %w", path, err)
	}
	return cfg, nil
}

// biasProblem refuses biases the family has no tensors for, and a
// missing one it needs.
func (c *hfConfig) biasProblem(a model.Arch) string {
	switch a {
	case model.ArchGPTNeoX:
		if c.AttentionBias != nil && !*c.AttentionBias {
			return "attention_bias false is not supported for gptneox (its qkv and output biases are part of the family)"
		}
	case model.ArchQwen2, model.ArchQwen2MoE:
		if c.QKVBias != nil && !*c.QKVBias {
			return fmt.Sprintf("qkv_bias false is not supported for %s", a)
		}
	default:
		if c.AttentionBias != nil && *c.AttentionBias {
			return fmt.Sprintf("attention_bias is not supported for %s", a)
		}
	}
	if c.MLPBias != nil && *c.MLPBias {
		return "mlp_bias is not supported"
	}
	return ""
}

// slidingWindow sets NSWA and SWALayers: sliding_window for the classes
// that attend within it (Mistral, Mixtral, Phi-3, Gemma), with Gemma's
// layer_types (or its transformers 4 pattern). Elsewhere every layer must
// be full attention.
func (c *hfConfig) slidingWindow(cfg *model.Config, cl hfClass) error {
	if c.UseSlidingWindow != nil && *c.UseSlidingWindow {
		return fmt.Errorf("use_sliding_window is not supported")
	}
	gemma := cl.arch == model.ArchGemma2 || cl.arch == model.ArchGemma3
	if !gemma {
		for i, lt := range c.LayerTypes {
			if lt != "full_attention" {
				return fmt.Errorf("layer_types[%d] is %q; lmscore supports full attention only for %s", i, lt, c.Architectures[0])
			}
		}
	}
	if !cl.sliding {
		return nil
	}
	w, err := optFloat(c.SlidingWindow, float64(cl.window))
	if err != nil || w < 0 || w > math.MaxInt32 || w != math.Trunc(w) {
		return fmt.Errorf("sliding_window %s is not a window size", c.SlidingWindow)
	}
	if w == 0 {
		return nil
	}
	var layers []bool // nil: every layer slides
	switch {
	case !gemma:
	case c.LayerTypes != nil:
		if len(c.LayerTypes) != cfg.NLayer {
			return fmt.Errorf("layer_types has %d entries for %d layers", len(c.LayerTypes), cfg.NLayer)
		}
		layers = make([]bool, cfg.NLayer)
		for i, lt := range c.LayerTypes {
			switch lt {
			case "sliding_attention":
				layers[i] = true
			case "full_attention":
			default:
				return fmt.Errorf("layer_types[%d] is %q, want sliding_attention or full_attention", i, lt)
			}
		}
	default:
		// transformers' defaults: Gemma 2 alternates from a sliding layer 0;
		// Gemma 3 has sliding_window_pattern (6): layer i is full when
		// (i+1) % pattern == 0.
		pattern := 2
		if cl.arch == model.ArchGemma3 {
			pattern = 6
			if c.SlidingWindowPattern != nil {
				pattern = *c.SlidingWindowPattern
			}
		}
		if pattern <= 0 {
			return fmt.Errorf("sliding_window_pattern is %d", pattern)
		}
		layers = make([]bool, cfg.NLayer)
		for i := range layers {
			layers[i] = (i+1)%pattern != 0
		}
	}
	if layers != nil && !slices.Contains(layers, true) {
		return nil // no layer slides
	}
	if layers != nil && !slices.Contains(layers, false) {
		layers = nil
	}
	cfg.NSWA, cfg.SWALayers = int(w), layers
	return nil
}

// gemmaScales sets Gemma's q·k scale (query_pre_attn_scalar^-½) and
// soft-caps, and refuses them elsewhere.
func (c *hfConfig) gemmaScales(cfg *model.Config, cl hfClass, hd int) error {
	attnCap, finalCap := 0.0, 0.0
	if cl.arch == model.ArchGemma2 {
		attnCap, finalCap = 50, 30 // Gemma2Config's defaults
	}
	var err error
	if attnCap, err = optFloat(c.AttnLogitSoftcapping, attnCap); err != nil {
		return fmt.Errorf("attn_logit_softcapping: %v", err)
	}
	if finalCap, err = optFloat(c.FinalLogitSoftcapping, finalCap); err != nil {
		return fmt.Errorf("final_logit_softcapping: %v", err)
	}
	switch cl.arch {
	case model.ArchGemma2:
		cfg.AttnSoftcap, cfg.FinalSoftcap = float32(attnCap), float32(finalCap)
	case model.ArchGemma3:
		if attnCap != 0 {
			return fmt.Errorf("attn_logit_softcapping %v is not supported for gemma3 (llama.cpp's converter asserts it is null)", attnCap)
		}
		cfg.FinalSoftcap = float32(finalCap)
	default:
		if attnCap != 0 || finalCap != 0 {
			return fmt.Errorf("soft-capping (attn_logit_softcapping %v, final_logit_softcapping %v) is not supported for %s", attnCap, finalCap, cfg.Arch)
		}
	}
	if cl.arch == model.ArchGemma2 || cl.arch == model.ArchGemma3 {
		q := 256.0 // Gemma2Config's and Gemma3TextConfig's default
		if c.QueryPreAttnScalar != nil {
			q = *c.QueryPreAttnScalar
		}
		if !(q > 0) {
			return fmt.Errorf("query_pre_attn_scalar is %v", q)
		}
		if q != float64(hd) {
			cfg.AttnScale = float32(1 / math.Sqrt(q))
		}
	} else if c.QueryPreAttnScalar != nil {
		return fmt.Errorf("query_pre_attn_scalar is not supported for %s", cfg.Arch)
	}
	return nil
}

// experts reads the mixture of experts, with each class's defaults.
func (c *hfConfig) experts(cfg *model.Config, cl hfClass) error {
	get := func(p *int, def int) int {
		if p != nil {
			return *p
		}
		return def
	}
	switch cl.moe {
	case "":
		if get(c.NumLocalExperts, 0) > 0 || get(c.NumExperts, 0) > 0 {
			return fmt.Errorf("experts (num_local_experts, num_experts) are not supported for %s", c.Architectures[0])
		}
		return nil
	case "mixtral":
		cfg.NExpert, cfg.NExpertUsed = get(c.NumLocalExperts, 8), get(c.NumExpertsPerTok, 2)
		cfg.NFFExp, cfg.ExpertWeightsNorm = cfg.NFF, true // Mixtral always renormalizes its top-k
		return nil
	case "qwen2moe":
		cfg.NExpert, cfg.NExpertUsed = get(c.NumExperts, 60), get(c.NumExpertsPerTok, 4)
		cfg.NFFExp, cfg.NFFShexp = get(c.MoeIntermediateSize, 1408), get(c.SharedExpertIntermediateSize, 5632)
	case "qwen3moe":
		// transformers 5 renames Qwen3-MoE's num_experts to num_local_experts.
		cfg.NExpert, cfg.NExpertUsed = get(c.NumExperts, get(c.NumLocalExperts, 128)), get(c.NumExpertsPerTok, 8)
		cfg.NFFExp = get(c.MoeIntermediateSize, 768)
	}
	cfg.ExpertWeightsNorm = c.NormTopkProb != nil && *c.NormTopkProb
	if s := get(c.DecoderSparseStep, 1); s != 1 {
		return fmt.Errorf("decoder_sparse_step %d is not supported (every layer must route to experts)", s)
	}
	if len(c.MLPOnlyLayers) > 0 {
		return fmt.Errorf("mlp_only_layers %v is not supported (every layer must route to experts)", c.MLPOnlyLayers)
	}
	return nil
}

// gpt2Config reads GPT-2's own keys.
func (c *hfConfig) gpt2Config(path string, cfg model.Config) (model.Config, error) {
	fail := func(format string, args ...any) (model.Config, error) {
		return cfg, fmt.Errorf("convert: %s: %s", path, fmt.Sprintf(format, args...))
	}
	for _, k := range []struct {
		key string
		p   *int
		dst *int
	}{{"n_embd", c.NEmbd, &cfg.NEmbd}, {"n_layer", c.NLayer, &cfg.NLayer}, {"n_head", c.NHead, &cfg.NHead}} {
		if k.p == nil {
			return fail("missing %q", k.key)
		}
		*k.dst = *k.p
	}
	cfg.NHeadKV = cfg.NHead
	switch {
	case c.NPositions != nil:
		cfg.NCtxTrain = *c.NPositions
	case c.NCtx != nil:
		cfg.NCtxTrain = *c.NCtx
	default:
		return fail("missing \"n_positions\"")
	}
	cfg.NFF = 4 * cfg.NEmbd
	if c.NInner != nil {
		cfg.NFF = *c.NInner
	}
	cfg.NormEps = 1e-5
	if c.LayerNormEpsilon != nil {
		cfg.NormEps = float32(*c.LayerNormEpsilon)
	}
	if math.IsNaN(float64(cfg.NormEps)) {
		return fail("norm epsilon is NaN")
	}
	cfg.RopeType = model.RopeNone
	act := "gelu_new"
	if c.ActivationFunction != nil {
		act = *c.ActivationFunction
	}
	// lmscore's GELU is the tanh approximation GPT-2 was trained with.
	if !slices.Contains(hfActivations["gelu_tanh"], act) {
		return fail("activation_function %q is not supported (want gelu_new)", act)
	}
	if c.ScaleAttnByInverseLayerIdx != nil && *c.ScaleAttnByInverseLayerIdx {
		return fail("scale_attn_by_inverse_layer_idx is not supported")
	}
	if c.ReorderAndUpcastAttn != nil && *c.ReorderAndUpcastAttn {
		return fail("reorder_and_upcast_attn is not supported")
	}
	if c.ScaleAttnWeights != nil && !*c.ScaleAttnWeights {
		return fail("scale_attn_weights false is not supported")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("convert: %s: %w", path, err)
	}
	return cfg, nil
}
