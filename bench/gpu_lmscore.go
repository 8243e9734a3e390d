package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/workload"
)

// Timing says how the drivers time a peer: one warm-up run that is not
// counted, then timed runs; a run shorter than Short is repeated until
// there are Repeats of them, and the median is reported. A longer run
// counts alone: its noise is small beside its length, and the device time
// it would take to repeat it is better spent on more workloads.
type Timing struct {
	Repeats  int           // at least this many runs when the first is short (default 3)
	Short    time.Duration // default 3 s
	Deadline time.Time     // zero: none; past it, no further run starts
}

func (t Timing) withDefaults() Timing {
	if t.Repeats <= 0 {
		t.Repeats = 3
	}
	if t.Short <= 0 {
		t.Short = 3 * time.Second
	}
	return t
}

// more reports whether another timed run should start after runs.
func (t Timing) more(runs []float64) bool {
	if len(runs) == 0 {
		return true
	}
	if len(runs) >= t.Repeats || runs[0] >= t.Short.Seconds() {
		return false
	}
	// Start only a run that can finish before the deadline.
	return t.Deadline.IsZero() || time.Now().Add(time.Duration(runs[0]*float64(time.Second))).Before(t.Deadline)
}

// LMScoreBench runs lmscore, with and without its prefix cache, on
// workloads already written as request JSONL.
type LMScoreBench struct {
	Model     *lmscore.Model
	ModelName string // the report's name for the model
	Timing    Timing
	// GPUMemory, when set, measures the process's device memory after a
	// workload's runs; it returns the bytes and how they were measured.
	GPUMemory func() (int64, string, error)
	// WeightBytes and LoadSeconds are copied into every row (see PeerRun).
	WeightBytes int64
	LoadSeconds float64
	// ProfileDir, when set, gets each peer's profile of its timed runs
	// (ProfilePath); the model must have been opened with
	// lmscore.ProfileEnv=1.
	ProfileDir string

	maxKVBytes int64 // the most live KV of any run so far
}

// Run measures one workload and returns the lmscore and lmscore-nocache
// rows. Each cached run starts from an empty cache, as the first did.
func (b *LMScoreBench) Run(ctx context.Context, name string, lines []workload.Line) ([]PeerRun, error) {
	t := b.Timing.withDefaults()
	reqs := workload.Requests(lines)
	var rows []PeerRun
	for _, noCache := range []bool{false, true} {
		row := PeerRun{Model: b.ModelName, Workload: name, Peer: PeerLMScore}
		if noCache {
			row.Peer = PeerLMScoreNoCache
		}
		if !t.Deadline.IsZero() && time.Now().After(t.Deadline) {
			row.Skipped = "the run's time budget was spent before this peer started"
			rows = append(rows, row)
			continue
		}
		// The warm-up of the uncached run is a slice of the requests: its
		// kernels are those of the cached run just before it, and the whole
		// name would cost as much as a timed run.
		warm := reqs
		if noCache {
			warm = reqs[:max(1, len(reqs)/10)]
			row.WarmupNote = fmt.Sprintf("first %d of %d requests", len(warm), len(reqs))
		}
		start := time.Now()
		b.Model.ResetCache()
		_, wst, err := b.Model.Score(ctx, warm, lmscore.ScoreOptions{NoCache: noCache})
		if err != nil {
			return nil, fmt.Errorf("%s %s warm-up: %w", name, row.Peer, err)
		}
		b.maxKVBytes = max(b.maxKVBytes, wst.PeakKVBytes)
		row.WarmupSeconds = time.Since(start).Seconds()
		var before lmscore.Profile
		if b.ProfileDir != "" {
			if before, err = b.Model.Profile(); err != nil {
				return nil, err
			}
		}
		for t.more(row.RunsSeconds) {
			b.Model.ResetCache()
			start := time.Now()
			res, st, err := b.Model.Score(ctx, reqs, lmscore.ScoreOptions{NoCache: noCache})
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", name, row.Peer, err)
			}
			row.RunsSeconds = append(row.RunsSeconds, time.Since(start).Seconds())
			if row.TokenLogProbs == nil {
				row.TotalTokens, row.ComputedTokens = st.TotalTokens, st.ComputedTokens
				row.TokenLogProbs = make([][]float64, len(res))
				row.IsGreedy = make([]bool, len(res))
				for i, r := range res {
					row.TokenLogProbs[i] = make([]float64, len(r.TokenLogProbs))
					for j, lp := range r.TokenLogProbs {
						row.TokenLogProbs[i][j] = float64(lp)
					}
					row.IsGreedy[i] = r.IsGreedy
				}
				row.Extra = map[string]any{
					"unique_tokens": st.UniqueTokens, "reused_tokens": st.ReusedTokens,
					"recomputed_tokens": st.RecomputedTokens, "steps": st.Steps,
					"peak_kv_bytes": st.PeakKVBytes, "evictions": st.Evictions,
				}
			}
			b.maxKVBytes = max(b.maxKVBytes, st.PeakKVBytes)
		}
		if b.ProfileDir != "" {
			after, err := b.Model.Profile()
			if err != nil {
				return nil, err
			}
			pr := ProfileRun{Model: b.ModelName, Workload: name, Peer: row.Peer, Runs: len(row.RunsSeconds), Profile: after.Sub(before)}
			if err := WriteProfileRun(ProfilePath(b.ProfileDir, name, row.Peer), pr); err != nil {
				return nil, err
			}
		}
		row.WeightBytes, row.KVBytes, row.LoadSeconds = b.WeightBytes, b.maxKVBytes, b.LoadSeconds
		if b.GPUMemory != nil {
			n, how, err := b.GPUMemory()
			if err != nil {
				row.PeakGPUHow = "not measured: " + err.Error()
			} else {
				row.PeakGPUBytes, row.PeakGPUHow = n, how
			}
		}
		rows = append(rows, row)
	}
	// On the CPU the two must agree bit for bit; on the GPU the report
	// shows how far apart they are.
	if rows[0].OK() && rows[1].OK() {
		same := true
		for i := range rows[0].TokenLogProbs {
			for j := range rows[0].TokenLogProbs[i] {
				same = same && rows[0].TokenLogProbs[i][j] == rows[1].TokenLogProbs[i][j]
			}
		}
		rows[0].Extra["bitwise_equal_to_nocache"] = same
	}
	return rows, nil
}
