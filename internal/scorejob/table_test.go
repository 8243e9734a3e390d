package scorejob

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
)

func TestResultsTable(t *testing.T) {
	// arc: 4 questions, 3 right on the sum, 2 per byte; one: 1 question.
	var results []lmscore.Result
	var choices []lmscore.Choice
	add := func(task, group string, label int, choice0, choice1 lmscore.Result) {
		results = append(results, choice0, choice1)
		choices = append(choices, lmscore.Choice{Task: task, Group: group, Index: 0, Label: label},
			lmscore.Choice{Task: task, Group: group, Index: 1, Label: label})
	}
	sure := lmscore.Result{LogProb: -1, NormBytes: 1, NTokens: 1}
	unsure := lmscore.Result{LogProb: -5, NormBytes: 1, NTokens: 1}
	long := lmscore.Result{LogProb: -2, NormBytes: 10, NTokens: 10} // wins per byte and token, loses on the sum
	add("arc", "a", 0, sure, unsure)
	add("arc", "b", 0, sure, unsure)
	add("arc", "c", 0, sure, long)
	add("arc", "d", 1, sure, unsure)
	add("one", "a", 0, sure, unsure)
	mc, err := lmscore.MultipleChoice(results, choices)
	require.NoError(t, err)
	var buf bytes.Buffer
	WriteResultsTable(&buf, mc)
	assert.Equal(t, `| Tasks | Metric        |  Value | ± Stderr | n |
|-------|---------------|--------|----------|---|
| arc   | acc           | 0.7500 | ± 0.2500 | 4 |
|       | acc_norm      | 0.5000 | ± 0.2887 |   |
|       | acc_per_token | 0.5000 | ± 0.2887 |   |
| one   | acc           | 1.0000 |      N/A | 1 |
|       | acc_norm      | 1.0000 |      N/A |   |
|       | acc_per_token | 1.0000 |      N/A |   |
| all   | acc           | 0.8000 | ± 0.2000 | 5 |
|       | acc_norm      | 0.6000 | ± 0.2449 |   |
|       | acc_per_token | 0.6000 | ± 0.2449 |   |
`, buf.String())

	// Without task names: one row set, "all".
	for i := range choices {
		choices[i].Task = ""
	}
	choices = choices[:8]
	mc, err = lmscore.MultipleChoice(results[:8], choices)
	require.NoError(t, err)
	buf.Reset()
	WriteResultsTable(&buf, mc)
	assert.Contains(t, buf.String(), "| all   | acc           | 0.7500 | ± 0.2500 | 4 |\n")
	assert.Equal(t, 5, bytes.Count(buf.Bytes(), []byte("\n")))
}
