package bench

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/lmscore/lmscore/workload"
)

// GEMMRate is the card's bf16 matrix-product rate, measured in the same run
// as the peers (bench/peers/gemm_rate.py).
type GEMMRate struct {
	Device string    `json:"device"`
	TFLOPS float64   `json:"tflops"` // the median of Runs
	Runs   []float64 `json:"runs_tflops"`
	Shape  string    `json:"shape"`
}

// ReportInput is everything one `make bench` run measured.
type ReportInput struct {
	Card     string // the device's name, e.g. "NVIDIA H100 80GB HBM3"
	Date     string // YYYY-MM-DD
	GEMM     GEMMRate
	Models   []ModelShape
	Meta     []WorkloadMeta
	Runs     []PeerRun
	Lines    map[string][]workload.Line // by model + "/" + workload: the requests, for the groups
	Comments []string                   // added to the report's notes as they are
}

// ReportRow is one peer on one workload with one model.
type ReportRow struct {
	Model    string `json:"model"`
	Workload string `json:"workload"`
	Peer     string `json:"peer"`
	Status   string `json:"status"` // "ok", or why there are no figures

	WallSeconds    float64   `json:"wall_s,omitempty"`
	RunsSeconds    []float64 `json:"runs_s,omitempty"`
	TotalTokens    int64     `json:"total_tokens"`
	UniqueTokens   int64     `json:"unique_tokens"`
	ComputedTokens int64     `json:"computed_tokens,omitempty"`
	// TokensPerSecond is total tokens over wall time: the rate a cacheless
	// engine would need to match this one.
	TokensPerSecond float64 `json:"tokens_per_second,omitempty"`
	// LMScoreSpeedup is this peer's wall time over lmscore's (cached).
	LMScoreSpeedup float64 `json:"lmscore_speedup,omitempty"`
	PeakGPUBytes   int64   `json:"peak_gpu_bytes,omitempty"`
	PeakGPUHow     string  `json:"peak_gpu_how,omitempty"`
	WeightBytes    int64   `json:"weight_bytes,omitempty"`
	KVBytes        int64   `json:"kv_bytes,omitempty"`
	LoadSeconds    float64 `json:"load_s,omitempty"`
	FloorSeconds   float64 `json:"floor_s,omitempty"`
	WallOverFloor  float64 `json:"wall_over_floor,omitempty"`

	// Against lmscore's (cached) scores: per continuation token.
	ComparedTokens int     `json:"compared_tokens,omitempty"`
	MaxAbsDiff     float64 `json:"max_abs_diff,omitempty"`
	MeanAbsDiff    float64 `json:"mean_abs_diff,omitempty"`
	// Agreement is the share of multiple-choice questions whose argmax
	// choice (sum of logprobs) is lmscore's, or for workloads without
	// groups the share of requests with the same is_greedy flag.
	Agreement   float64 `json:"agreement,omitempty"`
	AgreementOf string  `json:"agreement_of,omitempty"` // "questions" or "greedy flags"
	AgreementN  int     `json:"agreement_n,omitempty"`
	Note        string  `json:"note,omitempty"`
}

// Report is the benchmark's result: the rows and the settings that explain them.
type Report struct {
	Card   string         `json:"card"`
	Date   string         `json:"date"`
	GEMM   GEMMRate       `json:"gemm"`
	Models []ModelShape   `json:"models"`
	Meta   []WorkloadMeta `json:"workloads"`
	Rows   []ReportRow    `json:"rows"`
	// Variants sums up lmscore per model variant (shape and weight type)
	// and workload: against llama.cpp, against its own bf16, and its memory.
	Variants []VariantRow `json:"variants,omitempty"`
	// Fidelity is both engines' bf16 error against the fp32 reference,
	// per model and workload, where the reference ran.
	Fidelity []FidelityRow `json:"fidelity,omitempty"`
	// Engine compares lmscore --no-cache with HF no cache per computed token.
	Engine []EngineRow `json:"engine,omitempty"`
	Notes  []string    `json:"notes"`
}

// VariantRow is lmscore (cached) on one workload of one model variant.
type VariantRow struct {
	Model    string `json:"model"`
	Base     string `json:"base"`
	Type     string `json:"type"`
	Workload string `json:"workload"`

	WallSeconds float64 `json:"wall_s"`
	LoadSeconds float64 `json:"load_s,omitempty"`
	// LlamaCppSpeedup is llama.cpp's wall over lmscore's on the same file;
	// OverBF16 is lmscore's wall over its own on the bf16 variant of the
	// same shape (0: not measured).
	LlamaCppSeconds float64 `json:"llamacpp_s,omitempty"`
	LlamaCppSpeedup float64 `json:"llamacpp_speedup,omitempty"`
	OverBF16        float64 `json:"over_bf16,omitempty"`

	// PeakGPUBytes = WeightBytes + KVBytes + OtherBytes (see PeerRun).
	PeakGPUBytes         int64 `json:"peak_gpu_bytes,omitempty"`
	WeightBytes          int64 `json:"weight_bytes,omitempty"`
	KVBytes              int64 `json:"kv_bytes,omitempty"`
	OtherBytes           int64 `json:"other_bytes,omitempty"`
	LlamaCppPeakGPUBytes int64 `json:"llamacpp_peak_gpu_bytes,omitempty"`
}

// BuildReport compares every peer with lmscore and computes the floors.
func BuildReport(in ReportInput) (*Report, error) {
	rep := &Report{Card: in.Card, Date: in.Date, GEMM: in.GEMM, Models: in.Models, Meta: in.Meta}
	shapes := map[string]ModelShape{}
	for _, s := range in.Models {
		shapes[s.Name] = s
	}
	runs := map[string]*PeerRun{}
	for i := range in.Runs {
		r := &in.Runs[i]
		runs[r.Model+"/"+r.Workload+"/"+r.Peer] = r
	}
	for _, meta := range in.Meta {
		shape, ok := shapes[meta.Model]
		if !ok {
			return nil, fmt.Errorf("report: workload %s names model %q, which has no shape", meta.Workload, meta.Model)
		}
		key := meta.Model + "/" + meta.Workload
		base := runs[key+"/"+PeerLMScore]
		computed := meta.UniqueTokens
		if base != nil && base.OK() {
			computed = base.ComputedTokens
		}
		floor := 0.0
		if in.GEMM.TFLOPS > 0 {
			floor = FloorFLOPs(shape, meta, computed) / (in.GEMM.TFLOPS * 1e12)
		}
		for _, peer := range PeerOrder {
			r := runs[key+"/"+peer]
			if r == nil {
				continue
			}
			row := ReportRow{Model: meta.Model, Workload: meta.Workload, Peer: peer, Status: "ok",
				TotalTokens: meta.TotalTokens, UniqueTokens: meta.UniqueTokens, Note: r.Note}
			switch {
			case r.Error != "":
				row.Status = "error: " + r.Error
			case r.Skipped != "":
				row.Status = "not run: " + r.Skipped
			case len(r.RunsSeconds) == 0:
				row.Status = "not run: no timed run"
			}
			if row.Status != "ok" {
				rep.Rows = append(rep.Rows, row)
				continue
			}
			row.RunsSeconds = r.RunsSeconds
			row.WallSeconds = r.Wall()
			row.ComputedTokens = r.ComputedTokens
			row.TokensPerSecond = float64(meta.TotalTokens) / row.WallSeconds
			row.PeakGPUBytes, row.PeakGPUHow = r.PeakGPUBytes, r.PeakGPUHow
			row.WeightBytes, row.KVBytes, row.LoadSeconds = r.WeightBytes, r.KVBytes, r.LoadSeconds
			if floor > 0 {
				row.FloorSeconds = floor
				row.WallOverFloor = row.WallSeconds / floor
			}
			if base != nil && base.OK() {
				row.LMScoreSpeedup = row.WallSeconds / base.Wall()
				if peer != PeerLMScore {
					if err := compareScores(&row, base, r, in.Lines[key]); err != nil {
						row.Note = strings.TrimSpace(row.Note + " " + err.Error())
					}
				}
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	rep.Variants = variantRows(in.Models, rep.Rows)
	rep.Fidelity = fidelityRows(in.Meta, runs)
	rep.Engine = engineRows(rep.Rows)
	rep.Notes = append(rep.Notes, in.Comments...)
	return rep, nil
}

// variantRows pairs each lmscore row with llama.cpp's on the same model and
// with lmscore's on the bf16 variant of the same shape.
func variantRows(models []ModelShape, rows []ReportRow) []VariantRow {
	byName := map[string]ModelShape{}
	bf16 := map[string]string{} // shape -> its bf16 variant's name
	for _, m := range models {
		if m.Base == "" {
			m.Base = m.Name
		}
		if m.Type == "" {
			m.Type = "bf16"
		}
		byName[m.Name] = m
		if m.Type == "bf16" {
			bf16[m.Base] = m.Name
		}
	}
	ok := map[string]*ReportRow{}
	for i := range rows {
		if rows[i].Status == "ok" {
			ok[rows[i].Model+"/"+rows[i].Workload+"/"+rows[i].Peer] = &rows[i]
		}
	}
	var out []VariantRow
	for _, r := range rows {
		if r.Peer != PeerLMScore || r.Status != "ok" {
			continue
		}
		m := byName[r.Model]
		v := VariantRow{Model: r.Model, Base: m.Base, Type: m.Type, Workload: r.Workload, WallSeconds: r.WallSeconds,
			LoadSeconds: r.LoadSeconds, PeakGPUBytes: r.PeakGPUBytes, WeightBytes: r.WeightBytes, KVBytes: r.KVBytes}
		if v.PeakGPUBytes > 0 {
			v.OtherBytes = v.PeakGPUBytes - v.WeightBytes - v.KVBytes
		}
		if lc := ok[r.Model+"/"+r.Workload+"/"+PeerLlamaCpp]; lc != nil {
			v.LlamaCppSeconds, v.LlamaCppSpeedup, v.LlamaCppPeakGPUBytes = lc.WallSeconds, lc.WallSeconds/r.WallSeconds, lc.PeakGPUBytes
		}
		if b := ok[bf16[m.Base]+"/"+r.Workload+"/"+PeerLMScore]; b != nil && m.Type != "bf16" {
			v.OverBF16 = r.WallSeconds / b.WallSeconds
		}
		out = append(out, v)
	}
	return out
}

// compareScores fills the difference and agreement columns of row.
func compareScores(row *ReportRow, base, peer *PeerRun, lines []workload.Line) error {
	if len(peer.TokenLogProbs) != len(base.TokenLogProbs) {
		return fmt.Errorf("scores of %d requests, lmscore has %d: not compared", len(peer.TokenLogProbs), len(base.TokenLogProbs))
	}
	sum := 0.0
	for i := range base.TokenLogProbs {
		a, b := base.TokenLogProbs[i], peer.TokenLogProbs[i]
		if len(a) != len(b) {
			return fmt.Errorf("request %d: %d token scores, lmscore has %d: not compared", i, len(b), len(a))
		}
		for j := range a {
			d := absDiff(a[j], b[j])
			row.MaxAbsDiff = math.Max(row.MaxAbsDiff, d)
			sum += d
			row.ComparedTokens++
		}
	}
	if row.ComparedTokens > 0 {
		row.MeanAbsDiff = sum / float64(row.ComparedTokens)
	}
	if len(lines) == len(base.TokenLogProbs) && hasGroups(lines) {
		pa, pb := Picks(lines, base.TokenLogProbs), Picks(lines, peer.TokenLogProbs)
		same := 0
		for g, c := range pa {
			if pb[g] == c {
				same++
			}
		}
		row.AgreementOf, row.AgreementN = "questions", len(pa)
		if len(pa) > 0 {
			row.Agreement = float64(same) / float64(len(pa))
		}
		return nil
	}
	if len(peer.IsGreedy) == len(base.IsGreedy) && len(base.IsGreedy) > 0 {
		same := 0
		for i := range base.IsGreedy {
			if base.IsGreedy[i] == peer.IsGreedy[i] {
				same++
			}
		}
		row.AgreementOf, row.AgreementN = "greedy flags", len(base.IsGreedy)
		row.Agreement = float64(same) / float64(len(base.IsGreedy))
	}
	return nil
}

func hasGroups(lines []workload.Line) bool {
	for _, l := range lines {
		if l.Group != "" {
			return true
		}
	}
	return false
}

// Picks returns each group's chosen line index: the choice with the largest
// sum of token logprobs, the first on a tie (lm-eval-harness's acc).
func Picks(lines []workload.Line, tokenLogProbs [][]float64) map[string]int {
	best := map[string]float64{}
	pick := map[string]int{}
	for i, l := range lines {
		if l.Group == "" {
			continue
		}
		s := 0.0
		for _, lp := range tokenLogProbs[i] {
			s += lp
		}
		if cur, ok := best[l.Group]; !ok || s > cur {
			best[l.Group], pick[l.Group] = s, i
		}
	}
	return pick
}

var peerTitles = map[string]string{
	PeerLMScore:        "(d) lmscore",
	PeerLMScoreNoCache: "(c) lmscore --no-cache",
	PeerHFNoCache:      "(a) HF, no cache (lm-eval-harness)",
	PeerHFCatwalk:      "(b) HF, prefix cache (catwalk)",
	PeerLlamaCpp:       "(e) llama.cpp (llama-perplexity MC)",
}

// ofModel is rows' rows of one model, in order: the per-model sections of
// the report each take theirs.
func ofModel[R any](rows []R, model string, modelOf func(R) string) []R {
	var mine []R
	for _, r := range rows {
		if modelOf(r) == model {
			mine = append(mine, r)
		}
	}
	return mine
}

// WriteMarkdown writes the report as Markdown: one table per model.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# lmscore against its peers: %s, %s\n\n", r.Card, r.Date)
	if r.GEMM.TFLOPS > 0 {
		// The shape names the type: bf16 on a GPU, fp32 on the CPU check,
		// whose fraction of a TFLOP/s must not print as 0.
		fmt.Fprintf(&b, "GEMM rate measured in the same run: %s TFLOP/s (%s, median of %d%s).\n", fmtTFLOPS(r.GEMM.TFLOPS), r.GEMM.Shape, len(r.GEMM.Runs), runSpread(r.GEMM.Runs))
	} else {
		b.WriteString("No GEMM rate was measured in this run, so there is no floor.\n")
	}
	b.WriteString("Wall time is the median of the timed runs (their number in parentheses); warm-up is excluded. " +
		"Tokens are model inputs; computed tokens are what the engine ran, padding included. " +
		"tokens/s = total tokens / wall. Speedup = the peer's wall / lmscore's. " +
		"Floor = (computed tokens of lmscore x 2 x layer parameters + scored rows x 2 x n_embd x n_vocab + unique-token causal attention) / GEMM rate. " +
		"|Δ| is per continuation token against lmscore's logprob; agree = same argmax choice per question " +
		"(greedy flags where there are no questions).\n\n")
	shapes := map[string]ModelShape{}
	for _, s := range r.Models {
		shapes[s.Name] = s
	}
	metas := map[string]WorkloadMeta{}
	for _, m := range r.Meta {
		metas[m.Model+"/"+m.Workload] = m
	}
	for _, s := range r.Models {
		weights := ""
		if s.Type != "" {
			weights = fmt.Sprintf(", %s weights, %s", s.Type, fmtBytes(s.WeightBytes))
		}
		fmt.Fprintf(&b, "## %s (%s, %d layers, %d wide, %d heads x %d, vocab %d, %s parameters, %s in the layers%s)\n\n",
			s.Name, s.Arch, s.NLayer, s.NEmbd, s.NHead, s.HeadDim, s.NVocab, fmtParams(s.TotalParams), fmtParams(s.BodyParams), weights)
		b.WriteString("| workload | peer | wall s (runs) | total tok | unique tok | computed tok | tokens/s | lmscore speedup | peak GPU mem | wall / floor | max \\|Δ\\| | mean \\|Δ\\| | agree |\n")
		b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, row := range r.Rows {
			if row.Model != s.Name {
				continue
			}
			title := peerTitles[row.Peer]
			if title == "" {
				title = row.Peer
			}
			if row.Status != "ok" {
				fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | | | | | | | | |\n", row.Workload, title, mdEscape(row.Status),
					row.TotalTokens, row.UniqueTokens)
				continue
			}
			diff, mean, agree := "", "", ""
			if row.ComparedTokens > 0 {
				diff, mean = fmtDiff(row.MaxAbsDiff), fmtDiff(row.MeanAbsDiff)
			}
			if row.AgreementN > 0 {
				agree = fmt.Sprintf("%.1f%%", 100*row.Agreement)
			}
			fmt.Fprintf(&b, "| %s | %s | %.3f (%d) | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n",
				row.Workload, title, row.WallSeconds, len(row.RunsSeconds), row.TotalTokens, row.UniqueTokens,
				row.ComputedTokens, fmtRate(row.TokensPerSecond), fmtTimes(row.LMScoreSpeedup, 2),
				fmtGiB(row.PeakGPUBytes), fmtTimes(row.WallOverFloor, 1), diff, mean, agree)
		}
		b.WriteString("\n")
		var ws []string
		for _, m := range r.Meta {
			if m.Model == s.Name {
				ws = append(ws, fmt.Sprintf("%s: %d requests, %d questions, %d scored rows, %d truncated",
					m.Workload, m.Requests, m.Groups, m.Outputs, m.Truncated))
			}
		}
		if len(ws) > 0 {
			b.WriteString("Workloads: " + strings.Join(ws, "; ") + ".\n\n")
		}
		writeEngine(&b, r.Engine, s.Name)
		writeFidelity(&b, r.Fidelity, s.Name)
	}
	if len(r.Variants) > 0 {
		b.WriteString("## lmscore by weight type: against llama.cpp on the same file, against its own bf16, and its GPU memory\n\n" +
			"Peak GPU memory is nvidia-smi's (see the notes); weights are the tensors as stored, KV the most live KV blocks " +
			"of the process's runs so far, other the rest: CUDA context, step workspace (activations, the dequantized " +
			"weight of the GEMM in flight, cuBLAS) and the KV pool's growth beyond its live blocks. The ABI reports no device " +
			"memory, so the split is by subtraction.\n\n")
		b.WriteString("| model | type | workload | lmscore s | load s | llama.cpp s | llama.cpp / lmscore | lmscore / own bf16 | peak GPU mem | weights | KV | other | llama.cpp peak GPU mem |\n")
		b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, v := range r.Variants {
			load, lc := "", ""
			if v.LoadSeconds > 0 {
				load = fmt.Sprintf("%.1f", v.LoadSeconds)
			}
			if v.LlamaCppSeconds > 0 {
				lc = fmt.Sprintf("%.3f", v.LlamaCppSeconds)
			}
			other := ""
			if v.PeakGPUBytes > 0 {
				other = fmtGiBSigned(v.OtherBytes)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.3f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v.Base, v.Type, v.Workload,
				v.WallSeconds, load, lc, fmtTimes(v.LlamaCppSpeedup, 2), fmtTimes(v.OverBF16, 2), fmtGiB(v.PeakGPUBytes),
				fmtGiB(v.WeightBytes), fmtGiB(v.KVBytes), other, fmtGiB(v.LlamaCppPeakGPUBytes))
		}
		b.WriteString("\n")
	}
	var notes []string
	for _, row := range r.Rows {
		if row.Note != "" {
			notes = append(notes, fmt.Sprintf("%s / %s / %s: %s", row.Model, row.Workload, row.Peer, row.Note))
		}
	}
	seen := map[string]bool{}
	for _, row := range r.Rows {
		if row.Status == "ok" && row.PeakGPUHow != "" && !seen[row.Peer] {
			seen[row.Peer] = true
			notes = append(notes, fmt.Sprintf("peak GPU memory of %s: %s", row.Peer, row.PeakGPUHow))
		}
	}
	notes = append(notes, r.Notes...)
	if len(notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}

func fmtDiff(d float64) string {
	switch {
	case d == 0:
		return "0"
	case math.IsInf(d, 1):
		return "inf"
	case d < 1e-3:
		return fmt.Sprintf("%.1e", d)
	}
	return fmt.Sprintf("%.4f", d)
}

// runSpread names the range of the GEMM rate's runs, since every floor
// ratio scales with the median: a card that slows as it warms moves them
// all (empty for one run).
func runSpread(runs []float64) string {
	if len(runs) < 2 {
		return ""
	}
	lo, hi := runs[0], runs[0]
	for _, v := range runs[1:] {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return fmt.Sprintf(", runs from %s to %s; each floor ratio scales with this rate", fmtTFLOPS(lo), fmtTFLOPS(hi))
}

// fmtTFLOPS writes a card's rate whole and the CPU check's with three
// significant digits.
func fmtTFLOPS(t float64) string {
	if t >= 100 {
		return fmt.Sprintf("%.0f", t)
	}
	return fmt.Sprintf("%.3g", t)
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

// fmtTimes writes a ratio as a multiple: whole from 10x up, with decimals
// digits below, and blank when the row has none (0).
func fmtTimes(s float64, decimals int) string {
	if s == 0 {
		return ""
	}
	if s >= 10 {
		return fmt.Sprintf("%.0fx", s)
	}
	return fmt.Sprintf("%.*fx", decimals, s)
}

// fmtGiBSigned shows a remainder that may come out negative (nvidia-smi's
// figure is rounded to MiB and sampled after the runs).
func fmtGiBSigned(n int64) string {
	if n < 0 {
		return "-" + fmtBytes(-n)
	}
	return fmtBytes(n)
}

func fmtGiB(n int64) string {
	if n <= 0 {
		return ""
	}
	return fmtBytes(n)
}

// fmtBytes writes GiB, and MiB under a tenth of one, so that the CPU
// check's 2-layer models and their few MiB of KV do not read as 0.00 GiB.
func fmtBytes(n int64) string {
	if n < 1<<30/10 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// fmtParams writes a parameter count in billions, or millions under a
// tenth of a billion (the CPU check's 2-layer models).
func fmtParams(n int64) string {
	if n < 1e8 {
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f B", float64(n)/1e9)
}
