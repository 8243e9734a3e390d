package model

import (
	"fmt"

	"github.com/lmscore/lmscore/gguf"
)

// llama.cpp's llama_ftype values for general.file_type, which llama.cpp
// only displays: the one lmscore writes for a file of mostly this type (the
// K-quants as their _M mixes).
var fileTypes = map[TensorType]uint32{TypeF32: 0, TypeF16: 1, TypeQ4_0: 2, TypeQ4_1: 3, TypeQ8_0: 7, TypeQ5_0: 8,
	TypeQ5_1: 9, TypeQ2_K: 10, TypeQ3_K: 12, TypeQ4_K: 15, TypeQ5_K: 17, TypeQ6_K: 18, TypeIQ4_NL: 25,
	TypeIQ4_XS: 30, TypeBF16: 32}

// fileTypeNames are llama.cpp's LLAMA_FTYPE names (gguf-py LlamaFileType).
var fileTypeNames = map[uint32]string{0: "ALL_F32", 1: "MOSTLY_F16", 2: "MOSTLY_Q4_0", 3: "MOSTLY_Q4_1",
	7: "MOSTLY_Q8_0", 8: "MOSTLY_Q5_0", 9: "MOSTLY_Q5_1", 10: "MOSTLY_Q2_K", 11: "MOSTLY_Q3_K_S",
	12: "MOSTLY_Q3_K_M", 13: "MOSTLY_Q3_K_L", 14: "MOSTLY_Q4_K_S", 15: "MOSTLY_Q4_K_M", 16: "MOSTLY_Q5_K_S",
	17: "MOSTLY_Q5_K_M", 18: "MOSTLY_Q6_K", 19: "MOSTLY_IQ2_XXS", 20: "MOSTLY_IQ2_XS", 21: "MOSTLY_Q2_K_S",
	22: "MOSTLY_IQ3_XS", 23: "MOSTLY_IQ3_XXS", 24: "MOSTLY_IQ1_S", 25: "MOSTLY_IQ4_NL", 26: "MOSTLY_IQ3_S",
	27: "MOSTLY_IQ3_M", 28: "MOSTLY_IQ2_S", 29: "MOSTLY_IQ2_M", 30: "MOSTLY_IQ4_XS", 31: "MOSTLY_IQ1_M",
	32: "MOSTLY_BF16", 36: "MOSTLY_TQ1_0", 37: "MOSTLY_TQ2_0", 38: "MOSTLY_MXFP4_MOE", 39: "MOSTLY_NVFP4",
	40: "MOSTLY_Q1_0", 1024: "GUESSED"}

// FileTypeName is llama.cpp's name of a general.file_type value, such as
// MOSTLY_Q4_K_M; "ftype(N)" for a number it does not name.
func FileTypeName(v uint32) string {
	if n, ok := fileTypeNames[v]; ok {
		return n
	}
	return fmt.Sprintf("ftype(%d)", v)
}

// GGUFMetadata is the metadata lmscore writes for cfg, as llama.cpp's
// converters write it: general.architecture, the hyperparameters under
// "{arch}.", general.file_type for mainType (the type of most matrices) and,
// for a quantized type, general.quantization_version.
func GGUFMetadata(cfg Config, mainType TensorType) []gguf.KV {
	var kvs []gguf.KV
	set := func(key string, x any) {
		v, err := gguf.ValueOf(x)
		if err != nil {
			panic(err) // only fixed-width types are passed below
		}
		kvs = append(kvs, gguf.KV{Key: key, Value: v})
	}
	arch := cfg.Arch.String()
	p := arch + "."
	set("general.architecture", arch)
	set(p+"vocab_size", uint32(cfg.NVocab))
	set(p+"context_length", uint32(cfg.NCtxTrain))
	set(p+"embedding_length", uint32(cfg.NEmbd))
	set(p+"block_count", uint32(cfg.NLayer))
	set(p+"feed_forward_length", uint32(cfg.NFF))
	set(p+"attention.head_count", uint32(cfg.NHead))
	set(p+"attention.head_count_kv", uint32(cfg.NHeadKV))
	if cfg.NEmbdHead != 0 || families[cfg.Arch].writesKeyLength {
		// As llama.cpp's converter writes them from config.json's head_dim.
		set(p+"attention.key_length", uint32(cfg.HeadDim()))
		set(p+"attention.value_length", uint32(cfg.HeadDim()))
	}
	set(p+families[cfg.Arch].epsKey, cfg.NormEps)
	if cfg.RopeType != RopeNone {
		set(p+keyRopeDim, uint32(cfg.RotDim()))
		set(p+keyRopeBase, cfg.RopeFreqBase)
	}
	kvs = append(kvs, featureKVs(cfg)...)
	set("general.file_type", fileTypes[mainType])
	if mainType.IsBlockQuant() {
		set("general.quantization_version", uint32(2))
	}
	return kvs
}

// NewGGUFWriter returns a Writer holding cfg as llama.cpp's metadata keys
// (GGUFMetadata) and w's tensors under llama.cpp's names. Add a tokenizer
// (tokenizer.ggml.* keys) before writing if llama.cpp is to load the file;
// lmscore itself scores token ids and does not need one. The tensor data is
// referenced, not copied.
func NewGGUFWriter(cfg Config, w *Weights) (*gguf.Writer, error) {
	if err := w.Check(cfg); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if err := cfg.checkGGUFRepresentable(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	count := map[TensorType]int{}
	gw := gguf.NewWriter()
	for _, s := range specs(cfg, w) {
		if t := *s.slot; t != nil && s.presence != derived {
			if t.Shape[1] > 1 {
				count[t.Type]++
			}
			gw.AddTensor(s.name, gguf.TensorType(t.Type), s.ggufDims(), t.Data)
		}
	}
	main := TypeF32
	for _, t := range append([]TensorType{TypeF16, TypeBF16}, QuantTypes...) {
		if count[t] > count[main] {
			main = t
		}
	}
	for _, kv := range GGUFMetadata(cfg, main) {
		gw.Set(kv.Key, kv.Value)
	}
	if err := gw.Err(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return gw, nil
}

// TensorSpec is one tensor of an architecture, as TensorSpecs lists them.
type TensorSpec struct {
	Name     string
	Shape    [2]int64 // GGML order; vectors have Shape[1] == 1
	Dims     []int64  // the GGUF dimensions: Dims(Shape), or the experts' 3-D {n_in, n_out, n_expert}
	Required bool     // false for output.weight (absent when tied) and the RoPE factors (absent: no RoPE scaling)
}

// TensorSpecs lists the tensors a model of cfg has, in the order lmscore
// writes them, for importers that produce tensors one at a time.
func TensorSpecs(cfg Config) []TensorSpec {
	var out []TensorSpec
	for _, s := range specs(cfg, &Weights{}) {
		if s.presence != absent && s.presence != derived {
			out = append(out, TensorSpec{Name: s.name, Shape: s.shape, Dims: s.ggufDims(), Required: s.presence == required})
		}
	}
	return out
}

// Dims is the GGUF dimension list of a shape: a vector has one dimension.
func Dims(shape [2]int64) []int64 { return dimsOf(shape) }

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
