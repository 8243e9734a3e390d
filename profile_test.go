package lmscore

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// The CPU core's phases of a dense model's step, each of which must have
// run when a model has been scored (names as csrc/cpu/step.cpp gives them).
var cpuDensePhases = []string{
	"block copy", "embed + rope angles + attn norm", "qkv gemm", "qkv bias + q/k norm + rope", "kv write",
	"attention", "gather output rows", "wo gemm", "attn residual + ffn norm", "gate/up gemm",
	"gated activation", "down gemm", "ffn residual + next attn norm", "output norm", "lm head gemm", "log-softmax",
}

func phaseSum(ps []ProfilePhase) float64 {
	s := 0.0
	for _, p := range ps {
		s += p.MS
	}
	return s
}

func phaseByName(ps []ProfilePhase) map[string]ProfilePhase {
	out := map[string]ProfilePhase{}
	for _, p := range ps {
		out[p.Name] = p
	}
	return out
}

// profiledRun scores reqs twice (cached, then not: more than one step
// each) on a fresh model with LMSCORE_PROFILE set to env, and returns the
// results of the first call and the profile after both.
func profiledRun(t *testing.T, env string, weights *model.Model, reqs []Request) ([]Result, Profile) {
	t.Helper()
	t.Setenv(ProfileEnv, env)
	m := openTest(t, weights, Options{Threads: 2, MaxBatchTokens: 96})
	res := scoreAll(t, m, reqs, ScoreOptions{})
	scoreAll(t, m, reqs, ScoreOptions{NoCache: true})
	p, err := m.Profile()
	require.NoError(t, err)
	return res, p
}

func TestProfileCPUCoversEveryPhase(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	reqs := randomRequests(11, 97, 80)
	plain, _ := profiledRun(t, "", weights, reqs)
	res, p := profiledRun(t, "1", weights, reqs)
	requireBitwise(t, plain, res, "profiling changes no score")

	require.True(t, p.Enabled)
	core := p.Core
	require.True(t, core.Enabled, "the core's report: %+v", core)
	assert.Equal(t, "cpu", core.Backend)
	assert.NotEmpty(t, core.Clock)
	assert.Equal(t, int64(2), p.ScoreCalls)
	assert.Greater(t, p.Steps, int64(2), "MaxBatchTokens 96 splits each call into steps")
	assert.Equal(t, p.Steps, core.Steps, "one core step per planned step")
	assert.Positive(t, p.ComputedTokens)

	phases := phaseByName(core.Phases)
	for _, name := range cpuDensePhases {
		ph, ok := phases[name]
		if assert.True(t, ok, "phase %q missing from %v", name, core.Phases) {
			assert.Positive(t, ph.Count, name)
			assert.GreaterOrEqual(t, ph.MS, 0.0, name)
		}
	}
	// Per layer, once per step (the model has 2 layers and one row chunk).
	assert.Equal(t, 2*core.Steps, phases["qkv gemm"].Count)
	assert.Equal(t, core.Steps, phases["lm head gemm"].Count)
	for _, h := range []string{"validate", "kv reserve", "plan attention", "compute"} {
		assert.Equal(t, core.Steps, phaseByName(core.Host)[h].Count, "host lap %q, once a step", h)
	}

	// The laps cut the wall time; the phases lie inside it; the core's wall
	// lies inside the cgo calls, and those inside Score.
	const slack = 1e-3 // ms: the report's rounding, summed
	assert.InDelta(t, core.WallMS, phaseSum(core.Host), slack)
	assert.LessOrEqual(t, phaseSum(core.Phases), core.WallMS+slack)
	host := phaseByName(p.Host)
	assert.LessOrEqual(t, core.WallMS, host["core call (cgo)"].MS+slack)
	assert.LessOrEqual(t, phaseSum(p.Host), p.WallMS+slack)
	for _, ph := range p.Host {
		assert.Positive(t, ph.Count, "host phase %q", ph.Name)
	}
	assert.Equal(t, p.Steps, host["core call (cgo)"].Count)

	// The profile is JSON both ways, as `lmscore score --profile` writes it.
	b, err := json.Marshal(p)
	require.NoError(t, err)
	var back Profile
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, p, back)
}

func TestProfileOffReportsDisabled(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	_, p := profiledRun(t, "", weights, randomRequests(4, 97, 40))
	assert.False(t, p.Enabled)
	assert.Equal(t, CoreProfile{Backend: "cpu", Enabled: false}, p.Core)
	assert.Empty(t, p.Host)
	assert.Zero(t, p.WallMS)
	_, p = profiledRun(t, "0", weights, randomRequests(4, 97, 40))
	assert.False(t, p.Enabled || p.Core.Enabled, "0 is off")
}

func TestProfileRefusesAnUnknownSetting(t *testing.T) {
	t.Setenv(ProfileEnv, "yes")
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	_, err := open(weights, "test", Options{Threads: 2, KVMemory: 16 << 20})
	require.Error(t, err)
	assert.Contains(t, err.Error(), ProfileEnv)
}

func TestProfileSubIsTheRunBetweenSnapshots(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	reqs := randomRequests(6, 97, 60)
	t.Setenv(ProfileEnv, "1")
	m := openTest(t, weights, Options{Threads: 2, MaxBatchTokens: 96})
	scoreAll(t, m, reqs, ScoreOptions{})
	before, err := m.Profile()
	require.NoError(t, err)
	m.ResetCache()
	_, st, err := m.Score(context.Background(), reqs, ScoreOptions{})
	require.NoError(t, err)
	after, err := m.Profile()
	require.NoError(t, err)
	d := after.Sub(before)
	assert.Equal(t, int64(1), d.ScoreCalls)
	assert.Equal(t, int64(st.Steps), d.Steps)
	assert.Equal(t, int64(st.Steps), d.Core.Steps)
	assert.Equal(t, st.ComputedTokens, d.ComputedTokens)
	assert.Equal(t, 2*d.Core.Steps, phaseByName(d.Core.Phases)["qkv gemm"].Count)
	assert.InDelta(t, d.Core.WallMS, phaseSum(d.Core.Host), 1e-3)
}
