// Package hfcheck compares the CPU engine with Hugging Face transformers on
// the small random models that tools/hf_models/make_models.py wrote on the
// GPU machine (it has torch), committed under testdata/ without their full
// logits by tools/hf_models/slim_fixtures.py. LMSCORE_HF_MODELS points the
// test at another such folder.
package hfcheck

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/convert"
)

type reference struct {
	Architecture   string `json:"architecture"`
	ReferenceDType string `json:"reference_dtype"` // absent: float32
	Sequences      []struct {
		Tokens            []int32   `json:"tokens"`
		NextTokenLogProbs []float64 `json:"next_token_logprobs"`
	} `json:"sequences"`
}

// Each sequence is scored as context = its first token, continuation = the
// rest: every position's next-token log-probability, compared with the one
// transformers computed in float32, within 1e-4. llama31 (Llama 3.1's RoPE
// scaling, past its original context) and every later fixture have a
// float64 reference instead, and each request's summed log-probability must
// be within 2e-4 of it: the CPU
// core's fp32 errors stay near 1e-6 per token against the float64 Go
// reference (binding's TestLlama3RopeAgainstReference), so 2e-4 over up to
// 99 tokens leaves room for transformers' own float64 rounding while any
// misread of the scaling (a band, the original context) moves sums by far
// more. qwen3 (its own head_dim, q/k head norms, sequences past 64 tokens
// that share prefixes) is held to the same float64 rule; make_models.py
// prints how far transformers' own float32 is from each float64 reference,
// the order of any fp32 engine's error on that fixture.
func TestCPUEngineAgainstTransformers(t *testing.T) {
	dir := os.Getenv("LMSCORE_HF_MODELS")
	if dir == "" {
		dir = "testdata"
	}
	for _, name := range fixtureNames(t, dir) {
		t.Run(name, func(t *testing.T) {
			folder := filepath.Join(dir, name)
			raw, err := os.ReadFile(filepath.Join(folder, "reference.json"))
			if os.IsNotExist(err) {
				t.Skipf("%s has no reference.json: write it with tools/hf_models/make_models.py --only %s (needs torch and transformers), then slim_fixtures.py", folder, name)
			}
			require.NoError(t, err)
			var ref reference
			require.NoError(t, json.Unmarshal(raw, &ref))
			if ref.ReferenceDType == "" {
				ref.ReferenceDType = "torch.float32"
			}
			out := filepath.Join(t.TempDir(), name+".gguf")
			require.NoError(t, convert.HF(folder, out, convert.Options{Type: "f32"}))
			m, err := lmscore.Open(out, lmscore.Options{KVMemory: 32 << 20, Threads: 2})
			require.NoError(t, err)
			defer m.Close()
			var reqs []lmscore.Request
			var want [][]float64
			for _, s := range ref.Sequences {
				if len(s.Tokens) < 2 {
					continue
				}
				reqs = append(reqs, lmscore.Request{ContextTokens: s.Tokens[:1], ContinuationTokens: s.Tokens[1:]})
				require.Len(t, s.NextTokenLogProbs, len(s.Tokens)-1)
				want = append(want, s.NextTokenLogProbs)
			}
			require.NotEmpty(t, reqs)
			res, _, err := m.Score(context.Background(), reqs, lmscore.ScoreOptions{})
			require.NoError(t, err)
			worst, worstSum := 0.0, 0.0
			for i, r := range res {
				var got, wantSum float64
				for j, lp := range r.TokenLogProbs {
					worst = math.Max(worst, math.Abs(float64(lp)-want[i][j]))
					got += float64(lp)
					wantSum += want[i][j]
				}
				worstSum = math.Max(worstSum, math.Abs(got-wantSum))
			}
			t.Logf("%s (%s): max |Δ logprob| vs transformers %s = %.2e per token, %.2e per request over %d sequences",
				name, ref.Architecture, ref.ReferenceDType, worst, worstSum, len(reqs))
			if ref.ReferenceDType == "torch.float64" {
				require.LessOrEqual(t, worstSum, 2e-4)
			} else {
				require.LessOrEqual(t, worst, 1e-4)
			}
		})
	}
}

// fixtureNames lists the folders under dir that hold a reference.json, so
// that a fixture written by make_models.py is tested as soon as it is
// committed.
func fixtureNames(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "reference.json")); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	require.NotEmpty(t, names, "no fixtures under %s: write them with tools/hf_models/make_models.py and slim_fixtures.py", dir)
	return names
}
