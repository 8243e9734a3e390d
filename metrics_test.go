package lmscore

import (
	"encoding/json"
	"math"
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

// The standard errors are lm-eval-harness's mean_stderr: with k of n right,
// p = k/n and stderr = sqrt(p(1-p)/(n-1)); per task when the choices name
// tasks; none (lm-eval's "N/A") for a single question.
func TestMultipleChoiceStderrAndTasks(t *testing.T) {
	var results []Result
	var choices []Choice
	// Task "arc": 4 questions, the first 3 right on every metric. Task
	// "one": a single question, wrong. Both use the same group names.
	for task, right := range map[string][]bool{"arc": {true, true, true, false}, "one": {false}} {
		for q, ok := range right {
			label := 0
			if !ok {
				label = 1
			}
			group := string(rune('a' + q))
			results = append(results, Result{LogProb: -1, NormBytes: 1, NTokens: 1}, Result{LogProb: -5, NormBytes: 1, NTokens: 1})
			choices = append(choices, Choice{Task: task, Group: group, Index: 0, Label: label}, Choice{Task: task, Group: group, Index: 1, Label: -1})
		}
	}
	m, err := MultipleChoice(results, choices)
	require.NoError(t, err)
	assert.Equal(t, 5, m.Groups, "a task's group names are its own")
	require.Len(t, m.Tasks, 2)
	tasks := map[string]TaskMetrics{m.Tasks[0].Task: m.Tasks[0], m.Tasks[1].Task: m.Tasks[1]}

	arc := tasks["arc"]
	assert.Equal(t, 4, arc.Groups)
	assert.Equal(t, 0.75, arc.Acc)
	require.NotNil(t, arc.AccStderr)
	assert.InDelta(t, math.Sqrt(0.75*0.25/3), *arc.AccStderr, 1e-15)
	assert.InDelta(t, 0.25, *arc.AccStderr, 1e-15) // sqrt(0.0625)
	assert.Equal(t, *arc.AccStderr, *arc.AccNormStderr)
	assert.Equal(t, *arc.AccStderr, *arc.AccPerTokenStderr)

	one := tasks["one"]
	assert.Equal(t, 1, one.Groups)
	assert.Equal(t, 0.0, one.Acc)
	assert.Nil(t, one.AccStderr, "one question has no standard error")

	assert.Equal(t, 0.6, m.Acc)
	require.NotNil(t, m.AccStderr)
	assert.InDelta(t, math.Sqrt(0.6*0.4/4), *m.AccStderr, 1e-15)

	b, err := json.Marshal(one.MCScores)
	require.NoError(t, err)
	assert.Equal(t, `{"groups":1,"acc":0,"acc_norm":0,"acc_per_token":0}`, string(b))
	b, err = json.Marshal(arc)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"task":"arc","groups":4,"acc":0.75,"acc_stderr":0.25,`)
}

func TestMultipleChoiceWithoutTasksHasNoTaskList(t *testing.T) {
	m, err := MultipleChoice([]Result{{LogProb: -1}, {LogProb: -2}}, []Choice{{Group: "q", Index: 0, Label: 0}, {Group: "q", Index: 1, Label: 0}})
	require.NoError(t, err)
	assert.Empty(t, m.Tasks)
	assert.Nil(t, m.AccStderr)
}
