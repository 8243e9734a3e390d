package convert

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/tokenizer"
)

const (
	tE, tH, tKV, tFF, tL, tCtx = 64, 4, 2, 96, 2, 32 // hidden, heads, kv heads, ffn, layers, positions
	tHD                        = tE / tH
)

// llamaFolder writes a synthetic LlamaForCausalLM (or Qwen2ForCausalLM)
// checkpoint and returns its tensors by Hugging Face name.
func llamaFolder(t *testing.T, dir, arch, dtype string, vocab int, tied bool, shards int) map[string]hfTensor {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var ts []hfTensor
	add := func(name, dt string, shape ...int64) { ts = append(ts, randTensor(rng, name, dt, shape...)) }
	add("model.embed_tokens.weight", dtype, int64(vocab), tE)
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", dtype, tE)
		add(p+"self_attn.q_proj.weight", dtype, tE, tE)
		add(p+"self_attn.k_proj.weight", dtype, tKV*tHD, tE)
		add(p+"self_attn.v_proj.weight", dtype, tKV*tHD, tE)
		if arch == "Qwen2ForCausalLM" {
			add(p+"self_attn.q_proj.bias", dtype, tE)
			add(p+"self_attn.k_proj.bias", dtype, tKV*tHD)
			add(p+"self_attn.v_proj.bias", dtype, tKV*tHD)
		}
		add(p+"self_attn.o_proj.weight", dtype, tE, tE)
		add(p+"post_attention_layernorm.weight", dtype, tE)
		add(p+"mlp.gate_proj.weight", dtype, tFF, tE)
		add(p+"mlp.up_proj.weight", dtype, tFF, tE)
		add(p+"mlp.down_proj.weight", dtype, tE, tFF)
	}
	add("model.norm.weight", dtype, tE)
	if !tied {
		add("lm_head.weight", dtype, int64(vocab), tE)
	}
	if shards > 1 {
		writeSharded(t, dir, ts, shards)
	} else {
		writeSafetensors(t, filepath.Join(dir, "model.safetensors"), ts)
	}
	writeJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{arch}, "hidden_size": tE, "intermediate_size": tFF, "num_hidden_layers": tL,
		"num_attention_heads": tH, "num_key_value_heads": tKV, "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
		"max_position_embeddings": tCtx, "vocab_size": vocab, "tie_word_embeddings": tied, "hidden_act": "silu",
		"rope_scaling": nil, "bos_token_id": 1, "eos_token_id": 2,
	})
	out := map[string]hfTensor{}
	for _, x := range ts {
		out[x.name] = x
	}
	return out
}

// qwen2Regex is the split regex of Qwen2's tokenizer.json, which the
// tokenizer reader names "qwen2".
const qwen2Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// spmBPETokenizer writes a tokenizer.json of the kind transformers makes
// from a SentencePiece BPE (Llama, Mistral): byte fallback, "▁" spaces.
func spmBPETokenizer(t *testing.T, dir string) {
	vocab := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := 0; b < 256; b++ {
		vocab[fmt.Sprintf("<0x%02X>", b)] = 3 + b
	}
	for _, p := range []string{"▁", "a", "b", "▁a", "ab", "▁ab"} {
		vocab[p] = len(vocab)
	}
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
			{"id": 2, "content": "</s>", "special": true},
		},
		"pre_tokenizer": nil,
		"model": map[string]any{"type": "BPE", "byte_fallback": true, "unk_token": "<unk>", "vocab": vocab,
			"merges": [][]string{{"▁", "a"}, {"a", "b"}, {"▁a", "b"}}},
	})
	writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": map[string]any{"content": "</s>"},
		"unk_token": "<unk>", "pad_token": nil,
	})
}

func convertAndLoad(t *testing.T, dir string, opts Options) *model.Model {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.gguf")
	if err := HF(dir, out, opts); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// hfVocabOnly converts the folder dir with --vocab-only to out and opens the
// result, which stays open until the test ends.
func hfVocabOnly(t *testing.T, dir, out string) *gguf.File {
	t.Helper()
	if err := HF(dir, out, Options{VocabOnly: true}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func values(t *testing.T, tn *model.Tensor) []float32 {
	t.Helper()
	x, err := tn.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func sameValues(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: value %d is %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestHFLlama(t *testing.T) {
	dir := t.TempDir()
	src := llamaFolder(t, dir, "LlamaForCausalLM", "F32", 300, false, 1)
	spmBPETokenizer(t, dir)
	m := convertAndLoad(t, dir, Options{})
	c := m.Config
	want := model.Config{Arch: model.ArchLlama, NVocab: 300, NEmbd: tE, NLayer: tL, NHead: tH, NHeadKV: tKV, NFF: tFF,
		NCtxTrain: tCtx, RopeType: model.RopeNorm, RopeFreqBase: 500000, NormEps: 1e-6}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("config %+v, want %+v", c, want)
	}
	// q and k: GGUF row h*hd + 2i + j is HF row h*hd + j*hd/2 + i.
	for l := 0; l < tL; l++ {
		for _, k := range []struct {
			role  model.LayerRole
			hf    string
			heads int
		}{{model.WQ, "q_proj", tH}, {model.WK, "k_proj", tKV}} {
			got := values(t, m.Weights.Layers[l][k.role])
			hf := src[fmt.Sprintf("model.layers.%d.self_attn.%s.weight", l, k.hf)].x
			if m.Weights.Layers[l][k.role].Type != model.TypeF32 {
				t.Fatal("auto type changed F32")
			}
			for h := 0; h < k.heads; h++ {
				for i := 0; i < tHD/2; i++ {
					for j := 0; j < 2; j++ {
						g := (h*tHD + 2*i + j) * tE
						s := (h*tHD + j*tHD/2 + i) * tE
						sameValues(t, k.hf, got[g:g+tE], hf[s:s+tE])
					}
				}
			}
		}
		sameValues(t, "v", values(t, m.Weights.Layers[l][model.WV]), src[fmt.Sprintf("model.layers.%d.self_attn.v_proj.weight", l)].x)
		sameValues(t, "down", values(t, m.Weights.Layers[l][model.FFNDown]), src[fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", l)].x)
	}
	sameValues(t, "output", values(t, m.Weights.Output), src["lm_head.weight"].x)
	sameValues(t, "embd", values(t, m.Weights.TokEmbd)[:300*tE], src["model.embed_tokens.weight"].x)

	f := m.File
	if s, _ := f.String("tokenizer.ggml.model"); s != "llama" {
		t.Fatalf("tokenizer model %q", s)
	}
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	scores, _ := f.Float32s("tokenizer.ggml.scores")
	if len(toks) != 300 || toks[264] != "▁ab" || toks[299] != "[PAD299]" || types[299] != tokenizer.TypeUnused {
		t.Fatalf("tokens %d, %q, %q", len(toks), toks[264], toks[299])
	}
	if types[0] != tokenizer.TypeUnknown || types[1] != tokenizer.TypeControl || types[3] != tokenizer.TypeByte || types[261] != tokenizer.TypeNormal {
		t.Fatalf("types %v", types[:4])
	}
	// Merged pieces rank by merge: "▁a" is merge 0, "ab" 1, "▁ab" 2.
	if scores[261] != 0 || scores[262] != 0 || scores[263] != -1 || scores[264] != -2 {
		t.Fatalf("scores %v", scores[259:265])
	}
	for key, want := range map[string]int64{"bos_token_id": 1, "eos_token_id": 2, "unknown_token_id": 0} {
		if got, err := f.Int("tokenizer.ggml." + key); err != nil || got != want {
			t.Errorf("%s = %d, %v", key, got, err)
		}
	}
	if f.Has("tokenizer.ggml.padding_token_id") {
		t.Error("pad token written though the config has none")
	}
	if b, _ := f.Bool("tokenizer.ggml.add_bos_token"); !b {
		t.Error("add_bos_token false")
	}
}

func TestHFQwen2ShardedTiedF16(t *testing.T) {
	dir := t.TempDir()
	src := llamaFolder(t, dir, "Qwen2ForCausalLM", "F16", 262, true, 3)
	vocab, merges := byteLevelVocab()
	vocab["<|endoftext|>"] = len(vocab)
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"added_tokens":  []map[string]any{{"id": 259, "content": "<|endoftext|>", "special": true}},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwen2Regex}}, map[string]any{"type": "ByteLevel", "use_regex": false}}},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
	})
	writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "bos_token": nil})
	m := convertAndLoad(t, dir, Options{})
	if m.Config.Arch != model.ArchQwen2 || m.Config.RopeType != model.RopeNeox || m.Weights.Output != nil {
		t.Fatalf("config %+v, output %v", m.Config, m.Weights.Output != nil)
	}
	l := m.Weights.Layers[1]
	if l[model.WQ].Type != model.TypeF16 || l[model.BQ].Type != model.TypeF32 || l[model.AttnNorm].Type != model.TypeF32 {
		t.Fatalf("types %s %s %s", l[model.WQ].Type, l[model.BQ].Type, l[model.AttnNorm].Type)
	}
	// NEOX keeps Hugging Face's rotate-half layout: no permutation.
	sameValues(t, "q", values(t, l[model.WQ]), src["model.layers.1.self_attn.q_proj.weight"].x)
	sameValues(t, "k bias", values(t, l[model.BK]), src["model.layers.1.self_attn.k_proj.bias"].x)
	f := m.File
	if s, _ := f.String("tokenizer.ggml.pre"); s != "qwen2" {
		t.Errorf("pre %q", s)
	}
	if ft, _ := f.Int("general.file_type"); ft != 1 {
		t.Errorf("file_type %d", ft)
	}
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	m2, _ := f.Strings("tokenizer.ggml.merges")
	if types[259] != tokenizer.TypeControl || len(m2) != 3 || m2[2] != "Ġt he" {
		t.Errorf("type %d, merges %q", types[259], m2)
	}
	if eos, _ := f.Int("tokenizer.ggml.eos_token_id"); eos != 259 {
		t.Errorf("eos %d", eos)
	}
	if f.Has("tokenizer.ggml.bos_token_id") == false {
		// config.json's bos_token_id 1 fills the gap tokenizer_config leaves.
		t.Error("no bos id")
	}
	if b, _ := f.Bool("tokenizer.ggml.add_bos_token"); b {
		t.Error("add_bos_token true for a byte-level BPE")
	}
	// --type q8_0 quantizes the matrices whose rows are whole blocks.
	q := convertAndLoad(t, dir, Options{Type: "q8_0"})
	ql := q.Weights.Layers[0]
	if ql[model.WQ].Type != model.TypeQ8_0 || ql[model.FFNDown].Type != model.TypeQ8_0 || ql[model.BQ].Type != model.TypeF32 {
		t.Fatalf("q8_0 types %s %s %s", ql[model.WQ].Type, ql[model.FFNDown].Type, ql[model.BQ].Type)
	}
	if ft, _ := q.File.Int("general.file_type"); ft != 7 {
		t.Errorf("file_type %d", ft)
	}
}

func gpt2Folder(t *testing.T, dir, dtype string, prefix string) map[string]hfTensor {
	t.Helper()
	vocab, merges := byteLevelVocab()
	vocab["<|endoftext|>"] = len(vocab)
	rng := rand.New(rand.NewPCG(3, 4))
	nv := int64(len(vocab))
	var ts []hfTensor
	add := func(name string, shape ...int64) { ts = append(ts, randTensor(rng, prefix+name, dtype, shape...)) }
	add("wte.weight", nv, tE)
	add("wpe.weight", tCtx, tE)
	for l := 0; l < tL; l++ {
		p := fmt.Sprintf("h.%d.", l)
		add(p+"ln_1.weight", tE)
		add(p+"ln_1.bias", tE)
		add(p+"attn.c_attn.weight", tE, 3*tE)
		add(p+"attn.c_attn.bias", 3*tE)
		add(p+"attn.c_proj.weight", tE, tE)
		add(p+"attn.c_proj.bias", tE)
		add(p+"ln_2.weight", tE)
		add(p+"ln_2.bias", tE)
		add(p+"mlp.c_fc.weight", tE, 4*tE)
		add(p+"mlp.c_fc.bias", 4*tE)
		add(p+"mlp.c_proj.weight", 4*tE, tE)
		add(p+"mlp.c_proj.bias", tE)
		add(p+"attn.bias", 1, 1, tCtx, tCtx) // the causal mask buffer of old checkpoints
	}
	add("ln_f.weight", tE)
	add("ln_f.bias", tE)
	writeSafetensors(t, filepath.Join(dir, "model.safetensors"), ts)
	writeJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"GPT2LMHeadModel"}, "n_embd": tE, "n_layer": tL, "n_head": tH, "n_positions": tCtx,
		"n_inner": nil, "vocab_size": nv, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
		"bos_token_id": nv - 1, "eos_token_id": nv - 1,
	})
	vj := "{"
	first := true
	for tok, id := range vocab {
		if !first {
			vj += ","
		}
		first = false
		vj += fmt.Sprintf("%q:%d", tok, id)
	}
	vj += "}"
	os.WriteFile(filepath.Join(dir, "vocab.json"), []byte(vj), 0o644)
	os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"+strings.Join(merges, "\n")+"\n"), 0o644)
	out := map[string]hfTensor{}
	for _, x := range ts {
		out[strings.TrimPrefix(x.name, prefix)] = x
	}
	return out
}

func TestHFGPT2(t *testing.T) {
	for _, prefix := range []string{"", "transformer."} {
		dir := t.TempDir()
		src := gpt2Folder(t, dir, "BF16", prefix)
		m := convertAndLoad(t, dir, Options{Type: "f32"})
		c := m.Config
		if c.Arch != model.ArchGPT2 || c.NFF != 4*tE || c.NCtxTrain != tCtx || c.NVocab != 260 || m.Weights.Output != nil || c.NormEps != 1e-5 {
			t.Fatalf("config %+v", c)
		}
		// Conv1D (in, out) becomes (out, in): GGUF row o, column i is HF [i][o].
		for _, k := range []struct {
			role    model.LayerRole
			hf      string
			in, out int
		}{{model.WQKV, "h.1.attn.c_attn.weight", tE, 3 * tE}, {model.FFNDown, "h.0.mlp.c_proj.weight", 4 * tE, tE}} {
			tn := m.Weights.Layers[0][k.role]
			if k.role == model.WQKV {
				tn = m.Weights.Layers[1][k.role]
			}
			got := values(t, tn)
			hf := src[k.hf].x
			if tn.Type != model.TypeF32 {
				t.Fatalf("type %s", tn.Type)
			}
			for o := 0; o < k.out; o++ {
				for i := 0; i < k.in; i++ {
					if got[o*k.in+i] != hf[i*k.out+o] {
						t.Fatalf("%s [%d][%d] not transposed", k.hf, o, i)
					}
				}
			}
		}
		sameValues(t, "pos", values(t, m.Weights.PosEmbd), src["wpe.weight"].x)
		sameValues(t, "ln_f.bias", values(t, m.Weights.OutputNormB), src["ln_f.bias"].x)
		f := m.File
		if s, _ := f.String("tokenizer.ggml.pre"); s != "gpt-2" {
			t.Errorf("pre %q", s)
		}
		types, _ := f.Int32s("tokenizer.ggml.token_type")
		if eos, _ := f.Int("tokenizer.ggml.eos_token_id"); eos != 259 || types[259] != tokenizer.TypeControl {
			t.Errorf("eos %d type %d", eos, types[259])
		}
		if m2, _ := f.Strings("tokenizer.ggml.merges"); len(m2) != 3 || m2[0] != "Ġ t" {
			t.Errorf("merges %q", m2)
		}
	}
}

func TestHFVocabOnly(t *testing.T) {
	dir := t.TempDir()
	llamaFolder(t, dir, "LlamaForCausalLM", "F32", 300, false, 1)
	spmBPETokenizer(t, dir)
	out := filepath.Join(t.TempDir(), "v.gguf")
	f := hfVocabOnly(t, dir, out)
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	if len(f.Tensors) != 0 || len(toks) != 300 || !f.Has("llama.block_count") {
		t.Fatalf("%d tensors, %d tokens", len(f.Tensors), len(toks))
	}
	if _, err := model.FromGGUF(f); err == nil || !strings.Contains(err.Error(), "vocabulary-only") {
		t.Fatalf("got %v", err)
	}
	// Without config.json (and without weights) the tokenizer alone converts.
	os.Remove(filepath.Join(dir, "config.json"))
	os.Remove(filepath.Join(dir, "model.safetensors"))
	g := hfVocabOnly(t, dir, out)
	toks, _ = g.Strings("tokenizer.ggml.tokens")
	if a, _ := g.String("general.architecture"); a != "llama" || len(toks) != 265 {
		t.Fatalf("arch %q, %d tokens", a, len(toks))
	}
}

// A folder holding only Llama-2's tokenizer.model converts with
// --vocab-only (the reader's values are checked in package tokenizer).
func TestSentencePieceLlama2(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "tokenizers", "llama2", "tokenizer.model")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("the Llama-2 tokenizer is not at %s (../shared is only present in the workshop): %v", path, err)
	}
	dir := t.TempDir()
	b, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(dir, "tokenizer.model"), b, 0o644)
	f := hfVocabOnly(t, dir, filepath.Join(dir, "v.gguf"))
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	if m, _ := f.String("tokenizer.ggml.model"); m != "llama" || len(toks) != 32000 || toks[29871] != "▁" {
		t.Fatalf("model %q, %d tokens", m, len(toks))
	}
}

func TestHFErrors(t *testing.T) {
	type setup func(t *testing.T, dir string)
	base := func(t *testing.T, dir string) {
		llamaFolder(t, dir, "LlamaForCausalLM", "F32", 300, false, 1)
		spmBPETokenizer(t, dir)
	}
	editConfig := func(key string, val any) setup {
		return func(t *testing.T, dir string) {
			base(t, dir)
			var cfg map[string]any
			b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			jsonUnmarshal(t, b, &cfg)
			if val == nil {
				delete(cfg, key)
			} else {
				cfg[key] = val
			}
			writeJSON(t, filepath.Join(dir, "config.json"), cfg)
		}
	}
	replaceTensors := func(edit func(ts []hfTensor) []hfTensor) setup {
		return func(t *testing.T, dir string) {
			src := llamaFolder(t, dir, "LlamaForCausalLM", "F32", 300, false, 1)
			spmBPETokenizer(t, dir)
			var ts []hfTensor
			for _, x := range src {
				ts = append(ts, x)
			}
			writeSafetensors(t, filepath.Join(dir, "model.safetensors"), edit(ts))
		}
	}
	cases := []struct {
		name string
		make setup
		want string
	}{
		{"unsupported architecture", editConfig("architectures", []string{"MambaForCausalLM"}), `unsupported architecture "MambaForCausalLM" (lmscore converts GPT2LMHeadModel, GPTNeoXForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM, Olmo2ForCausalLM, Phi3ForCausalLM, Qwen2ForCausalLM, Qwen2MoeForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM)`},
		{"missing hidden size", editConfig("hidden_size", nil), `config.json: missing "hidden_size"`},
		{"rope scaling", editConfig("rope_scaling", map[string]any{"type": "dynamic", "factor": 2}), `rope_scaling.type "dynamic" is not supported (lmscore converts "default", "linear", "llama3" (Llama 3.1, 3.2, 3.3) and "longrope" (Phi-3))`},
		{"activation", editConfig("hidden_act", "gelu"), `hidden_act "gelu" is not supported for LlamaForCausalLM (want ["silu" "swish"])`},
		{"rope parameters", editConfig("rope_parameters", map[string]any{"rope_type": "yarn", "factor": 4}), `rope_parameters.rope_type "yarn" is not supported (lmscore converts "default", "linear", "llama3"`},
		{"llama3 without factor", editConfig("rope_scaling", map[string]any{"rope_type": "llama3", "low_freq_factor": 1, "high_freq_factor": 4,
			"original_max_position_embeddings": 8192}), `rope_scaling is llama3 but has no "factor"`},
		{"llama3 bands", editConfig("rope_parameters", map[string]any{"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 4,
			"original_max_position_embeddings": 8192}), `rope_parameters: llama3 RoPE low_freq_factor 4 is not below high_freq_factor 4`},
		{"rope scaling not an object", editConfig("rope_scaling", "llama3"), `rope_scaling "llama3" is not an object of RoPE parameters`},
		{"sliding layers", editConfig("layer_types", []string{"full_attention", "sliding_attention"}), `layer_types[1] is "sliding_attention"`},
		{"no lm_head", replaceTensors(func(ts []hfTensor) []hfTensor {
			var out []hfTensor
			for _, x := range ts {
				if x.name != "lm_head.weight" {
					out = append(out, x)
				}
			}
			return out
		}), "no lm_head.weight, and config.json does not tie the output to the embedding"},
		{"bad heads", editConfig("num_key_value_heads", 3), "n_head 4 is not a multiple of n_head_kv 3"},
		{"tokenizer larger than model", editConfig("vocab_size", 200), "the tokenizer has 265 tokens but the model's vocabulary is 200"},
		{"no config", func(t *testing.T, dir string) { base(t, dir); os.Remove(filepath.Join(dir, "config.json")) }, "config.json: no such file"},
		{"no weights", func(t *testing.T, dir string) { base(t, dir); os.Remove(filepath.Join(dir, "model.safetensors")) }, "no *.safetensors files (PyTorch .bin checkpoints are not supported)"},
		{"no tokenizer", func(t *testing.T, dir string) {
			base(t, dir)
			os.Remove(filepath.Join(dir, "tokenizer.json"))
		}, "no tokenizer (want tokenizer.json, vocab.json and merges.txt, or tokenizer.model)"},
		{"unigram tokenizer", func(t *testing.T, dir string) {
			base(t, dir)
			writeJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{"model": map[string]any{"type": "Unigram", "vocab": [][]any{{"a", -1.0}}}})
		}, `tokenizer model type "Unigram" is not supported (BPE only)`},
		{"missing tensor", replaceTensors(func(ts []hfTensor) []hfTensor {
			var out []hfTensor
			for _, x := range ts {
				if x.name != "model.layers.1.mlp.up_proj.weight" {
					out = append(out, x)
				}
			}
			return out
		}), "missing the tensor that becomes blk.1.ffn_up.weight"},
		{"unknown tensor", replaceTensors(func(ts []hfTensor) []hfTensor {
			return append(ts, hfTensor{name: "model.layers.0.self_attn.q_norm.weight", dtype: "F32", shape: []int64{16}, x: make([]float32, 16)})
		}), `tensor "model.layers.0.self_attn.q_norm.weight" has no place in a llama model`},
		{"extra layer", replaceTensors(func(ts []hfTensor) []hfTensor {
			return append(ts, hfTensor{name: "model.layers.2.input_layernorm.weight", dtype: "F32", shape: []int64{tE}, x: make([]float32, tE)})
		}), `tensor "model.layers.2.input_layernorm.weight" has no place in a llama model with 2 layers`},
		{"wrong shape", replaceTensors(func(ts []hfTensor) []hfTensor {
			for i := range ts {
				if ts[i].name == "model.layers.0.self_attn.k_proj.weight" {
					ts[i].shape = []int64{tE, tKV * tHD}
				}
			}
			return ts
		}), `tensor "model.layers.0.self_attn.k_proj.weight" has shape [64 32], want [32 64] for blk.0.attn_k.weight`},
		{"bad dtype", func(t *testing.T, dir string) {
			base(t, dir)
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"dtype":"F32","shape":[64]`, `"dtype":"I32","shape":[64]`, 1)), 0o644)
		}, `has dtype I32; lmscore converts F32, F16 and BF16`},
		{"corrupt safetensors", func(t *testing.T, dir string) {
			base(t, dir)
			os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("\xff\xff\xff\xff\xff\xff\xff\x7fjunk"), 0o644)
		}, "model.safetensors: header length 9223372036854775807 is impossible in a file of 12 bytes"},
		{"safetensors offsets", func(t *testing.T, dir string) {
			base(t, dir)
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-4], 0o644)
		}, "outside the"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.make(t, dir)
			err := HF(dir, filepath.Join(t.TempDir(), "o.gguf"), Options{})
			if c.want == "" {
				if err == nil {
					t.Fatal("converted")
				}
				t.Log(err)
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant %q", err, c.want)
			}
		})
	}
	if err := HF(t.TempDir(), "x", Options{Type: "q4_k"}); err == nil || !strings.Contains(err.Error(), `unknown tensor type "q4_k"`) {
		t.Errorf("got %v", err)
	}
}

// transformers 5 writes rope_theta inside rope_parameters.
func TestHFRopeParameters(t *testing.T) {
	dir := t.TempDir()
	llamaFolder(t, dir, "Qwen2ForCausalLM", "F32", 300, true, 1)
	spmBPETokenizer(t, dir)
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	jsonUnmarshal(t, b, &cfg)
	delete(cfg, "rope_theta")
	cfg["rope_parameters"] = map[string]any{"rope_theta": 1e6, "rope_type": "default"}
	cfg["layer_types"] = []string{"full_attention", "full_attention"}
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	m := convertAndLoad(t, dir, Options{})
	if m.Config.RopeFreqBase != 1e6 {
		t.Fatalf("rope base %v", m.Config.RopeFreqBase)
	}
}
