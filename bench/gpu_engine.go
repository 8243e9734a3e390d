package bench

import (
	"fmt"
	"strings"
)

// EngineRow compares the engines with no cache on either side: lmscore
// --no-cache against HF run the lm-eval way, per computed token (padding
// included for HF, which is what it runs), on one model and workload. The
// cache's gain is left out on purpose: this is the engine under it (issue 18:
// --no-cache >= 1.5x HF no-cache per computed token).
type EngineRow struct {
	Model    string `json:"model"`
	Workload string `json:"workload"`
	// Computed tokens per second of wall time, each engine's own count.
	LMScoreComputedPerSecond float64 `json:"lmscore_computed_per_s"`
	HFComputedPerSecond      float64 `json:"hf_computed_per_s"`
	// Ratio is lmscore's rate over HF's.
	Ratio float64 `json:"ratio"`
	// HFComputedOverTotal is HF's computed tokens over the workload's
	// inputs: above 1 by its padding, below 1 where requests with the same
	// input share one row (the harness's logits cache: the choices of a
	// one-token answer), so it is not the padding alone.
	HFComputedOverTotal float64 `json:"hf_computed_over_total"`
}

// engineRows pairs each model and workload's lmscore --no-cache row with
// the HF no-cache row, where both ran.
func engineRows(rows []ReportRow) []EngineRow {
	type key struct{ model, workload string }
	hf := map[key]ReportRow{}
	for _, r := range rows {
		if r.Peer == PeerHFNoCache && r.Status == "ok" && r.WallSeconds > 0 && r.ComputedTokens > 0 {
			hf[key{r.Model, r.Workload}] = r
		}
	}
	var out []EngineRow
	for _, r := range rows {
		if r.Peer != PeerLMScoreNoCache || r.Status != "ok" || r.WallSeconds <= 0 || r.ComputedTokens <= 0 {
			continue
		}
		h, ok := hf[key{r.Model, r.Workload}]
		if !ok {
			continue
		}
		e := EngineRow{
			Model:                    r.Model,
			Workload:                 r.Workload,
			LMScoreComputedPerSecond: float64(r.ComputedTokens) / r.WallSeconds,
			HFComputedPerSecond:      float64(h.ComputedTokens) / h.WallSeconds,
		}
		e.Ratio = e.LMScoreComputedPerSecond / e.HFComputedPerSecond
		if h.TotalTokens > 0 {
			e.HFComputedOverTotal = float64(h.ComputedTokens) / float64(h.TotalTokens)
		}
		out = append(out, e)
	}
	return out
}

// writeEngine appends model's engine comparison table, if it has rows.
func writeEngine(b *strings.Builder, rows []EngineRow, model string) {
	mine := ofModel(rows, model, func(e EngineRow) string { return e.Model })
	if len(mine) == 0 {
		return
	}
	b.WriteString("Engines without a cache, per computed token (lmscore --no-cache against HF no cache, each engine's own count: " +
		"HF's includes its padding and counts once the requests whose inputs are equal, which share a row; " +
		"HF computed / total is that count over the workload's input tokens):\n\n")
	b.WriteString("| workload | lmscore --no-cache computed tok/s | HF no cache computed tok/s | HF computed / total | lmscore / HF |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: |\n")
	for _, e := range mine {
		fmt.Fprintf(b, "| %s | %s | %s | %.2fx | %.2fx |\n", e.Workload, fmtRate(e.LMScoreComputedPerSecond),
			fmtRate(e.HFComputedPerSecond), e.HFComputedOverTotal, e.Ratio)
	}
	b.WriteString("\n")
}
