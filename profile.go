package lmscore

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/lmscore/lmscore/binding"
)

// ProfileEnv turns the phase profiler on when it is "1" as a model is
// opened ("" or "0": off). Both sides read it then, once: the native core,
// which times each phase of every step (CUDA events around each launch on
// the GPU, the host clock on the CPU), and this package, which times its
// own side of Score (planning, the batch descriptors, the cgo call,
// routing results). Model.Profile returns both.
const ProfileEnv = "LMSCORE_PROFILE"

// ProfilePhase is one phase's time, summed over every time it ran.
type ProfilePhase struct {
	Name  string  `json:"name"`
	MS    float64 `json:"ms"`
	Count int64   `json:"count"`
}

// CoreProfile is the native core's report, as lmscore_profile_report
// writes it (csrc/include/lmscore.h says what each field means): Host cuts
// the time inside the step calls into consecutive laps that sum to WallMS;
// Phases are the computing phases, which sum to at most WallMS.
type CoreProfile struct {
	Backend string         `json:"backend"`
	Enabled bool           `json:"enabled"`
	Clock   string         `json:"clock,omitempty"`
	Steps   int64          `json:"steps"`
	Dropped int64          `json:"dropped_steps"`
	WallMS  float64        `json:"wall_ms"`
	Host    []ProfilePhase `json:"host"`
	Phases  []ProfilePhase `json:"phases"`
}

// Profile is where a model's scoring time went, summed over every Score
// call since it was opened (Sub takes the difference of two snapshots).
// WallMS is Score's own wall time; Host cuts it into this package's
// phases, of which "core call" holds the native core's WallMS and the cgo
// crossings; what Host does not cover is the rest of Score (its set-up
// checks and deferred clean-up).
type Profile struct {
	Enabled        bool           `json:"enabled"`
	Model          string         `json:"model"`
	Backend        string         `json:"backend"`
	ScoreCalls     int64          `json:"score_calls"`
	Steps          int64          `json:"steps"`
	TotalTokens    int64          `json:"total_tokens"`
	ComputedTokens int64          `json:"computed_tokens"`
	WallMS         float64        `json:"wall_ms"`
	Host           []ProfilePhase `json:"host"`
	Core           CoreProfile    `json:"core"`
}

// The host phases, in the order a Score call goes through them.
const (
	hostPrepare   = iota // requests checked and tokenized, the trie and the planner built
	hostPlan             // waiting for planner.Next, which plans a step (and fills its arrays) on its own goroutine while the previous step runs
	hostBatch            // binding: result slices sized, Go memory pinned, C descriptors set
	hostCoreCall         // the cgo call: the core's whole step and the crossing
	hostRoute            // output rows routed to their requests, finished requests summed
	hostCallbacks        // OnResult and OnProgress: the caller's own time
	hostPhases
)

var hostPhaseNames = [hostPhases]string{
	"prepare (requests, trie, planner)", "plan steps (scheduler)", "batch descriptors (binding)",
	"core call (cgo)", "route results", "callbacks",
}

// hostProfile accumulates this package's side of a Profile. A nil one is
// the profiler off: its methods then do nothing and read no clock.
type hostProfile struct {
	calls, steps, total, computed int64
	wall                          time.Duration
	phase                         [hostPhases]time.Duration
	count                         [hostPhases]int64
	run                           binding.RunTimes // the last step's, filled by RunTimed
}

// newHostProfile reads ProfileEnv: a profile when it is "1", nil when it is
// off, and an error for any other value (as the cores refuse it).
func newHostProfile() (*hostProfile, error) {
	switch v := os.Getenv(ProfileEnv); v {
	case "", "0":
		return nil, nil
	case "1":
		return &hostProfile{}, nil
	default:
		return nil, fmt.Errorf("lmscore: %s=%s: want 1 (on) or 0 (off)", ProfileEnv, v)
	}
}

// now is the time, when profiling.
func (p *hostProfile) now() time.Time {
	if p == nil {
		return time.Time{}
	}
	return time.Now()
}

// since is the time since start, when profiling (0 otherwise).
func (p *hostProfile) since(start time.Time) time.Duration {
	if p == nil {
		return 0
	}
	return time.Since(start)
}

// routed closes a step's handling of its results, begun at start, of
// which callbacks were the caller's.
func (p *hostProfile) routed(start time.Time, callbacks time.Duration) {
	if p == nil {
		return
	}
	p.phase[hostRoute] += time.Since(start) - callbacks
	p.phase[hostCallbacks] += callbacks
	p.count[hostRoute]++
	p.count[hostCallbacks]++
}

// lap adds the time since start to phase i and returns the time now.
func (p *hostProfile) lap(i int, start time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	now := time.Now()
	p.phase[i] += now.Sub(start)
	p.count[i]++
	return now
}

// runTimes is where RunTimed records a step's split; nil when off, which
// makes RunTimed a plain Run.
func (p *hostProfile) runTimes() *binding.RunTimes {
	if p == nil {
		return nil
	}
	return &p.run
}

// stepRan adds the last RunTimed's split to the batch and core call phases.
func (p *hostProfile) stepRan() {
	if p == nil {
		return
	}
	p.phase[hostBatch] += p.run.Prepare
	p.phase[hostCoreCall] += p.run.Call
	p.count[hostBatch]++
	p.count[hostCoreCall]++
}

// scored adds one Score call's wall time and counts.
func (p *hostProfile) scored(start time.Time, st Stats) {
	if p == nil {
		return
	}
	p.wall += time.Since(start)
	p.calls++
	p.steps += int64(st.Steps)
	p.total += st.TotalTokens
	p.computed += st.ComputedTokens
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Profile returns the model's phase profile so far: Enabled false (and
// nothing else measured) unless ProfileEnv was "1" when it was opened.
func (m *Model) Profile() (Profile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Profile{}, ErrClosed
	}
	p := Profile{Model: m.info.Name, Backend: m.info.Backend, Enabled: m.prof != nil}
	raw, err := m.engine.ProfileReport()
	if err != nil {
		return Profile{}, classify(err)
	}
	if err := json.Unmarshal(raw, &p.Core); err != nil {
		return Profile{}, fmt.Errorf("lmscore: the %s core's profile report: %w", m.info.Backend, err)
	}
	if h := m.prof; h != nil {
		p.ScoreCalls, p.Steps, p.TotalTokens, p.ComputedTokens = h.calls, h.steps, h.total, h.computed
		p.WallMS = ms(h.wall)
		for i := range hostPhases {
			p.Host = append(p.Host, ProfilePhase{Name: hostPhaseNames[i], MS: ms(h.phase[i]), Count: h.count[i]})
		}
	}
	return p, nil
}

// Sub returns what ran between an earlier snapshot q of the same model
// and p: every sum and count of p less q's.
func (p Profile) Sub(q Profile) Profile {
	d := p
	d.ScoreCalls -= q.ScoreCalls
	d.Steps -= q.Steps
	d.TotalTokens -= q.TotalTokens
	d.ComputedTokens -= q.ComputedTokens
	d.WallMS -= q.WallMS
	d.Host = subPhases(p.Host, q.Host)
	d.Core.Steps -= q.Core.Steps
	d.Core.Dropped -= q.Core.Dropped
	d.Core.WallMS -= q.Core.WallMS
	d.Core.Host = subPhases(p.Core.Host, q.Core.Host)
	d.Core.Phases = subPhases(p.Core.Phases, q.Core.Phases)
	return d
}

// subPhases is a - b by name, in a's order; a phase b lacks stays whole.
func subPhases(a, b []ProfilePhase) []ProfilePhase {
	before := map[string]ProfilePhase{}
	for _, ph := range b {
		before[ph.Name] = ph
	}
	out := make([]ProfilePhase, 0, len(a))
	for _, ph := range a {
		q := before[ph.Name]
		out = append(out, ProfilePhase{Name: ph.Name, MS: ph.MS - q.MS, Count: ph.Count - q.Count})
	}
	return out
}
