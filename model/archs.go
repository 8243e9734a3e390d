package model

import (
	"math"
	"slices"
	"strings"
)

// family is what lmscore knows of one architecture: its llama.cpp name and
// the features of its graph. This table is the one place where a family is
// described; the cores see only the features (lmscore_model_desc), and the
// GGUF reader (config.go), the tensor list (tensors.go) and the float64
// reference all read them from here.
type family struct {
	name     string // general.architecture, as llama.cpp writes it
	rope     RopeType
	norm     NormType
	ffn      FFNType
	qkNorm   QKNorm
	parallel bool // GPT-NeoX's parallel residual, unless Config.SequentialResidual
	// embdScaleSqrt multiplies token embeddings by sqrt(n_embd) (Gemma).
	embdScaleSqrt bool
	// attn are the attention tensors each layer has; ffn the dense FFN's
	// (replaced by moeRoles when NExpert > 0); optional ones may be absent.
	attn, dense, optional []LayerRole
	moe                   bool // may have experts (expert_count > 0)
	shared                bool // experts come with a gated shared expert
	ropeFreqs             presence
	posEmbd               bool // learned positions (gpt2)
	tied                  bool // the output is the embedding, as the family's models have it
	epsKey                string

	// What the family's GGUF keys mean where llama.cpp (llama-model.cpp,
	// load_hparams) hard-codes it; features_gguf.go reads and writes them.
	swa swaRule
	// ropeBaseSWA is the RoPE base of sliding layers when the file gives no
	// rope.freq_base_swa (Gemma 3's local 10000); 0: the global base.
	ropeBaseSWA float32
	// swaUnscaled: sliding layers ignore rope.scaling.factor (Gemma 3
	// scales its global layers only); otherwise they share the scale.
	swaUnscaled bool
	// softcaps: the family reads attn_logit_softcapping (Gemma 2) and
	// final_logit_softcapping, with these defaults when absent.
	attnSoftcap, finalSoftcap *float32
	// scale27BLayers is the block_count llama.cpp takes for the 27B Gemma,
	// whose q·k scale is (n_embd/n_head)^-½, not head_dim^-½, when the file
	// has no attention.scale; 0: none.
	scale27BLayers int
	// expertNorm is whether routed weights are renormalized when the file
	// has no expert_weights_norm (the norm_w llama.cpp's graph passes).
	expertNorm bool
	// ffExpFromUsed: without expert_feed_forward_length an expert is
	// n_ff/n_expert_used wide (Qwen-MoE); otherwise n_ff (Mixtral).
	ffExpFromUsed bool
	// ropeFactorsLS: LongRoPE's rope_factors_long/short.weight (Phi-3)
	// instead of rope_freqs.weight.
	ropeFactorsLS bool
	// fullRot: rope.dimension_count must be the head width (llama.cpp
	// refuses anything else for llama).
	fullRot bool
	// writesKeyLength: llama.cpp's converter writes attention.key_length
	// and value_length for the family even when they are n_embd/n_head.
	writesKeyLength bool
}

// swaRule is how a family reads attention.sliding_window.
type swaRule struct {
	reads         bool // the key is read at all; elsewhere a window is refused
	defaultWindow int  // when the key is absent (Gemma 2's 4096); 0: no window
	// period is llama.cpp's set_swa_pattern(n) default without
	// attention.sliding_window_pattern: layer l slides when l % n < n-1;
	// 0: every layer slides.
	period int
}

func f32p(x float32) *float32 { return &x }

var (
	llamaAttn   = []LayerRole{AttnNorm, WQ, WK, WV, WO, FFNNorm}
	qwen2Attn   = []LayerRole{AttnNorm, WQ, WK, WV, BQ, BK, BV, WO, FFNNorm}
	qwen3Attn   = []LayerRole{AttnNorm, WQ, WK, WV, AttnQNorm, AttnKNorm, WO, FFNNorm}
	gatedFFN    = []LayerRole{FFNGate, FFNUp, FFNDown}
	moeRoles    = []LayerRole{FFNGateInp, FFNGateExps, FFNUpExps, FFNDownExps}
	sharedRoles = []LayerRole{FFNGateInpShexp, FFNGateShexp, FFNUpShexp, FFNDownShexp}
)

const rmsEps, layerEps = "attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon"

var families = map[Arch]family{
	// Mistral's sliding window is lmscore's key: llama.cpp's llama graph
	// has none, and its converter writes none for MistralForCausalLM.
	ArchLlama: {name: "llama", rope: RopeNorm, attn: llamaAttn, dense: gatedFFN, moe: true,
		optional: []LayerRole{BQ, BK, BV, BO}, ropeFreqs: optional, epsKey: rmsEps,
		swa: swaRule{reads: true}, expertNorm: true, fullRot: true},
	ArchQwen2: {name: "qwen2", rope: RopeNeox, attn: qwen2Attn, dense: gatedFFN, epsKey: rmsEps},
	ArchGPT2: {name: "gpt2", tied: true, rope: RopeNone, norm: NormLayer, ffn: FFNGELU, posEmbd: true, epsKey: layerEps,
		attn:  []LayerRole{AttnNorm, AttnNormB, WQKV, BQKV, WO, BO, FFNNorm, FFNNormB},
		dense: []LayerRole{FFNUp, FFNUpB, FFNDown, FFNDownB}},
	ArchQwen3: {name: "qwen3", rope: RopeNeox, qkNorm: QKNormHead, attn: qwen3Attn, dense: gatedFFN, epsKey: rmsEps,
		writesKeyLength: true},
	ArchGemma2: {name: "gemma2", tied: true, rope: RopeNeox, ffn: FFNGeGLU, embdScaleSqrt: true, epsKey: rmsEps,
		swa: swaRule{reads: true, defaultWindow: 4096, period: 2}, attnSoftcap: f32p(50), finalSoftcap: f32p(30),
		scale27BLayers: 46, writesKeyLength: true,
		attn:  []LayerRole{AttnNorm, WQ, WK, WV, WO, AttnPostNorm, FFNNorm},
		dense: []LayerRole{FFNGate, FFNUp, FFNDown, FFNPostNorm}},
	ArchGemma3: {name: "gemma3", tied: true, rope: RopeNeox, ffn: FFNGeGLU, qkNorm: QKNormHead, embdScaleSqrt: true, epsKey: rmsEps,
		swa: swaRule{reads: true, period: 6}, ropeBaseSWA: 10000, swaUnscaled: true, finalSoftcap: f32p(0),
		scale27BLayers: 62, writesKeyLength: true,
		attn:  []LayerRole{AttnNorm, WQ, WK, WV, AttnQNorm, AttnKNorm, WO, AttnPostNorm, FFNNorm},
		dense: []LayerRole{FFNGate, FFNUp, FFNDown, FFNPostNorm}},
	// Phi-3's gate and up are one tensor (ffn_up of 2·n_ff rows, gate
	// first) and so are q, k and v, as llama.cpp's converter writes them.
	// Phi-3's sliding window is applied, as transformers applies it;
	// llama.cpp reads the key and then disables it.
	ArchPhi3: {name: "phi3", rope: RopeNeox, epsKey: rmsEps, ropeFactorsLS: true, swa: swaRule{reads: true},
		attn:  []LayerRole{AttnNorm, WQKV, WO, FFNNorm},
		dense: []LayerRole{FFNUp, FFNDown}},
	ArchGPTNeoX: {name: "gptneox", rope: RopeNeox, norm: NormLayer, ffn: FFNGELUErf, parallel: true, epsKey: layerEps,
		attn:  []LayerRole{AttnNorm, AttnNormB, WQKV, BQKV, WO, BO, FFNNorm, FFNNormB},
		dense: []LayerRole{FFNUp, FFNUpB, FFNDown, FFNDownB}},
	ArchOLMo2: {name: "olmo2", rope: RopeNeox, qkNorm: QKNormFull, epsKey: rmsEps, swa: swaRule{reads: true, period: 4},
		attn:  []LayerRole{WQ, WK, WV, AttnQNorm, AttnKNorm, WO, AttnPostNorm},
		dense: []LayerRole{FFNGate, FFNUp, FFNDown, FFNPostNorm}},
	ArchQwen2MoE: {name: "qwen2moe", rope: RopeNeox, attn: qwen2Attn, moe: true, shared: true, epsKey: rmsEps, ffExpFromUsed: true},
	ArchQwen3MoE: {name: "qwen3moe", rope: RopeNeox, qkNorm: QKNormHead, attn: qwen3Attn, moe: true, epsKey: rmsEps,
		ffExpFromUsed: true, expertNorm: true, writesKeyLength: true},
}

// Known says whether lmscore has the family a.
func (a Arch) Known() bool {
	_, ok := families[a]
	return ok
}

// SupportedArchs lists the llama.cpp architecture names lmscore loads, for
// error messages and the README.
func SupportedArchs() []string {
	var out []string
	for _, f := range families {
		out = append(out, f.name)
	}
	slices.Sort(out)
	return out
}

func supportedList() string { return strings.Join(SupportedArchs(), ", ") }

// NormType is the type of every norm of the model but its q/k norms.
func (c Config) NormType() NormType { return families[c.Arch].norm }

// FFNType is the FFN's activation (and whether it is gated).
func (c Config) FFNType() FFNType { return families[c.Arch].ffn }

// QKNorm says whether and how q and k are RMS-normalized before RoPE.
func (c Config) QKNorm() QKNorm { return families[c.Arch].qkNorm }

// ParallelResidual says whether attention and FFN both read the layer's
// input (GPT-NeoX) rather than one after the other.
func (c Config) ParallelResidual() bool { return families[c.Arch].parallel && !c.SequentialResidual }

// EmbdScale is the factor token embeddings are multiplied by (1 but for
// Gemma's sqrt(n_embd), rounded to float32 as transformers does in fp32).
func (c Config) EmbdScale() float32 {
	if families[c.Arch].embdScaleSqrt {
		return float32(math.Sqrt(float64(c.NEmbd)))
	}
	return 1
}

// RotDim is how many values of each head RoPE rotates: NRot, or the
// whole head where that is 0.
func (c Config) RotDim() int {
	if c.NRot != 0 {
		return c.NRot
	}
	return c.HeadDim()
}

// IsSliding says whether layer l attends within the sliding window only.
func (c Config) IsSliding(l int) bool {
	if c.NSWA <= 0 {
		return false
	}
	if c.SWALayers == nil {
		return true
	}
	return l < len(c.SWALayers) && c.SWALayers[l]
}

// Gated says whether the FFN has a gate (SwiGLU or GeGLU).
func (c Config) Gated() bool { return c.FFNType() == FFNSwiGLU || c.FFNType() == FFNGeGLU }

// layerRoleSet lists the tensors each layer of cfg has, required and
// optional.
func (c Config) layerRoleSet() (required, opt []LayerRole) {
	f := families[c.Arch]
	required = append(required, f.attn...)
	switch {
	case c.NExpert > 0:
		required = append(required, moeRoles...)
		if f.shared {
			required = append(required, sharedRoles...)
		}
	default:
		required = append(required, f.dense...)
	}
	return required, f.optional
}
