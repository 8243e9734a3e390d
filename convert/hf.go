package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/tokenizer"
)

// HF converts a Hugging Face folder (config.json, model.safetensors or
// shards listed by model.safetensors.index.json, and a tokenizer) of one
// of the classes hfClasses lists to GGUF.
//
// Layouts follow llama.cpp's convert_hf_to_gguf.py (hftensors.go): Llama's
// q and k rows (Mistral's, Mixtral's) are permuted from Hugging Face's
// rotate-half order back to consecutive RoPE pairs (the NEOX families
// keep rotate-half); GPT-2's Conv1D weights are transposed; Gemma's norms
// get their +1; GPT-NeoX's interleaved qkv is regrouped; experts are
// stacked into llama.cpp's 3-D tensors. Tensors are read, converted and
// written one at a time.
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
				for _, src := range t.srcs {
					if !closed[src.file] {
						closed[src.file] = true
						src.file.f.Close()
					}
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
		gw.AddTensorFunc(t.name, gguf.TensorType(t.typ), t.dims, opts.withProgress(t.name, i, len(tensors), t.load))
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
	plusOne             // Gemma's (1+w) RMSNorm weights: w+1 in the file
	neoxQKV             // GPT-NeoX's per-head q,k,v rows to all q, all k, all v
	gateHalf            // the gate rows of each expert's fused gate_up
	upHalf              // the up rows of each expert's fused gate_up
)

type plannedTensor struct {
	name  string
	shape [2]int64 // GGML order
	dims  []int64  // GGUF dimensions
	typ   model.TensorType
	srcs  []*stTensor // nil for a tensor the converter makes (data); several: one per expert, in order
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
