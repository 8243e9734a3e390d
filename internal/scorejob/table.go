package scorejob

import (
	"fmt"
	"io"
	"strings"

	"github.com/lmscore/lmscore"
)

// WriteResultsTable writes the multiple-choice metrics as lm-eval-harness
// prints them, one Markdown table with a row per task and metric:
//
//	| Tasks | Metric        |  Value | ± Stderr |   n |
//	|-------|---------------|--------|----------|-----|
//	| arc   | acc           | 0.2500 | ± 0.0250 | 300 |
//	|       | acc_norm      | 0.2700 | ± 0.0257 |     |
//
// Tasks are those the request lines name, then "all" over every question
// when there is more than one; without task names the one row is "all". A
// standard error of fewer than two questions is N/A, as lm-eval writes it.
func WriteResultsTable(w io.Writer, mc lmscore.MCMetrics) {
	type row struct {
		task string
		s    lmscore.MCScores
	}
	var rows []row
	for _, t := range mc.Tasks {
		name := t.Task
		if name == "" {
			name = "(none)"
		}
		rows = append(rows, row{name, t.MCScores})
	}
	if len(rows) != 1 {
		rows = append(rows, row{"all", mc.MCScores})
	}
	cells := [][]string{{"Tasks", "Metric", "Value", "± Stderr", "n"}}
	for _, r := range rows {
		for i, m := range []struct {
			name   string
			value  float64
			stderr *float64
		}{
			{"acc", r.s.Acc, r.s.AccStderr},
			{"acc_norm", r.s.AccNorm, r.s.AccNormStderr},
			{"acc_per_token", r.s.AccPerToken, r.s.AccPerTokenStderr},
		} {
			task, n := "", ""
			if i == 0 {
				task, n = r.task, fmt.Sprint(r.s.Groups)
			}
			stderr := "N/A"
			if m.stderr != nil {
				stderr = fmt.Sprintf("± %.4f", *m.stderr)
			}
			cells = append(cells, []string{task, m.name, fmt.Sprintf("%.4f", m.value), stderr, n})
		}
	}
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, v := range c {
			width[i] = max(width[i], len([]rune(v)))
		}
	}
	line := func(c []string) {
		var b strings.Builder
		for i, v := range c {
			pad := strings.Repeat(" ", width[i]-len([]rune(v)))
			if i >= 2 { // numbers align right
				fmt.Fprintf(&b, "| %s%s ", pad, v)
			} else {
				fmt.Fprintf(&b, "| %s%s ", v, pad)
			}
		}
		fmt.Fprintln(w, b.String()+"|")
	}
	line(cells[0])
	var rule strings.Builder
	for _, wd := range width {
		rule.WriteString("|" + strings.Repeat("-", wd+2))
	}
	fmt.Fprintln(w, rule.String()+"|")
	for _, c := range cells[1:] {
		line(c)
	}
}
