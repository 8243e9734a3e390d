//go:build cgo

package binding

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// TestQ4KMAgainstLlamaCpp compares lmscore and llama.cpp on one Q4_K_M
// file against the truth that file stands for: its weights dequantized to
// F32, scored by the float64 reference. lmscore computes with the
// dequantized weights themselves, so its error is fp32 rounding; llama.cpp
// quantizes the activations to Q8_K for its K-quant dot products, which
// moves its scores further. Both errors are reported; lmscore's must be the
// smaller, on the mean and on the worst position.
func TestQ4KMAgainstLlamaCpp(t *testing.T) {
	py := pyref(t)
	// Rows of whole K-quant super-blocks (n_embd, n_ff multiples of 256).
	src := testmodel.Must(testmodel.Options{Seed: 31, NEmbd: 256, NHead: 8, NHeadKV: 2, NFF: 512, NVocab: 320, NCtx: 128})
	q4km := func(name string, _ [2]int64) model.TensorType {
		// llama-quantize's Q4_K_M: Q6_K for the output and for half of
		// attn_v and ffn_down (here the first layer's), Q4_K elsewhere.
		switch {
		case name == model.NameOutput, strings.HasPrefix(name, "blk.0.") &&
			(strings.HasSuffix(name, "attn_v.weight") || strings.HasSuffix(name, "ffn_down.weight")):
			return model.TypeQ6_K
		}
		return model.TypeQ4_K
	}
	qw, err := src.Weights.QuantizeWeights(31, q4km)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := model.FixtureTokenizer(src.Config.NVocab)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "q4_k_m.gguf")
	if err := model.WriteGGUF(path, src.Config, qw, tok...); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n := countTypes(&m.Weights, model.TypeQ4_K, model.TypeQ6_K); n == 0 {
		t.Fatal("the file holds no K-quant tensors")
	}

	rng := rand.New(rand.NewPCG(31, 4))
	tokens := randomTokens(rng, 80, m.Config.NVocab)
	ref, err := reference.New(m) // decodes every tensor to its dequantized value
	if err != nil {
		t.Fatal(err)
	}
	truth, err := ref.LogProbs(tokens)
	if err != nil {
		t.Fatal(err)
	}
	arg, _ := json.Marshal(tokens)
	out, err := exec.Command(py, filepath.Join("testdata", "llamacpp_logprobs.py"), path, string(arg)).Output()
	if err != nil {
		t.Fatalf("llama.cpp: %v", exitDetail(err))
	}
	var cpp [][]float64
	if err := json.Unmarshal(out, &cpp); err != nil || len(cpp) != len(tokens) {
		t.Fatalf("llama.cpp output: %d rows, %v", len(cpp), err)
	}

	e := openEngine(t, m, 2, 16, 8, 128, 128)
	bb := newBuilder(16)
	next := append(append([]int32(nil), tokens[1:]...), 0) // row i scores token i+1
	bb.segment(tokens, 0, len(tokens), []int32{3, 6, 1, 0, 4, 2}, next)
	var r scheduler.Result
	if err := e.step.Run(e.kv, bb.batch(), &r); err != nil {
		t.Fatal(err)
	}
	var lmSum, lmMax, cppSum, cppMax float64
	n := len(tokens) - 1
	for i := 0; i < n; i++ {
		want := truth[i][tokens[i+1]]
		dl := math.Abs(float64(r.LogProb[i]) - want)
		dc := math.Abs(cpp[i][tokens[i+1]] - want)
		lmSum, lmMax = lmSum+dl, math.Max(lmMax, dl)
		cppSum, cppMax = cppSum+dc, math.Max(cppMax, dc)
	}
	t.Logf("Q4_K_M against its dequantized F32 weights (float64 reference), %d positions: lmscore mean %.2e max %.2e; llama.cpp mean %.2e max %.2e",
		n, lmSum/float64(n), lmMax, cppSum/float64(n), cppMax)
	if lmMax > 1e-4 {
		t.Errorf("lmscore is %.2e from the dequantized weights' scores: more than fp32 rounding", lmMax)
	}
	if !(lmSum < cppSum && lmMax < cppMax) {
		t.Errorf("lmscore (mean %.2e, max %.2e) is not closer to the truth than llama.cpp (mean %.2e, max %.2e)",
			lmSum/float64(n), lmMax, cppSum/float64(n), cppMax)
	}
}

func countTypes(w *model.Weights, types ...model.TensorType) int {
	n := 0
	for _, l := range w.Layers {
		for _, t := range l {
			for _, typ := range types {
				if t != nil && t.Type == typ {
					n++
				}
			}
		}
	}
	return n
}
