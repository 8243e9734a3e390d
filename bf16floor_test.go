package lmscore

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/model"
)

// bf16Slack is what the CUDA core's bf16 kernels may add, on average, to the
// error that bf16 storage alone causes (its floor, below). Two bf16 engines
// round at different points (fused kernels, accumulation order), so they do
// not land on the same values; on the H100 the core sat within 0.002 of the
// float64 emulation's distance from the exact pass.
const bf16Slack = 0.005

// bf16Bound is the mean |Δ logprob| the bf16 mode is held to: the issue's
// 0.02, unless bf16 storage alone costs these requests more than that. Then
// no bf16 engine can meet 0.02 and the core is held to the floor plus
// bf16Slack instead. Trained models on text sit far below 0.02 (stories260K:
// floor 0.008); random tokens through a trained model or a random model with
// peaky logits can exceed it (see bench/cmd/bf16budget).
func bf16Bound(floor float64) float64 { return math.Max(0.02, floor+bf16Slack) }

// bf16Floor returns the mean |Δ| over every continuation token between the
// exact float64 pass and the float64 pass that rounds to bf16 where the
// CUDA core stores bf16: the weights, every GEMM input (the LM head's
// included) and the KV pool. Requests must be in token form with a context.
func bf16Floor(t *testing.T, m *model.Model, reqs []Request) float64 {
	t.Helper()
	exact, err := reference.New(m)
	require.NoError(t, err)
	bf, err := m.Weights.Convert(model.TypeBF16)
	require.NoError(t, err)
	rounded, err := reference.New(&model.Model{Config: m.Config, Weights: *bf})
	require.NoError(t, err)
	spec := reference.Rounding{Activations: true, KV: true, LMHeadInput: true}
	var sum float64
	n := 0
	for _, r := range reqs {
		require.NotEmpty(t, r.ContextTokens, "bf16Floor needs token-form requests with a context")
		seq := append(append([]int32{}, r.ContextTokens...), r.ContinuationTokens...)
		want, err := exact.LogProbs(seq)
		require.NoError(t, err)
		got, err := rounded.LogProbsRounded(seq, spec)
		require.NoError(t, err)
		for j, tok := range r.ContinuationTokens {
			p := len(r.ContextTokens) + j - 1
			sum += math.Abs(got[p][tok] - want[p][tok])
			n++
		}
	}
	require.Positive(t, n)
	return sum / float64(n)
}

func TestBF16BoundIsTheIssuesUnlessTheFloorIsHigher(t *testing.T) {
	require.Equal(t, 0.02, bf16Bound(0))
	require.Equal(t, 0.02, bf16Bound(0.015))
	require.InDelta(t, 0.0272, bf16Bound(0.0222), 1e-12)
}

// The bf16 bound's two regimes on the trained stories260K, on the CPU: on
// text of the kind it was trained on, bf16 storage leaves room for the
// issue's 0.02; on random token ids (TestCUDAAgainstCPU's other set) bf16
// storage alone costs more than 0.02, so no bf16 engine could meet it there.
func TestBF16FloorOnStories260K(t *testing.T) {
	path := storiesGGUF(t)
	w, err := model.Load(path)
	require.NoError(t, err)
	defer w.Close()
	cpu := openTest(t, w, Options{Threads: 2, NoCache: true})
	text := bf16Floor(t, w, tokenized(t, cpu, storyRequests()))
	random := bf16Floor(t, w, randomRequests(77, 512, 200))
	t.Logf("stories260K bf16 floor: story text %.4f, random tokens %.4f", text, random)
	require.LessOrEqual(t, text+bf16Slack, 0.02, "story text: the floor plus the kernels' slack fits the issue's bound")
	require.Greater(t, random, 0.02)
}
