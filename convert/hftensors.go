package convert

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/lmscore/lmscore/model"
)

// hfSource is where a Hugging Face tensor goes in GGUF.
type hfSource struct {
	gname  string
	how    transform
	expert int // >= 0: expert's slice of a stacked expert tensor; -1: the whole tensor
}

// hfLayerRoles are the per-layer names of the "model.layers.N." families
// (tensor_mapping.py's), by role; post_attention_layernorm is the FFN's
// pre-norm but for the post-norm families (hfPostNormRoles).
var hfLayerRoles = map[string]model.LayerRole{
	"input_layernorm.weight": model.AttnNorm, "self_attn.q_proj.weight": model.WQ,
	"self_attn.k_proj.weight": model.WK, "self_attn.v_proj.weight": model.WV,
	"self_attn.q_proj.bias": model.BQ, "self_attn.k_proj.bias": model.BK, "self_attn.v_proj.bias": model.BV,
	"self_attn.o_proj.weight": model.WO, "post_attention_layernorm.weight": model.FFNNorm,
	"mlp.gate_proj.weight": model.FFNGate, "mlp.up_proj.weight": model.FFNUp, "mlp.down_proj.weight": model.FFNDown,
	"self_attn.q_norm.weight": model.AttnQNorm, "self_attn.k_norm.weight": model.AttnKNorm,
	"pre_feedforward_layernorm.weight": model.FFNNorm, "post_feedforward_layernorm.weight": model.FFNPostNorm,
	// Phi-3 keeps q, k, v and gate, up fused, as llama.cpp's converter does.
	"self_attn.qkv_proj.weight": model.WQKV, "mlp.gate_up_proj.weight": model.FFNUp,
	// Routers and Qwen2-MoE's shared expert.
	"mlp.gate.weight": model.FFNGateInp, "block_sparse_moe.gate.weight": model.FFNGateInp,
	"mlp.shared_expert.gate_proj.weight": model.FFNGateShexp, "mlp.shared_expert.up_proj.weight": model.FFNUpShexp,
	"mlp.shared_expert.down_proj.weight": model.FFNDownShexp, "mlp.shared_expert_gate.weight": model.FFNGateInpShexp,
	// transformers 5's fused experts (save_original_format=False):
	// gate_up_proj (n_expert, 2·n_ff_exp, n_embd) is split below.
	"mlp.experts.down_proj": model.FFNDownExps,
}

// hfExpertRoles are the per-expert names after "experts.E.": Qwen-MoE's
// (and transformers 5's original format) and Mixtral's w1, w3, w2.
var hfExpertRoles = map[string]model.LayerRole{
	"gate_proj.weight": model.FFNGateExps, "up_proj.weight": model.FFNUpExps, "down_proj.weight": model.FFNDownExps,
	"w1.weight": model.FFNGateExps, "w3.weight": model.FFNUpExps, "w2.weight": model.FFNDownExps,
}

// hfTensorSources maps a Hugging Face tensor name to where it goes in
// GGUF; skip is set for buffers that carry no weights. Roles the family
// lacks are caught by planHFTensors, against the family's tensor list.
func hfTensorSources(a model.Arch, name string) (srcs []hfSource, skip, ok bool) {
	one := func(g string, how transform) ([]hfSource, bool, bool) { return []hfSource{{g, how, -1}}, false, true }
	switch a {
	case model.ArchGPT2:
		g, how, skip, ok := gpt2TensorName(name)
		if skip || !ok {
			return nil, skip, ok
		}
		return one(g, how)
	case model.ArchGPTNeoX:
		return gptNeoXSources(name)
	}
	gemma := a == model.ArchGemma2 || a == model.ArchGemma3
	norm := asIs
	if gemma && strings.HasSuffix(name, "norm.weight") {
		// Gemma's RMSNorm multiplies by (1 + w); llama.cpp's converter
		// stores w + 1 for every tensor whose name ends so (q/k norms too).
		norm = plusOne
	}
	switch name {
	case "model.embed_tokens.weight":
		return one(model.NameTokEmbd, asIs)
	case "model.norm.weight":
		return one(model.NameOutputNorm, norm)
	case "lm_head.weight":
		return one(model.NameOutput, asIs)
	}
	layer, rest, ok := splitLayer(name, "model.layers.")
	if !ok {
		return nil, false, false
	}
	if strings.HasSuffix(rest, "rotary_emb.inv_freq") {
		return nil, true, true
	}
	lt := func(r model.LayerRole) string { return model.LayerTensorName(layer, r) }
	if rest == "mlp.experts.gate_up_proj" {
		return []hfSource{{lt(model.FFNGateExps), gateHalf, -1}, {lt(model.FFNUpExps), upHalf, -1}}, false, true
	}
	for _, prefix := range []string{"mlp.experts.", "block_sparse_moe.experts."} {
		if e, role, ok := splitLayer(rest, prefix); ok {
			if r, ok := hfExpertRoles[role]; ok {
				return []hfSource{{lt(r), asIs, e}}, false, true
			}
			return nil, false, false
		}
	}
	role, ok := hfLayerRoles[rest]
	if !ok {
		return nil, false, false
	}
	postNorms := gemma || a == model.ArchOLMo2
	if rest == "post_attention_layernorm.weight" && postNorms {
		role = model.AttnPostNorm
	}
	how := norm
	if a == model.ArchLlama && role == model.WQ {
		how = permuteQ
	} else if a == model.ArchLlama && role == model.WK {
		how = permuteK
	}
	return one(lt(role), how)
}

// gptNeoXSources maps GPT-NeoX's names (gpt_neox.*, embed_out).
func gptNeoXSources(name string) ([]hfSource, bool, bool) {
	one := func(g string, how transform) ([]hfSource, bool, bool) { return []hfSource{{g, how, -1}}, false, true }
	switch name {
	case "gpt_neox.embed_in.weight":
		return one(model.NameTokEmbd, asIs)
	case "gpt_neox.final_layer_norm.weight":
		return one(model.NameOutputNorm, asIs)
	case "gpt_neox.final_layer_norm.bias":
		return one(model.NameOutputNormB, asIs)
	case "embed_out.weight":
		return one(model.NameOutput, asIs)
	}
	layer, rest, ok := splitLayer(name, "gpt_neox.layers.")
	if !ok {
		return nil, false, false
	}
	switch rest {
	case "attention.bias", "attention.masked_bias", "attention.rotary_emb.inv_freq":
		return nil, true, true // buffers of older checkpoints
	}
	roles := map[string]struct {
		role model.LayerRole
		how  transform
	}{
		"input_layernorm.weight": {model.AttnNorm, asIs}, "input_layernorm.bias": {model.AttnNormB, asIs},
		"post_attention_layernorm.weight": {model.FFNNorm, asIs}, "post_attention_layernorm.bias": {model.FFNNormB, asIs},
		"attention.query_key_value.weight": {model.WQKV, neoxQKV}, "attention.query_key_value.bias": {model.BQKV, neoxQKV},
		"attention.dense.weight": {model.WO, asIs}, "attention.dense.bias": {model.BO, asIs},
		"mlp.dense_h_to_4h.weight": {model.FFNUp, asIs}, "mlp.dense_h_to_4h.bias": {model.FFNUpB, asIs},
		"mlp.dense_4h_to_h.weight": {model.FFNDown, asIs}, "mlp.dense_4h_to_h.bias": {model.FFNDownB, asIs},
	}
	r, ok := roles[rest]
	if !ok {
		return nil, false, false
	}
	return one(model.LayerTensorName(layer, r.role), r.how)
}

// plannedSource gathers what goes into one GGUF tensor.
type plannedSource struct {
	how     transform
	whole   *stTensor   // a tensor of its own (or a fused expert tensor)
	experts []*stTensor // per-expert tensors, by expert id
}

// planHFTensors matches the checkpoint's tensors to the architecture's,
// checking names, shapes and dtypes before anything is written.
func planHFTensors(dir string, hc *hfConfig, cfg model.Config, typ model.TensorType, auto bool) ([]plannedTensor, error) {
	src, err := loadSafetensors(dir)
	if err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) ([]plannedTensor, error) {
		closeAll(src)
		return nil, fmt.Errorf("convert: %s: %s", dir, fmt.Sprintf(format, args...))
	}
	byGGUF := map[string]*plannedSource{}
	names := make([]string, 0, len(src))
	for n := range src {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		srcs, skip, ok := hfTensorSources(cfg.Arch, n)
		if skip {
			continue
		}
		if !ok {
			return fail("tensor %q (in %s) has no place in a %s model", n, filepath.Base(src[n].file.path), cfg.Arch)
		}
		for _, s := range srcs {
			p := byGGUF[s.gname]
			if p == nil {
				p = &plannedSource{how: s.how}
				byGGUF[s.gname] = p
			}
			switch {
			case s.expert < 0 && p.whole == nil && p.experts == nil:
				p.whole = src[n]
			case s.expert >= 0 && p.whole == nil:
				if s.expert >= cfg.NExpert {
					return fail("tensor %q is of expert %d, but the model has %d experts", n, s.expert, cfg.NExpert)
				}
				if p.experts == nil {
					p.experts = make([]*stTensor, cfg.NExpert)
				}
				if p.experts[s.expert] != nil {
					return fail("tensors %q and %q are both expert %d of %s", p.experts[s.expert].name, n, s.expert, s.gname)
				}
				p.experts[s.expert] = src[n]
			default:
				return fail("tensor %q and another both map to %s", n, s.gname)
			}
		}
	}
	tied := hc.tied(cfg.Arch)
	ropeTensors, err := hc.ropeTensors(cfg)
	if err != nil {
		return fail("%v", err)
	}
	var out []plannedTensor
	used := map[string]bool{}
	for _, spec := range model.TensorSpecs(cfg) {
		if spec.Name == model.NameRopeFreqs || spec.Name == model.NameRopeFactorsLong || spec.Name == model.NameRopeFactorsShort {
			// Made from config.json, as llama.cpp's converter makes them.
			if ft := ropeTensors[spec.Name]; ft != nil {
				out = append(out, plannedTensor{name: ft.Name, shape: ft.Shape, dims: spec.Dims, typ: ft.Type, data: ft.Data})
			}
			continue
		}
		p, ok := byGGUF[spec.Name]
		if spec.Name == model.NameOutput && tied {
			used[spec.Name] = true // the embedding serves; a saved copy is dropped
			continue
		}
		if !ok {
			if spec.Name == model.NameOutput {
				return fail("no lm_head.weight, and config.json does not tie the output to the embedding")
			}
			if !spec.Required {
				continue
			}
			return fail("missing the tensor that becomes %s", spec.Name)
		}
		used[spec.Name] = true
		parts := []*stTensor{p.whole}
		want := hfShape(spec.Shape, p.how)
		switch {
		case p.experts != nil:
			parts, want = p.experts, []int64{spec.Dims[1], spec.Dims[0]}
			for e, t := range parts {
				if t == nil {
					return fail("no tensor for expert %d of %s", e, spec.Name)
				}
			}
		case len(spec.Dims) == 3:
			want = []int64{spec.Dims[2], spec.Dims[1], spec.Dims[0]}
			if p.how == gateHalf || p.how == upHalf {
				want[1] *= 2
			}
		case spec.Shape[1] == 1 && len(p.whole.shape) == 2 && p.whole.shape[0] == 1:
			want = []int64{1, spec.Shape[0]} // a (1, n) Linear weight as a vector: Qwen2-MoE's shared_expert_gate
		}
		var srcType model.TensorType
		for _, t := range parts {
			if !equalShape(t.shape, want) {
				return fail("tensor %q has shape %v, want %v for %s", t.name, t.shape, want, spec.Name)
			}
			st, ok := stModelTypes[t.dtype]
			if !ok {
				return fail("tensor %q has dtype %s; lmscore converts F32, F16 and BF16", t.name, t.dtype)
			}
			if t != parts[0] && st != srcType {
				return fail("tensor %q has dtype %s, unlike %q", t.name, t.dtype, parts[0].name)
			}
			srcType = st
		}
		target := typ
		if auto {
			target = srcType
		}
		pt := plannedTensor{name: spec.Name, shape: spec.Shape, dims: spec.Dims, typ: model.StorageType(target, spec.Shape), srcs: parts, how: p.how}
		switch p.how {
		case permuteQ, neoxQKV:
			pt.heads = cfg.NHead
		case permuteK:
			pt.heads = cfg.NHeadKV
		}
		out = append(out, pt)
	}
	for gname, p := range byGGUF {
		if !used[gname] {
			t := p.whole
			if t == nil {
				for _, t = range p.experts {
					if t != nil {
						break
					}
				}
			}
			return fail("tensor %q has no place in a %s model with %d layers", t.name, cfg.Arch, cfg.NLayer)
		}
	}
	// Files whose tensors were all skipped are closed here; the rest close
	// after writing.
	keep := map[*stFile]bool{}
	for _, p := range out {
		for _, s := range p.srcs {
			keep[s.file] = true
		}
	}
	for _, t := range src {
		if !keep[t.file] {
			keep[t.file] = true
			t.file.f.Close()
		}
	}
	return out, nil
}

var stModelTypes = map[string]model.TensorType{"F32": model.TypeF32, "F16": model.TypeF16, "BF16": model.TypeBF16}

// load reads, rearranges and encodes one tensor when the writer asks.
func (p plannedTensor) load() ([]byte, error) {
	if p.srcs == nil {
		return p.data, nil
	}
	var raw []byte
	for _, s := range p.srcs {
		b, err := s.read()
		if err != nil {
			return nil, err
		}
		raw = append(raw, b...)
	}
	srcType := stModelTypes[p.srcs[0].dtype]
	elem := int64(4)
	if srcType != model.TypeF32 {
		elem = 2
	}
	rowBytes := p.shape[0] * elem
	switch p.how {
	case permuteQ, permuteK:
		raw = permuteRows(raw, p.shape[1], rowBytes, p.heads)
	case transpose:
		raw = transposeBytes(raw, p.shape[0], p.shape[1], elem)
	case neoxQKV:
		if p.shape[1] == 1 { // the bias: rows of one value
			raw = regroupNeoXQKV(raw, p.shape[0], elem, p.heads)
		} else {
			raw = regroupNeoXQKV(raw, p.shape[1], rowBytes, p.heads)
		}
	case gateHalf, upHalf:
		raw = expertHalf(raw, p.dims[2], p.dims[1], rowBytes, p.how == upHalf)
	}
	t := &model.Tensor{Name: p.name, Type: srcType, Shape: p.shape, Data: raw}
	if p.how == plusOne {
		x, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		// In float32, where transformers computes 1 + w: exact for a BF16
		// or F16 w of a norm's size.
		for i := range x {
			x[i]++
		}
		if t, err = model.NewTensor(p.name, p.typ, p.shape, x); err != nil {
			return nil, err
		}
		return t.Data, nil
	}
	if p.typ == srcType {
		return raw, nil
	}
	c, err := t.Convert(p.typ)
	if err != nil {
		return nil, err
	}
	return c.Data, nil
}

// regroupNeoXQKV turns GPT-NeoX's query_key_value rows, head by head
// (q, k, v of head 0, then of head 1, ...), into all q rows, then all k,
// then all v, as llama.cpp's GPTNeoXModel.modify_tensors does (and its
// attn_qkv wants).
func regroupNeoXQKV(raw []byte, rows, rowBytes int64, heads int) []byte {
	out := make([]byte, len(raw))
	h := int64(heads)
	hd := rows / (3 * h)
	for head := int64(0); head < h; head++ {
		for j := int64(0); j < 3; j++ {
			src := (head*3 + j) * hd * rowBytes
			dst := (j*h + head) * hd * rowBytes
			copy(out[dst:dst+hd*rowBytes], raw[src:src+hd*rowBytes])
		}
	}
	return out
}

// expertHalf takes, from transformers 5's fused gate_up_proj (n_expert,
// 2·n_ff, n_in), each expert's gate rows (the first n_ff) or up rows.
func expertHalf(raw []byte, experts, ff, rowBytes int64, up bool) []byte {
	out := make([]byte, 0, len(raw)/2)
	block := ff * rowBytes
	for e := int64(0); e < experts; e++ {
		start := e * 2 * block
		if up {
			start += block
		}
		out = append(out, raw[start:start+block]...)
	}
	return out
}

// splitLayer parses "<prefix>N.rest".
func splitLayer(name, prefix string) (int, string, bool) {
	if !strings.HasPrefix(name, prefix) {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(name[len(prefix):], ".")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strconv.Itoa(n) != num {
		return 0, "", false
	}
	return n, rest, true
}
