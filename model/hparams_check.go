package model

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lmscore/lmscore/gguf"
)

// MaxContextLength bounds {arch}.context_length: position tables and the
// cores' position checks are sized by it, and no supported model comes near.
const MaxContextLength = 1 << 24

// checkConfigTensors compares the hyperparameters that size allocations
// (the per-layer tables, the cores' scratch) with the tensor directory,
// before anything is sized by them: a small file that claims a million
// layers is refused at once, by its key, not after gigabytes of tables.
// Shapes are read from the directory only; no tensor data is touched.
func checkConfigTensors(f *gguf.File, cfg Config) error {
	p := cfg.Arch.String() + "."
	bad := func(format string, args ...any) error {
		return fmt.Errorf("model: %s: "+format, append([]any{f.Name}, args...)...)
	}
	if cfg.NCtxTrain > MaxContextLength {
		return bad("%scontext_length is %d, want at most %d", p, cfg.NCtxTrain, MaxContextLength)
	}
	layers := 0 // one more than the highest N of the blk.N.* tensors
	for _, t := range f.Tensors {
		if n, ok := blockIndex(t.Name); ok && n+1 > layers {
			layers = n + 1
		}
	}
	// Fewer layers than the tensors hold is left to FromGGUF, which lists
	// the unexpected tensors; head counts, likewise, to its shape checks,
	// which come before any allocation once block_count is bounded.
	if cfg.NLayer > layers {
		return bad("%sblock_count is %d, but the tensors hold %d layers (blk.0 to blk.%d)", p, cfg.NLayer, layers, layers-1)
	}
	dim := func(name string, i int) (int64, []int64, bool) {
		t, ok := f.Tensor(name)
		if !ok || len(t.Dims) <= i {
			return 0, nil, false
		}
		return t.Dims[i], t.Dims, true
	}
	if n, dims, ok := dim(NameTokEmbd, 0); ok && n != int64(cfg.NEmbd) {
		return bad("%sembedding_length is %d, but %s is %v (n_embd × n_vocab): n_embd %d", p, cfg.NEmbd, NameTokEmbd, dims, n)
	}
	// A dense FFN's up rows are n_ff, or 2·n_ff fused with the gate (Phi-3).
	up := LayerTensorName(0, FFNUp)
	rows, why := int64(cfg.NFF), "n_ff"
	if fam := families[cfg.Arch]; cfg.Gated() && !slices.Contains(fam.dense, FFNGate) {
		rows, why = 2*int64(cfg.NFF), "2·n_ff (gate and up)"
	}
	if n, dims, ok := dim(up, 1); ok && cfg.NExpert == 0 && n != rows {
		return bad("%sfeed_forward_length is %d, but %s is %v: %s %d", p, cfg.NFF, up, dims, why, n)
	}
	return nil
}

// blockIndex parses N from a tensor name "blk.N.…".
func blockIndex(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return 0, false
	}
	n, digits := 0, 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		if digits == 9 { // more layers than any int32 hyperparameter allows
			return 0, false
		}
		n = n*10 + int(rest[digits]-'0')
		digits++
	}
	if digits == 0 || digits == len(rest) || rest[digits] != '.' {
		return 0, false
	}
	return n, true
}
