package hfcheck

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/convert"
	ref64 "github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/model"
)

// TestFloat64ReferenceAgainstTransformers holds the float64 Go forward pass
// (internal/reference, the CPU core's own reference) to transformers in
// float64 on the fixtures made in float64, through convert hf: it checks
// the model definition (llama3 rope factors, qwen3's head norms and
// head_dim) apart from the CPU core's fp32 rounding. make_models.py keeps
// every step of those references in float64 (transformers casts norms,
// softmaxes and RoPE angles to float32 even in a float64 model), so what is
// left is the float32 rope_freqs.weight llama.cpp's format imposes on
// llama31 (about 5e-6) and rounding (qwen3: 2e-13).
func TestFloat64ReferenceAgainstTransformers(t *testing.T) {
	for _, name := range fixtureNames(t, "testdata") {
		t.Run(name, func(t *testing.T) {
			folder := filepath.Join("testdata", name)
			raw, err := os.ReadFile(filepath.Join(folder, "reference.json"))
			require.NoError(t, err)
			var ref reference
			require.NoError(t, json.Unmarshal(raw, &ref))
			if ref.ReferenceDType != "torch.float64" {
				t.Skipf("%s: its reference is %s, not float64 (the early fixtures); the CPU engine test covers it", name, ref.ReferenceDType)
			}
			out := filepath.Join(t.TempDir(), name+".gguf")
			require.NoError(t, convert.HF(folder, out, convert.Options{Type: "f32"}))
			m, err := model.Load(out)
			require.NoError(t, err)
			defer m.Close()
			r, err := ref64.New(m)
			require.NoError(t, err)
			worst, worstSum := 0.0, 0.0
			for _, s := range ref.Sequences {
				if len(s.Tokens) < 2 {
					continue
				}
				lps, err := r.LogProbs(s.Tokens)
				require.NoError(t, err)
				sum := 0.0
				for j := 1; j < len(s.Tokens); j++ {
					d := lps[j-1][s.Tokens[j]] - s.NextTokenLogProbs[j-1]
					worst = math.Max(worst, math.Abs(d))
					sum += d
				}
				worstSum = math.Max(worstSum, math.Abs(sum))
			}
			t.Logf("%s: float64 reference vs transformers float64: %.2e per token, %.2e per request", name, worst, worstSum)
			require.LessOrEqual(t, worstSum, 2e-4)
		})
	}
}
