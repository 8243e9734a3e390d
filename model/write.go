package model

import (
	"fmt"

	"github.com/lmscore/lmscore/gguf"
)

// llama.cpp's llama_ftype values for general.file_type, which llama.cpp
// only displays.
var fileTypes = map[TensorType]uint32{TypeF32: 0, TypeF16: 1, TypeQ8_0: 7, TypeBF16: 32}

// NewGGUFWriter returns a Writer holding cfg as llama.cpp's metadata keys
// and w's tensors under llama.cpp's names. Add a tokenizer (tokenizer.ggml.*
// keys) before writing if llama.cpp is to load the file; lmscore itself
// scores token ids and does not need one. The tensor data is referenced, not
// copied.
func NewGGUFWriter(cfg Config, w *Weights) (*gguf.Writer, error) {
	if err := w.Check(cfg); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	gw := gguf.NewWriter()
	arch := cfg.Arch.String()
	p := arch + "."
	gw.Set("general.architecture", arch)
	gw.Set(p+"vocab_size", uint32(cfg.NVocab))
	gw.Set(p+"context_length", uint32(cfg.NCtxTrain))
	gw.Set(p+"embedding_length", uint32(cfg.NEmbd))
	gw.Set(p+"block_count", uint32(cfg.NLayer))
	gw.Set(p+"feed_forward_length", uint32(cfg.NFF))
	gw.Set(p+"attention.head_count", uint32(cfg.NHead))
	gw.Set(p+"attention.head_count_kv", uint32(cfg.NHeadKV))
	if cfg.Arch == ArchGPT2 {
		gw.Set(p+"attention.layer_norm_epsilon", cfg.NormEps)
	} else {
		gw.Set(p+"rope.dimension_count", uint32(cfg.HeadDim()))
		gw.Set(p+"rope.freq_base", cfg.RopeFreqBase)
		gw.Set(p+"attention.layer_norm_rms_epsilon", cfg.NormEps)
	}
	count := map[TensorType]int{}
	hasQ8 := false
	for _, s := range specs(cfg, w) {
		if t := *s.slot; t != nil {
			if t.Shape[1] > 1 {
				count[t.Type]++
			}
			hasQ8 = hasQ8 || t.Type == TypeQ8_0
			gw.AddTensor(s.name, gguf.TensorType(t.Type), dimsOf(t.Shape), t.Data)
		}
	}
	main := TypeF32
	for _, t := range []TensorType{TypeF16, TypeBF16, TypeQ8_0} {
		if count[t] > count[main] {
			main = t
		}
	}
	gw.Set("general.file_type", fileTypes[main])
	if hasQ8 {
		gw.Set("general.quantization_version", uint32(2))
	}
	if err := gw.Err(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return gw, nil
}

// WriteGGUF writes a model file for cfg and w; extra metadata (general.name,
// a tokenizer) follows the architecture's keys in the order given.
func WriteGGUF(path string, cfg Config, w *Weights, extra ...gguf.KV) error {
	gw, err := NewGGUFWriter(cfg, w)
	if err != nil {
		return err
	}
	for _, kv := range extra {
		gw.Set(kv.Key, kv.Value)
	}
	if toks, ok := tokenCount(extra); ok && toks != cfg.NVocab {
		return fmt.Errorf("model: writing %s: the tokenizer has %d tokens, the model %d", path, toks, cfg.NVocab)
	}
	return gw.WriteFile(path)
}

func tokenCount(kvs []gguf.KV) (int, bool) {
	for _, kv := range kvs {
		if kv.Key == "tokenizer.ggml.tokens" {
			return kv.Value.Len(), true
		}
	}
	return 0, false
}
