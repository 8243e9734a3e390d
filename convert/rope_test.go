package convert

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lmscore/lmscore/model"
)

// llama31Folder writes a tied (Llama 3.2-style) llama checkpoint whose
// config.json gives llama3 RoPE scaling in one of the ways transformers
// writes it: "t4" (rope_theta and rope_scaling with rope_type), "t4-type"
// (rope_scaling's older "type" key) or "t5" (rope_parameters only). The
// folder is dir/llama31, so that general.name is the same for every style.
func llama31Folder(t *testing.T, dir, style string) string {
	t.Helper()
	dir = filepath.Join(dir, "llama31")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	llamaFolder(t, dir, "LlamaForCausalLM", "BF16", 300, true, 1)
	spmBPETokenizer(t, dir)
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	jsonUnmarshal(t, b, &cfg)
	scaling := map[string]any{"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
	switch style {
	case "t4":
		scaling["rope_type"] = "llama3"
		cfg["rope_scaling"] = scaling
	case "t4-type":
		scaling["type"] = "llama3"
		cfg["rope_scaling"] = scaling
	case "t5":
		scaling["rope_type"] = "llama3"
		scaling["rope_theta"] = cfg["rope_theta"]
		delete(cfg, "rope_theta")
		delete(cfg, "rope_scaling")
		cfg["rope_parameters"] = scaling
	default:
		t.Fatalf("style %q", style)
	}
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	return dir
}

// Every config style converts to the same bytes, with rope_freqs.weight
// made as llama.cpp makes it and no other key than a plain llama has.
func TestHFLlama3RopeScaling(t *testing.T) {
	var first []byte
	for _, style := range []string{"t4", "t4-type", "t5"} {
		dir := llama31Folder(t, t.TempDir(), style)
		out := filepath.Join(t.TempDir(), "out.gguf")
		if err := HF(dir, out, Options{}); err != nil {
			t.Fatalf("%s: %v", style, err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
		} else if !bytes.Equal(first, got) {
			t.Errorf("%s: %d bytes differ from t4's %d", style, len(got), len(first))
		}
	}

	m := convertAndLoad(t, llama31Folder(t, t.TempDir(), "t5"), Options{})
	if m.Weights.Output != nil {
		t.Error("tied checkpoint has output.weight")
	}
	if m.Config.RopeFreqBase != 500000 {
		t.Errorf("rope base %v", m.Config.RopeFreqBase)
	}
	if m.File.Tensors[0].Name != model.NameRopeFreqs {
		t.Errorf("first tensor %q, want %q as llama.cpp writes it", m.File.Tensors[0].Name, model.NameRopeFreqs)
	}
	for _, kv := range m.File.KV {
		if bytes.Contains([]byte(kv.Key), []byte("scaling")) {
			t.Errorf("key %s: llama.cpp writes no scaling keys for llama3", kv.Key)
		}
	}
	rf := m.Weights.RopeFreqs
	if rf == nil || rf.Type != model.TypeF32 || rf.Shape != [2]int64{tHD / 2, 1} {
		t.Fatalf("rope_freqs.weight %+v", rf)
	}
	ff := values(t, rf)
	// head_dim 16, base 500000: pair i has wavelength 2π·500000^(i/8) =
	// 6.28, 32.6, 169, ...; original context 64 puts the bands at 64/4 = 16
	// and 64/1 = 64: pair 0 keeps its speed, pair 1 is smoothed, the rest
	// slow down 8 times.
	wavelen1 := 2 * math.Pi * math.Pow(500000, 2.0/16)
	s := (64/wavelen1 - 1) / (4 - 1)
	smooth := 1 / ((1-s)/8 + s)
	if ff[0] != 1 || math.Abs(float64(ff[1])-smooth) > 1e-6*smooth {
		t.Errorf("factors %v: want 1, %.7g, then 8", ff, smooth)
	}
	for i := 2; i < len(ff); i++ {
		if ff[i] != 8 {
			t.Errorf("factor %d is %v, want 8", i, ff[i])
		}
	}
}

// A qwen2 checkpoint with llama3 scaling is refused: llama.cpp's qwen2
// graph ignores rope_freqs.weight.
func TestHFLlama3RopeScalingQwen2(t *testing.T) {
	dir := t.TempDir()
	llamaFolder(t, dir, "Qwen2ForCausalLM", "F32", 300, true, 1)
	spmBPETokenizer(t, dir)
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	jsonUnmarshal(t, b, &cfg)
	cfg["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
		"original_max_position_embeddings": 64}
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	err := HF(dir, filepath.Join(t.TempDir(), "out.gguf"), Options{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`rope_scaling.rope_type "llama3" is supported for LlamaForCausalLM only`)) {
		t.Fatalf("got %v", err)
	}
}
