package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"syscall"
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
	NoCacheVsF32  VsF32         // zero without an F32 row
	CacheVsF32    VsF32
	BitwiseEqual  bool
	ComputedCache int64
}

// VsF32 compares a type's runs with the F32 model's of the same repeat,
// which ran just before or after them, so that drift of the machine
// cancels: medians over repeats of the ratios of wall time and of the
// process's CPU time (user + system; what other work on the machine
// steals from the wall barely shows in it), and the smallest and largest
// wall ratio.
type VsF32 struct {
	Wall, WallMin, WallMax, CPU float64
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
	// walls[type][mode] and cpus[type][mode], mode 0 without the cache and
	// 1 with it: one entry per repeat.
	walls := make([][2][]time.Duration, len(models))
	cpus := make([][2][]time.Duration, len(models))
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
			for mode, noCache := range []bool{true, false} {
				if !noCache {
					m.ResetCache() // every cached run starts cold, like the first
				}
				cpu0 := processCPU()
				res, st, err := m.Score(ctx, reqs, lmscore.ScoreOptions{NoCache: noCache})
				if err != nil {
					return nil, err
				}
				cpu := processCPU() - cpu0
				if first[ti] == nil {
					first[ti] = res
				} else {
					for k := range res {
						row.BitwiseEqual = row.BitwiseEqual && workload.SameScores(first[ti][k].TokenLogProbs, res[k].TokenLogProbs)
					}
				}
				row.TotalTokens = st.TotalTokens
				if !noCache { // the uncached run computes every token
					row.UniqueTokens, row.ComputedCache = st.UniqueTokens, st.ComputedTokens
				}
				if rep > 0 {
					walls[ti][mode] = append(walls[ti][mode], st.Wall)
					cpus[ti][mode] = append(cpus[ti][mode], cpu)
				}
			}
		}
	}
	base := slices.Index(types, "f32")
	for i := range rows {
		row := &rows[i]
		row.NoCacheWall, row.CacheWall = median(walls[i][0]), median(walls[i][1])
		row.Speedup = row.NoCacheWall.Seconds() / row.CacheWall.Seconds()
		row.IdealSpeedup = float64(row.TotalTokens) / float64(row.UniqueTokens)
		row.Efficiency = row.Speedup / row.IdealSpeedup
		if base >= 0 {
			vs := func(mode int) VsF32 {
				w := pairedRatios(walls[i][mode], walls[base][mode])
				return VsF32{Wall: w[len(w)/2], WallMin: w[0], WallMax: w[len(w)-1],
					CPU: medianOf(pairedRatios(cpus[i][mode], cpus[base][mode]))}
			}
			row.NoCacheVsF32, row.CacheVsF32 = vs(0), vs(1)
		}
	}
	return rows, nil
}

// processCPU is the user and system time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pairedRatios returns a[r] / b[r] for every r, sorted.
func pairedRatios(a, b []time.Duration) []float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i].Seconds() / b[i].Seconds()
	}
	sort.Float64s(r)
	return r
}

func medianOf(sorted []float64) float64 { return sorted[len(sorted)/2] }

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
	fmt.Fprintln(tw, "workload\ttype\trequests\ttotal tok\tunique tok\tno cache\tcache\tspeedup\ttotal/unique\tefficiency\tbitwise equal")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%.2fx\t%.2fx\t%.2f\t%v\n", r.Workload, r.Type, r.Requests,
			r.TotalTokens, r.UniqueTokens, r.NoCacheWall.Round(time.Millisecond), r.CacheWall.Round(time.Millisecond),
			r.Speedup, r.IdealSpeedup, r.Efficiency, r.BitwiseEqual)
	}
	tw.Flush()
	if rows[0].NoCacheVsF32 == (VsF32{}) {
		return
	}
	fmt.Fprintf(out, "\nAgainst F32, medians of the %d repeats' ratios (wall: smallest-largest)\n\n", o.Repeats)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\ttype\tno cache wall\tno cache CPU\tcache wall\tcache CPU")
	vs := func(v VsF32) string {
		return fmt.Sprintf("%.3f (%.3f-%.3f)\t%.3f", v.Wall, v.WallMin, v.WallMax, v.CPU)
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Workload, r.Type, vs(r.NoCacheVsF32), vs(r.CacheVsF32))
	}
	tw.Flush()
}
