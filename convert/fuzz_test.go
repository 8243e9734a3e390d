package convert

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// FuzzHFConfig: any config.json reads to a model configuration or an
// error, never a panic, and an accepted one has positive dimensions.
func FuzzHFConfig(f *testing.F) {
	for _, s := range []string{
		`{"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
		  "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
		  "max_position_embeddings": 128, "vocab_size": 300, "tie_word_embeddings": true, "hidden_act": "silu",
		  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
		  "original_max_position_embeddings": 64}, "bos_token_id": [1, 2], "eos_token_id": null}`,
		`{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
		  "num_attention_heads": 4, "num_key_value_heads": 0, "rms_norm_eps": 1e-6, "max_position_embeddings": 128, "vocab_size": 300}`,
		`{"architectures": ["GPT2LMHeadModel"], "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128,
		  "vocab_size": 300, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}`,
		`{"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 0}`,
		`{"architectures": []}`, `[]`, `{"rms_norm_eps": "NaN"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		hc, err := readHFConfig(path)
		if err != nil {
			return
		}
		cfg, err := hc.modelConfig(path)
		if err != nil {
			return
		}
		a, _ := hc.arch(path)
		hc.tied(a)
		tokenizerHints(hc, a)
		if cfg.NEmbd <= 0 || cfg.NLayer <= 0 || cfg.NHead <= 0 || cfg.NHeadKV <= 0 || cfg.NVocab <= 0 || cfg.NCtxTrain <= 0 {
			t.Fatalf("accepted a config with a dimension that is not positive: %+v", cfg)
		}
		if cfg.NEmbd%cfg.NHead != 0 || cfg.NHead%cfg.NHeadKV != 0 {
			t.Fatalf("accepted heads that do not divide: %+v", cfg)
		}
	})
}

// FuzzSafetensors: any file opens to tensors inside it or an error, never a
// panic, and every accepted tensor reads back its declared bytes.
func FuzzSafetensors(f *testing.F) {
	st := func(header string, data int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
		return append(append(b, header...), make([]byte, data)...)
	}
	f.Add(st(`{"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
		"b": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]}}`, 32))
	f.Add(st(`{"a": {"dtype": "F16", "shape": [9223372036854775807, 2], "data_offsets": [0, 4]}}`, 4))
	f.Add(st(`{"a": {"dtype": "I8", "shape": [], "data_offsets": [0, 1]}}`, 1))
	f.Add(st(`{"a": {"dtype": "X", "shape": [1], "data_offsets": [-1, 1]}}`, 1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "model.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sf, tensors, err := openSafetensors(path)
		if err != nil {
			return
		}
		defer sf.f.Close()
		for _, ts := range tensors {
			if ts.begin < 8 || ts.end < ts.begin || ts.end > int64(len(data)) {
				t.Fatalf("tensor %q spans [%d, %d) of a %d-byte file", ts.name, ts.begin, ts.end, len(data))
			}
			b, err := ts.read()
			if err != nil || int64(len(b)) != ts.end-ts.begin {
				t.Fatalf("tensor %q: read %d bytes, %v; want %d", ts.name, len(b), err, ts.end-ts.begin)
			}
		}
	})
}
