package lmscore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// fixtureFile writes a random llama model with the fixture tokenizer (no
// BOS added; BOS id 1) and a training window of nCtx.
func fixtureFile(t *testing.T, nCtx int) string {
	t.Helper()
	m := testmodel.Must(testmodel.Options{Seed: 5, NVocab: 300, NCtx: nCtx})
	kv, err := model.FixtureTokenizer(300)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "fixture.gguf")
	require.NoError(t, model.WriteGGUF(path, m.Config, &m.Weights, kv...))
	return path
}

// TestPlanPreparesAsScore: Plan with a model's metadata and Score on the
// model prepare the same requests alike (text, an empty context, a window
// that truncates), so their token counts agree.
func TestPlanPreparesAsScore(t *testing.T) {
	path := fixtureFile(t, 24)
	reqs := []Request{
		{ID: "a", Context: "the cat sat on the", Continuation: " mat"},
		{ID: "b", Context: "the cat sat on the", Continuation: " hat"},
		{ID: "empty", Continuation: "hello"},
		{ID: "long", Context: "a very long context that goes on and on and on past the little window", Continuation: " end"},
		{ID: "tokens", ContextTokens: []int32{5, 6, 7}, ContinuationTokens: []int32{8, 9}},
	}
	m, err := Open(path, Options{Threads: 1, BlockSize: 4})
	if errors.Is(err, ErrNoCgo) {
		t.Skip("needs the native CPU core (cgo)")
	}
	require.NoError(t, err)
	defer m.Close()
	res, st, err := m.Score(context.Background(), reqs, ScoreOptions{})
	require.NoError(t, err)

	meta, err := OpenMeta(path)
	require.NoError(t, err)
	defer meta.Close()
	assert.Equal(t, m.Info().NCtx, meta.Info().NCtx)
	assert.Equal(t, m.Info().BOS, meta.Info().BOS)
	report, err := Plan(context.Background(), reqs, PlanOptions{Meta: meta, BlockSize: 4, MaxBatchTokens: 2048})
	require.NoError(t, err)
	assert.Equal(t, 24, report.MaxLength, "the model's window")
	assert.Equal(t, st.TotalTokens, report.TotalTokens)
	assert.Equal(t, st.UniqueTokens, report.UniqueTokens)
	truncated := 0
	for _, r := range res {
		if r.Truncated {
			truncated++
		}
	}
	assert.True(t, res[3].Truncated)
	assert.Equal(t, truncated, report.TruncatedRequests)

	// A window above the model's is the model's, as in Options.MaxLength.
	wide, err := Plan(context.Background(), reqs, PlanOptions{Meta: meta, BlockSize: 4, MaxBatchTokens: 2048, MaxLength: 1000})
	require.NoError(t, err)
	assert.Equal(t, 24, wide.MaxLength)
}

// TestPlanWithoutModel: token requests plan with no model; text and an
// empty context name what is missing.
func TestPlanWithoutModel(t *testing.T) {
	opts := PlanOptions{BlockSize: 4, MaxBatchTokens: 64}
	report, err := Plan(context.Background(), []Request{{ContextTokens: []int32{1, 2, 3, 4, 5}, ContinuationTokens: []int32{6}}}, opts)
	require.NoError(t, err)
	assert.Equal(t, int64(5), report.TotalTokens)
	assert.Equal(t, 0, report.MaxLength)

	_, err = Plan(context.Background(), []Request{{ID: "e", ContinuationTokens: []int32{3}}}, opts)
	var re *RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "e", re.ID)
	assert.ErrorIs(t, err, ErrNoPrefixToken)

	_, err = Plan(context.Background(), []Request{{Context: "hi", Continuation: " there"}}, opts)
	assert.ErrorContains(t, err, "text requests need a tokenizer: no model was given")
}
