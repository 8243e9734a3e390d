package model

import (
	"fmt"
	"slices"
)

// Tensor names are llama.cpp's (llama-arch.cpp), so that a GGUF file made
// by llama.cpp's converters loads here and one written here loads there.
const (
	NameTokEmbd     = "token_embd.weight"
	NamePosEmbd     = "position_embd.weight"
	NameOutputNorm  = "output_norm.weight"
	NameOutputNormB = "output_norm.bias"
	NameOutput      = "output.weight"
	NameRopeFreqs   = "rope_freqs.weight"
	// Phi-3's LongRoPE factors, for contexts beyond and within
	// rope.scaling.original_context_length.
	NameRopeFactorsLong  = "rope_factors_long.weight"
	NameRopeFactorsShort = "rope_factors_short.weight"
)

// layerRoleNames are the per-layer names after "blk.N.".
var layerRoleNames = [LayerRoleCount]string{
	AttnNorm:  "attn_norm.weight",
	AttnNormB: "attn_norm.bias",
	WQ:        "attn_q.weight",
	WK:        "attn_k.weight",
	WV:        "attn_v.weight",
	BQ:        "attn_q.bias",
	BK:        "attn_k.bias",
	BV:        "attn_v.bias",
	WQKV:      "attn_qkv.weight",
	BQKV:      "attn_qkv.bias",
	WO:        "attn_output.weight",
	BO:        "attn_output.bias",
	FFNNorm:   "ffn_norm.weight",
	FFNNormB:  "ffn_norm.bias",
	FFNGate:   "ffn_gate.weight",
	FFNUp:     "ffn_up.weight",
	FFNUpB:    "ffn_up.bias",
	FFNDown:   "ffn_down.weight",
	FFNDownB:  "ffn_down.bias",
	AttnQNorm: "attn_q_norm.weight",
	AttnKNorm: "attn_k_norm.weight",

	AttnPostNorm: "post_attention_norm.weight",
	FFNPostNorm:  "post_ffw_norm.weight",

	FFNGateInp:      "ffn_gate_inp.weight",
	FFNGateExps:     "ffn_gate_exps.weight",
	FFNUpExps:       "ffn_up_exps.weight",
	FFNDownExps:     "ffn_down_exps.weight",
	FFNGateInpShexp: "ffn_gate_inp_shexp.weight",
	FFNGateShexp:    "ffn_gate_shexp.weight",
	FFNUpShexp:      "ffn_up_shexp.weight",
	FFNDownShexp:    "ffn_down_shexp.weight",
}

// LayerTensorName is the GGUF name of a layer's tensor, e.g.
// "blk.3.attn_k.weight".
func LayerTensorName(layer int, role LayerRole) string {
	return fmt.Sprintf("blk.%d.%s", layer, layerRoleNames[role])
}

func (r LayerRole) String() string {
	if r >= 0 && r < LayerRoleCount {
		return layerRoleNames[r]
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// presence says whether an architecture has a tensor.
type presence int

const (
	absent presence = iota
	required
	optional
	// derived tensors are not in the file: the slot points at another
	// tensor (Phi-3's RopeFreqs at one of its LongRoPE factors).
	derived
)

// tensorSpec is one tensor an architecture may hold: its name, its shape
// for a given Config and where it lives in Weights.
type tensorSpec struct {
	name     string
	shape    [2]int64
	presence presence
	slot     **Tensor
	why      string // how the shape follows from the config, for errors
	// dims are the GGUF dimensions where they are not those of shape: the
	// experts' 3-D {n_in, n_out, n_expert}, which lmscore holds flattened
	// to {n_in, n_out·n_expert} (the same bytes, expert after expert).
	dims []int64
}

// ggufDims are the dimensions the tensor has in a GGUF file.
func (s tensorSpec) ggufDims() []int64 {
	if s.dims != nil {
		return s.dims
	}
	return dimsOf(s.shape)
}

// specs lists every tensor of cfg's architecture in the order files are
// written, pointing into w (whose Layers it sizes to cfg.NLayer).
func specs(cfg Config, w *Weights) []tensorSpec {
	e, v, ff := int64(cfg.NEmbd), int64(cfg.NVocab), int64(cfg.NFF)
	if len(w.Layers) != cfg.NLayer {
		w.Layers = make([][LayerRoleCount]*Tensor, cfg.NLayer)
	}
	fam := families[cfg.Arch]
	pick := func(b bool) presence {
		if b {
			return required
		}
		return absent
	}
	var hd int64
	if cfg.NHead > 0 {
		hd = int64(cfg.HeadDim())
	}
	q, kv := int64(cfg.NHead)*hd, int64(cfg.NHeadKV)*hd
	rot := int64(cfg.NRot)
	if rot == 0 {
		rot = hd
	}
	ropeFreqs, longShort := fam.ropeFreqs, absent
	if fam.ropeFactorsLS {
		ropeFreqs, longShort = derived, optional
	}
	if cfg.RopeType == RopeNone {
		ropeFreqs, longShort = absent, absent
	}
	out := []tensorSpec{
		// First, where llama.cpp's converter writes them.
		{name: NameRopeFactorsLong, shape: [2]int64{rot / 2, 1}, presence: longShort, slot: &w.RopeFactorsLong, why: "n_rot/2"},
		{name: NameRopeFactorsShort, shape: [2]int64{rot / 2, 1}, presence: longShort, slot: &w.RopeFactorsShort, why: "n_rot/2"},
		{NameRopeFreqs, [2]int64{rot / 2, 1}, ropeFreqs, &w.RopeFreqs, "n_rot/2", nil},
		{NameTokEmbd, [2]int64{e, v}, required, &w.TokEmbd, "n_embd × n_vocab", nil},
		{NamePosEmbd, [2]int64{e, int64(cfg.NCtxTrain)}, pick(fam.posEmbd), &w.PosEmbd, "n_embd × n_ctx_train", nil},
	}
	upRows, upWhy := ff, "n_embd × n_ff"
	if cfg.Gated() && !slices.Contains(fam.dense, FFNGate) {
		upRows, upWhy = 2*ff, "n_embd × 2·n_ff (gate and up)"
	}
	qn, kn, qnWhy, knWhy := hd, hd, "head_dim", "head_dim"
	if cfg.QKNorm() == QKNormFull {
		qn, kn, qnWhy, knWhy = q, kv, "n_head·head_dim", "n_head_kv·head_dim"
	}
	ne, fe, fs := int64(cfg.NExpert), int64(cfg.NFFExp), int64(cfg.NFFShexp)
	roleShape := map[LayerRole]struct {
		s   [2]int64
		why string
	}{
		AttnNorm: {[2]int64{e, 1}, "n_embd"}, AttnNormB: {[2]int64{e, 1}, "n_embd"},
		WQ: {[2]int64{e, q}, "n_embd × n_head·head_dim"}, WK: {[2]int64{e, kv}, "n_embd × n_head_kv·head_dim"},
		WV: {[2]int64{e, kv}, "n_embd × n_head_kv·head_dim"},
		BQ: {[2]int64{q, 1}, "n_head·head_dim"}, BK: {[2]int64{kv, 1}, "n_head_kv·head_dim"}, BV: {[2]int64{kv, 1}, "n_head_kv·head_dim"},
		WQKV: {[2]int64{e, q + 2*kv}, "n_embd × (n_head + 2·n_head_kv)·head_dim"},
		BQKV: {[2]int64{q + 2*kv, 1}, "(n_head + 2·n_head_kv)·head_dim"},
		WO:   {[2]int64{q, e}, "n_head·head_dim × n_embd"}, BO: {[2]int64{e, 1}, "n_embd"},
		FFNNorm: {[2]int64{e, 1}, "n_embd"}, FFNNormB: {[2]int64{e, 1}, "n_embd"},
		FFNGate: {[2]int64{e, ff}, "n_embd × n_ff"}, FFNUp: {[2]int64{e, upRows}, upWhy},
		FFNUpB: {[2]int64{ff, 1}, "n_ff"}, FFNDown: {[2]int64{ff, e}, "n_ff × n_embd"}, FFNDownB: {[2]int64{e, 1}, "n_embd"},
		AttnQNorm: {[2]int64{qn, 1}, qnWhy}, AttnKNorm: {[2]int64{kn, 1}, knWhy},
		AttnPostNorm: {[2]int64{e, 1}, "n_embd"}, FFNPostNorm: {[2]int64{e, 1}, "n_embd"},
		FFNGateInp:      {[2]int64{e, ne}, "n_embd × n_expert"},
		FFNGateExps:     {[2]int64{e, fe * ne}, "n_embd × n_ff_exp·n_expert"},
		FFNUpExps:       {[2]int64{e, fe * ne}, "n_embd × n_ff_exp·n_expert"},
		FFNDownExps:     {[2]int64{fe, e * ne}, "n_ff_exp × n_embd·n_expert"},
		FFNGateInpShexp: {[2]int64{e, 1}, "n_embd"},
		FFNGateShexp:    {[2]int64{e, fs}, "n_embd × n_ff_shexp"},
		FFNUpShexp:      {[2]int64{e, fs}, "n_embd × n_ff_shexp"},
		FFNDownShexp:    {[2]int64{fs, e}, "n_ff_shexp × n_embd"},
	}
	has := map[LayerRole]presence{}
	req, opt := cfg.layerRoleSet()
	for _, r := range opt {
		has[r] = optional
	}
	for _, r := range req {
		has[r] = required
	}
	expertDims := map[LayerRole][]int64{
		FFNGateExps: {e, fe, ne}, FFNUpExps: {e, fe, ne}, FFNDownExps: {fe, e, ne},
	}
	for l := 0; l < cfg.NLayer; l++ {
		for r := LayerRole(0); r < LayerRoleCount; r++ {
			rs := roleShape[r]
			out = append(out, tensorSpec{LayerTensorName(l, r), rs.s, has[r], &w.Layers[l][r], rs.why, expertDims[r]})
		}
	}
	return append(out,
		tensorSpec{NameOutputNorm, [2]int64{e, 1}, required, &w.OutputNorm, "n_embd", nil},
		tensorSpec{NameOutputNormB, [2]int64{e, 1}, pick(cfg.NormType() == NormLayer), &w.OutputNormB, "n_embd", nil},
		tensorSpec{NameOutput, [2]int64{e, v}, optional, &w.Output, "n_embd × n_vocab", nil},
	)
}
