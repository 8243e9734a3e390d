package convert

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/tokenizer"
)

// hfConfig is the part of a Hugging Face config.json the importer reads.
// Pointers tell an absent key from a zero one, so that the transformers
// defaults can fill the gaps.
type hfConfig struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`

	// Llama, Qwen2 and Qwen3.
	HiddenSize        *int            `json:"hidden_size"`
	IntermediateSize  *int            `json:"intermediate_size"`
	NumHiddenLayers   *int            `json:"num_hidden_layers"`
	NumAttentionHeads *int            `json:"num_attention_heads"`
	NumKeyValueHeads  *int            `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	RMSNormEps        *float64        `json:"rms_norm_eps"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"` // transformers 4: an hfRope or null
	// transformers 5: rope_theta and the scaling together, one hfRope or,
	// for Gemma 3, one per layer type ("full_attention", "sliding_attention").
	RopeParameters        json.RawMessage `json:"rope_parameters"`
	LayerTypes            []string        `json:"layer_types"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	HiddenAct             *string         `json:"hidden_act"`
	HiddenActivation      *string         `json:"hidden_activation"` // Gemma's name for it
	AttentionBias         *bool           `json:"attention_bias"`
	QKVBias               *bool           `json:"qkv_bias"` // Qwen2-MoE
	MLPBias               *bool           `json:"mlp_bias"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`
	SlidingWindow         json.RawMessage `json:"sliding_window"` // a number or null
	SlidingWindowPattern  *int            `json:"sliding_window_pattern"`
	RopeLocalBaseFreq     *float64        `json:"rope_local_base_freq"` // Gemma 3, transformers 4
	PartialRotaryFactor   *float64        `json:"partial_rotary_factor"`

	// Gemma 2 and 3.
	QueryPreAttnScalar    *float64        `json:"query_pre_attn_scalar"`
	AttnLogitSoftcapping  json.RawMessage `json:"attn_logit_softcapping"`  // a number or null
	FinalLogitSoftcapping json.RawMessage `json:"final_logit_softcapping"` // a number or null

	// GPT-NeoX.
	RotaryPct           *float64 `json:"rotary_pct"`      // transformers 4
	RotaryEmbBase       *float64 `json:"rotary_emb_base"` // transformers 4
	UseParallelResidual *bool    `json:"use_parallel_residual"`
	LayerNormEps        *float64 `json:"layer_norm_eps"`

	// Mixtral, Qwen2-MoE and Qwen3-MoE.
	NumLocalExperts              *int  `json:"num_local_experts"`
	NumExperts                   *int  `json:"num_experts"`
	NumExpertsPerTok             *int  `json:"num_experts_per_tok"`
	MoeIntermediateSize          *int  `json:"moe_intermediate_size"`
	SharedExpertIntermediateSize *int  `json:"shared_expert_intermediate_size"`
	NormTopkProb                 *bool `json:"norm_topk_prob"`
	DecoderSparseStep            *int  `json:"decoder_sparse_step"`
	MLPOnlyLayers                []int `json:"mlp_only_layers"`

	// OriginalMaxPositionEmbeddings outside rope_scaling is where llama.cpp's
	// converter looks for it; transformers reads the one inside.
	OriginalMaxPositionEmbeddings *float64 `json:"original_max_position_embeddings"`

	// GPT-2.
	NEmbd                      *int     `json:"n_embd"`
	NLayer                     *int     `json:"n_layer"`
	NHead                      *int     `json:"n_head"`
	NPositions                 *int     `json:"n_positions"`
	NCtx                       *int     `json:"n_ctx"`
	NInner                     *int     `json:"n_inner"`
	LayerNormEpsilon           *float64 `json:"layer_norm_epsilon"`
	ActivationFunction         *string  `json:"activation_function"`
	ScaleAttnByInverseLayerIdx *bool    `json:"scale_attn_by_inverse_layer_idx"`
	ScaleAttnWeights           *bool    `json:"scale_attn_weights"`
	ReorderAndUpcastAttn       *bool    `json:"reorder_and_upcast_attn"`

	VocabSize         *int            `json:"vocab_size"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	BosTokenID        json.RawMessage `json:"bos_token_id"`
	EosTokenID        json.RawMessage `json:"eos_token_id"`
	PadTokenID        json.RawMessage `json:"pad_token_id"`
}

// hfRope is rope_scaling (transformers 4) or rope_parameters (transformers
// 5): the RoPE type and, for "llama3", its parameters.
type hfRope struct {
	RopeType                      string    `json:"rope_type"`
	Type                          string    `json:"type"` // rope_scaling's older spelling of rope_type
	RopeTheta                     *float64  `json:"rope_theta"`
	Factor                        *float64  `json:"factor"`
	LowFreqFactor                 *float64  `json:"low_freq_factor"`
	HighFreqFactor                *float64  `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings *float64  `json:"original_max_position_embeddings"`
	LongFactor                    []float64 `json:"long_factor"`
	ShortFactor                   []float64 `json:"short_factor"`
	AttentionFactor               *float64  `json:"attention_factor"`
	PartialRotaryFactor           *float64  `json:"partial_rotary_factor"`
}

// tokenizerHints is what config.json tells the tokenizer reader; nil
// without config.json. llama.cpp's converter prefers Llama's
// tokenizer.model to its tokenizer.json, and falls back to the
// architecture's pre-tokenizer where the tokenizer files name none.
func tokenizerHints(hc *hfConfig, arch model.Arch) *tokenizer.HFModelHints {
	if hc == nil {
		return nil
	}
	h := &tokenizer.HFModelHints{
		SentencePieceFirst: arch == model.ArchLlama,
		Pre:                "gpt-2",
		BOS:                tokenID(hc.BosTokenID),
		EOS:                tokenID(hc.EosTokenID),
		PAD:                tokenID(hc.PadTokenID),
	}
	switch arch {
	case model.ArchQwen2, model.ArchQwen3:
		h.Pre = "qwen2"
	case model.ArchLlama:
		h.Pre = "llama-bpe"
	}
	return h
}

// tokenID reads bos/eos/pad_token_id, which may be a number, a list (the
// first is taken) or null.
func tokenID(raw json.RawMessage) int {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return -1
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var list []int
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return list[0]
	}
	return -1
}

func fileExists(dir, name string) bool {
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && st.Mode().IsRegular()
}
