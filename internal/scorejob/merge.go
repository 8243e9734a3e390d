package scorejob

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/resultio"
)

// MergeConfig is one `lmscore merge`.
type MergeConfig struct {
	Inputs  []string // the shard files, in any order
	Out     string   // the run's results JSONL
	Summary string   // the run's summary JSON; empty: none
	Stderr  io.Writer
}

// Merge joins the shard files of one sharded run into the output one
// process would have written, byte for byte and in input order, and its
// summary: the same multiple-choice metrics, over every question, and the
// shards' work summed (Summary.Shards lists each shard's). It refuses
// shards of different runs (model, requests, settings or shard count),
// names the shard indices missing or given twice, and refuses a shard that
// stopped before its end.
func Merge(cfg MergeConfig) error {
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if len(cfg.Inputs) == 0 {
		return errors.New("no shard files to merge")
	}
	if cfg.Out == "" {
		return errors.New("--out FILE is required")
	}
	shards, err := readShards(cfg.Inputs)
	if err != nil {
		return err
	}
	first := shards[0].header
	n, total := first.Shards, first.Identity.Requests
	out := make([][]byte, total)
	results := make([]lmscore.Result, total)
	choices := make([]lmscore.Choice, total)
	from := make([]string, total) // which file gave each result, for messages
	for _, sh := range shards {
		for _, rec := range sh.records {
			if rec.Index < 0 || rec.Index >= total {
				return fmt.Errorf("%s: a record of request #%d, but the run has %d requests", sh.path, rec.Index, total)
			}
			if from[rec.Index] != "" {
				return fmt.Errorf("request #%d is in %s and in %s: the shards were not planned alike", rec.Index, from[rec.Index], sh.path)
			}
			var line resultio.Line
			if err := json.Unmarshal(rec.Line, &line); err != nil {
				return fmt.Errorf("%s: the record of request #%d: %w", sh.path, rec.Index, err)
			}
			from[rec.Index] = sh.path
			out[rec.Index] = append(rec.Line, '\n')
			results[rec.Index] = lineResult(rec.Index, line, rec.NormBytes)
			choices[rec.Index] = lmscore.Choice{Label: -1}
			if c := rec.Choice; c != nil {
				choices[rec.Index] = lmscore.Choice{Task: c.Task, Group: c.Group, Index: c.Index, Label: c.Label}
			}
		}
	}
	if i := slices.Index(from, ""); i >= 0 {
		return fmt.Errorf("request #%d is in none of the %d shards (the shards were not planned alike)", i, n)
	}
	for _, path := range []string{cfg.Out, cfg.Summary} {
		if path != "" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
		}
	}
	if err := writeOut(cfg.Out, out); err != nil {
		return err
	}
	sum := mergeSummaries(shards, total)
	fmt.Fprintf(cfg.Stderr, "lmscore: merged %d shards into %s: %d results\n", n, cfg.Out, total)
	return finish(Config{Summary: cfg.Summary, Stderr: cfg.Stderr}, sum, results, choices)
}

type shardFile struct {
	path    string
	header  resultio.ShardHeader
	records []resultio.ShardRecord
	summary Summary
}

// readShards reads every file and checks that together they are all the
// shards of one run, each complete, each once; they come back by index.
func readShards(paths []string) ([]shardFile, error) {
	var shards []shardFile
	for _, path := range paths {
		h, recs, err := resultio.ReadShardFile(path)
		if err != nil {
			return nil, err
		}
		sh := shardFile{path: path, header: h, records: recs}
		if err := json.Unmarshal(h.Summary, &sh.summary); err != nil {
			return nil, fmt.Errorf("%s: the summary in its header: %w", path, err)
		}
		if h.Interrupted || len(recs) != h.Requests {
			return nil, fmt.Errorf("%s: shard %d/%d stopped before its end (%d of its %d results): finish it with the same lmscore score command and --resume", path, h.Shard, h.Shards, len(recs), h.Requests)
		}
		shards = append(shards, sh)
	}
	first := shards[0]
	n := first.header.Shards
	byIndex := make([]*shardFile, n)
	var dup []string
	for k := range shards {
		sh := &shards[k]
		h := sh.header
		if h.Shards != n {
			return nil, fmt.Errorf("%s is shard %d of %d, %s shard %d of %d: shards of one run share N", first.path, first.header.Shard, n, sh.path, h.Shard, h.Shards)
		}
		a, b := first.header.Identity, h.Identity
		a.Shard, b.Shard = "", ""
		if d := a.DiffNamed(b, "in "+first.path, "in "+sh.path); d != "" {
			return nil, fmt.Errorf("%s and %s are shards of different runs (%s): merge the shards of one model, request file and settings", first.path, sh.path, d)
		}
		if h.Shard < 0 || h.Shard >= n {
			return nil, fmt.Errorf("%s: shard index %d of %d", sh.path, h.Shard, n)
		}
		if prev := byIndex[h.Shard]; prev != nil {
			dup = append(dup, fmt.Sprintf("shard %d is in both %s and %s", h.Shard, prev.path, sh.path))
			continue
		}
		byIndex[h.Shard] = sh
	}
	var missing []string
	for i, sh := range byIndex {
		if sh == nil {
			missing = append(missing, strconv.Itoa(i))
		}
	}
	var problems []string
	if len(missing) > 0 {
		word, verb := "shard", "is"
		if len(missing) > 1 {
			word, verb = "shards", "are"
		}
		problems = append(problems, fmt.Sprintf("%s %s of %d %s missing", word, strings.Join(missing, ", "), n, verb))
	}
	problems = append(problems, dup...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: give each of shards 0 to %d once", strings.Join(problems, "; "), n-1)
	}
	sorted := make([]shardFile, n)
	for i, sh := range byIndex {
		sorted[i] = *sh
	}
	return sorted, nil
}

// mergeSummaries is the run's summary from its shards': what one process
// reports of the requests and results, with the shards' work summed but
// for the wall time and KV peaks, which are the largest shard's (the
// shards ran side by side).
func mergeSummaries(shards []shardFile, total int) Summary {
	first := shards[0].summary
	sum := Summary{Model: first.Model, Backend: first.Backend, Requests: total, Skipped: first.Skipped, ResultsLines: total}
	st := &sum.Stats
	for _, sh := range shards {
		s, o := sh.summary, sh.summary.Stats
		st.Add(o)
		st.Wall = max(st.Wall, o.Wall) // the shards ran side by side
		sum.Resumed += s.Resumed
		sum.Shards = append(sum.Shards, s)
	}
	st.SetRates()
	sum.WallSeconds = st.Wall.Seconds()
	return sum
}
