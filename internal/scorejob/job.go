// Package scorejob is what `lmscore score` does once its flags are parsed:
// read request JSONL, score it, write results JSONL in input order as they
// complete, and summarize. It lives outside cmd/ so that tests drive it
// directly and the command stays a flag parser.
package scorejob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"text/tabwriter"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/progress"
	"github.com/lmscore/lmscore/internal/requestio"
	"github.com/lmscore/lmscore/internal/resultio"
	"github.com/lmscore/lmscore/internal/units"
)

// Config is one run.
type Config struct {
	Model   string
	In, Out string // "-" means stdin / stdout
	Summary string // summary JSON path; empty: none
	// Profile is where the model's phase profile (lmscore.Model.Profile)
	// goes as JSON when Run returns; empty: none. It measures only when
	// lmscore.ProfileEnv is "1" as the model opens (lmscore score
	// --profile sets it); otherwise the file says the profiler was off.
	Profile       string
	Options       lmscore.Options
	TokenLogProbs bool
	SkipInvalid   bool
	// AllowDuplicateIDs scores lines that repeat an id (results are kept
	// apart by line); otherwise a repeated id is an error naming both lines.
	AllowDuplicateIDs bool
	// Resume finishes the run whose journal (Out + ".journal") is there,
	// computing only the results it lacks; without a journal it is a plain
	// run. Force discards a journal and starts over. Without either, an
	// existing journal is an error: it holds an interrupted run's results.
	Resume, Force bool
	// Shards > 0 scores only shard Shard (0-based) of the request set split
	// into Shards prefix-affine parts (lmscore.Model.Shards): every process
	// of a sharded run reads the same file and picks its own part. Out is
	// then a shard file (resultio.ShardHeader) for Merge.
	Shard, Shards int
	// Devices, when set, opens the model once per device ordinal
	// (lmscore.OpenPool; Options.Device is then unused) and scores on all
	// of them together, with the same results as one device. It composes
	// with Shards (a shard's requests spread over the devices) and with
	// Resume (a journal resumes on any devices). Profile is then the first
	// device's.
	Devices []int
	// SyncInterval is how often the journal is made durable (0:
	// resultio.SyncInterval).
	SyncInterval time.Duration
	Progress     progress.Mode // ModeAuto: a bar on a terminal, log lines elsewhere
	Stdin        io.Reader     // read when In is "-"; nil: os.Stdin
	Stdout       io.Writer     // written when Out is "-"; nil: os.Stdout
	Stderr       io.Writer     // progress, skipped lines and the summary tables

	// Test hooks: called before scoring starts, and after each result is
	// journaled with the count of results journaled by this run.
	beforeScore func()
	afterResult func(done int)
}

// JournalPath is where a run writing out keeps its journal.
func JournalPath(out string) string { return out + ".journal" }

// Summary is the JSON written to Config.Summary.
type Summary struct {
	Model       string             `json:"model"`
	Backend     string             `json:"backend"`
	Requests    int                `json:"requests"`
	Skipped     int                `json:"skipped"`
	Stats       lmscore.Stats      `json:"stats"` // this run's work only: not a resumed journal's
	MultiChoice *lmscore.MCMetrics `json:"multiple_choice,omitempty"`
	WallSeconds float64            `json:"wall_seconds"`
	Interrupted bool               `json:"interrupted,omitempty"`
	// Resumed counts the results taken from the journal of an earlier run.
	Resumed      int `json:"resumed_results,omitempty"`
	ResultsLines int `json:"results_written"`
	// Shard is set in a shard's summary: which part of the run it scored
	// (Requests then counts the shard's requests).
	Shard *ShardOfRun `json:"shard,omitempty"`
	// Shards is set by Merge: each shard's summary, by shard index. Stats
	// are then the shards' sums, but for the wall time and the KV peaks:
	// the largest shard's.
	Shards []Summary `json:"shards,omitempty"`
}

// ShardOfRun says which shard a summary is of.
type ShardOfRun struct {
	Index       int   `json:"index"`
	Shards      int   `json:"shards"`
	RunRequests int   `json:"run_requests"` // the requests of all shards
	Planned     int64 `json:"planned_computed_tokens"`
}

// Run scores cfg.In into cfg.Out. To a file, finished results go to a
// journal beside it as they complete (durable every SyncInterval), and Out
// itself is written once, atomically, in input order, when every result is
// in: a killed run loses at most the last interval's work and never the
// previous Out. On cancellation or a failure part-way the journal stays
// for --resume, and Out, if it did not exist, gets the results completed
// so far; then Run returns the error. To stdout, results are written in
// input order as soon as they can be.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Stdin == nil {
		cfg.Stdin = os.Stdin
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	toFile := cfg.Out != "" && cfg.Out != "-"
	if !toFile && (cfg.Resume || cfg.Force) {
		return errors.New("--resume and --force need --out FILE: the journal lives beside it")
	}
	if cfg.Resume && cfg.Force {
		return errors.New("--resume and --force exclude each other")
	}
	if cfg.Shards > 0 && !toFile {
		return errors.New("--shard needs --out FILE: lmscore merge joins the shards' files")
	}
	if cfg.Shards > 0 && (cfg.Shard < 0 || cfg.Shard >= cfg.Shards) {
		return fmt.Errorf("shard %d of %d: the index runs from 0 to %d", cfg.Shard, cfg.Shards, cfg.Shards-1)
	}
	journalPath := ""
	if toFile {
		journalPath = JournalPath(cfg.Out)
		if _, err := os.Stat(journalPath); err == nil && !cfg.Resume && !cfg.Force {
			return fmt.Errorf("%s exists: an earlier run to %s stopped before the end; give --resume to finish it (only the missing results are computed) or --force to start over", journalPath, cfg.Out)
		}
	}
	// Output folders are made first: a missing one should not cost a run.
	for _, path := range []string{cfg.Out, cfg.Summary, cfg.Profile} {
		if path != "" && path != "-" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
		}
	}
	m, score, warnings, closeModel, err := openScorer(cfg)
	if err != nil {
		return err
	}
	defer closeModel()
	if cfg.Profile != "" {
		// Also after a failure: where a stopped run spent its time is worth having.
		defer func() {
			if perr := writeProfile(cfg.Profile, m); perr != nil && err == nil {
				err = perr
			}
		}()
	}
	for _, w := range warnings {
		fmt.Fprintf(cfg.Stderr, "%s\n", w)
	}

	in, inName, err := openIn(cfg.In, cfg.Stdin)
	if err != nil {
		return err
	}
	if inName == "stdin" && isTerminal(cfg.Stdin) {
		// Otherwise a user who forgot --in waits on a silent terminal.
		fmt.Fprintln(cfg.Stderr, "lmscore: reading requests from stdin (a terminal): type JSONL lines and end with Ctrl-D, or give --in FILE")
	}
	defer in.Close()
	inHash := sha256.New()
	reqs, choices, lines, skipped, err := read(ctx, m, io.TeeReader(in, inHash), inName, cfg)
	if err != nil {
		if ctx.Err() != nil && toFile {
			if _, serr := os.Stat(cfg.Out); errors.Is(serr, os.ErrNotExist) {
				writeOut(cfg.Out, nil) // stopped before any result: an empty output says so
			}
		}
		return err
	}
	if len(reqs) == 0 {
		return fmt.Errorf("%s: no requests to score", inName)
	}
	if !toFile {
		return runToStdout(ctx, cfg, m, score, reqs, choices, lines, skipped, inName)
	}

	shard, err := selectShard(cfg, m, reqs)
	if err != nil {
		return err
	}
	id := m.Options() // the effective settings, defaults filled
	ident := resultio.Identity{RequestsSHA256: hex.EncodeToString(inHash.Sum(nil)), Requests: len(reqs),
		Backend: m.Info().Backend, Precision: id.Precision, MaxLength: id.MaxLength,
		TokenLogProbs: cfg.TokenLogProbs, SkipInvalid: cfg.SkipInvalid, AllowDuplicateIDs: cfg.AllowDuplicateIDs,
		Build: buildRevision(), Shard: shard.name()}
	if ident.Model, err = resultio.IdentifyModel(cfg.Model); err != nil {
		return err
	}
	out := make([][]byte, len(reqs)) // each result's output line, nil until it is in
	results := make([]lmscore.Result, len(reqs))
	journal, resumed, err := openJournal(cfg, journalPath, ident, reqs, out, results)
	if err != nil {
		return err
	}
	var missing []lmscore.Request
	var missingIndex []int
	for i := range reqs {
		if out[i] == nil && shard.has(i) {
			missing = append(missing, reqs[i])
			missingIndex = append(missingIndex, i)
		}
	}
	if resumed > 0 {
		fmt.Fprintf(cfg.Stderr, "lmscore: resuming %s: %d of %d results are in %s, %d to compute\n",
			cfg.Out, resumed, resumed+len(missing), journalPath, len(missing))
	}

	bar := progress.NewWith(cfg.Stderr, progress.Options{Mode: cfg.Progress, Prefix: "lmscore: "})
	var stats lmscore.Stats
	var scoreErr error
	if cfg.beforeScore != nil {
		cfg.beforeScore()
	}
	done := 0
	if len(missing) > 0 {
		_, stats, scoreErr = score(ctx, missing, lmscore.ScoreOptions{
			OnResult: func(r lmscore.Result) error {
				r.Index = missingIndex[r.Index]
				b, err := resultio.Encode(r, cfg.TokenLogProbs)
				if err != nil {
					return fmt.Errorf("request %q: %w", r.ID, err)
				}
				// Score never calls back twice at once, and each index once.
				out[r.Index], results[r.Index] = b, slim(r)
				if err := journal.Add(r.Index, r.NormBytes, b); err != nil {
					return err
				}
				if done++; cfg.afterResult != nil {
					cfg.afterResult(done)
				}
				return nil
			},
			OnProgress: func(p lmscore.Progress) { bar.Update(p.DoneTokens, p.UniqueTokens, p.Elapsed, false) },
		})
		bar.Update(stats.ComputedTokens, stats.UniqueTokens, stats.Wall, true)
	}
	journalErr := journal.Close()
	written := 0
	for _, b := range out {
		if b != nil {
			written++
		}
	}
	sum := Summary{Model: m.Info().Name, Backend: m.Info().Backend, Requests: shard.requests(len(reqs)), Skipped: skipped,
		Stats: stats, WallSeconds: stats.Wall.Seconds(), Resumed: resumed, ResultsLines: written, Shard: shard.summary(len(reqs))}
	write := func(interrupted bool) error {
		if shard.plan == nil {
			return writeOut(cfg.Out, out)
		}
		return writeShardOut(cfg.Out, ident, shard, sum, interrupted, out, results, choices)
	}
	if scoreErr == nil && journalErr != nil {
		scoreErr = journalErr
	}
	if scoreErr != nil {
		sum.Interrupted = true
		where := journalPath
		if _, err := os.Stat(cfg.Out); errors.Is(err, os.ErrNotExist) {
			// No earlier output to keep: this run's partial results, in order.
			if err := write(true); err == nil {
				where += " and " + cfg.Out
			}
		}
		fmt.Fprintf(cfg.Stderr, "lmscore: stopped: %d of %d results are in %s; run again with --resume to compute the rest\n",
			written, shard.requests(len(reqs)), where)
		if cfg.Summary != "" {
			writeSummary(cfg.Summary, sum)
		}
		return requestLineError(scoreErr, missingIndex, lines, inName)
	}
	if err := write(false); err != nil {
		return fmt.Errorf("writing %s: %w (the results are in %s: --resume writes it again)", cfg.Out, err, journalPath)
	}
	// The output is complete and durable: the journal has done its work.
	if err := os.Remove(journalPath); err != nil {
		return err
	}
	return finish(cfg, sum, results, choices)
}

// scoreFunc is Model.Score or Pool.Score.
type scoreFunc func(context.Context, []lmscore.Request, lmscore.ScoreOptions) ([]lmscore.Result, lmscore.Stats, error)

// openScorer opens cfg.Model: on one device, or with cfg.Devices on each
// of them. m is the model (a pool's first member) for what does not score:
// checking requests, the settings, the name; warnings are the model's or
// the pool's (how it shared the CPU threads among them).
func openScorer(cfg Config) (m *lmscore.Model, score scoreFunc, warnings []string, closeModel func() error, err error) {
	if len(cfg.Devices) == 0 {
		if m, err = lmscore.Open(cfg.Model, cfg.Options); err != nil {
			return nil, nil, nil, nil, err
		}
		return m, m.Score, m.Warnings(), m.Close, nil
	}
	p, err := lmscore.OpenPool(cfg.Model, cfg.Options, cfg.Devices)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return p.Model(0), p.Score, p.Warnings(), p.Close, nil
}

// requestLineError names the input line of a request Score failed on;
// its index counts in missing, the requests this run computes.
func requestLineError(err error, missingIndex []int, lines []int, inName string) error {
	var re *lmscore.RequestError
	if !errors.As(err, &re) || re.Index < 0 || re.Index >= len(missingIndex) {
		return err
	}
	return fmt.Errorf("%s:%d: request %q: %w", inName, lines[missingIndex[re.Index]], re.ID, re.Err)
}

// runToStdout is a run without a file to journal beside: results are
// written in input order as soon as the ones before them are in.
func runToStdout(ctx context.Context, cfg Config, m *lmscore.Model, score scoreFunc, reqs []lmscore.Request, choices []lmscore.Choice,
	lines []int, skipped int, inName string) error {
	w := resultio.NewWriter(cfg.Stdout, cfg.TokenLogProbs)
	bar := progress.NewWith(cfg.Stderr, progress.Options{Mode: cfg.Progress, Prefix: "lmscore: "})
	results := make([]lmscore.Result, len(reqs))
	_, stats, scoreErr := score(ctx, reqs, lmscore.ScoreOptions{
		OnResult: func(r lmscore.Result) error {
			results[r.Index] = slim(r)
			return w.Add(r)
		},
		OnProgress: func(p lmscore.Progress) { bar.Update(p.DoneTokens, p.UniqueTokens, p.Elapsed, false) },
	})
	bar.Update(stats.ComputedTokens, stats.UniqueTokens, stats.Wall, true)
	flushErr := w.Flush()
	sum := Summary{Model: m.Info().Name, Backend: m.Info().Backend, Requests: len(reqs), Skipped: skipped,
		Stats: stats, WallSeconds: stats.Wall.Seconds(), ResultsLines: w.Written()}
	if scoreErr != nil {
		fmt.Fprintf(cfg.Stderr, "lmscore: stopped: %d of %d results written to stdout\n", w.Written(), len(reqs))
		sum.Interrupted = true
		if cfg.Summary != "" {
			writeSummary(cfg.Summary, sum)
		}
		identity := make([]int, len(reqs))
		for i := range identity {
			identity[i] = i
		}
		return requestLineError(scoreErr, identity, lines, inName)
	}
	if flushErr != nil {
		return fmt.Errorf("writing stdout: %w", flushErr)
	}
	return finish(cfg, sum, results, choices)
}

// finish prints the statistics and metrics and writes the summary.
func finish(cfg Config, sum Summary, results []lmscore.Result, choices []lmscore.Choice) error {
	if sum.Shard != nil {
		// A question's choices may sit in two shards: metrics over a
		// shard's part would count half-questions. Merge computes them.
		choices = nil
	}
	if hasGroups(choices) {
		mc, err := lmscore.MultipleChoice(results, choices)
		if err != nil {
			return err
		}
		if mc.Groups > 0 {
			sum.MultiChoice = &mc
		}
	}
	writeTable(cfg.Stderr, sum)
	if sum.Resumed > 0 {
		fmt.Fprintf(cfg.Stderr, "(%d results from the journal of an earlier run; the statistics count this run's work)\n", sum.Resumed)
	}
	if sum.MultiChoice != nil {
		fmt.Fprintln(cfg.Stderr)
		WriteResultsTable(cfg.Stderr, *sum.MultiChoice)
	}
	if sum.Shard != nil {
		fmt.Fprintf(cfg.Stderr, "shard %d of %d: %s holds this shard's results; lmscore merge joins the shards' files into the run's output, summary and metrics\n",
			sum.Shard.Index, sum.Shard.Shards, cfg.Out)
	}
	if cfg.Summary != "" {
		return writeSummary(cfg.Summary, sum)
	}
	return nil
}

// slim keeps what the metrics need of a result: not its token lists,
// which the output lines already hold.
func slim(r lmscore.Result) lmscore.Result {
	r.TokenLogProbs, r.TopLogProbs = nil, nil
	return r
}

// openJournal resumes the journal at path into out and results, or starts
// a new one. It returns the number of results resumed.
func openJournal(cfg Config, path string, ident resultio.Identity, reqs []lmscore.Request,
	out [][]byte, results []lmscore.Result) (*resultio.Journal, int, error) {
	header := resultio.Header{Version: resultio.JournalVersion, Identity: ident}
	if !cfg.Resume {
		j, err := resultio.CreateJournal(path, header, cfg.SyncInterval)
		return j, 0, err
	}
	h, recs, valid, err := resultio.ReadJournal(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(cfg.Stderr, "lmscore: --resume: no journal %s, so nothing to resume: scoring every request\n", path)
		j, err := resultio.CreateJournal(path, header, cfg.SyncInterval)
		return j, 0, err
	case errors.Is(err, resultio.ErrTornHeader):
		fmt.Fprintf(cfg.Stderr, "lmscore: --resume: %v (the run was killed as it started): scoring every request\n", err)
		j, err := resultio.CreateJournal(path, header, cfg.SyncInterval)
		return j, 0, err
	case err != nil:
		return nil, 0, fmt.Errorf("--resume: %w (--force starts over)", err)
	}
	if d := h.Identity.Diff(ident); d != "" {
		return nil, 0, fmt.Errorf("--resume: %s was written by another run (%s); its results cannot be mixed with this one's: give the same model, requests and settings, or --force to start over", path, d)
	}
	resumed := 0
	for _, rec := range recs {
		var line resultio.Line
		if rec.Index < 0 || rec.Index >= len(reqs) || json.Unmarshal(rec.Line, &line) != nil || line.ID != reqs[rec.Index].ID {
			return nil, 0, fmt.Errorf("--resume: %s: the record of request #%d does not match the requests (--force starts over)", path, rec.Index)
		}
		if out[rec.Index] == nil {
			resumed++
		}
		out[rec.Index] = append(rec.Line, '\n')
		results[rec.Index] = lineResult(rec.Index, line, rec.NormBytes)
	}
	j, err := resultio.AppendJournal(path, valid, cfg.SyncInterval)
	return j, resumed, err
}

// lineResult is the result an output line (and the normBytes beside it)
// stands for, as far as the metrics need it.
func lineResult(index int, line resultio.Line, normBytes int) lmscore.Result {
	return lmscore.Result{Index: index, ID: line.ID, LogProb: line.LogProb, NTokens: line.NTokens,
		NBytes: line.NBytes, NormBytes: normBytes, IsGreedy: line.IsGreedy, Truncated: line.Truncated}
}

// writeOut writes the output lines in input order, skipping the missing
// ones, atomically.
func writeOut(path string, out [][]byte) error {
	return resultio.WriteFileAtomic(path, func(w io.Writer) error {
		for _, b := range out {
			if b != nil {
				if _, err := w.Write(b); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// marshalSummary is the summary as one JSON line (a shard file's header
// holds it).
func marshalSummary(s Summary) ([]byte, error) { return json.Marshal(s) }

func writeSummary(path string, s Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return resultio.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// writeProfile writes the model's phase profile as indented JSON.
func writeProfile(path string, m *lmscore.Model) error {
	p, err := m.Profile()
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return resultio.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// buildRevision is the VCS revision this binary was built from, for the
// journal's identity ("" when the build does not say).
func buildRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+modified"
			}
		}
	}
	return rev + dirty
}

// read parses every line, checks it against the model and assigns choice
// indices (order of appearance within a group unless a line says). lines[i]
// is request i's line number, for messages. It stops as soon as ctx is
// done: a large input takes seconds to tokenize and check.
func read(ctx context.Context, m *lmscore.Model, in io.Reader, name string, cfg Config) (reqs []lmscore.Request, choices []lmscore.Choice, lines []int, skipped int, err error) {
	rd := requestio.NewReader(in, name, m.TokenizePair)
	type question struct{ task, group string } // a group is named within its task
	nextChoice := map[question]int{}
	idLine := map[string]int{}
	skip := func(err error) error {
		if !cfg.SkipInvalid {
			return err
		}
		skipped++
		fmt.Fprintf(cfg.Stderr, "lmscore: skipped: %v\n", err)
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, 0, fmt.Errorf("reading %s: %w", name, err)
		}
		line, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, requestio.ErrNeedTokenizer) || !isLineError(err) {
				return nil, nil, nil, 0, err
			}
			if err := skip(err); err != nil {
				return nil, nil, nil, 0, err
			}
			continue
		}
		req := line.ScoreRequest()
		if err := m.Check(req); err != nil {
			if err := skip(fmt.Errorf("%s:%d: %w", name, line.Line, err)); err != nil {
				return nil, nil, nil, 0, err
			}
			continue
		}
		if first, dup := idLine[req.ID]; dup && !cfg.AllowDuplicateIDs {
			err := &requestio.LineError{File: name, Line: line.Line,
				Err: fmt.Errorf("duplicate id %q (line %d has it too): results are matched by id; --allow-duplicate-ids keeps them apart by line", req.ID, first)}
			if err := skip(err); err != nil {
				return nil, nil, nil, 0, err
			}
			continue
		} else if !dup {
			idLine[req.ID] = line.Line
		}
		c := lmscore.Choice{Task: line.Task, Group: line.Group, Label: -1}
		if line.Label != nil {
			c.Label = *line.Label
		}
		if line.Choice != nil {
			c.Index = *line.Choice
		} else if c.Group != "" {
			c.Index = nextChoice[question{c.Task, c.Group}]
		}
		nextChoice[question{c.Task, c.Group}]++
		reqs = append(reqs, req)
		choices = append(choices, c)
		lines = append(lines, line.Line)
	}
	return reqs, choices, lines, skipped, nil
}

// isLineError tells a bad line (which --skip-invalid may pass over) from a
// failure to read the input at all.
func isLineError(err error) bool {
	var le *requestio.LineError
	return errors.As(err, &le)
}

func hasGroups(choices []lmscore.Choice) bool {
	for _, c := range choices {
		if c.Group != "" && c.Label >= 0 {
			return true
		}
	}
	return false
}

func openIn(path string, stdin io.Reader) (io.ReadCloser, string, error) {
	if path == "-" || path == "" {
		return io.NopCloser(stdin), "stdin", nil
	}
	f, err := os.Open(path)
	return f, path, err
}

func writeTable(w io.Writer, s Summary) {
	st := s.Stats
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "requests\t%d (skipped %d)\n", s.Requests, s.Skipped)
	fmt.Fprintf(tw, "tokens: total / unique / computed\t%d / %d / %d\n", st.TotalTokens, st.UniqueTokens, st.ComputedTokens)
	fmt.Fprintf(tw, "reused / recomputed tokens\t%d / %d\n", st.ReusedTokens, st.RecomputedTokens)
	fmt.Fprintf(tw, "steps / copied blocks\t%d / %d\n", st.Steps, st.CopiedBlocks)
	fmt.Fprintf(tw, "peak KV\t%s (%d blocks)\n", units.FormatBytes(st.PeakKVBytes), st.PeakKVBlocks)
	fmt.Fprintf(tw, "wall time\t%s\n", st.Wall.Round(time.Millisecond))
	fmt.Fprintf(tw, "tokens/s (total / computed)\t%.0f / %.0f\n", st.TokensPerSecond, st.ComputedPerSecond)
	tw.Flush()
}

// isTerminal reports whether r is a character device such as a tty.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
