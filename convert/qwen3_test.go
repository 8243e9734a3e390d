package convert

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/model"
)

// qwen3HeadDim is the synthetic Qwen3's head width: twice hidden/heads, as
// Qwen3-0.6B's 128 with hidden_size 1024 and 16 heads.
const qwen3HeadDim = 2 * tE / tH

// qwen3Folder writes a Qwen3ForCausalLM checkpoint as transformers 5 saves
// it (rope_parameters, layer_types, head_dim, tied embeddings) with a
// Qwen2 byte-level BPE tokenizer; edit may change config.json first.
func qwen3Folder(t *testing.T, dir string, edit func(cfg map[string]any)) map[string]hfTensor {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	const vocab = 262
	q, kv := int64(tH*qwen3HeadDim), int64(tKV*qwen3HeadDim)
	var ts []hfTensor
	add := func(name string, shape ...int64) { ts = append(ts, randTensor(rng, name, "BF16", shape...)) }
	add("model.embed_tokens.weight", vocab, tE)
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", tE)
		add(p+"self_attn.q_proj.weight", q, tE)
		add(p+"self_attn.k_proj.weight", kv, tE)
		add(p+"self_attn.v_proj.weight", kv, tE)
		add(p+"self_attn.q_norm.weight", qwen3HeadDim)
		add(p+"self_attn.k_norm.weight", qwen3HeadDim)
		add(p+"self_attn.o_proj.weight", tE, q)
		add(p+"post_attention_layernorm.weight", tE)
		add(p+"mlp.gate_proj.weight", tFF, tE)
		add(p+"mlp.up_proj.weight", tFF, tE)
		add(p+"mlp.down_proj.weight", tE, tFF)
	}
	add("model.norm.weight", tE)
	writeSafetensors(t, filepath.Join(dir, "model.safetensors"), ts)
	cfg := map[string]any{
		"architectures": []string{"Qwen3ForCausalLM"}, "model_type": "qwen3", "hidden_size": tE,
		"intermediate_size": tFF, "num_hidden_layers": tL, "num_attention_heads": tH, "num_key_value_heads": tKV,
		"head_dim": qwen3HeadDim, "rms_norm_eps": 1e-6, "max_position_embeddings": tCtx, "vocab_size": vocab,
		"tie_word_embeddings": true, "hidden_act": "silu", "attention_bias": false, "use_sliding_window": false,
		"layer_types":     []string{"full_attention", "full_attention"},
		"rope_parameters": map[string]any{"rope_theta": 1000000.0, "rope_type": "default"},
		"bos_token_id":    nil, "eos_token_id": 259,
	}
	if edit != nil {
		edit(cfg)
	}
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	bpe, merges := byteLevelVocab()
	bpe["<|endoftext|>"] = len(bpe)
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"added_tokens":  []map[string]any{{"id": 259, "content": "<|endoftext|>", "special": true}},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwen2Regex}}, map[string]any{"type": "ByteLevel", "use_regex": false}}},
		"model":         map[string]any{"type": "BPE", "vocab": bpe, "merges": merges},
	})
	out := map[string]hfTensor{}
	for _, x := range ts {
		out[x.name] = x
	}
	return out
}

func TestHFQwen3(t *testing.T) {
	dir := t.TempDir()
	src := qwen3Folder(t, dir, nil)
	m := convertAndLoad(t, dir, Options{})
	want := model.Config{Arch: model.ArchQwen3, NVocab: 262, NEmbd: tE, NLayer: tL, NHead: tH, NHeadKV: tKV,
		NEmbdHead: qwen3HeadDim, NFF: tFF, NCtxTrain: tCtx, RopeType: model.RopeNeox, RopeFreqBase: 1e6, NormEps: 1e-6}
	if !reflect.DeepEqual(m.Config, want) {
		t.Fatalf("config %+v\nwant   %+v", m.Config, want)
	}
	if m.Weights.Output != nil {
		t.Error("tie_word_embeddings true, but output.weight was written")
	}
	for l := 0; l < tL; l++ {
		for role, hf := range map[model.LayerRole]string{model.WQ: "q_proj", model.WK: "k_proj", model.WO: "o_proj",
			model.AttnQNorm: "q_norm", model.AttnKNorm: "k_norm"} {
			// NEOX keeps Hugging Face's rotate-half layout: no permutation.
			sameValues(t, hf, values(t, m.Weights.Layers[l][role]), src[fmt.Sprintf("model.layers.%d.self_attn.%s.weight", l, hf)].x)
		}
	}
	f := m.File
	for key, n := range map[string]int64{"qwen3.attention.key_length": qwen3HeadDim, "qwen3.attention.value_length": qwen3HeadDim,
		"qwen3.rope.dimension_count": qwen3HeadDim} {
		if got, err := f.Int(key); err != nil || got != n {
			t.Errorf("%s = %d, %v; want %d", key, got, err, n)
		}
	}
	if s, _ := f.String("tokenizer.ggml.pre"); s != "qwen2" {
		t.Errorf("pre %q, want qwen2", s)
	}
}

// head_dim equal to hidden_size/heads is the default spelled out, and
// Qwen3 options lmscore does not run are refused.
func TestHFQwen3Config(t *testing.T) {
	dir := t.TempDir()
	qwen3Folder(t, dir, func(cfg map[string]any) { cfg["head_dim"] = tHD })
	// The checkpoint's shapes are for head_dim 32, so only the config is read.
	cfg, err := (func() (model.Config, error) {
		hc, err := readHFConfig(filepath.Join(dir, "config.json"))
		if err != nil {
			return model.Config{}, err
		}
		return hc.modelConfig(filepath.Join(dir, "config.json"))
	})()
	if err != nil || cfg.NEmbdHead != 0 || cfg.HeadDim() != tHD {
		t.Fatalf("head_dim %d: NEmbdHead %d, HeadDim %d, %v", tHD, cfg.NEmbdHead, cfg.HeadDim(), err)
	}
	for _, c := range []struct {
		name string
		edit func(cfg map[string]any)
		want string
	}{
		{"attention bias", func(cfg map[string]any) { cfg["attention_bias"] = true }, "attention_bias is not supported for qwen3"},
		{"sliding window", func(cfg map[string]any) { cfg["use_sliding_window"] = true }, "use_sliding_window is not supported"},
		{"rope scaling", func(cfg map[string]any) {
			cfg["rope_parameters"] = map[string]any{"rope_theta": 1e6, "rope_type": "yarn", "factor": 4.0}
		}, `rope_parameters.rope_type "yarn" is not supported`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			qwen3Folder(t, dir, c.edit)
			err := HF(dir, filepath.Join(t.TempDir(), "out.gguf"), Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
