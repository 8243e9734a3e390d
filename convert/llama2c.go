package convert

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/tokenizer"
)

// llama2.c's legacy checkpoint (export version 0): seven int32 (dim,
// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
// negative vocab_size means the classifier is not shared with the
// embedding), then float32 tensors.
type llama2cHeader struct {
	dim, hidden, layers, heads, kvHeads, vocab, seqLen int64
	shared                                             bool
}

// Bounds that keep every size computation far from int64 overflow while
// admitting any real llama2.c model.
const (
	maxLlama2cDim    = 1 << 16
	maxLlama2cHidden = 1 << 20
	maxLlama2cLayers = 1 << 10
	maxLlama2cVocab  = 1 << 22
	maxLlama2cSeq    = 1 << 22
)

// Llama2C converts a llama2.c legacy checkpoint and its tokenizer.bin to a
// llama GGUF file. The checkpoint's q and k rows already pair dimensions
// (2i, 2i+1) for RoPE, as llama.cpp's NORM type does, so no permutation is
// needed. opts.Type defaults to F32, the checkpoint's own type.
func Llama2C(modelPath, tokenizerPath, outPath string, opts ...Options) error {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	typ, auto, err := parseType(o.Type)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if auto {
		typ = model.TypeF32
	}
	data, err := os.ReadFile(modelPath)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	h, err := parseLlama2cHeader(data, modelPath)
	if err != nil {
		return err
	}
	cfg := model.Config{
		Arch: model.ArchLlama, NVocab: int(h.vocab), NEmbd: int(h.dim), NLayer: int(h.layers),
		NHead: int(h.heads), NHeadKV: int(h.kvHeads), NFF: int(h.hidden), NCtxTrain: int(h.seqLen),
		RopeType: model.RopeNorm, RopeFreqBase: 10000, NormEps: 1e-5, // run.c's constants
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("convert: %s: %w", modelPath, err)
	}
	w := llama2cWeights(data, h)
	if typ != model.TypeF32 {
		if w, err = w.Convert(typ); err != nil {
			return fmt.Errorf("convert: %w", err)
		}
	}
	v, err := tokenizer.LoadLlama2cTokens(tokenizerPath, int(h.vocab))
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	vocabKVs, err := v.GGUFMetadata()
	if err != nil {
		return fmt.Errorf("convert: %s: %w", tokenizerPath, err)
	}
	name, _ := gguf.ValueOf(strings.TrimSuffix(filepath.Base(modelPath), filepath.Ext(modelPath)))
	extra := append([]gguf.KV{{Key: "general.name", Value: name}}, vocabKVs...)
	if err := model.WriteGGUF(outPath, cfg, w, extra...); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	return nil
}

func parseLlama2cHeader(data []byte, path string) (llama2cHeader, error) {
	var h llama2cHeader
	if len(data) >= 4 && binary.LittleEndian.Uint32(data) == 0x616b3432 { // "ak42"
		ver := int32(-1)
		if len(data) >= 8 {
			ver = int32(binary.LittleEndian.Uint32(data[4:]))
		}
		return h, fmt.Errorf("convert: %s: llama2.c export version %d is not supported; export with version 0 (legacy)", path, ver)
	}
	if len(data) < 28 {
		return h, fmt.Errorf("convert: %s: %d bytes is too short for a llama2.c checkpoint header (28 bytes)", path, len(data))
	}
	f := make([]int64, 7)
	for i := range f {
		f[i] = int64(int32(binary.LittleEndian.Uint32(data[4*i:])))
	}
	h = llama2cHeader{dim: f[0], hidden: f[1], layers: f[2], heads: f[3], kvHeads: f[4], vocab: f[5], seqLen: f[6], shared: f[5] > 0}
	if h.vocab < 0 {
		h.vocab = -h.vocab
	}
	for _, c := range []struct {
		name   string
		v, max int64
	}{{"dim", h.dim, maxLlama2cDim}, {"hidden_dim", h.hidden, maxLlama2cHidden}, {"n_layers", h.layers, maxLlama2cLayers},
		{"n_heads", h.heads, maxLlama2cDim}, {"n_kv_heads", h.kvHeads, maxLlama2cDim}, {"vocab_size", h.vocab, maxLlama2cVocab},
		{"seq_len", h.seqLen, maxLlama2cSeq}} {
		if c.v <= 0 || c.v > c.max {
			return h, fmt.Errorf("convert: %s: header %s is %d, want 1 to %d (not a llama2.c legacy checkpoint?)", path, c.name, c.v, c.max)
		}
	}
	if h.dim%h.heads != 0 || h.heads%h.kvHeads != 0 {
		return h, fmt.Errorf("convert: %s: dim %d, n_heads %d, n_kv_heads %d do not divide into whole heads", path, h.dim, h.heads, h.kvHeads)
	}
	if want := h.fileSize(); int64(len(data)) != want {
		return h, fmt.Errorf("convert: %s: %d bytes, but a checkpoint with dim %d, hidden_dim %d, %d layers, %d heads, %d kv heads, vocab %d, seq_len %d (classifier shared: %v) takes %d",
			path, len(data), h.dim, h.hidden, h.layers, h.heads, h.kvHeads, h.vocab, h.seqLen, h.shared, want)
	}
	return h, nil
}

// floats lists the checkpoint's float32 tensors in file order: name, count.
func (h llama2cHeader) floats() []struct {
	name string
	n    int64
} {
	kv := h.dim / h.heads * h.kvHeads
	l := h.layers
	out := []struct {
		name string
		n    int64
	}{
		{"token_embedding", h.vocab * h.dim}, {"rms_att", l * h.dim}, {"wq", l * h.dim * h.dim},
		{"wk", l * h.dim * kv}, {"wv", l * h.dim * kv}, {"wo", l * h.dim * h.dim}, {"rms_ffn", l * h.dim},
		{"w1", l * h.dim * h.hidden}, {"w2", l * h.hidden * h.dim}, {"w3", l * h.dim * h.hidden},
		{"rms_final", h.dim},
		{"freq_cis_real", h.seqLen * (h.dim / h.heads) / 2}, {"freq_cis_imag", h.seqLen * (h.dim / h.heads) / 2},
	}
	if !h.shared {
		out = append(out, struct {
			name string
			n    int64
		}{"wcls", h.vocab * h.dim})
	}
	return out
}

func (h llama2cHeader) fileSize() int64 {
	n := int64(28)
	for _, f := range h.floats() {
		n += 4 * f.n
	}
	return n
}

// llama2cWeights slices the checkpoint into F32 tensors without copying:
// llama2.c's [out][in] row-major matrices are already GGML's {in, out}.
func llama2cWeights(data []byte, h llama2cHeader) *model.Weights {
	at := map[string][]byte{}
	off := int64(28)
	for _, f := range h.floats() {
		at[f.name] = data[off : off+4*f.n]
		off += 4 * f.n
	}
	kv := h.dim / h.heads * h.kvHeads
	tensor := func(name, src string, layer int64, shape [2]int64) *model.Tensor {
		n := shape[0] * shape[1] * 4
		return &model.Tensor{Name: name, Type: model.TypeF32, Shape: shape, Data: at[src][layer*n : (layer+1)*n]}
	}
	w := &model.Weights{
		TokEmbd:    tensor(model.NameTokEmbd, "token_embedding", 0, [2]int64{h.dim, h.vocab}),
		OutputNorm: tensor(model.NameOutputNorm, "rms_final", 0, [2]int64{h.dim, 1}),
		Layers:     make([][model.LayerRoleCount]*model.Tensor, h.layers),
	}
	if !h.shared {
		w.Output = tensor(model.NameOutput, "wcls", 0, [2]int64{h.dim, h.vocab})
	}
	for l := int64(0); l < h.layers; l++ {
		layer := &w.Layers[l]
		set := func(role model.LayerRole, src string, shape [2]int64) {
			layer[role] = tensor(model.LayerTensorName(int(l), role), src, l, shape)
		}
		set(model.AttnNorm, "rms_att", [2]int64{h.dim, 1})
		set(model.WQ, "wq", [2]int64{h.dim, h.dim})
		set(model.WK, "wk", [2]int64{h.dim, kv})
		set(model.WV, "wv", [2]int64{h.dim, kv})
		set(model.WO, "wo", [2]int64{h.dim, h.dim})
		set(model.FFNNorm, "rms_ffn", [2]int64{h.dim, 1})
		set(model.FFNGate, "w1", [2]int64{h.dim, h.hidden})
		set(model.FFNDown, "w2", [2]int64{h.hidden, h.dim})
		set(model.FFNUp, "w3", [2]int64{h.dim, h.hidden})
	}
	return w
}
