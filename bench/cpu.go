package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/workload"
)

// CPURow is one workload's side-by-side measurement on the CPU, for one
// weight type of the model.
type CPURow struct {
	Workload      string
	Type          string // one of CPUTypes
	Requests      int
	TotalTokens   int64
	UniqueTokens  int64
	NoCacheWall   time.Duration // median
	CacheWall     time.Duration // median
	Speedup       float64       // NoCacheWall / CacheWall
	IdealSpeedup  float64       // TotalTokens / UniqueTokens
	Efficiency    float64       // Speedup / IdealSpeedup
	NoCacheVsF32  float64       // NoCacheWall / the F32 row's; 0 without an F32 row
	CacheVsF32    float64       // CacheWall / the F32 row's
	BitwiseEqual  bool
	ComputedCache int64
}

// CPUOptions size the CPU benchmark.
type CPUOptions struct {
	Scale   float64 // workload scale (see workload.Options.Scale)
	Repeats int     // timed runs per configuration; the median is reported
	Threads int
	Model   testmodel.Options
	Types   []string // weight types (CPUTypes); empty: f32 alone
}

// DefaultCPUModel is a small llama shape that keeps the CPU benchmark to
// minutes on two cores while its matrix products still dominate.
var DefaultCPUModel = testmodel.Options{Arch: model.ArchLlama, Seed: 42, NLayer: 4, NEmbd: 256,
	NHead: 8, NHeadKV: 4, NFF: 768, NVocab: 2048, NCtx: 2048}

// CPUTypes are the weight types RunCPU knows, by name: f32; q8_0, every
// matrix Q8_0, as llama-quantize's Q8_0 makes them; q4_k, every matrix
// Q4_K but the output's Q6_K, as every llama-quantize K-quant mix has it
// (its Q4_K_S without the Q5_K it gives a few early layers); q4_k_m, Q4KM.
// Norms stay F32 in all of them, as in the files.
var CPUTypes = []string{"f32", "q8_0", "q4_k", "q4_k_m"}

// cpuTypeOf returns the tensor types of a CPUTypes entry.
func cpuTypeOf(cfg model.Config, typ string) (func(string, [2]int64) model.TensorType, error) {
	switch typ {
	case "f32":
		return func(string, [2]int64) model.TensorType { return model.TypeF32 }, nil
	case "q8_0":
		return func(string, [2]int64) model.TensorType { return model.TypeQ8_0 }, nil
	case "q4_k":
		return func(name string, _ [2]int64) model.TensorType {
			if name == model.NameOutput {
				return model.TypeQ6_K
			}
			return model.TypeQ4_K
		}, nil
	case "q4_k_m":
		return Q4KM(cfg), nil
	}
	return nil, fmt.Errorf("bench: unknown CPU weight type %q (have %s)", typ, strings.Join(CPUTypes, ", "))
}

// RunCPU measures metaicl16 and metaicl0, cache against --no-cache, for
// the model of every type in o.Types, each configuration run Repeats
// times after a warm-up. The runs interleave: each repeat runs every type
// cached and uncached before the next repeat begins, so that drift of the
// machine hits every configuration alike.
func RunCPU(ctx context.Context, o CPUOptions, out io.Writer) ([]CPURow, error) {
	if o.Repeats < 1 {
		return nil, fmt.Errorf("bench: %d repeats: want at least 1", o.Repeats)
	}
	types := o.Types
	if len(types) == 0 {
		types = []string{"f32"}
	}
	f32, err := testmodel.New(o.Model)
	if err != nil {
		return nil, err
	}
	models := make([]*model.Model, len(types))
	for i, typ := range types {
		typeOf, err := cpuTypeOf(f32.Config, typ)
		if err != nil {
			return nil, err
		}
		w, err := f32.Weights.QuantizeWeights(1, typeOf)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", typ, err)
		}
		models[i] = &model.Model{Config: f32.Config, Weights: *w}
	}
	var rows []CPURow
	for _, name := range []string{"metaicl16", "metaicl0"} {
		lines, err := workload.Generate(name, workload.Options{Seed: 1, Vocab: f32.Config.NVocab, FirstID: 3,
			Newline: 13, Scale: o.Scale})
		if err != nil {
			return nil, err
		}
		reqs := workload.Requests(lines)
		got, err := measureCPU(ctx, models, types, name, reqs, o)
		if err != nil {
			return nil, err
		}
		rows = append(rows, got...)
		fmt.Fprintf(out, "%s: done\n", name)
	}
	writeCPUTable(out, rows, o)
	return rows, nil
}

// measureCPU runs one workload on every model, interleaved, and returns a
// row per model in the order of types.
func measureCPU(ctx context.Context, models []*model.Model, types []string, name string, reqs []lmscore.Request,
	o CPUOptions) ([]CPURow, error) {
	engines := make([]*lmscore.Model, len(models))
	for i, w := range models {
		m, err := lmscore.OpenModel(w, name+"-"+types[i], lmscore.Options{Threads: o.Threads, KVMemory: 512 << 20})
		if err != nil {
			return nil, err
		}
		defer m.Close()
		engines[i] = m
	}
	rows := make([]CPURow, len(models))
	offWalls := make([][]time.Duration, len(models))
	onWalls := make([][]time.Duration, len(models))
	first := make([][]lmscore.Result, len(models))
	for i := range rows {
		rows[i] = CPURow{Workload: name, Type: types[i], Requests: len(reqs), BitwiseEqual: true}
	}
	for rep := 0; rep <= o.Repeats; rep++ { // run 0 is the warm-up
		for j := range engines {
			// Each repeat starts at the next type, so that none always
			// follows the same one.
			ti := (j + rep) % len(engines)
			m, row := engines[ti], &rows[ti]
			for _, noCache := range []bool{true, false} {
				if !noCache {
					m.ResetCache() // every cached run starts cold, like the first
				}
				res, st, err := m.Score(ctx, reqs, lmscore.ScoreOptions{NoCache: noCache})
				if err != nil {
					return nil, err
				}
				if first[ti] == nil {
					first[ti] = res
				} else {
					for k := range res {
						row.BitwiseEqual = row.BitwiseEqual && workload.SameScores(first[ti][k].TokenLogProbs, res[k].TokenLogProbs)
					}
				}
				row.TotalTokens, row.UniqueTokens = st.TotalTokens, st.UniqueTokens
				if rep == 0 {
					continue
				}
				if noCache {
					offWalls[ti] = append(offWalls[ti], st.Wall)
				} else {
					onWalls[ti] = append(onWalls[ti], st.Wall)
					row.ComputedCache = st.ComputedTokens
				}
			}
		}
	}
	base := -1
	for i, typ := range types {
		if typ == "f32" {
			base = i
		}
	}
	for i := range rows {
		row := &rows[i]
		row.NoCacheWall, row.CacheWall = median(offWalls[i]), median(onWalls[i])
		row.Speedup = row.NoCacheWall.Seconds() / row.CacheWall.Seconds()
		row.IdealSpeedup = float64(row.TotalTokens) / float64(row.UniqueTokens)
		row.Efficiency = row.Speedup / row.IdealSpeedup
		if base >= 0 {
			row.NoCacheVsF32 = row.NoCacheWall.Seconds() / median(offWalls[base]).Seconds()
			row.CacheVsF32 = row.CacheWall.Seconds() / median(onWalls[base]).Seconds()
		}
	}
	return rows, nil
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
	fmt.Fprintln(tw, "workload\ttype\trequests\ttotal tok\tunique tok\tno cache\tcache\tspeedup\ttotal/unique\tefficiency\tno cache / f32\tcache / f32\tbitwise equal")
	ratio := func(x float64) string {
		if x == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", x)
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%.2fx\t%.2fx\t%.2f\t%s\t%s\t%v\n", r.Workload, r.Type, r.Requests,
			r.TotalTokens, r.UniqueTokens, r.NoCacheWall.Round(time.Millisecond), r.CacheWall.Round(time.Millisecond),
			r.Speedup, r.IdealSpeedup, r.Efficiency, ratio(r.NoCacheVsF32), ratio(r.CacheVsF32), r.BitwiseEqual)
	}
	tw.Flush()
}
