package model

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/gguf"
)

func testConfig(arch Arch) Config {
	c := Config{Arch: arch, NVocab: 96, NEmbd: 64, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 80,
		NCtxTrain: 48, RopeType: families[arch].rope, RopeFreqBase: 10000, NormEps: 1e-5}
	if arch == ArchGPT2 {
		c.NHeadKV, c.RopeFreqBase = 4, 0
	}
	if arch == ArchQwen3 {
		c.NEmbdHead = 32 // n_head·head_dim 128 ≠ n_embd 64, as Qwen3-0.6B's
	}
	return c
}

func fakeTokenizer(n int) []gguf.KV {
	toks := make([]string, n)
	types := make([]int32, n)
	for i := range toks {
		toks[i] = fmt.Sprintf("t%d", i)
		types[i] = 1
	}
	v := func(x any) gguf.Value { val, _ := gguf.ValueOf(x); return val }
	return []gguf.KV{
		{Key: "general.name", Value: v("test")},
		{Key: "tokenizer.ggml.model", Value: v("gpt2")},
		{Key: "tokenizer.ggml.tokens", Value: v(toks)},
		{Key: "tokenizer.ggml.token_type", Value: v(types)},
		{Key: "tokenizer.ggml.bos_token_id", Value: v(uint32(1))},
	}
}

// Write -> read -> write gives identical bytes for every architecture and
// tensor type, and reading gives back the config and the weights.
func TestWriteReadWriteIsByteIdentical(t *testing.T) {
	dir := t.TempDir()
	for _, arch := range []Arch{ArchLlama, ArchQwen2, ArchGPT2, ArchQwen3} {
		for _, typ := range []TensorType{TypeF32, TypeF16, TypeBF16, TypeQ8_0} {
			t.Run(arch.String()+"/"+typ.String(), func(t *testing.T) {
				cfg := testConfig(arch)
				w, err := RandomWeights(cfg, 7, typ)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, arch.String()+typ.String()+".gguf")
				if err := WriteGGUF(path, cfg, w, fakeTokenizer(cfg.NVocab)...); err != nil {
					t.Fatal(err)
				}
				m, err := Load(path)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				if !reflect.DeepEqual(m.Config, cfg) {
					t.Fatalf("config %+v, want %+v", m.Config, cfg)
				}
				checkSameWeights(t, cfg, w, &m.Weights)
				if n := countType(&m.Weights, typ); n == 0 {
					t.Fatalf("no tensor of type %s", typ)
				}
				gw, err := NewGGUFWriter(m.Config, &m.Weights)
				if err != nil {
					t.Fatal(err)
				}
				for _, kv := range m.File.KV {
					gw.Set(kv.Key, kv.Value)
				}
				var again bytes.Buffer
				if _, err := gw.WriteTo(&again); err != nil {
					t.Fatal(err)
				}
				first, _ := os.ReadFile(path)
				if !bytes.Equal(first, again.Bytes()) {
					t.Fatalf("rewrite differs: %d vs %d bytes", len(first), again.Len())
				}
			})
		}
	}
}

func checkSameWeights(t *testing.T, cfg Config, a, b *Weights) {
	t.Helper()
	sa, sb := specs(cfg, a), specs(cfg, b)
	for i := range sa {
		x, y := *sa[i].slot, *sb[i].slot
		if (x == nil) != (y == nil) {
			t.Fatalf("%s: present %v vs %v", sa[i].name, x != nil, y != nil)
		}
		if x != nil && (x.Type != y.Type || x.Shape != y.Shape || !bytes.Equal(x.Data, y.Data) || y.Name != sa[i].name) {
			t.Fatalf("%s differs", sa[i].name)
		}
	}
}

func countType(w *Weights, typ TensorType) int {
	n := 0
	for _, l := range w.Layers {
		for _, t := range l {
			if t != nil && t.Type == typ {
				n++
			}
		}
	}
	return n
}

func TestRandomWeightsTypes(t *testing.T) {
	cfg := testConfig(ArchLlama)
	cfg.NFF = 72 // ffn_down rows of 72 are not whole Q8_0 blocks
	w, err := RandomWeights(cfg, 1, TypeQ8_0)
	if err != nil {
		t.Fatal(err)
	}
	l := w.Layers[0]
	if l[WQ].Type != TypeQ8_0 || l[FFNDown].Type != TypeF16 || l[AttnNorm].Type != TypeF32 {
		t.Errorf("types %s %s %s", l[WQ].Type, l[FFNDown].Type, l[AttnNorm].Type)
	}
	again, _ := RandomWeights(cfg, 1, TypeQ8_0)
	if !bytes.Equal(again.Layers[1][WV].Data, w.Layers[1][WV].Data) {
		t.Error("same seed, different weights")
	}
	other, _ := RandomWeights(cfg, 2, TypeQ8_0)
	if bytes.Equal(other.Layers[1][WV].Data, w.Layers[1][WV].Data) {
		t.Error("different seeds, same weights")
	}
	conv, err := w.Convert(TypeBF16)
	if err != nil {
		t.Fatal(err)
	}
	if conv.Layers[0][WQ].Type != TypeBF16 || conv.Layers[0][FFNDown].Type != TypeBF16 || conv.OutputNorm.Type != TypeF32 {
		t.Error("Convert chose the wrong types")
	}
	if err := conv.Check(cfg); err != nil {
		t.Error(err)
	}
}

// writeRaw writes a model file whose weights or metadata were tampered with
// through edit, bypassing the checks of NewGGUFWriter.
func writeRaw(t *testing.T, arch Arch, edit func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer) string {
	t.Helper()
	cfg := testConfig(arch)
	w, err := RandomWeights(cfg, 3, TypeF32)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := NewGGUFWriter(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	gw = edit(gw, cfg, w)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := gw.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// rebuild makes a Writer with the same metadata and the tensors keep allows,
// plus any added ones.
func rebuild(cfg Config, w *Weights, meta func(gw *gguf.Writer), keep func(name string) bool, add func(gw *gguf.Writer)) *gguf.Writer {
	gw := gguf.NewWriter()
	src, _ := NewGGUFWriter(cfg, w)
	var buf bytes.Buffer
	src.WriteTo(&buf)
	f, _ := gguf.ParseBytes(buf.Bytes(), "src")
	for _, kv := range f.KV {
		gw.Set(kv.Key, kv.Value)
	}
	if meta != nil {
		meta(gw)
	}
	for _, ti := range f.Tensors {
		if keep == nil || keep(ti.Name) {
			d, _ := f.TensorData(ti.Name)
			gw.AddTensor(ti.Name, ti.Type, ti.Dims, d)
		}
	}
	if add != nil {
		add(gw)
	}
	return gw
}

func TestLoadErrors(t *testing.T) {
	all := func(string) bool { return true }
	cases := []struct {
		name string
		arch Arch
		edit func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer
		want string
	}{
		{"unsupported architecture", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("general.architecture", "mamba")
			return gw
		}, `unsupported architecture "mamba" (lmscore supports gemma2, gemma3, gpt2, gptneox, llama, olmo2, phi3, qwen2, qwen2moe, qwen3, qwen3moe)`},
		{"no architecture", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Delete("general.architecture")
			return gw
		}, `key "general.architecture": key not found`},
		{"missing key", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Delete("llama.attention.layer_norm_rms_epsilon")
			return gw
		}, `key "llama.attention.layer_norm_rms_epsilon": key not found`},
		{"key of wrong type", ArchQwen2, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("qwen2.block_count", "two")
			return gw
		}, `key "qwen2.block_count" is string, want an integer`},
		{"zero heads", ArchGPT2, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("gpt2.attention.head_count", uint32(0))
			return gw
		}, `gpt2.attention.head_count is 0, want 1 to 2147483647`},
		{"heads do not divide", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("llama.attention.head_count_kv", uint32(3))
			return gw
		}, `n_head 4 is not a multiple of n_head_kv 3`},
		{"rope scaling", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("llama.rope.scaling.type", "yarn")
			return gw
		}, `llama.rope.scaling.type is "yarn"; lmscore supports "linear" and "none"`},
		// Partial rotary is a feature of other families (NRot); llama.cpp
		// refuses it for llama.
		{"partial rotary", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("llama.rope.dimension_count", uint32(8))
			return gw
		}, `llama.rope.dimension_count is 8 but the head width is 16; llama.cpp rotates whole heads for llama`},
		{"keys and values of different widths", ArchQwen3, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("qwen3.attention.value_length", uint32(16))
			return gw
		}, `qwen3.attention.value_length is 16 but the key width is 32`},
		{"gpt2 head width", ArchGPT2, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("gpt2.attention.key_length", uint32(32))
			return gw
		}, `gpt2 has no head width of its own: head_dim 32 × n_head 4 differs from n_embd 64`},
		{"missing q norm", ArchQwen3, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != "blk.1.attn_q_norm.weight" }, nil)
		}, `missing tensor "blk.1.attn_q_norm.weight" (qwen3 needs it)`},
		{"q norm of n_embd/n_head", ArchQwen3, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != "blk.0.attn_k_norm.weight" }, func(gw *gguf.Writer) {
				gw.AddTensor("blk.0.attn_k_norm.weight", gguf.TensorF32, []int64{16}, make([]byte, 16*4))
			})
		}, `tensor "blk.0.attn_k_norm.weight" has shape [16], want [32] (head_dim)`},
		{"vocab size disagrees", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("llama.vocab_size", uint32(100))
			return gw
		}, `llama.vocab_size is 100 but token_embd.weight has 96 rows`},
		{"tokenizer disagrees", ArchGPT2, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			gw.Set("tokenizer.ggml.tokens", []string{"a", "b"})
			return gw
		}, `the tokenizer has 2 tokens but token_embd.weight has 96 rows`},
		{"vocab only", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(string) bool { return false }, nil)
		}, `missing tensor "token_embd.weight" (a vocabulary-only file cannot be scored with)`},
		{"missing tensor", ArchQwen2, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != "blk.1.attn_k.bias" }, nil)
		}, `missing tensor "blk.1.attn_k.bias" (qwen2 needs it)`},
		{"missing position embedding", ArchGPT2, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != NamePosEmbd }, nil)
		}, `missing tensor "position_embd.weight" (gpt2 needs it)`},
		{"unexpected tensor of a role", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, all, func(gw *gguf.Writer) {
				gw.AddTensor("blk.0.attn_q_norm.weight", gguf.TensorF32, []int64{16}, make([]byte, 64))
			})
		}, `unexpected tensor "blk.0.attn_q_norm.weight": llama has no such tensor`},
		{"unknown tensors", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, all, func(gw *gguf.Writer) {
				gw.AddTensor("rope_factors_extra.weight", gguf.TensorF32, []int64{8}, make([]byte, 32))
				gw.AddTensor("blk.2.attn_q.weight", gguf.TensorF32, []int64{1}, make([]byte, 4))
			})
		}, `unexpected tensors for llama with 2 layers: "blk.2.attn_q.weight", "rope_factors_extra.weight"`},
		// Phi-3's LongRoPE factors have no place in a llama.
		{"LongRoPE factors in a llama", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, all, func(gw *gguf.Writer) {
				gw.AddTensor("rope_factors_long.weight", gguf.TensorF32, []int64{8}, make([]byte, 32))
			})
		}, `unexpected tensor "rope_factors_long.weight": llama has no such tensor`},
		{"wrong shape", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != "blk.0.attn_k.weight" }, func(gw *gguf.Writer) {
				gw.AddTensor("blk.0.attn_k.weight", gguf.TensorF32, []int64{64, 64}, make([]byte, 64*64*4))
			})
		}, `tensor "blk.0.attn_k.weight" has shape [64 64], want [64 32] (n_embd × n_head_kv·head_dim)`},
		{"transposed", ArchGPT2, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != "blk.1.attn_qkv.weight" }, func(gw *gguf.Writer) {
				gw.AddTensor("blk.1.attn_qkv.weight", gguf.TensorF32, []int64{192, 64}, make([]byte, 64*192*4))
			})
		}, `tensor "blk.1.attn_qkv.weight" has shape [192 64], want [64 192] (n_embd × (n_head + 2·n_head_kv)·head_dim)`},
		{"unsupported type", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != "blk.1.ffn_up.weight" }, func(gw *gguf.Writer) {
				gw.AddTensor("blk.1.ffn_up.weight", gguf.TensorType(9), []int64{64, 80}, make([]byte, 2*80*40))
			})
		}, `tensor "blk.1.ffn_up.weight" has type Q8_1; lmscore supports F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS`},
		{"infinite scale", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != "blk.1.ffn_up.weight" }, func(gw *gguf.Writer) {
				b := make([]byte, 2*80*18)
				b[18*5+1] = 0x7c // block 5's d = +inf
				gw.AddTensor("blk.1.ffn_up.weight", gguf.TensorType(TypeQ4_0), []int64{64, 80}, b)
			})
		}, `tensor "blk.1.ffn_up.weight": block 5 of Q4_0 has a non-finite scale (fp16 0x7c00 at byte 0)`},
		{"three dimensions", ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
			return rebuild(cfg, w, nil, func(n string) bool { return n != "blk.0.attn_q.weight" }, func(gw *gguf.Writer) {
				gw.AddTensor("blk.0.attn_q.weight", gguf.TensorF32, []int64{64, 32, 2}, make([]byte, 64*64*4))
			})
		}, `tensor "blk.0.attn_q.weight" has shape [64 32 2], want [64 64] (n_embd × n_head·head_dim)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeRaw(t, c.arch, c.edit)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v\nwant it to name %s and contain %q", err, path, c.want)
			}
		})
	}
}

// Trailing unit dimensions, as some converters write them, are accepted.
func TestLoadAcceptsUnitDimensions(t *testing.T) {
	path := writeRaw(t, ArchLlama, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
		return rebuild(cfg, w, nil, func(n string) bool { return n != NameOutputNorm }, func(gw *gguf.Writer) {
			gw.AddTensor(NameOutputNorm, gguf.TensorF32, []int64{64, 1, 1}, make([]byte, 256))
		})
	})
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Weights.OutputNorm.Shape != [2]int64{64, 1} {
		t.Fatalf("shape %v", m.Weights.OutputNorm.Shape)
	}
}

func TestTiedOutput(t *testing.T) {
	cfg := testConfig(ArchLlama)
	w, _ := RandomWeights(cfg, 5, TypeF16)
	w.Output = nil
	path := filepath.Join(t.TempDir(), "tied.gguf")
	if err := WriteGGUF(path, cfg, w); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Weights.Output != nil {
		t.Fatal("tied output loaded as a tensor")
	}
	f, _ := gguf.Open(path)
	defer f.Close()
	// 4 heads, 2 KV heads and 80 FFN columns split 2 ways, not 4 or 8.
	if s := Summarize(f); !s.OutputTied || !s.Loadable || len(s.TensorParallel) != 1 || s.TensorParallel[0] != 2 {
		t.Fatalf("summary %+v", s)
	}
}

func TestWriteRejects(t *testing.T) {
	cfg := testConfig(ArchQwen2)
	w, _ := RandomWeights(cfg, 5, TypeF32)
	dir := t.TempDir()
	bad := *w
	bad.Layers = append([][LayerRoleCount]*Tensor(nil), w.Layers...)
	bad.Layers[1][BK] = nil
	if err := WriteGGUF(filepath.Join(dir, "a.gguf"), cfg, &bad); err == nil || !strings.Contains(err.Error(), `missing tensor "blk.1.attn_k.bias"`) {
		t.Errorf("got %v", err)
	}
	bad.Layers[1][BK] = w.Layers[1][BK]
	bad.Layers[0][WQKV] = w.Layers[0][WQ]
	if err := WriteGGUF(filepath.Join(dir, "b.gguf"), cfg, &bad); err == nil || !strings.Contains(err.Error(), `unexpected tensor "blk.0.attn_qkv.weight"`) {
		t.Errorf("got %v", err)
	}
	if err := WriteGGUF(filepath.Join(dir, "c.gguf"), cfg, w, fakeTokenizer(10)...); err == nil || !strings.Contains(err.Error(), "the tokenizer has 10 tokens, the model 96") {
		t.Errorf("got %v", err)
	}
	cfg.NHead = 5
	if _, err := RandomWeights(cfg, 1, TypeF32); err == nil || !strings.Contains(err.Error(), "n_embd 64 is not a multiple of n_head 5") {
		t.Errorf("got %v", err)
	}
}

// Summarize describes files FromGGUF refuses, and says why.
func TestSummarizeUnloadable(t *testing.T) {
	tok, err := FixtureTokenizer(300)
	if err != nil {
		t.Fatal(err)
	}
	w := gguf.NewWriter()
	w.Set("general.architecture", "mamba")
	w.Set("mamba.block_count", uint32(32))
	for _, kv := range tok {
		w.Set(kv.Key, kv.Value)
	}
	w.AddTensor("token_embd.weight", gguf.TensorType(12), []int64{256, 300}, make([]byte, 300*144))
	path := filepath.Join(t.TempDir(), "p.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := Summarize(f)
	if s.Loadable || !strings.Contains(s.Problem, `unsupported architecture "mamba"`) || s.Architecture != "mamba" ||
		s.NLayer != 32 || s.NVocab != 300 || s.TensorTypes["Q4_K"] != 1 || s.Tokenizer.NTokens != 300 ||
		s.Tokenizer.NByteTypes != 256 || *s.Tokenizer.BOS != 1 || s.RopeType != "unknown" {
		t.Fatalf("summary %+v", s)
	}
	if _, err := FixtureTokenizer(10); err == nil {
		t.Error("a 10-token fixture tokenizer was accepted")
	}
}
