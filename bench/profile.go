package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lmscore/lmscore"
)

// ProfileRun is one peer's timed runs of one workload with the phase
// profiler on (lmscore.ProfileEnv), as `benchgpu lmscore --profile` writes
// it beside its results: the profile of those runs alone, the warm-up left
// out.
type ProfileRun struct {
	Model    string          `json:"model"`
	Workload string          `json:"workload"`
	Peer     string          `json:"peer"`
	Runs     int             `json:"runs"`
	Profile  lmscore.Profile `json:"profile"`
}

// ProfilePath is where the profile of a peer's runs of a workload goes,
// in the folder of the runs' results.
func ProfilePath(dir, workload, peer string) string {
	return filepath.Join(dir, workload+"."+peer+".profile.json")
}

// WriteProfileRun writes r as indented JSON.
func WriteProfileRun(path string, r ProfileRun) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadProfileRun reads what WriteProfileRun wrote, or a bare
// lmscore.Profile as `lmscore score --profile` writes it (named then by
// the file, one run).
func ReadProfileRun(path string) (ProfileRun, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ProfileRun{}, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return ProfileRun{}, fmt.Errorf("%s: %v", path, err)
	}
	var r ProfileRun
	if _, ok := probe["profile"]; ok {
		err = json.Unmarshal(b, &r)
	} else {
		err = json.Unmarshal(b, &r.Profile)
		r.Model, r.Workload, r.Runs = r.Profile.Model, strings.TrimSuffix(filepath.Base(path), ".json"), int(r.Profile.ScoreCalls)
	}
	if err != nil {
		return ProfileRun{}, fmt.Errorf("%s: %v", path, err)
	}
	if !r.Profile.Enabled || !r.Profile.Core.Enabled {
		return ProfileRun{}, fmt.Errorf("%s: the profiler was off in this run (%s=1 turns it on)", path, lmscore.ProfileEnv)
	}
	return r, nil
}

// Where the time goes: the rows of a profile's summary, each core phase
// in one category by its name (kernels/step.cpp's and csrc/cpu/step.cpp's).
const (
	catGEMM      = "GEMMs (qkv, wo, gate/up, down)"
	catAttention = "attention"
	catPointwise = "norms, RoPE, KV writes, activations, residuals, embedding"
	catLMHead    = "LM head: output norm, GEMM, log-softmax/top-n"
	catExperts   = "experts: routing, grouping, combining"
	catMoESync   = "experts: waiting for the expert counts"
	catCopies    = "copies: inputs up, results down, KV blocks"
	catDequant   = "dequantizing weights"
	catOther     = "other core phases"
)

var coreCategories = []string{catGEMM, catAttention, catPointwise, catLMHead, catExperts, catMoESync, catCopies, catDequant, catOther}

// phaseCategory files a core phase under a category.
func phaseCategory(name string) string {
	switch name {
	case "output norm", "lm head gemm", "log-softmax":
		return catLMHead
	case "attention":
		return catAttention
	case "uploading step inputs", "downloading results", "block copy", "downloading the expert counts":
		return catCopies
	case "dequantizing a weight":
		return catDequant
	case "waiting for the expert counts", "recording the expert counts' event":
		return catMoESync
	case "routing", "grouping tokens by expert", "gathering expert rows", "weighted sum of the experts", "experts":
		return catExperts
	case "other phases":
		return catOther
	}
	if strings.HasSuffix(name, " gemm") {
		return catGEMM
	}
	return catPointwise
}

// ProfileRow is one line of a profile's breakdown of its wall time.
type ProfileRow struct {
	What  string
	MS    float64
	Count int64 // 0: a derived row
}

// ProfileSummary partitions a profile's wall time (lmscore's Score, summed
// over the runs): the core's phases by category, the device's idle time
// inside the step calls (the core's wall less its phases), the cgo
// crossing (the calls less the core's wall), the host phases of the Go
// side, and what Score spent outside them. The rows sum to the wall.
func ProfileSummary(p lmscore.Profile) []ProfileRow {
	byCat := map[string]*ProfileRow{}
	coreSum := 0.0
	for _, ph := range p.Core.Phases {
		if ph.Count <= 0 {
			continue
		}
		c := phaseCategory(ph.Name)
		if byCat[c] == nil {
			byCat[c] = &ProfileRow{What: c}
		}
		byCat[c].MS += ph.MS
		byCat[c].Count += ph.Count
		coreSum += ph.MS
	}
	var rows []ProfileRow
	for _, c := range coreCategories {
		if r := byCat[c]; r != nil {
			rows = append(rows, *r)
		}
	}
	idle := "the core's own host work, no phase running"
	if p.Core.Backend == "cuda" {
		idle = "device idle inside the step calls"
	}
	rows = append(rows, ProfileRow{What: idle, MS: p.Core.WallMS - coreSum})
	hostSum := 0.0
	for _, h := range p.Host {
		hostSum += h.MS
		if h.Name == "core call (cgo)" {
			rows = append(rows, ProfileRow{What: "cgo crossing (calls less the core's time)", MS: h.MS - p.Core.WallMS, Count: h.Count})
			continue
		}
		rows = append(rows, ProfileRow{What: "host: " + h.Name, MS: h.MS, Count: h.Count})
	}
	rows = append(rows, ProfileRow{What: "host: rest of Score", MS: p.WallMS - hostSum})
	return rows
}

// WriteProfileMarkdown writes the profiles as markdown: an overview with
// one row per run, then per run where its time went and every phase.
// baseline, when given, holds the same peers' runs with the profiler off:
// the overview sets their mean wall beside the profiled one, which is what
// the profiler's events cost.
func WriteProfileMarkdown(w io.Writer, title string, runs []ProfileRun, baseline []PeerRun, notes []string) error {
	off := map[string]float64{}
	for _, r := range baseline {
		if r.OK() && len(r.RunsSeconds) > 0 {
			sum := 0.0
			for _, s := range r.RunsSeconds {
				sum += s
			}
			off[r.Model+"/"+r.Workload+"/"+r.Peer] = 1000 * sum / float64(len(r.RunsSeconds))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "Phase profiles (`%s=1`): CUDA events around every launch of a step on the GPU, the host clock on the CPU core and in Go. "+
		"Each wall time is lmscore's `Score`, summed over the timed runs (the warm-up left out); the profiler's own events are in it. "+
		"Per-token figures divide by the computed tokens. How to read and regenerate it: bench/README.md, \"Phase profile\".\n\n", lmscore.ProfileEnv)
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("| model | workload | peer | runs | steps | computed tokens | wall ms / run | profiler off | GEMMs | attention | LM head | pointwise | copies | other core | idle in calls | host (Go) |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range runs {
		p := r.Profile
		share := map[string]float64{}
		for _, row := range ProfileSummary(p) {
			switch {
			case strings.HasPrefix(row.What, "host: ") || strings.HasPrefix(row.What, "cgo crossing"):
				share["host"] += row.MS
			case row.Count == 0:
				share["idle"] += row.MS
			default:
				share[row.What] += row.MS
			}
		}
		pct := func(ms float64) string { return percent(ms, p.WallMS) }
		other := share[catExperts] + share[catMoESync] + share[catDequant] + share[catOther]
		offMS := "not run"
		if ms, ok := off[r.Model+"/"+r.Workload+"/"+r.Peer]; ok {
			offMS = fmt.Sprintf("%.1f", ms)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Model, r.Workload, r.Peer, r.Runs, p.Steps, p.ComputedTokens, p.WallMS/float64(max(r.Runs, 1)), offMS,
			pct(share[catGEMM]), pct(share[catAttention]), pct(share[catLMHead]), pct(share[catPointwise]),
			pct(share[catCopies]), pct(other), pct(share["idle"]), pct(share["host"]))
	}
	for _, r := range runs {
		p := r.Profile
		perToken := func(ms float64) string {
			if p.ComputedTokens <= 0 {
				return ""
			}
			return fmt.Sprintf("%.3f", ms*1000/float64(p.ComputedTokens))
		}
		fmt.Fprintf(&b, "\n## %s · %s · %s\n\n", r.Model, r.Workload, r.Peer)
		fmt.Fprintf(&b, "%d runs, %d steps (%d in the core, %d dropped), %d computed of %d total tokens; wall %.1f ms; the core (%s) timed by %s.\n\n",
			r.Runs, p.Steps, p.Core.Steps, p.Core.Dropped, p.ComputedTokens, p.TotalTokens, p.WallMS, p.Core.Backend, p.Core.Clock)
		b.WriteString("Where the time goes (the rows sum to the wall):\n\n| where | ms | % of wall | µs / token |\n| --- | ---: | ---: | ---: |\n")
		for _, row := range ProfileSummary(p) {
			fmt.Fprintf(&b, "| %s | %.2f | %s | %s |\n", row.What, row.MS, percent(row.MS, p.WallMS), perToken(row.MS))
		}
		fmt.Fprintf(&b, "| **wall** | **%.2f** | 100.0 | %s |\n", p.WallMS, perToken(p.WallMS))
		b.WriteString("\nEvery core phase, in step order (summed over layers and steps):\n\n| phase | ms | % of wall | µs / token | count |\n| --- | ---: | ---: | ---: | ---: |\n")
		for _, ph := range p.Core.Phases {
			if ph.Count > 0 {
				fmt.Fprintf(&b, "| %s | %.2f | %s | %s | %d |\n", ph.Name, ph.MS, percent(ph.MS, p.WallMS), perToken(ph.MS), ph.Count)
			}
		}
		fmt.Fprintf(&b, "\nThe host inside the step calls (laps; they sum to the core's %.2f ms and overlap the phases above):\n\n| lap | ms | %% of wall | count |\n| --- | ---: | ---: | ---: |\n", p.Core.WallMS)
		for _, h := range p.Core.Host {
			if h.Count > 0 {
				fmt.Fprintf(&b, "| %s | %.2f | %s | %d |\n", h.Name, h.MS, percent(h.MS, p.WallMS), h.Count)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func percent(part, whole float64) string {
	if whole <= 0 {
		return ""
	}
	return fmt.Sprintf("%.1f", 100*part/whole)
}
