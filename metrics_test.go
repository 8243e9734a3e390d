package lmscore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMultipleChoiceMetrics(t *testing.T) {
	// Question a: choice 1 wins on the sum, choice 0 per byte and per token.
	// Question b: choice 0 wins everywhere; label only on its second line.
	results := []Result{
		{LogProb: -4, NormBytes: 8, NTokens: 4}, // a0: -0.5/byte, -1/token
		{LogProb: -3, NormBytes: 3, NTokens: 1}, // a1: -1/byte, -3/token
		{LogProb: -1, NormBytes: 1, NTokens: 1}, // b0
		{LogProb: -9, NormBytes: 2, NTokens: 2}, // b1
		{LogProb: -1, NormBytes: 1, NTokens: 1}, // no group: ignored
	}
	choices := []Choice{
		{Group: "a", Index: 0, Label: 0},
		{Group: "a", Index: 1, Label: -1},
		{Group: "b", Index: 0, Label: -1},
		{Group: "b", Index: 1, Label: 1},
		{Label: -1},
	}
	m, err := MultipleChoice(results, choices)
	require.NoError(t, err)
	assert.Equal(t, 2, m.Groups)
	assert.Equal(t, []GroupPrediction{
		{Group: "a", Label: 0, Pred: 1, PredNorm: 0, PredPerToken: 0},
		{Group: "b", Label: 1, Pred: 0, PredNorm: 0, PredPerToken: 0},
	}, m.Predictions)
	assert.Equal(t, 0.0, m.Acc)
	assert.Equal(t, 0.5, m.AccNorm)
	assert.Equal(t, 0.5, m.AccPerToken)
}

func TestMultipleChoiceTiesGoToLowestIndex(t *testing.T) {
	// Given in reverse order: the sort by choice index decides, not input order.
	results := []Result{{LogProb: -2, NormBytes: 1, NTokens: 1}, {LogProb: -2, NormBytes: 1, NTokens: 1}}
	choices := []Choice{{Group: "q", Index: 1, Label: 0}, {Group: "q", Index: 0, Label: 0}}
	m, err := MultipleChoice(results, choices)
	require.NoError(t, err)
	assert.Equal(t, 0, m.Predictions[0].Pred)
	assert.Equal(t, 1.0, m.Acc)
}

func TestMultipleChoiceErrors(t *testing.T) {
	_, err := MultipleChoice([]Result{{}, {}}, []Choice{{Group: "q", Index: 0, Label: 0}, {Group: "q", Index: 1, Label: 1}})
	assert.ErrorContains(t, err, `group "q": lines disagree on the label (0 and 1)`)
	_, err = MultipleChoice([]Result{{}}, []Choice{{Group: "q", Index: 0, Label: 3}})
	assert.ErrorContains(t, err, `group "q": label 3 names no choice`)
	_, err = MultipleChoice([]Result{{}}, nil)
	assert.ErrorContains(t, err, "1 results but 0 choices")
}
