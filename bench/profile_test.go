package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/workload"
)

// The profile of each peer's timed runs, on the CPU core: written beside
// the results, the warm-up left out, summarized into rows that sum to
// the wall time, and into markdown.
func TestLMScoreBenchWritesProfiles(t *testing.T) {
	t.Setenv(lmscore.ProfileEnv, "1")
	w, err := testmodel.New(testmodel.Options{Seed: 3, NVocab: 300, NCtx: 2400})
	require.NoError(t, err)
	m, err := lmscore.OpenModel(w, "tiny", lmscore.Options{Threads: 2, KVMemory: 64 << 20})
	require.NoError(t, err)
	defer m.Close()
	suite, err := GPUSuite("tiny", 300)
	require.NoError(t, err)
	lines, err := workload.Generate(suite[1].Generator, suite[1].Options)
	require.NoError(t, err)
	dir := t.TempDir()
	b := LMScoreBench{Model: m, ModelName: "tiny", Timing: Timing{Repeats: 2, Short: time.Hour}, ProfileDir: dir}
	rows, err := b.Run(context.Background(), suite[1].Name, lines)
	require.NoError(t, err)

	var runs []ProfileRun
	for _, row := range rows {
		r, err := ReadProfileRun(ProfilePath(dir, suite[1].Name, row.Peer))
		require.NoError(t, err, row.Peer)
		p := r.Profile
		assert.Equal(t, "tiny", r.Model)
		assert.Equal(t, 2, r.Runs)
		assert.Equal(t, int64(2), p.ScoreCalls, "the timed runs only, not the warm-up")
		assert.Equal(t, 2*row.ComputedTokens, p.ComputedTokens, "%s: both runs' tokens", row.Peer)
		assert.Equal(t, p.Steps, p.Core.Steps)

		total := 0.0
		for _, s := range ProfileSummary(p) {
			total += s.MS
			assert.GreaterOrEqual(t, s.MS, -1e-3, "%s: %s", row.Peer, s.What)
		}
		assert.InDelta(t, p.WallMS, total, 1e-6, "%s: the summary's rows sum to the wall", row.Peer)
		runs = append(runs, r)
	}

	var md strings.Builder
	require.NoError(t, WriteProfileMarkdown(&md, "tiny on the CPU", runs, rows, []string{"a test"}))
	out := md.String()
	assert.Contains(t, out, "# tiny on the CPU")
	assert.Contains(t, out, "| tiny | "+suite[1].Name+" | lmscore | 2 |")
	assert.NotContains(t, out, "not run", "the runs themselves are the baseline here")
	assert.Contains(t, out, "| qkv gemm |")
	assert.Contains(t, out, "| **wall** |")
	assert.Equal(t, 2, strings.Count(out, "Where the time goes"), "one section per run")
}

// A profile of `lmscore score --profile` reads as one run named by its
// file; one made with the profiler off is refused by name.
func TestReadProfileRunShapes(t *testing.T) {
	dir := t.TempDir()
	p := lmscore.Profile{Enabled: true, Model: "m", ScoreCalls: 1, WallMS: 10,
		Core: lmscore.CoreProfile{Backend: "cuda", Enabled: true, WallMS: 8}}
	b, err := json.Marshal(p)
	require.NoError(t, err)
	path := filepath.Join(dir, "metaicl0.json")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	r, err := ReadProfileRun(path)
	require.NoError(t, err)
	assert.Equal(t, ProfileRun{Model: "m", Workload: "metaicl0", Runs: 1, Profile: p}, r)

	b, err = json.Marshal(lmscore.Profile{Core: lmscore.CoreProfile{Backend: "cpu"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	_, err = ReadProfileRun(path)
	assert.ErrorContains(t, err, lmscore.ProfileEnv)
}

// The CUDA core's phases, as kernels/step.cpp names its launches, each in
// the category the summary gives it.
func TestPhaseCategoriesOfTheCUDACore(t *testing.T) {
	for name, want := range map[string]string{
		"uploading step inputs": catCopies, "block copy": catCopies, "downloading results": catCopies,
		"embed": catPointwise, "attn norm": catPointwise, "qkv gemm": catGEMM, "q norm": catPointwise,
		"rope and kv write": catPointwise, "attention": catAttention, "wo gemm": catGEMM,
		"attn residual": catPointwise, "ffn norm": catPointwise, "gate/up gemm": catGEMM, "up gemm": catGEMM,
		"gated activation": catPointwise, "gelu": catPointwise, "down gemm": catGEMM, "ffn residual": catPointwise,
		"output norm": catLMHead, "lm head gemm": catLMHead, "log-softmax": catLMHead,
		"dequantizing a weight": catDequant, "router gemm": catGEMM, "expert down gemm": catGEMM,
		"routing": catExperts, "waiting for the expert counts": catMoESync,
	} {
		assert.Equal(t, want, phaseCategory(name), name)
	}
}

// Idle time and the cgo crossing are what the phases leave of the walls.
func TestProfileSummaryDerivedRows(t *testing.T) {
	p := lmscore.Profile{WallMS: 100, ComputedTokens: 10,
		Host: []lmscore.ProfilePhase{{Name: "plan steps (scheduler)", MS: 5, Count: 2}, {Name: "core call (cgo)", MS: 90, Count: 2}},
		Core: lmscore.CoreProfile{Backend: "cuda", Enabled: true, WallMS: 88,
			Phases: []lmscore.ProfilePhase{{Name: "qkv gemm", MS: 50, Count: 64}, {Name: "attention", MS: 30, Count: 64}}}}
	got := map[string]float64{}
	for _, r := range ProfileSummary(p) {
		got[r.What] = r.MS
	}
	assert.Equal(t, map[string]float64{
		catGEMM: 50, catAttention: 30, "device idle inside the step calls": 8,
		"host: plan steps (scheduler)": 5, "cgo crossing (calls less the core's time)": 2, "host: rest of Score": 5,
	}, got)
}
