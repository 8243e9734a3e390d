package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// PeerHFFP32 is the float32 reference of the fidelity table
// (bench/peers/fp32_reference.py): transformers in fp32, TF32 off, on the
// same weights. It scores a subset of each workload, so its TokenLogProbs
// hold nil for the requests it left out; it is not timed and has no row in
// the speed table.
const PeerHFFP32 = "hf-fp32"

// FidelityRow is both engines' bf16 error against the fp32 reference on one
// workload, over the requests all three scored.
type FidelityRow struct {
	Model    string `json:"model"`
	Workload string `json:"workload"`
	Status   string `json:"status"` // "ok", or why there are no figures

	// LMScorePeer and HFPeer name the runs compared: lmscore's cached run
	// (its uncached one where that is missing: the two are bitwise equal)
	// and the harness-style HF peer (catwalk where that is missing).
	LMScorePeer string `json:"lmscore_peer,omitempty"`
	HFPeer      string `json:"hf_peer,omitempty"`

	Requests         int `json:"requests"`          // compared
	WorkloadRequests int `json:"workload_requests"` // in the workload
	// Per is "token" when every compared request has one score per
	// continuation token in all three runs, else "request" (its sum).
	Per      string `json:"per,omitempty"`
	Compared int    `json:"compared"` // tokens, or requests when Per is "request"

	LMScoreMean float64 `json:"lmscore_mean_abs_diff"`
	LMScoreMax  float64 `json:"lmscore_max_abs_diff"`
	HFMean      float64 `json:"hf_mean_abs_diff"`
	HFMax       float64 `json:"hf_max_abs_diff"`
	// Closer: lmscore's mean and max are both at most HF's.
	Closer bool `json:"lmscore_closer"`

	RefNote string `json:"reference_note,omitempty"`
}

// MarshalJSON writes a difference that a NaN score made infinite as the
// string "inf": JSON has no infinity, and the report's JSON must still be
// written.
func (r FidelityRow) MarshalJSON() ([]byte, error) {
	type plain FidelityRow
	finite := func(x float64) any {
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmtDiff(x)
		}
		return x
	}
	return json.Marshal(struct {
		plain
		LMScoreMean any `json:"lmscore_mean_abs_diff"`
		LMScoreMax  any `json:"lmscore_max_abs_diff"`
		HFMean      any `json:"hf_mean_abs_diff"`
		HFMax       any `json:"hf_max_abs_diff"`
	}{plain(r), finite(r.LMScoreMean), finite(r.LMScoreMax), finite(r.HFMean), finite(r.HFMax)})
}

// fidelityRows compares, for every workload the reference scored, lmscore
// and HF with it. runs is keyed by model/workload/peer.
func fidelityRows(metas []WorkloadMeta, runs map[string]*PeerRun) []FidelityRow {
	var out []FidelityRow
	for _, meta := range metas {
		key := meta.Model + "/" + meta.Workload + "/"
		ref := runs[key+PeerHFFP32]
		if ref == nil {
			continue
		}
		row := FidelityRow{Model: meta.Model, Workload: meta.Workload, WorkloadRequests: meta.Requests, RefNote: ref.Note}
		lm := scoredRun(runs, key, len(ref.TokenLogProbs), PeerLMScore, PeerLMScoreNoCache)
		hf := scoredRun(runs, key, len(ref.TokenLogProbs), PeerHFNoCache, PeerHFCatwalk)
		switch {
		case ref.Error != "":
			row.Status = "no reference: " + ref.Error
		case ref.Skipped != "":
			row.Status = "no reference: " + ref.Skipped
		case len(ref.TokenLogProbs) != meta.Requests:
			row.Status = fmt.Sprintf("the reference has %d requests, the workload %d", len(ref.TokenLogProbs), meta.Requests)
		case lm == nil:
			row.Status = "no lmscore scores of every request"
		case hf == nil:
			row.Status = "no HF scores of every request"
		}
		if row.Status != "" {
			out = append(out, row)
			continue
		}
		row.LMScorePeer, row.HFPeer = lm.Peer, hf.Peer
		compareFidelity(&row, ref.TokenLogProbs, lm.TokenLogProbs, hf.TokenLogProbs)
		out = append(out, row)
	}
	return out
}

// scoredRun is the first of peers whose run has scores of all n requests.
func scoredRun(runs map[string]*PeerRun, key string, n int, peers ...string) *PeerRun {
	for _, p := range peers {
		if r := runs[key+p]; r != nil && r.Error == "" && r.Skipped == "" && len(r.TokenLogProbs) == n {
			return r
		}
	}
	return nil
}

// compareFidelity fills row's figures from the requests that all three
// scored: per continuation token where all three have one score per token
// of every such request, else per request sum.
func compareFidelity(row *FidelityRow, ref, lm, hf [][]float64) {
	var idx []int
	perToken := true
	for i := range ref {
		if ref[i] == nil || lm[i] == nil || hf[i] == nil {
			continue
		}
		idx = append(idx, i)
		if len(lm[i]) != len(ref[i]) || len(hf[i]) != len(ref[i]) {
			perToken = false
		}
	}
	row.Requests = len(idx)
	if len(idx) == 0 {
		row.Status = "no request scored by all three"
		return
	}
	var lmSum, hfSum float64
	add := func(r, a, b float64) {
		da, db := absDiff(a, r), absDiff(b, r)
		lmSum, hfSum = lmSum+da, hfSum+db
		row.LMScoreMax, row.HFMax = math.Max(row.LMScoreMax, da), math.Max(row.HFMax, db)
		row.Compared++
	}
	for _, i := range idx {
		if perToken {
			for j := range ref[i] {
				add(ref[i][j], lm[i][j], hf[i][j])
			}
		} else {
			add(sum(ref[i]), sum(lm[i]), sum(hf[i]))
		}
	}
	row.Per = "request"
	if perToken {
		row.Per = "token"
	}
	row.LMScoreMean, row.HFMean = lmSum/float64(row.Compared), hfSum/float64(row.Compared)
	row.Closer = row.LMScoreMean <= row.HFMean && row.LMScoreMax <= row.HFMax
	row.Status = "ok"
}

// absDiff is |a - b|, with a NaN on either side counted as infinitely far.
func absDiff(a, b float64) float64 {
	d := math.Abs(a - b)
	if math.IsNaN(d) {
		return math.Inf(1)
	}
	return d
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// writeFidelity writes one model's fidelity table (nothing when the
// reference did not run on it).
func writeFidelity(b *strings.Builder, rows []FidelityRow, model string) {
	mine := ofModel(rows, model, func(r FidelityRow) string { return r.Model })
	if len(mine) == 0 {
		return
	}
	b.WriteString("### Fidelity against fp32\n\n" +
		"|Δ| is against the float32 reference (`hf-fp32`: transformers in fp32, TF32 off, on the same weights), " +
		"per continuation token (per request sum where `per` says so), over the requests all three scored: " +
		"the reference scores each workload's first questions (bench/peers/fp32_plan.py). " +
		"lmscore is its cached run; HF is the harness-style peer's (a), whose logprobs are log_softmax in fp32 " +
		"of its bf16 logits. closer: lmscore's mean and max |Δ| both at most HF's.\n\n")
	b.WriteString("| workload | requests | per | compared | lmscore mean \\|Δ\\| | lmscore max \\|Δ\\| | HF mean \\|Δ\\| | HF max \\|Δ\\| | lmscore closer |\n")
	b.WriteString("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	closer, ok := 0, 0
	var notes []string
	seen := map[string]bool{}
	for _, r := range mine {
		if r.Status != "ok" {
			fmt.Fprintf(b, "| %s | | | | %s | | | | |\n", r.Workload, mdEscape(r.Status))
			continue
		}
		ok++
		verdict := "no"
		if r.Closer {
			closer++
			verdict = "yes"
		}
		fmt.Fprintf(b, "| %s | %d of %d | %s | %d | %s | %s | %s | %s | %s |\n", r.Workload, r.Requests, r.WorkloadRequests,
			r.Per, r.Compared, fmtDiff(r.LMScoreMean), fmtDiff(r.LMScoreMax), fmtDiff(r.HFMean), fmtDiff(r.HFMax), verdict)
		if r.LMScorePeer != PeerLMScore || r.HFPeer != PeerHFNoCache {
			notes = append(notes, fmt.Sprintf("%s compares %s and %s", r.Workload, r.LMScorePeer, r.HFPeer))
		}
		if r.RefNote != "" && !seen[r.RefNote] {
			seen[r.RefNote] = true
			notes = append(notes, "reference: "+r.RefNote)
		}
	}
	fmt.Fprintf(b, "\nlmscore closer to fp32 on %d of %d workloads compared (%d in the table).", closer, ok, len(mine))
	if len(notes) > 0 {
		b.WriteString(" " + strings.Join(notes, "; ") + ".")
	}
	b.WriteString("\n\n")
}
