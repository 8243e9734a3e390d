package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/tokenizer"
)

// HF converts a Hugging Face folder (config.json, model.safetensors or
// shards listed by model.safetensors.index.json, and a tokenizer) of a
// LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM or GPT2LMHeadModel
// to GGUF.
//
// Layouts follow llama.cpp's convert_hf_to_gguf.py: Llama's q and k rows
// are permuted from Hugging Face's rotate-half order back to consecutive
// RoPE pairs (Qwen2 and Qwen3 keep rotate-half: their RoPE type is NEOX); GPT-2's
// Conv1D weights, stored (in, out), are transposed to nn.Linear's (out,
// in). Tensors are read, converted and written one at a time.
func HF(dir, outPath string, opts Options) error {
	typ, auto, err := parseType(opts.Type)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	var hc *hfConfig
	var cfg model.Config
	if fileExists(dir, "config.json") || !opts.VocabOnly {
		if hc, err = readHFConfig(cfgPath); err != nil {
			return err
		}
		if cfg, err = hc.modelConfig(cfgPath); err != nil {
			return err
		}
	}
	v, err := tokenizer.LoadHFFolder(dir, tokenizerHints(hc, cfg.Arch))
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if hc != nil {
		if err := v.PadTo(cfg.NVocab); err != nil {
			return fmt.Errorf("convert: %s: %w", dir, err)
		}
	}
	vocabKVs, err := v.GGUFMetadata()
	if err != nil {
		return fmt.Errorf("convert: %s: %w", dir, err)
	}

	gw := gguf.NewWriter()
	var tensors []plannedTensor
	if !opts.VocabOnly {
		if tensors, err = planHFTensors(dir, hc, cfg, typ, auto); err != nil {
			return err
		}
		defer func() {
			closed := map[*stFile]bool{}
			for _, t := range tensors {
				if t.src != nil && !closed[t.src.file] {
					closed[t.src.file] = true
					t.src.file.f.Close()
				}
			}
		}()
	}
	switch {
	case hc != nil:
		for _, kv := range model.GGUFMetadata(cfg, mainType(tensors)) {
			gw.Set(kv.Key, kv.Value)
		}
	case v.Model == tokenizer.ModelLlama:
		gw.Set("general.architecture", "llama")
	default:
		gw.Set("general.architecture", "gpt2")
	}
	gw.Set("general.name", filepath.Base(filepath.Clean(dir)))
	for _, kv := range vocabKVs {
		gw.Set(kv.Key, kv.Value)
	}
	for i, t := range tensors {
		t := t
		gw.AddTensorFunc(t.name, gguf.TensorType(t.typ), model.Dims(t.shape), opts.withProgress(t.name, i, len(tensors), t.load))
	}
	return gw.WriteFile(outPath)
}

// transform is what a tensor needs between Hugging Face's layout and GGUF's.
type transform int

const (
	asIs      transform = iota
	permuteQ            // llama q: rotate-half to consecutive pairs, n_head heads
	permuteK            // llama k: the same with n_head_kv heads
	transpose           // gpt2 Conv1D (in, out) to (out, in)
)

type plannedTensor struct {
	name  string
	shape [2]int64 // GGML order
	typ   model.TensorType
	src   *stTensor // nil for a tensor the converter makes (data)
	data  []byte
	how   transform
	heads int
}

// mainType is the type most matrices are written as (general.file_type).
func mainType(ts []plannedTensor) model.TensorType {
	count := map[model.TensorType]int{}
	for _, t := range ts {
		if t.shape[1] > 1 {
			count[t.typ]++
		}
	}
	best := model.TypeF32
	for _, t := range append([]model.TensorType{model.TypeF16, model.TypeBF16}, model.QuantTypes...) {
		if count[t] > count[best] {
			best = t
		}
	}
	return best
}

// loadSafetensors opens the checkpoint's files: those the index names, or
// else every *.safetensors in dir.
func loadSafetensors(dir string) (map[string]*stTensor, error) {
	var files []string
	if fileExists(dir, "model.safetensors.index.json") {
		path := filepath.Join(dir, "model.safetensors.index.json")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("convert: %s: %v", path, err)
		}
		seen := map[string]bool{}
		for _, f := range idx.WeightMap {
			if strings.Contains(f, "/") || strings.Contains(f, `\`) || f == ".." {
				return nil, fmt.Errorf("convert: %s: shard name %q must be a file in the folder", path, f)
			}
			if !seen[f] {
				seen[f] = true
				files = append(files, filepath.Join(dir, f))
			}
		}
		sort.Strings(files)
	} else {
		var err error
		if files, err = filepath.Glob(filepath.Join(dir, "*.safetensors")); err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("convert: %s: no *.safetensors files (PyTorch .bin checkpoints are not supported)", dir)
	}
	all := map[string]*stTensor{}
	for _, path := range files {
		sf, ts, err := openSafetensors(path)
		if err != nil {
			closeAll(all)
			return nil, err
		}
		for _, t := range ts {
			if prev, dup := all[t.name]; dup {
				sf.f.Close()
				closeAll(all)
				return nil, fmt.Errorf("convert: tensor %q is in both %s and %s", t.name, prev.file.path, path)
			}
			all[t.name] = t
		}
		if len(ts) == 0 {
			sf.f.Close() // an empty shard: nothing to read later
		}
	}
	return all, nil
}

func closeAll(ts map[string]*stTensor) {
	closed := map[*stFile]bool{}
	for _, t := range ts {
		if !closed[t.file] {
			closed[t.file] = true
			t.file.f.Close()
		}
	}
}

// hfTensorName maps a Hugging Face tensor name to its GGUF name and the
// transform it needs; skip is set for buffers that carry no weights.
func hfTensorName(a model.Arch, name string) (gname string, how transform, skip bool, ok bool) {
	if a == model.ArchGPT2 {
		return gpt2TensorName(name)
	}
	switch name {
	case "model.embed_tokens.weight":
		return model.NameTokEmbd, asIs, false, true
	case "model.norm.weight":
		return model.NameOutputNorm, asIs, false, true
	case "lm_head.weight":
		return model.NameOutput, asIs, false, true
	}
	layer, rest, ok := splitLayer(name, "model.layers.")
	if !ok {
		return "", 0, false, false
	}
	if rest == "self_attn.rotary_emb.inv_freq" {
		return "", 0, true, true
	}
	roles := map[string]model.LayerRole{
		"input_layernorm.weight": model.AttnNorm, "self_attn.q_proj.weight": model.WQ,
		"self_attn.k_proj.weight": model.WK, "self_attn.v_proj.weight": model.WV,
		"self_attn.q_proj.bias": model.BQ, "self_attn.k_proj.bias": model.BK, "self_attn.v_proj.bias": model.BV,
		"self_attn.o_proj.weight": model.WO, "post_attention_layernorm.weight": model.FFNNorm,
		"mlp.gate_proj.weight": model.FFNGate, "mlp.up_proj.weight": model.FFNUp, "mlp.down_proj.weight": model.FFNDown,
		"self_attn.q_norm.weight": model.AttnQNorm, "self_attn.k_norm.weight": model.AttnKNorm,
	}
	role, ok := roles[rest]
	if !ok || (role == model.AttnQNorm || role == model.AttnKNorm) && a != model.ArchQwen3 {
		return "", 0, false, false
	}
	how = asIs
	if a == model.ArchLlama && role == model.WQ {
		how = permuteQ
	} else if a == model.ArchLlama && role == model.WK {
		how = permuteK
	}
	return model.LayerTensorName(layer, role), how, false, true
}

func gpt2TensorName(name string) (string, transform, bool, bool) {
	name = strings.TrimPrefix(name, "transformer.")
	switch name {
	case "wte.weight":
		return model.NameTokEmbd, asIs, false, true
	case "wpe.weight":
		return model.NamePosEmbd, asIs, false, true
	case "ln_f.weight":
		return model.NameOutputNorm, asIs, false, true
	case "ln_f.bias":
		return model.NameOutputNormB, asIs, false, true
	case "lm_head.weight":
		return model.NameOutput, asIs, false, true
	}
	layer, rest, ok := splitLayer(name, "h.")
	if !ok {
		return "", 0, false, false
	}
	if rest == "attn.bias" || rest == "attn.masked_bias" { // causal-mask buffers of old checkpoints
		return "", 0, true, true
	}
	roles := map[string]struct {
		role model.LayerRole
		how  transform
	}{
		"ln_1.weight": {model.AttnNorm, asIs}, "ln_1.bias": {model.AttnNormB, asIs},
		"attn.c_attn.weight": {model.WQKV, transpose}, "attn.c_attn.bias": {model.BQKV, asIs},
		"attn.c_proj.weight": {model.WO, transpose}, "attn.c_proj.bias": {model.BO, asIs},
		"ln_2.weight": {model.FFNNorm, asIs}, "ln_2.bias": {model.FFNNormB, asIs},
		"mlp.c_fc.weight": {model.FFNUp, transpose}, "mlp.c_fc.bias": {model.FFNUpB, asIs},
		"mlp.c_proj.weight": {model.FFNDown, transpose}, "mlp.c_proj.bias": {model.FFNDownB, asIs},
	}
	r, ok := roles[rest]
	if !ok {
		return "", 0, false, false
	}
	return model.LayerTensorName(layer, r.role), r.how, false, true
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
	byGGUF := map[string]*stTensor{}
	hows := map[string]transform{}
	names := make([]string, 0, len(src))
	for n := range src {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		gname, how, skip, ok := hfTensorName(cfg.Arch, n)
		if skip {
			continue
		}
		if !ok {
			return fail("tensor %q (in %s) has no place in a %s model", n, filepath.Base(src[n].file.path), cfg.Arch)
		}
		if prev, dup := byGGUF[gname]; dup {
			return fail("tensors %q and %q both map to %s", prev.name, n, gname)
		}
		byGGUF[gname] = src[n]
		hows[gname] = how
	}
	tied := hc.tied(cfg.Arch)
	var out []plannedTensor
	used := map[string]bool{}
	scaling, err := hc.ropeScaling(cfg.Arch)
	if err != nil {
		return fail("%v", err)
	}
	for _, spec := range model.TensorSpecs(cfg) {
		if spec.Name == model.NameRopeFreqs {
			// Made from config.json, as llama.cpp's converter makes it.
			if scaling != nil {
				ft, err := scaling.RopeFreqsTensor(cfg)
				if err != nil {
					return fail("%v", err)
				}
				out = append(out, plannedTensor{name: ft.Name, shape: ft.Shape, typ: ft.Type, data: ft.Data})
			}
			continue
		}
		t, ok := byGGUF[spec.Name]
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
		how := hows[spec.Name]
		want := hfShape(spec.Shape, how)
		if !equalShape(t.shape, want) {
			return fail("tensor %q has shape %v, want %v for %s", t.name, t.shape, want, spec.Name)
		}
		var srcType model.TensorType
		switch t.dtype {
		case "F32":
			srcType = model.TypeF32
		case "F16":
			srcType = model.TypeF16
		case "BF16":
			srcType = model.TypeBF16
		default:
			return fail("tensor %q has dtype %s; lmscore converts F32, F16 and BF16", t.name, t.dtype)
		}
		target := typ
		if auto {
			target = srcType
		}
		p := plannedTensor{name: spec.Name, shape: spec.Shape, typ: model.StorageType(target, spec.Shape), src: t, how: how}
		switch how {
		case permuteQ:
			p.heads = cfg.NHead
		case permuteK:
			p.heads = cfg.NHeadKV
		}
		out = append(out, p)
	}
	for gname, t := range byGGUF {
		if !used[gname] {
			return fail("tensor %q has no place in a %s model with %d layers", t.name, cfg.Arch, cfg.NLayer)
		}
	}
	// Files whose tensors were all skipped are closed here; the rest close
	// after writing.
	keep := map[*stFile]bool{}
	for _, p := range out {
		if p.src != nil {
			keep[p.src.file] = true
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

// hfShape is the PyTorch shape, outermost first, of a GGUF tensor.
func hfShape(s [2]int64, how transform) []int64 {
	switch {
	case s[1] == 1:
		return []int64{s[0]}
	case how == transpose:
		return []int64{s[0], s[1]}
	}
	return []int64{s[1], s[0]}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// load reads, rearranges and encodes one tensor when the writer asks.
func (p plannedTensor) load() ([]byte, error) {
	if p.src == nil {
		return p.data, nil
	}
	raw, err := p.src.read()
	if err != nil {
		return nil, err
	}
	elem := int64(4)
	srcType := model.TypeF32
	switch p.src.dtype {
	case "F16":
		elem, srcType = 2, model.TypeF16
	case "BF16":
		elem, srcType = 2, model.TypeBF16
	}
	switch p.how {
	case permuteQ, permuteK:
		raw = permuteRows(raw, p.shape[1], p.shape[0]*elem, p.heads)
	case transpose:
		raw = transposeBytes(raw, p.shape[0], p.shape[1], elem)
	}
	if p.typ == srcType {
		return raw, nil
	}
	t := &model.Tensor{Name: p.name, Type: srcType, Shape: p.shape, Data: raw}
	c, err := t.Convert(p.typ)
	if err != nil {
		return nil, err
	}
	return c.Data, nil
}

// permuteRows undoes Hugging Face's rotate-half layout of q or k, exactly
// as llama.cpp's LlamaModel.permute does: within each head the rows
// (i, i + hd/2) of HF become rows (2i, 2i+1), so that llama.cpp's NORM RoPE
// rotates consecutive pairs.
func permuteRows(raw []byte, rows, rowBytes int64, heads int) []byte {
	out := make([]byte, len(raw))
	hd := rows / int64(heads)
	half := hd / 2
	for h := int64(0); h < int64(heads); h++ {
		for i := int64(0); i < half; i++ {
			for j := int64(0); j < 2; j++ {
				dst := h*hd + 2*i + j
				src := h*hd + j*half + i
				copy(out[dst*rowBytes:(dst+1)*rowBytes], raw[src*rowBytes:(src+1)*rowBytes])
			}
		}
	}
	return out
}

// transposeBytes transposes a GPT-2 Conv1D weight from its PyTorch shape
// (in, out), in rows of out elements, to nn.Linear's (out, in).
func transposeBytes(raw []byte, in, out, elem int64) []byte {
	dst := make([]byte, len(raw))
	for r := int64(0); r < in; r++ {
		for c := int64(0); c < out; c++ {
			s := (r*out + c) * elem
			d := (c*in + r) * elem
			copy(dst[d:d+elem], raw[s:s+elem])
		}
	}
	return dst
}
