package bench

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fidelityInput is one model with workloads w (lmscore closer), v (lmscore's
// mean better, its max worse), s (HF has one score per request) and n (no
// HF run); the reference leaves request 2 of w out.
func fidelityInput() ReportInput {
	shape := ModelShape{Name: "m", Arch: "llama", NLayer: 1, NEmbd: 4, NHead: 1, HeadDim: 4, NVocab: 10, BodyParams: 100, TotalParams: 140}
	meta := func(w string, n int) WorkloadMeta {
		return WorkloadMeta{Model: "m", Workload: w, Requests: n, TotalTokens: 10, UniqueTokens: 10, Outputs: 4, AttnKeys: 10}
	}
	run := func(w, peer string, lps [][]float64) PeerRun {
		return PeerRun{Model: "m", Workload: w, Peer: peer, RunsSeconds: []float64{1}, TotalTokens: 10, TokenLogProbs: lps}
	}
	return ReportInput{
		Models: []ModelShape{shape},
		Meta:   []WorkloadMeta{meta("w", 4), meta("v", 2), meta("s", 2), meta("n", 1)},
		Runs: []PeerRun{
			{Model: "m", Workload: "w", Peer: PeerHFFP32, TotalTokens: 10, Note: "fp32 on cuda",
				TokenLogProbs: [][]float64{{-1, -2}, {-3}, nil, {-0.5}}},
			// |Δ| 0.01, 0.02, 0.006, 0; request 2 is far off, and left out.
			run("w", PeerLMScore, [][]float64{{-1.01, -2.02}, {-3.006}, {-100}, {-0.5}}),
			// |Δ| 0.1, 0, 0.2, 0.05.
			run("w", PeerHFNoCache, [][]float64{{-1.1, -2}, {-3.2}, {-9}, {-0.45}}),

			{Model: "m", Workload: "v", Peer: PeerHFFP32, TokenLogProbs: [][]float64{{-1}, {-2}}},
			run("v", PeerLMScore, [][]float64{{-1.3}, {-2}}),     // |Δ| 0.3, 0: mean 0.15
			run("v", PeerHFNoCache, [][]float64{{-1.2}, {-2.2}}), // |Δ| 0.2, 0.2: mean 0.2

			{Model: "m", Workload: "s", Peer: PeerHFFP32, TokenLogProbs: [][]float64{{-1, -2}, {-4}}},
			run("s", PeerLMScore, [][]float64{{-1.1, -2.1}, {-4}}),
			run("s", PeerHFNoCache, [][]float64{{-2.5}, {-4.1}}), // sums: -2.5 and -4.1

			{Model: "m", Workload: "n", Peer: PeerHFFP32, TokenLogProbs: [][]float64{{-1}}},
			run("n", PeerLMScore, [][]float64{{-1}}),
		},
	}
}

func fidelityOf(t *testing.T, rep *Report, workload string) FidelityRow {
	t.Helper()
	for _, r := range rep.Fidelity {
		if r.Workload == workload {
			return r
		}
	}
	t.Fatalf("no fidelity row for %s in %+v", workload, rep.Fidelity)
	return FidelityRow{}
}

func TestFidelityAgainstFP32(t *testing.T) {
	rep, err := BuildReport(fidelityInput())
	require.NoError(t, err)
	require.Len(t, rep.Fidelity, 4)

	w := fidelityOf(t, rep, "w")
	assert.Equal(t, "ok", w.Status)
	assert.Equal(t, 3, w.Requests, "request 2 has no reference score")
	assert.Equal(t, 4, w.WorkloadRequests)
	assert.Equal(t, "token", w.Per)
	assert.Equal(t, 4, w.Compared)
	assert.InDelta(t, (0.01+0.02+0.006+0)/4, w.LMScoreMean, 1e-12)
	assert.InDelta(t, 0.02, w.LMScoreMax, 1e-12)
	assert.InDelta(t, (0.1+0+0.2+0.05)/4, w.HFMean, 1e-12)
	assert.InDelta(t, 0.2, w.HFMax, 1e-12)
	assert.True(t, w.Closer)
	assert.Equal(t, PeerLMScore, w.LMScorePeer)
	assert.Equal(t, PeerHFNoCache, w.HFPeer)

	v := fidelityOf(t, rep, "v")
	assert.InDelta(t, 0.15, v.LMScoreMean, 1e-12)
	assert.InDelta(t, 0.3, v.LMScoreMax, 1e-12)
	assert.InDelta(t, 0.2, v.HFMean, 1e-12)
	assert.InDelta(t, 0.2, v.HFMax, 1e-12)
	assert.False(t, v.Closer, "a better mean does not make up for a worse max")

	s := fidelityOf(t, rep, "s")
	assert.Equal(t, "request", s.Per, "HF has one score for a two-token request")
	assert.Equal(t, 2, s.Compared)
	assert.InDelta(t, (0.2+0)/2, s.LMScoreMean, 1e-12) // sums -3.2 against -3, -4 against -4
	assert.InDelta(t, (0.5+0.1)/2, s.HFMean, 1e-12)
	assert.InDelta(t, 0.5, s.HFMax, 1e-12)
	assert.True(t, s.Closer)

	n := fidelityOf(t, rep, "n")
	assert.Equal(t, "no HF scores of every request", n.Status)

	var md strings.Builder
	require.NoError(t, rep.WriteMarkdown(&md))
	out := md.String()
	for _, want := range []string{"### Fidelity against fp32",
		"| w | 3 of 4 | token | 4 | 0.0090 | 0.0200 | 0.0875 | 0.2000 | yes |",
		"| v | 2 of 2 | token | 2 | 0.1500 | 0.3000 | 0.2000 | 0.2000 | no |",
		"| s | 2 of 2 | request | 2 |", "| n | | | | no HF scores of every request |",
		"lmscore closer to fp32 on 2 of 3 workloads compared (4 in the table).", "reference: fp32 on cuda"} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "| hf-fp32 |", "the reference has no row in the speed table")
	for _, r := range rep.Rows {
		assert.NotEqual(t, PeerHFFP32, r.Peer)
	}
}

func TestFidelityFallbacksAndGaps(t *testing.T) {
	in := fidelityInput()
	// HF's harness-style run failed: catwalk's scores stand in, and the
	// table says so; lmscore's cached run is missing: its uncached one.
	for i := range in.Runs {
		r := &in.Runs[i]
		if r.Workload == "w" && r.Peer == PeerHFNoCache {
			r.Error, r.TokenLogProbs = "out of memory", nil
		}
		if r.Workload == "w" && r.Peer == PeerLMScore {
			r.Peer = PeerLMScoreNoCache
		}
		if r.Workload == "v" && r.Peer == PeerHFFP32 {
			r.TokenLogProbs = r.TokenLogProbs[:1]
		}
		if r.Workload == "s" && r.Peer == PeerHFFP32 {
			r.Skipped, r.TokenLogProbs = "no time", nil
		}
	}
	in.Runs = append(in.Runs, PeerRun{Model: "m", Workload: "w", Peer: PeerHFCatwalk, RunsSeconds: []float64{1},
		TokenLogProbs: [][]float64{{-1, math.NaN()}, {-3}, {-3}, {-0.5}}})
	rep, err := BuildReport(in)
	require.NoError(t, err)
	w := fidelityOf(t, rep, "w")
	assert.Equal(t, PeerLMScoreNoCache, w.LMScorePeer)
	assert.Equal(t, PeerHFCatwalk, w.HFPeer)
	assert.True(t, math.IsInf(w.HFMax, 1), "a NaN score is infinitely far")
	assert.True(t, w.Closer)
	assert.Equal(t, "the reference has 1 requests, the workload 2", fidelityOf(t, rep, "v").Status)
	assert.Equal(t, "no reference: no time", fidelityOf(t, rep, "s").Status)
	var md strings.Builder
	require.NoError(t, rep.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "w compares lmscore-nocache and hf-catwalk")
	assert.Contains(t, md.String(), "| inf | yes |")
	// The report's JSON is still written, the infinity as a string.
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var back struct {
		Fidelity []map[string]any `json:"fidelity"`
	}
	require.NoError(t, json.Unmarshal(b, &back))
	require.Len(t, back.Fidelity, 4)
	assert.Equal(t, "w", back.Fidelity[0]["workload"])
	assert.Equal(t, "inf", back.Fidelity[0]["hf_max_abs_diff"])
	assert.InDelta(t, 0.02, back.Fidelity[0]["lmscore_max_abs_diff"], 1e-12)
	assert.Equal(t, true, back.Fidelity[0]["lmscore_closer"])

	// Without a reference run there is no table.
	var none []PeerRun
	for _, r := range in.Runs {
		if r.Peer != PeerHFFP32 {
			none = append(none, r)
		}
	}
	in.Runs = none
	rep, err = BuildReport(in)
	require.NoError(t, err)
	assert.Empty(t, rep.Fidelity)
	md.Reset()
	require.NoError(t, rep.WriteMarkdown(&md))
	assert.NotContains(t, md.String(), "Fidelity")
}

// The reference writes JSON null for a request outside its subset
// (fp32_reference.py); it reads back as a nil slice.
func TestFidelityReadsNullScores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fp32.jsonl")
	line := `{"model": "m", "workload": "w", "peer": "hf-fp32", "total_tokens": 3, "computed_tokens": 3, ` +
		`"token_logprobs": [[-1.5, -0.25], null, [-2.0]], "note": "n", "extra": {"requests": 2}}` + "\n"
	require.NoError(t, os.WriteFile(path, []byte(line), 0o644))
	runs, err := ReadPeerRuns(path)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Len(t, runs[0].TokenLogProbs, 3)
	assert.Equal(t, []float64{-1.5, -0.25}, runs[0].TokenLogProbs[0])
	assert.Nil(t, runs[0].TokenLogProbs[1])
	assert.Equal(t, []float64{-2}, runs[0].TokenLogProbs[2])
}
