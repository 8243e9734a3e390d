// Package scorejob is what `lmscore score` does once its flags are parsed:
// read request JSONL, score it, write results JSONL in input order as they
// complete, and summarize. It lives outside cmd/ so that tests drive it
// directly and the command stays a flag parser.
package scorejob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	Model         string
	In, Out       string // "-" means stdin / stdout
	Summary       string // summary JSON path; empty: none
	Options       lmscore.Options
	TokenLogProbs bool
	SkipInvalid   bool
	Progress      progress.Mode // ModeAuto: a bar on a terminal, log lines elsewhere
	Stdin         io.Reader     // read when In is "-"; nil: os.Stdin
	Stdout        io.Writer     // written when Out is "-"; nil: os.Stdout
	Stderr        io.Writer     // progress, skipped lines and the summary tables
}

// Summary is the JSON written to Config.Summary.
type Summary struct {
	Model        string             `json:"model"`
	Backend      string             `json:"backend"`
	Requests     int                `json:"requests"`
	Skipped      int                `json:"skipped"`
	Stats        lmscore.Stats      `json:"stats"`
	MultiChoice  *lmscore.MCMetrics `json:"multiple_choice,omitempty"`
	WallSeconds  float64            `json:"wall_seconds"`
	Interrupted  bool               `json:"interrupted,omitempty"`
	ResultsLines int                `json:"results_written"`
}

// Run scores cfg.In into cfg.Out. On cancellation or a failure part-way it
// still writes every result completed so far, then returns the error.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Stdin == nil {
		cfg.Stdin = os.Stdin
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	// Output folders are made first: a missing one should not cost a run.
	for _, path := range []string{cfg.Out, cfg.Summary} {
		if path != "" && path != "-" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
		}
	}
	m, err := lmscore.Open(cfg.Model, cfg.Options)
	if err != nil {
		return err
	}
	defer m.Close()
	for _, w := range m.Warnings() {
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
	reqs, choices, lines, skipped, err := read(m, in, inName, cfg)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		return fmt.Errorf("%s: no requests to score", inName)
	}

	out, err := openOut(cfg.Out, cfg.Stdout)
	if err != nil {
		return err
	}
	w := resultio.NewWriter(out, cfg.TokenLogProbs)
	bar := progress.NewWith(cfg.Stderr, progress.Options{Mode: cfg.Progress, Prefix: "lmscore: "})
	results := make([]lmscore.Result, len(reqs))
	_, stats, scoreErr := m.Score(ctx, reqs, lmscore.ScoreOptions{
		OnResult: func(r lmscore.Result) error {
			results[r.Index] = r
			return w.Add(r)
		},
		OnProgress: func(p lmscore.Progress) { bar.Update(p.DoneTokens, p.UniqueTokens, p.Elapsed, false) },
	})
	bar.Update(stats.ComputedTokens, stats.UniqueTokens, stats.Wall, true)
	flushErr := w.Flush()
	closeErr := out.Close()
	if scoreErr != nil {
		fmt.Fprintf(cfg.Stderr, "lmscore: stopped: %d of %d results written to %s\n", w.Written(), len(reqs), cfg.Out)
		if cfg.Summary != "" {
			writeSummary(cfg.Summary, Summary{Model: m.Info().Name, Backend: m.Info().Backend, Requests: len(reqs),
				Skipped: skipped, Stats: stats, WallSeconds: stats.Wall.Seconds(), Interrupted: true,
				ResultsLines: w.Written()})
		}
		var re *lmscore.RequestError
		if errors.As(scoreErr, &re) && re.Index >= 0 && re.Index < len(lines) {
			return fmt.Errorf("%s:%d: %w", inName, lines[re.Index], re.Err)
		}
		return scoreErr
	}
	if err := errors.Join(flushErr, closeErr); err != nil {
		return fmt.Errorf("writing %s: %w", cfg.Out, err)
	}

	sum := Summary{Model: m.Info().Name, Backend: m.Info().Backend, Requests: len(reqs), Skipped: skipped,
		Stats: stats, WallSeconds: stats.Wall.Seconds(), ResultsLines: w.Written()}
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
	if sum.MultiChoice != nil {
		fmt.Fprintln(cfg.Stderr)
		WriteResultsTable(cfg.Stderr, *sum.MultiChoice)
	}
	if cfg.Summary != "" {
		return writeSummary(cfg.Summary, sum)
	}
	return nil
}

func writeSummary(path string, s Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// read parses every line, checks it against the model and assigns choice
// indices (order of appearance within a group unless a line says). lines[i]
// is request i's line number, for messages.
func read(m *lmscore.Model, in io.Reader, name string, cfg Config) (reqs []lmscore.Request, choices []lmscore.Choice, lines []int, skipped int, err error) {
	rd := requestio.NewReader(in, name, m.TokenizePair)
	type question struct{ task, group string } // a group is named within its task
	nextChoice := map[question]int{}
	skip := func(err error) error {
		if !cfg.SkipInvalid {
			return err
		}
		skipped++
		fmt.Fprintf(cfg.Stderr, "lmscore: skipped: %v\n", err)
		return nil
	}
	for {
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

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func openOut(path string, stdout io.Writer) (io.WriteCloser, error) {
	if path == "-" || path == "" {
		return nopWriteCloser{stdout}, nil
	}
	return os.Create(path)
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
