package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syntheticReport is two models' results: every peer on "a", lmscore
// alone on "b", and on model n2 a failed peer.
func syntheticReport() *Report {
	row := func(model, w, peer string, wall, speedup, floor float64) ReportRow {
		return ReportRow{Model: model, Workload: w, Peer: peer, Status: "ok", WallSeconds: wall, LMScoreSpeedup: speedup, WallOverFloor: floor}
	}
	return &Report{
		Card: "Card", Date: "2026-01-02",
		Models: []ModelShape{{Name: "n1"}, {Name: "n2"}},
		Meta:   []WorkloadMeta{{Model: "n1", Workload: "a"}, {Model: "n1", Workload: "b"}, {Model: "n2", Workload: "a"}},
		Rows: []ReportRow{
			row("n1", "a", PeerLMScore, 0.2, 1, 4),
			row("n1", "a", PeerLMScoreNoCache, 1, 5, 20),
			row("n1", "a", PeerHFNoCache, 4, 20, 80),
			row("n1", "b", PeerLMScore, 0.1, 1, 2),
			row("n2", "a", PeerLMScore, 0.3, 1, 3),
			{Model: "n2", Workload: "a", Peer: PeerHFCatwalk, Status: "error: CUDA out of memory"},
		},
	}
}

// TestReportCharts: the bars are the rows' figures, in workload order, NaN
// where a peer did not run, and lmscore has no bar of speedup over itself.
func TestReportCharts(t *testing.T) {
	charts := syntheticReport().Charts()
	require.Len(t, charts, 2)
	n1 := charts[0]
	assert.Equal(t, []string{"a", "b"}, n1.Speedup.Groups)
	require.Len(t, n1.Speedup.Series, 2, "no-cache and HF; not lmscore over itself")
	assert.Equal(t, peerTitles[PeerLMScoreNoCache], n1.Speedup.Series[0].Name)
	assert.Equal(t, 5.0, n1.Speedup.Series[0].Values[0])
	assert.True(t, math.IsNaN(n1.Speedup.Series[0].Values[1]), "no-cache did not run b")
	assert.Equal(t, 20.0, n1.Speedup.Series[1].Values[0])
	assert.Equal(t, "20x", n1.Speedup.Label(20))

	require.Len(t, n1.WallOverFloor.Series, 3)
	assert.Equal(t, []float64{4, 2}, n1.WallOverFloor.Series[0].Values, "lmscore on a and b")
	assert.Equal(t, 80.0, n1.WallOverFloor.Series[2].Values[0])
	assert.Equal(t, 1.0, n1.WallOverFloor.RefLine)

	n2 := charts[1]
	assert.Empty(t, n2.Speedup.Series, "the failed catwalk run has no bar")
	require.Len(t, n2.WallOverFloor.Series, 1)
	assert.Equal(t, []float64{3}, n2.WallOverFloor.Series[0].Values)
}

// TestReportPlotFile writes the plot of the synthetic report (one model's
// speedup panel empty) and of the committed H100 report.
func TestReportPlotFile(t *testing.T) {
	dir := t.TempDir()
	reports := map[string]*Report{"synthetic": syntheticReport()}
	if data, err := os.ReadFile("results/h100-1b-gpt2-large-bench.json"); err == nil {
		var rep Report
		require.NoError(t, json.Unmarshal(data, &rep))
		reports["h100"] = &rep
	}
	for name, rep := range reports {
		path := filepath.Join(dir, name+".png")
		require.NoError(t, rep.WritePlot(path), name)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")), name)
		assert.Greater(t, len(data), 10_000, name)
	}
	empty := &Report{Models: []ModelShape{{Name: "n"}}, Meta: []WorkloadMeta{{Model: "n", Workload: "a"}},
		Rows: []ReportRow{{Model: "n", Workload: "a", Peer: PeerLMScore, Status: "not run: no time"}}}
	assert.ErrorContains(t, empty.WritePlot(filepath.Join(dir, "empty.png")), "no run has figures")
}
