package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/prefixtrie"
	"github.com/lmscore/lmscore/workload"
)

// ModelShape is what the FLOP floor needs to know of a model.
type ModelShape struct {
	Name string `json:"name"`
	// Base is the shape (Shapes) and Type the weights ("bf16", "q4_k_m")
	// of a variant; empty in reports from before there were variants.
	Base   string `json:"base,omitempty"`
	Type   string `json:"type,omitempty"`
	Arch   string `json:"arch"`
	NLayer int    `json:"n_layer"`
	NEmbd  int    `json:"n_embd"`
	NHead  int    `json:"n_head"`
	// HeadDim * NHead is the width attention works at.
	HeadDim int `json:"head_dim"`
	NVocab  int `json:"n_vocab"`
	NCtx    int `json:"n_ctx"`
	// BodyParams counts every weight a token passes through in the layers
	// (all tensors but the token and position embeddings and the LM head),
	// the "parameters" of 2 x parameters FLOPs per token. The LM head is
	// counted apart, for the scored rows only (NEmbd x NVocab each).
	BodyParams  int64 `json:"body_params"`
	TotalParams int64 `json:"total_params"`
	// WeightBytes is the tensors' data as stored (TensorBytes).
	WeightBytes int64 `json:"weight_bytes,omitempty"`
}

// ShapeOf describes a loaded model.
func ShapeOf(name string, m *model.Model) ModelShape {
	c := m.Config
	s := ModelShape{Name: name, Arch: c.Arch.String(), NLayer: c.NLayer, NEmbd: c.NEmbd, NHead: c.NHead,
		HeadDim: c.HeadDim(), NVocab: c.NVocab, NCtx: c.NCtxTrain}
	w := &m.Weights
	size := func(t *model.Tensor) int64 {
		if t == nil {
			return 0
		}
		return t.Shape[0] * t.Shape[1]
	}
	for _, layer := range w.Layers {
		for _, t := range layer {
			s.BodyParams += size(t)
		}
	}
	s.BodyParams += size(w.OutputNorm) + size(w.OutputNormB)
	s.TotalParams = s.BodyParams + size(w.TokEmbd) + size(w.PosEmbd) + size(w.Output)
	s.WeightBytes = TensorBytes(m)
	return s
}

// WorkloadMeta is what a workload asks of any engine, independent of how
// the engine computes it: the inputs in all, the unique ones (every shared
// prefix once), the rows that need the LM head, and the attention work of
// the unique tokens.
type WorkloadMeta struct {
	Model    string `json:"model"`
	Workload string `json:"workload"`
	Requests int    `json:"requests"`
	Groups   int    `json:"groups"` // multiple-choice questions; 0 when the lines carry no group
	// Token counts are of model inputs: (context + continuation)[:-1],
	// left-truncated to the model's window as lm-eval-harness does.
	TotalTokens  int64 `json:"total_tokens"`
	UniqueTokens int64 `json:"unique_tokens"`
	// Outputs counts the distinct scored positions: (prefix, target) pairs.
	Outputs int64 `json:"outputs"`
	// AttnKeys is the sum over unique tokens of the keys each attends to
	// (its position + 1): causal attention over shared prefixes done once.
	AttnKeys  int64 `json:"attn_keys"`
	Truncated int   `json:"truncated"`
}

// MetaOf measures a workload for a model whose window is maxLen tokens.
func MetaOf(modelName, name string, lines []workload.Line, maxLen int) (WorkloadMeta, error) {
	meta := WorkloadMeta{Model: modelName, Workload: name, Requests: len(lines)}
	trie := prefixtrie.New()
	ends := make([]prefixtrie.NodeID, len(lines))
	heads := make([]int, len(lines)) // tokens of the context kept after truncation
	groups := map[string]bool{}
	for i, l := range lines {
		if len(l.ContextTokens) == 0 || len(l.ContinuationTokens) == 0 {
			return meta, fmt.Errorf("%s: line %d (%s): empty context or continuation", name, i+1, l.ID)
		}
		if l.Group != "" {
			groups[l.Group] = true
		}
		cut := 0
		if whole := len(l.ContextTokens) + len(l.ContinuationTokens); maxLen > 0 && whole > maxLen+1 {
			cut = whole - (maxLen + 1)
			if cut >= len(l.ContextTokens) {
				return meta, fmt.Errorf("%s: line %d (%s): continuation does not fit the window of %d", name, i+1, l.ID, maxLen)
			}
			meta.Truncated++
		}
		head, tail := l.ContextTokens[cut:], l.ContinuationTokens[:len(l.ContinuationTokens)-1]
		heads[i] = len(head)
		var err error
		if ends[i], err = trie.Insert(head, tail); err != nil {
			return meta, fmt.Errorf("%s: line %d: %w", name, i+1, err)
		}
		meta.TotalTokens += int64(len(head) + len(tail))
	}
	// Outputs after every insert: a later insert may split an edge and move
	// a scored position into a new upper node. Last token first, so that
	// the walk to the node holding each position only goes up.
	for i, l := range lines {
		n := ends[i]
		cont := l.ContinuationTokens
		for j := len(cont) - 1; j >= 0; j-- {
			pos := int32(heads[i] - 1 + j)
			for pos < trie.Start(n) {
				n = trie.Parent(n)
			}
			if err := trie.AddOutput(n, pos, cont[j], int32(i), int32(j)); err != nil {
				return meta, err
			}
		}
	}
	trie.Freeze()
	meta.UniqueTokens = trie.UniqueTokens()
	meta.Outputs = int64(trie.NumOutputs())
	meta.Groups = len(groups)
	for id := prefixtrie.NodeID(1); int(id) < trie.NumNodes(); id++ {
		// Positions Start..End-1 attend to Start+1..End keys.
		a, b := int64(trie.Start(id)), int64(trie.End(id))
		meta.AttnKeys += (a + 1 + b) * (b - a) / 2
	}
	return meta, nil
}

// FloorFLOPs is the arithmetic a workload needs at the least: every
// computed token through the layers (2 x body parameters), the LM head for
// the scored rows, and causal attention of the unique tokens (QK^T and PV,
// 2 x 2 x head width per key per layer).
func FloorFLOPs(s ModelShape, m WorkloadMeta, computedTokens int64) float64 {
	linear := 2 * float64(s.BodyParams) * float64(computedTokens)
	head := 2 * float64(s.NEmbd) * float64(s.NVocab) * float64(m.Outputs)
	attn := 4 * float64(s.NLayer) * float64(s.NHead*s.HeadDim) * float64(m.AttnKeys)
	return linear + head + attn
}

// ReadJSONL reads request lines in the token form WriteJSONL writes.
func ReadJSONL(r io.Reader, name string) ([]workload.Line, error) {
	var lines []workload.Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<28)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l workload.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		if len(l.ContextTokens) == 0 || len(l.ContinuationTokens) == 0 {
			return nil, fmt.Errorf("%s:%d: want context_tokens and continuation_tokens", name, n)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return lines, nil
}

// ReadJSONLFile reads a request JSONL file.
func ReadJSONLFile(path string) ([]workload.Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadJSONL(f, path)
}
