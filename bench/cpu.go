package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/workload"
)

// CPURow is one workload's side-by-side measurement on the CPU.
type CPURow struct {
	Workload      string
	Requests      int
	TotalTokens   int64
	UniqueTokens  int64
	NoCacheWall   time.Duration // median
	CacheWall     time.Duration // median
	Speedup       float64       // NoCacheWall / CacheWall
	IdealSpeedup  float64       // TotalTokens / UniqueTokens
	Efficiency    float64       // Speedup / IdealSpeedup
	BitwiseEqual  bool
	ComputedCache int64
}

// CPUOptions size the CPU benchmark.
type CPUOptions struct {
	Scale   float64 // workload scale (see workload.Options.Scale)
	Repeats int     // timed runs per configuration; the median is reported
	Threads int
	Model   testmodel.Options
}

// DefaultCPUModel is a small llama shape that keeps the CPU benchmark to
// minutes on two cores while its matrix products still dominate.
var DefaultCPUModel = testmodel.Options{Arch: model.ArchLlama, Seed: 42, NLayer: 4, NEmbd: 256,
	NHead: 8, NHeadKV: 4, NFF: 768, NVocab: 2048, NCtx: 2048}

// RunCPU measures metaicl16 and metaicl0, cache against --no-cache, each
// configuration run Repeats times after a warm-up, alternating the two so
// that drift of the machine hits both alike.
func RunCPU(ctx context.Context, o CPUOptions, out io.Writer) ([]CPURow, error) {
	if o.Repeats < 1 {
		return nil, fmt.Errorf("bench: %d repeats: want at least 1", o.Repeats)
	}
	weights, err := testmodel.New(o.Model)
	if err != nil {
		return nil, err
	}
	var rows []CPURow
	for _, name := range []string{"metaicl16", "metaicl0"} {
		lines, err := workload.Generate(name, workload.Options{Seed: 1, Vocab: weights.Config.NVocab, FirstID: 3,
			Newline: 13, Scale: o.Scale})
		if err != nil {
			return nil, err
		}
		reqs := workload.Requests(lines)
		row, err := measureCPU(ctx, weights, name, reqs, o)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
		fmt.Fprintf(out, "%s: done\n", name)
	}
	writeCPUTable(out, rows, o)
	return rows, nil
}

func measureCPU(ctx context.Context, weights *model.Model, name string, reqs []lmscore.Request, o CPUOptions) (CPURow, error) {
	m, err := lmscore.OpenModel(weights, name, lmscore.Options{Threads: o.Threads, KVMemory: 512 << 20})
	if err != nil {
		return CPURow{}, err
	}
	defer m.Close()
	row := CPURow{Workload: name, Requests: len(reqs), BitwiseEqual: true}
	var offWalls, onWalls []time.Duration
	var first []lmscore.Result
	for i := 0; i <= o.Repeats; i++ { // run 0 is the warm-up
		for _, noCache := range []bool{true, false} {
			if !noCache {
				m.ResetCache() // every cached run starts cold, like the first
			}
			res, st, err := m.Score(ctx, reqs, lmscore.ScoreOptions{NoCache: noCache})
			if err != nil {
				return row, err
			}
			if first == nil {
				first = res
			} else {
				for k := range res {
					row.BitwiseEqual = row.BitwiseEqual && workload.SameScores(first[k].TokenLogProbs, res[k].TokenLogProbs)
				}
			}
			row.TotalTokens, row.UniqueTokens = st.TotalTokens, st.UniqueTokens
			if i == 0 {
				continue
			}
			if noCache {
				offWalls = append(offWalls, st.Wall)
			} else {
				onWalls = append(onWalls, st.Wall)
				row.ComputedCache = st.ComputedTokens
			}
		}
	}
	row.NoCacheWall, row.CacheWall = median(offWalls), median(onWalls)
	row.Speedup = row.NoCacheWall.Seconds() / row.CacheWall.Seconds()
	row.IdealSpeedup = float64(row.TotalTokens) / float64(row.UniqueTokens)
	row.Efficiency = row.Speedup / row.IdealSpeedup
	return row, nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func writeCPUTable(out io.Writer, rows []CPURow, o CPUOptions) {
	cfg := o.Model
	fmt.Fprintf(out, "\nCPU, random llama %d layers x %d wide, vocab %d, median of %d runs\n\n",
		cfg.NLayer, cfg.NEmbd, cfg.NVocab, o.Repeats)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\trequests\ttotal tok\tunique tok\tno cache\tcache\tspeedup\ttotal/unique\tefficiency\tbitwise equal")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%.2fx\t%.2fx\t%.2f\t%v\n", r.Workload, r.Requests,
			r.TotalTokens, r.UniqueTokens, r.NoCacheWall.Round(time.Millisecond), r.CacheWall.Round(time.Millisecond),
			r.Speedup, r.IdealSpeedup, r.Efficiency, r.BitwiseEqual)
	}
	tw.Flush()
}
