package lmscore

import (
	"fmt"
	"math"
	"sort"
)

// Choice ties a scored request to a multiple-choice question.
type Choice struct {
	Group string // the question; all its choices share it
	Index int    // the choice's index within its group
	Label int    // the gold choice's index, or -1 when this line does not say
}

// GroupPrediction is one question's outcome.
type GroupPrediction struct {
	Group        string `json:"group"`
	Label        int    `json:"label"`
	Pred         int    `json:"pred"`           // argmax of the summed log-probability
	PredNorm     int    `json:"pred_norm"`      // argmax of log-probability per byte
	PredPerToken int    `json:"pred_per_token"` // argmax of mean log-probability per token
}

// MCMetrics are the multiple-choice metrics of lm-eval-harness: acc (argmax
// of the sum), acc_norm (argmax of sum / Result.NormBytes, the choice's bytes
// without the leading delimiter; lm-eval counts characters, which agree with
// bytes on ASCII) and acc_per_token (argmax of the mean).
type MCMetrics struct {
	Groups      int               `json:"groups"`
	Acc         float64           `json:"acc"`
	AccNorm     float64           `json:"acc_norm"`
	AccPerToken float64           `json:"acc_per_token"`
	Predictions []GroupPrediction `json:"predictions"`
}

// MultipleChoice computes the metrics over every group that has a label.
// choices[i] describes results[i]. Ties go to the lowest choice index, as
// numpy's argmax does in lm-eval-harness. A group whose lines disagree on the
// label, or whose label names no choice, is an error.
func MultipleChoice(results []Result, choices []Choice) (MCMetrics, error) {
	if len(results) != len(choices) {
		return MCMetrics{}, fmt.Errorf("multiple choice: %d results but %d choices", len(results), len(choices))
	}
	type member struct {
		choice int
		result *Result
	}
	groups := map[string][]member{}
	labels := map[string]int{}
	var order []string
	for i := range results {
		c := choices[i]
		if c.Group == "" {
			continue
		}
		if _, seen := groups[c.Group]; !seen {
			order = append(order, c.Group)
			labels[c.Group] = -1
		}
		groups[c.Group] = append(groups[c.Group], member{c.Index, &results[i]})
		if c.Label >= 0 {
			if prev := labels[c.Group]; prev >= 0 && prev != c.Label {
				return MCMetrics{}, fmt.Errorf("group %q: lines disagree on the label (%d and %d)", c.Group, prev, c.Label)
			}
			labels[c.Group] = c.Label
		}
	}
	var m MCMetrics
	for _, g := range order {
		label := labels[g]
		if label < 0 {
			continue
		}
		members := groups[g]
		sort.SliceStable(members, func(a, b int) bool { return members[a].choice < members[b].choice })
		found := false
		for _, mb := range members {
			found = found || mb.choice == label
		}
		if !found {
			return MCMetrics{}, fmt.Errorf("group %q: label %d names no choice", g, label)
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
		p := GroupPrediction{
			Group: g,
			Label: label,
			Pred:  argmax(func(r *Result) float64 { return r.LogProb }),
			PredNorm: argmax(func(r *Result) float64 {
				return r.LogProb / float64(max(r.NormBytes, 1))
			}),
			PredPerToken: argmax(func(r *Result) float64 {
				return r.LogProb / float64(max(r.NTokens, 1))
			}),
		}
		m.Predictions = append(m.Predictions, p)
		m.Groups++
		if p.Pred == label {
			m.Acc++
		}
		if p.PredNorm == label {
			m.AccNorm++
		}
		if p.PredPerToken == label {
			m.AccPerToken++
		}
	}
	if m.Groups > 0 {
		n := float64(m.Groups)
		m.Acc, m.AccNorm, m.AccPerToken = m.Acc/n, m.AccNorm/n, m.AccPerToken/n
	}
	return m, nil
}
