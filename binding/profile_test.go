//go:build cgo

package binding

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// coreReport is lmscore_profile_report's JSON (lmscore.h).
type coreReport struct {
	Backend string  `json:"backend"`
	Enabled *bool   `json:"enabled"`
	Clock   string  `json:"clock"`
	Steps   int64   `json:"steps"`
	Dropped int64   `json:"dropped_steps"`
	WallMS  float64 `json:"wall_ms"`
	Host    []struct {
		Name  string  `json:"name"`
		MS    float64 `json:"ms"`
		Count int64   `json:"count"`
	} `json:"host"`
	Phases []struct {
		Name  string  `json:"name"`
		MS    float64 `json:"ms"`
		Count int64   `json:"count"`
	} `json:"phases"`
}

func readReport(t *testing.T, m *Model) coreReport {
	t.Helper()
	raw, err := m.ProfileReport()
	if err != nil {
		t.Fatal(err)
	}
	var r coreReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, raw)
	}
	if r.Enabled == nil {
		t.Fatalf("the report has no \"enabled\": %s", raw)
	}
	return r
}

// The report through the ABI: off without the variable, on with it, the
// laps summing to the wall time, and a failed step counted as dropped.
func TestProfileReportThroughTheABI(t *testing.T) {
	m := smallModel(t, model.ArchLlama, model.TypeF32)
	rng := rand.New(rand.NewPCG(7, 8))
	x := randomTokens(rng, 40, m.Config.NVocab)
	bb := newBuilder(16)
	bb.segment(x, 0, 39, []int32{1, 2, 3}, x[1:40])

	t.Setenv("LMSCORE_PROFILE", "")
	off := openEngine(t, m, 2, 16, 8, 64, 64)
	off.run(t, bb.batch())
	if r := readReport(t, off.m); *r.Enabled || r.Backend != "cpu" || r.Steps != 0 {
		t.Errorf("profiler off: report %+v", r)
	}

	t.Setenv("LMSCORE_PROFILE", "1")
	on := openEngine(t, m, 2, 16, 8, 64, 64)
	on.run(t, bb.batch())
	on.run(t, bb.batch())
	bad := newBuilder(16)
	bad.segment(x, 0, 39, []int32{1, 2, 3}, x[1:40])
	bad.b.OutTarget[0] = int32(m.Config.NVocab) // past the vocabulary: refused
	if err := on.step.Run(on.kv, bad.batch(), new(scheduler.Result)); err == nil {
		t.Fatal("a target past the vocabulary ran")
	}
	r := readReport(t, on.m)
	if !*r.Enabled || r.Steps != 2 || r.Dropped != 1 || r.Clock == "" {
		t.Fatalf("profiler on, 2 steps and 1 refused: report %+v", r)
	}
	laps := 0.0
	for _, h := range r.Host {
		laps += h.MS
		if h.Count != 2 {
			t.Errorf("host lap %q ran %d times in 2 steps", h.Name, h.Count)
		}
	}
	if d := laps - r.WallMS; d > 1e-3 || d < -1e-3 {
		t.Errorf("host laps sum to %.6f ms, wall %.6f ms", laps, r.WallMS)
	}
	sum := 0.0
	for _, p := range r.Phases {
		sum += p.MS
		if p.Count <= 0 || p.MS < 0 {
			t.Errorf("phase %+v", p)
		}
	}
	if sum > r.WallMS+1e-3 || len(r.Phases) == 0 {
		t.Errorf("%d phases sum to %.6f ms, past the wall %.6f ms", len(r.Phases), sum, r.WallMS)
	}
}

func TestProfileEnvIsCheckedAtStepInit(t *testing.T) {
	m := smallModel(t, model.ArchLlama, model.TypeF32)
	mod, err := OpenCPU(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	t.Setenv("LMSCORE_PROFILE", "on")
	s, err := mod.NewStep(16, 16)
	if err == nil {
		s.Close()
		t.Fatal("LMSCORE_PROFILE=on made a step")
	}
	if e, ok := err.(*Error); !ok || e.Status != StatusInvalidArgument {
		t.Errorf("LMSCORE_PROFILE=on: %v, want INVALID_ARGUMENT", err)
	}
}
