package lmscore

import (
	"fmt"
	"math"
	"sort"
)

// Choice ties a scored request to a multiple-choice question.
type Choice struct {
	Task  string // the task (benchmark) the question belongs to; may be empty
	Group string // the question; all its choices share it (within a task)
	Index int    // the choice's index within its group
	Label int    // the gold choice's index, or -1 when this line does not say
}

// GroupPrediction is one question's outcome.
type GroupPrediction struct {
	Task         string `json:"task,omitempty"`
	Group        string `json:"group"`
	Label        int    `json:"label"`
	Pred         int    `json:"pred"`           // argmax of the summed log-probability
	PredNorm     int    `json:"pred_norm"`      // argmax of log-probability per byte
	PredPerToken int    `json:"pred_per_token"` // argmax of mean log-probability per token
}

// MCScores are the multiple-choice metrics of lm-eval-harness over a set of
// questions: acc (argmax of the sum), acc_norm (argmax of sum /
// Result.NormBytes, the choice's bytes without the leading delimiter;
// lm-eval counts characters, which agree with bytes on ASCII) and
// acc_per_token (argmax of the mean), each with its standard error as
// lm-eval computes it (mean_stderr: the sample standard deviation over
// sqrt(n), which for a mean p of n outcomes is sqrt(p(1-p)/(n-1))). With
// fewer than two questions there is no standard error: the fields are nil,
// where lm-eval writes "N/A".
type MCScores struct {
	Groups            int      `json:"groups"`
	Acc               float64  `json:"acc"`
	AccStderr         *float64 `json:"acc_stderr,omitempty"`
	AccNorm           float64  `json:"acc_norm"`
	AccNormStderr     *float64 `json:"acc_norm_stderr,omitempty"`
	AccPerToken       float64  `json:"acc_per_token"`
	AccPerTokenStderr *float64 `json:"acc_per_token_stderr,omitempty"`
}

// TaskMetrics are one task's scores.
type TaskMetrics struct {
	Task string `json:"task"`
	MCScores
}

// MCMetrics are the scores over every labelled question, per task when the
// choices name tasks, and each question's predictions.
type MCMetrics struct {
	MCScores
	Tasks       []TaskMetrics     `json:"tasks,omitempty"` // in order of first appearance; only when a choice names a task
	Predictions []GroupPrediction `json:"predictions"`
}

// MultipleChoice computes the metrics over every group that has a label.
// choices[i] describes results[i]; a group is named by its task and group
// together. Ties go to the lowest choice index, as numpy's argmax does in
// lm-eval-harness. A group whose lines disagree on the label, or whose label
// names no choice, is an error.
func MultipleChoice(results []Result, choices []Choice) (MCMetrics, error) {
	if len(results) != len(choices) {
		return MCMetrics{}, fmt.Errorf("multiple choice: %d results but %d choices", len(results), len(choices))
	}
	type key struct{ task, group string }
	type member struct {
		choice int
		result *Result
	}
	groups := map[key][]member{}
	labels := map[key]int{}
	var order []key
	for i := range results {
		c := choices[i]
		if c.Group == "" {
			continue
		}
		k := key{c.Task, c.Group}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
			labels[k] = -1
		}
		groups[k] = append(groups[k], member{c.Index, &results[i]})
		if c.Label >= 0 {
			if prev := labels[k]; prev >= 0 && prev != c.Label {
				return MCMetrics{}, fmt.Errorf("%s: lines disagree on the label (%d and %d)", groupName(c.Task, c.Group), prev, c.Label)
			}
			labels[k] = c.Label
		}
	}
	var m MCMetrics
	for _, k := range order {
		label := labels[k]
		if label < 0 {
			continue
		}
		members := groups[k]
		sort.SliceStable(members, func(a, b int) bool { return members[a].choice < members[b].choice })
		found := false
		for _, mb := range members {
			found = found || mb.choice == label
		}
		if !found {
			return MCMetrics{}, fmt.Errorf("%s: label %d names no choice", groupName(k.task, k.group), label)
		}
		argmax := func(score func(*Result) float64) int {
			best, bestScore := -1, math.Inf(-1)
			for _, mb := range members {
				if s := score(mb.result); best < 0 || s > bestScore {
					best, bestScore = mb.choice, s
				}
			}
			return best
		}
		m.Predictions = append(m.Predictions, GroupPrediction{
			Task:  k.task,
			Group: k.group,
			Label: label,
			Pred:  argmax(func(r *Result) float64 { return r.LogProb }),
			PredNorm: argmax(func(r *Result) float64 {
				return r.LogProb / float64(max(r.NormBytes, 1))
			}),
			PredPerToken: argmax(func(r *Result) float64 {
				return r.LogProb / float64(max(r.NTokens, 1))
			}),
		})
	}
	m.MCScores = scoreGroups(m.Predictions)
	var tasks []string
	byTask := map[string][]GroupPrediction{}
	named := false
	for _, p := range m.Predictions {
		if _, seen := byTask[p.Task]; !seen {
			tasks = append(tasks, p.Task)
		}
		byTask[p.Task] = append(byTask[p.Task], p)
		named = named || p.Task != ""
	}
	if named {
		for _, t := range tasks {
			m.Tasks = append(m.Tasks, TaskMetrics{Task: t, MCScores: scoreGroups(byTask[t])})
		}
	}
	return m, nil
}

func groupName(task, group string) string {
	if task == "" {
		return fmt.Sprintf("group %q", group)
	}
	return fmt.Sprintf("task %q group %q", task, group)
}

// scoreGroups averages the predictions' outcomes.
func scoreGroups(ps []GroupPrediction) MCScores {
	acc := make([]float64, len(ps))
	norm := make([]float64, len(ps))
	perToken := make([]float64, len(ps))
	for i, p := range ps {
		acc[i] = outcome(p.Pred == p.Label)
		norm[i] = outcome(p.PredNorm == p.Label)
		perToken[i] = outcome(p.PredPerToken == p.Label)
	}
	s := MCScores{Groups: len(ps)}
	s.Acc, s.AccStderr = meanStderr(acc)
	s.AccNorm, s.AccNormStderr = meanStderr(norm)
	s.AccPerToken, s.AccPerTokenStderr = meanStderr(perToken)
	return s
}

func outcome(right bool) float64 {
	if right {
		return 1
	}
	return 0
}

// meanStderr is the mean of xs and its standard error as lm-eval-harness's
// mean_stderr computes it: sample_stddev(xs) / sqrt(n), the sample standard
// deviation dividing by n-1. The error is nil for fewer than two values
// (lm-eval's "N/A"); the mean of no values is 0.
func meanStderr(xs []float64) (mean float64, stderr *float64) {
	n := float64(len(xs))
	if len(xs) == 0 {
		return 0, nil
	}
	for _, x := range xs {
		mean += x
	}
	mean /= n
	if len(xs) < 2 {
		return mean, nil
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	se := math.Sqrt(ss/(n-1)) / math.Sqrt(n)
	return mean, &se
}
