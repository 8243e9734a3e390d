package bench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEngineRowsPerComputedToken(t *testing.T) {
	rows := []ReportRow{
		{Model: "m", Workload: "a", Peer: PeerLMScoreNoCache, Status: "ok", WallSeconds: 2, ComputedTokens: 600, TotalTokens: 500},
		{Model: "m", Workload: "a", Peer: PeerHFNoCache, Status: "ok", WallSeconds: 3, ComputedTokens: 600, TotalTokens: 500},
		// No HF row: no comparison.
		{Model: "m", Workload: "b", Peer: PeerLMScoreNoCache, Status: "ok", WallSeconds: 1, ComputedTokens: 100, TotalTokens: 100},
		// HF did not finish: no comparison.
		{Model: "m", Workload: "c", Peer: PeerLMScoreNoCache, Status: "ok", WallSeconds: 1, ComputedTokens: 100, TotalTokens: 100},
		{Model: "m", Workload: "c", Peer: PeerHFNoCache, Status: "skipped: budget", TotalTokens: 100},
		// HF computes fewer tokens than the inputs where equal inputs share
		// a row: the ratio goes below 1 (it is not padding alone).
		{Model: "m", Workload: "d", Peer: PeerLMScoreNoCache, Status: "ok", WallSeconds: 1, ComputedTokens: 100, TotalTokens: 100},
		{Model: "m", Workload: "d", Peer: PeerHFNoCache, Status: "ok", WallSeconds: 2, ComputedTokens: 80, TotalTokens: 100},
		// The cached run is not the engine comparison.
		{Model: "m", Workload: "a", Peer: PeerLMScore, Status: "ok", WallSeconds: 0.1, ComputedTokens: 50, TotalTokens: 500},
	}
	got := engineRows(rows)
	require.Len(t, got, 2)
	e := got[0]
	assert.Equal(t, "a", e.Workload)
	assert.InDelta(t, 300, e.LMScoreComputedPerSecond, 1e-9)
	assert.InDelta(t, 200, e.HFComputedPerSecond, 1e-9)
	assert.InDelta(t, 1.5, e.Ratio, 1e-12)
	assert.InDelta(t, 1.2, e.HFComputedOverTotal, 1e-12)
	assert.Equal(t, "d", got[1].Workload)
	assert.InDelta(t, 0.8, got[1].HFComputedOverTotal, 1e-12)
	assert.InDelta(t, 2.5, got[1].Ratio, 1e-12)

	var b strings.Builder
	writeEngine(&b, got, "m")
	assert.Contains(t, b.String(), "| a | 300 | 200 | 1.20x | 1.50x |")
	assert.Contains(t, b.String(), "| d | 100 | 40 | 0.80x | 2.50x |")
	b.Reset()
	writeEngine(&b, got, "other")
	assert.Empty(t, b.String(), "a model without rows gets no table")
}
