package lmscore

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/model"
)

// bf16Slack is how far, on average, the CUDA core's bf16 error may sit from
// the error that bf16 storage alone causes (its "floor", below), either way.
// Two bf16 engines round at different points (fused kernels, accumulation
// order, the tensor-core attention's bf16 probabilities), so they land on
// different values with about the same mean error; on the H100 the core sat
// within 0.0005 of the float64 emulation's mean error.
const bf16Slack = 0.005

// bf16Bound is the mean |Δ logprob| the bf16 mode is held to: the issue's
// 0.02 wherever bf16 storage alone costs these requests at most 0.02. Where
// it costs more, a bf16 engine cannot be expected to meet 0.02, and the core
// is held to that cost plus bf16Slack instead: a relaxation of the issue's
// bound, used on inputs no trained model sees (random token ids through
// stories260K: floor 0.0228; a random gpt2 with peaky logits: 0.034). On
// text, stories260K's floor is 0.0145 and 0.02 holds as written.
func bf16Bound(floor float64) float64 {
	if floor > 0.02 {
		return floor + bf16Slack
	}
	return 0.02
}

// bf16Floor returns the mean |Δ| over every continuation token between the
// exact float64 pass and the float64 pass that rounds to bf16 where the
// CUDA core stores bf16: the weights, every GEMM input (the LM head's
// included) and the KV pool. It is the expected cost of bf16 storage, not a
// strict lower bound: the core can land slightly under it. Requests must be
// in token form with a context.
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
	require.Equal(t, 0.02, bf16Bound(0.0181))
	require.Equal(t, 0.02, bf16Bound(0.02))
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
