// Package model is lmscore's one description of a causal language model:
// its hyperparameters and its weights by role. The CPU and CUDA cores both
// load from it (through binding/), whatever file it came from. It is pure Go.
package model

import "fmt"

// Arch is a supported architecture. Values match lmscore_arch in lmscore.h.
type Arch int32

const (
	ArchLlama Arch = 1 // RMSNorm, SwiGLU, grouped-query attention, RoPE NORM
	ArchQwen2 Arch = 2 // llama plus q/k/v biases, RoPE NEOX
	ArchGPT2  Arch = 3 // learned positions, LayerNorm with bias, GELU, fused QKV
	ArchQwen3 Arch = 4 // llama plus RMSNorm of each q and k head before RoPE, RoPE NEOX
)

func (a Arch) String() string {
	switch a {
	case ArchLlama:
		return "llama"
	case ArchQwen2:
		return "qwen2"
	case ArchGPT2:
		return "gpt2"
	case ArchQwen3:
		return "qwen3"
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

// Config holds the hyperparameters the cores need.
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
	AttnQNorm // qwen3: {head_dim}, shared by every q head
	AttnKNorm // qwen3: {head_dim}, shared by every k head
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
	// values, llama only, Llama 3.1's rope scaling; see Llama3Rope); nil:
	// all 1.
	RopeFreqs *Tensor
	Layers    [][LayerRoleCount]*Tensor
}
