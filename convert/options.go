// Package convert imports models into lmscore's one file format, GGUF:
// llama2.c legacy checkpoints and Hugging Face folders (config.json,
// safetensors and a tokenizer). The output follows llama.cpp's converters
// (keys, tensor names, q/k layout, tokenizer metadata) so that llama.cpp
// loads it too.
package convert

import (
	"fmt"
	"strings"

	"github.com/lmscore/lmscore/model"
)

// Options control an import.
type Options struct {
	// Type of the matrices: "auto" (or empty) keeps the source's F32, F16
	// or BF16; "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0" or
	// "q5_1" converts (the quantized types round to nearest, as gguf-py
	// does). Vectors (norms, biases) are always F32, and a quantized type
	// falls back to F16 for rows that are not whole blocks, as llama.cpp's
	// converter does for Q8_0.
	Type string
	// VocabOnly writes the tokenizer (and the hyperparameters, when there
	// is a config.json) but no tensors.
	VocabOnly bool
	// OnTensor, when set, is called after each tensor's data is read, with
	// the count read so far of total, for progress on large models. A
	// Hugging Face import calls it; a llama2.c one, small, does not.
	OnTensor func(name string, done, total int)
}

// withProgress wraps the i-th of n tensor loaders to call OnTensor.
func (o Options) withProgress(name string, i, n int, load func() ([]byte, error)) func() ([]byte, error) {
	if o.OnTensor == nil {
		return load
	}
	return func() ([]byte, error) {
		b, err := load()
		if err == nil {
			o.OnTensor(name, i+1, n)
		}
		return b, err
	}
}

// parseType reads Options.Type; auto reports "keep the source type".
func parseType(s string) (typ model.TensorType, auto bool, err error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return model.TypeF32, true, nil
	case "f32":
		return model.TypeF32, false, nil
	case "f16":
		return model.TypeF16, false, nil
	case "bf16":
		return model.TypeBF16, false, nil
	case "q8_0":
		return model.TypeQ8_0, false, nil
	case "q4_0":
		return model.TypeQ4_0, false, nil
	case "q4_1":
		return model.TypeQ4_1, false, nil
	case "q5_0":
		return model.TypeQ5_0, false, nil
	case "q5_1":
		return model.TypeQ5_1, false, nil
	}
	return 0, false, fmt.Errorf("unknown tensor type %q (want auto, f32, f16, bf16, q8_0, q4_0, q4_1, q5_0 or q5_1)", s)
}
