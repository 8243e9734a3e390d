// Package model is lmscore's one description of a causal language model:
// its hyperparameters and its weights by role. The CPU and CUDA cores both
// load from it (through binding/), whatever file it came from. It is pure Go.
package model

import "fmt"

// Arch is a supported architecture: a family of models llama.cpp names by
// general.architecture. The cores know no architectures, only features;
// archs.go maps each family onto them, in one place.
type Arch int32

const (
	ArchLlama    Arch = 1  // RMSNorm, SwiGLU, grouped-query attention, RoPE NORM (also Mistral, Mixtral)
	ArchQwen2    Arch = 2  // llama plus q/k/v biases, RoPE NEOX
	ArchGPT2     Arch = 3  // learned positions, LayerNorm with bias, GELU, fused QKV
	ArchQwen3    Arch = 4  // llama plus RMSNorm of each q and k head before RoPE, RoPE NEOX
	ArchGemma2   Arch = 5  // GeGLU, scaled embeddings, pre- and post-norms, soft-capping, alternating sliding layers
	ArchGemma3   Arch = 6  // Gemma 2 with q/k head norms, 5 local : 1 global layers, no soft-capping
	ArchPhi3     Arch = 7  // fused qkv and gate_up, partial rotary, LongRoPE factors
	ArchGPTNeoX  Arch = 8  // parallel residual, partial rotary, LayerNorm with biases, exact GELU
	ArchOLMo2    Arch = 9  // post-norms only, q/k RMSNorm over the whole projection
	ArchQwen2MoE Arch = 10 // qwen2 attention, routed experts plus a gated shared expert
	ArchQwen3MoE Arch = 11 // qwen3 attention, routed experts
)

func (a Arch) String() string {
	if f, ok := families[a]; ok {
		return f.name
	}
	return fmt.Sprintf("arch(%d)", int32(a))
}

// RopeType values match lmscore_rope_type in lmscore.h and llama.cpp's names.
type RopeType int32

const (
	RopeNone RopeType = 0
	RopeNorm RopeType = 1 // consecutive pairs (2i, 2i+1)
	RopeNeox RopeType = 2 // pairs (i, i+d/2)
)

func (r RopeType) String() string {
	switch r {
	case RopeNone:
		return "none"
	case RopeNorm:
		return "norm"
	case RopeNeox:
		return "neox"
	}
	return fmt.Sprintf("rope(%d)", int32(r))
}

// TensorType is a tensor element type, numbered as GGML numbers them.
type TensorType uint32

const (
	TypeF32  TensorType = 0
	TypeF16  TensorType = 1
	TypeQ8_0 TensorType = 8
	TypeBF16 TensorType = 30
)

// NormType values match lmscore_norm_type in lmscore.h.
type NormType int32

const (
	NormRMS   NormType = 0
	NormLayer NormType = 1
)

// FFNType values match lmscore_ffn_type in lmscore.h.
type FFNType int32

const (
	FFNSwiGLU  FFNType = 0
	FFNGeGLU   FFNType = 1
	FFNGELU    FFNType = 2 // tanh approximation, ungated, with biases (gpt2)
	FFNGELUErf FFNType = 3 // exact, ungated, with biases (GPT-NeoX)
)

// QKNorm values match lmscore_qk_norm in lmscore.h.
type QKNorm int32

const (
	QKNormNone QKNorm = 0
	QKNormHead QKNorm = 1 // each head, weights of head_dim shared by the heads
	QKNormFull QKNorm = 2 // the whole q and k projections (OLMo 2)
)

// Config holds the hyperparameters the cores need. The features that are
// fixed per architecture (norm, FFN and q/k-norm types) come from Arch;
// the fields here are those a model file sets. Zero values of the optional
// fields mean "not used" (or 1 for a scale), as in lmscore_model_desc.
type Config struct {
	Arch         Arch
	NVocab       int
	NEmbd        int
	NLayer       int
	NHead        int
	NHeadKV      int
	NEmbdHead    int // width of one q, k or v head (llama.cpp's n_embd_head_k); 0: NEmbd/NHead
	NFF          int
	NCtxTrain    int
	RopeType     RopeType
	RopeFreqBase float32
	NormEps      float32

	// NRot is how many values of a head RoPE rotates (rope.dimension_count;
	// GPT-NeoX's rotary_pct, Phi-4-mini's partial_rotary_factor); 0: all.
	NRot int
	// RopeFreqScale multiplies positions (linear RoPE scaling:
	// 1/rope.scaling.factor); RopeAttnFactor multiplies cos and sin
	// (Phi-3 LongRoPE's attention factor). 0: 1.
	RopeFreqScale  float32
	RopeAttnFactor float32
	// NCtxOrig is the context a RoPE-scaled model was first trained with
	// (rope.scaling.original_context_length); 0: not given. It only
	// decides which of Phi-3's LongRoPE factors apply (see
	// Weights.RopeFreqs); the cores never see it.
	NCtxOrig int

	// AttnScale replaces 1/sqrt(head_dim) as the q·k scale (Gemma 2's
	// query_pre_attn_scalar^-½); 0: the default. AttnSoftcap and
	// FinalSoftcap cap attention scores and logits at c·tanh(x/c); 0: none.
	AttnScale    float32
	AttnSoftcap  float32
	FinalSoftcap float32

	// NSWA is the sliding window: a token of a sliding layer attends to the
	// NSWA latest positions, its own included; 0: none. SWALayers flags the
	// sliding layers (NLayer entries); nil: every layer when NSWA > 0.
	// Sliding layers use RopeFreqBaseSWA (0: RopeFreqBase) and
	// RopeFreqScaleSWA (0: 1).
	NSWA             int
	SWALayers        []bool
	RopeFreqBaseSWA  float32
	RopeFreqScaleSWA float32

	// SequentialResidual turns GPT-NeoX's parallel residual off
	// (use_parallel_residual false); other families are sequential anyway.
	SequentialResidual bool

	// Mixture of experts: NExpert > 0 routes each token to NExpertUsed
	// experts of width NFFExp; ExpertWeightsNorm renormalizes their weights
	// to sum 1 (Mixtral; Qwen-MoE's norm_topk_prob). NFFShexp > 0 adds a
	// shared expert of that width (Qwen2-MoE).
	NExpert           int
	NExpertUsed       int
	NFFExp            int
	NFFShexp          int
	ExpertWeightsNorm bool
}

// HeadDim is the width of one attention head: NEmbdHead, or NEmbd/NHead
// where that is 0.
func (c Config) HeadDim() int {
	if c.NEmbdHead != 0 {
		return c.NEmbdHead
	}
	return c.NEmbd / c.NHead
}

// Tensor is one weight. Shape is in GGML order, innermost first: a matrix of
// Shape {nIn, nOut} holds nOut rows of nIn values (nn.Linear's layout); a
// vector has Shape[1] == 1. Data is the raw little-endian bytes of Type.
type Tensor struct {
	Name  string
	Type  TensorType
	Shape [2]int64
	Data  []byte
}

// LayerRole indexes a layer's tensors. Values match lmscore_layer_role.
type LayerRole int

const (
	AttnNorm LayerRole = iota
	AttnNormB
	WQ
	WK
	WV
	BQ
	BK
	BV
	WQKV
	BQKV
	WO
	BO
	FFNNorm
	FFNNormB
	FFNGate
	FFNUp
	FFNUpB
	FFNDown
	FFNDownB
	AttnQNorm // {head_dim} shared by every q head (qwen3, gemma3), or {n_head·head_dim} (olmo2)
	AttnKNorm // the same for k
	AttnPostNorm
	FFNPostNorm
	FFNGateInp // {n_embd, n_expert}: the router
	FFNGateExps
	FFNUpExps
	FFNDownExps
	FFNGateInpShexp
	FFNGateShexp
	FFNUpShexp
	FFNDownShexp
	LayerRoleCount
)

// Weights holds every tensor by role; a nil entry is absent.
type Weights struct {
	TokEmbd     *Tensor // {n_embd, n_vocab}
	PosEmbd     *Tensor // {n_embd, n_ctx_train}, gpt2
	OutputNorm  *Tensor
	OutputNormB *Tensor // gpt2
	Output      *Tensor // nil: tied to TokEmbd
	// RopeFreqs divides the angle of each rotated pair (n_rot/2 F32
	// values: Llama 3.1's rope_freqs.weight, see Llama3Rope, or the one of
	// Phi-3's LongRoPE factors that applies, see SelectRopeFactors); nil:
	// all 1.
	RopeFreqs *Tensor
	// RopeFactorsLong and RopeFactorsShort are Phi-3's LongRoPE factors as
	// the file holds them (rope_factors_long/short.weight); RopeFreqs is
	// one of them.
	RopeFactorsLong, RopeFactorsShort *Tensor
	Layers                            [][LayerRoleCount]*Tensor
}
