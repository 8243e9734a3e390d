// Command benchgpu is the Go side of `make bench` (bench/run_gpu.sh):
//
//	benchgpu random  --shape llama-3.1-8b --type q4_k_m [--tiny] --out M.gguf
//	benchgpu gen     --model M.gguf --name NAME --size default --out DIR
//	benchgpu lmscore --model M.gguf --name NAME --dir DIR --backend cuda --out DIR/lmscore.jsonl
//	benchgpu report  --work W --models a,b --gemm W/gemm.json --runs f1.jsonl,f2.jsonl --out PREFIX
//	benchgpu profile-report --out P.md [--baseline off.jsonl] [--title T] [--note N] A.profile.json ...
//
// random writes a model of one of bench.Shapes with random weights, bf16
// or a Q4_K_M mix of random K-quant blocks (bench.RandomModel), and a
// stand-in tokenizer, so that lmscore and llama.cpp score the same file.
// gen and lmscore take --shape and --type instead of --model to make such
// a model in memory, without a file (the 70B size test). gen writes the workloads for one model (its vocabulary and window) as
// request JSONL, with meta.json: the model's shape and each workload's
// total and unique tokens, scored rows and attention work. lmscore times
// lmscore with and without its cache on them and writes one JSON line per
// peer and workload, the scores included. report merges those lines with
// the Python peers' (bench/peers) into PREFIX.md, PREFIX.json and the plot,
// PREFIX.png. profile-report turns phase profiles (benchgpu lmscore
// --profile, or `lmscore score --profile`) into one markdown table each
// (bench.WriteProfileMarkdown).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/bench"
	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/internal/units"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/workload"
)

// metaFile is what gen writes beside the workloads.
type metaFile struct {
	Model     bench.ModelShape     `json:"model"`
	Size      string               `json:"size"`
	Workloads []bench.WorkloadMeta `json:"workloads"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchgpu random|gen|lmscore|report|profile-report [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "random":
		err = random(os.Args[2:])
	case "gen":
		err = gen(os.Args[2:])
	case "lmscore":
		err = runLMScore(ctx, os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	case "profile-report":
		err = profileReport(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want random, gen, lmscore, report or profile-report)", os.Args[1])
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "benchgpu:", err)
		os.Exit(1)
	}
}

// modelFlags say which model a command works on: a GGUF file, or a shape
// of bench.Shapes with random weights made in memory.
type modelFlags struct {
	path, shape, typ string
	tiny             bool
	seed             uint64
}

func (f *modelFlags) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&f.path, "model", "", "GGUF model"+what)
	fs.StringVar(&f.shape, "shape", "", "instead of --model: a shape ("+strings.Join(bench.ShapeNames, ", ")+") with random weights, in memory")
	fs.StringVar(&f.typ, "type", "bf16", "the weights: "+strings.Join(bench.WeightTypes, ", ")+" (with --model, only the report's label)")
	fs.BoolVar(&f.tiny, "tiny", false, "with --shape: its 2-layer version")
	fs.Uint64Var(&f.seed, "seed", 1, "with --shape: the weights' seed")
}

func (f *modelFlags) check(cmd string) error {
	if (f.path == "") == (f.shape == "") {
		return fmt.Errorf("%s: give --model or --shape", cmd)
	}
	return nil
}

// defaultName is the report's name of the model: the file's, or the variant's.
func (f *modelFlags) defaultName() string {
	if f.path != "" {
		return strings.TrimSuffix(filepath.Base(f.path), ".gguf")
	}
	return bench.VariantName(f.shape, f.typ)
}

// base is the shape a model is of: --shape, or the file's name up to its type.
func (f *modelFlags) base() string {
	if f.shape != "" {
		return f.shape
	}
	return strings.TrimSuffix(f.defaultName(), "-"+f.typ)
}

// load opens the file, or makes the weights (withData false: their
// shapes and types alone, for what needs no values).
func (f *modelFlags) load(withData bool) (*model.Model, error) {
	if f.path != "" {
		return model.Load(f.path)
	}
	s, err := bench.Shapes(f.shape, f.tiny)
	if err != nil {
		return nil, err
	}
	if !withData {
		return bench.Skeleton(s, f.typ)
	}
	return bench.RandomModel(s, f.typ, f.seed, 0)
}

// random writes a shape's random model as a GGUF file that lmscore and
// llama.cpp both load.
func random(args []string) error {
	fs := flag.NewFlagSet("random", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs, " (not used)")
	out := fs.String("out", "", "the GGUF file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if mf.shape == "" || *out == "" {
		return errors.New("random: --shape and --out are required")
	}
	start := time.Now()
	m, err := mf.load(true)
	if err != nil {
		return err
	}
	drawn := time.Since(start)
	tok, err := model.FixtureTokenizer(m.Config.NVocab)
	if err != nil {
		return err
	}
	name, err := gguf.ValueOf(mf.defaultName())
	if err != nil {
		return err
	}
	if err := model.WriteGGUF(*out, m.Config, &m.Weights, append(tok, gguf.KV{Key: "general.name", Value: name})...); err != nil {
		return err
	}
	written := time.Since(start) - drawn
	// The writer keeps what llama.cpp's keys hold; a feature this tree's
	// writer does not write yet is said, not silently benchmarked without.
	f, err := gguf.Open(*out)
	if err != nil {
		return fmt.Errorf("random: reading %s back: %w", *out, err)
	}
	back, err := model.ConfigFromGGUF(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("random: reading %s back: %w", *out, err)
	}
	if diff := configDiff(m.Config, back); diff != "" {
		fmt.Fprintf(os.Stderr, "benchgpu random: %s: the file does not keep the shape's %s\n", *out, diff)
	}
	fmt.Printf("%s: %s, %.2f GB, drawn in %.1f s, written in %.1f s\n", *out, mf.defaultName(),
		float64(bench.TensorBytes(m))/1e9, drawn.Seconds(), written.Seconds())
	return nil
}

// configDiff names the fields in which two configs differ ("" if none).
func configDiff(want, got model.Config) string {
	var d []string
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := range wv.NumField() {
		if !reflect.DeepEqual(wv.Field(i).Interface(), gv.Field(i).Interface()) {
			d = append(d, fmt.Sprintf("%s (%v, read back as %v)", wv.Type().Field(i).Name, wv.Field(i).Interface(), gv.Field(i).Interface()))
		}
	}
	return strings.Join(d, ", ")
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	var mflags modelFlags
	mflags.register(fs, ": its vocabulary, window and shape")
	name := fs.String("name", "", "the model's name in the report (default: the file's, or the variant's)")
	size := fs.String("size", "default", "workload size: "+strings.Join(bench.GPUSizes, ", "))
	only := fs.String("workloads", "", "comma-separated subset of the suite (default: all)")
	out := fs.String("out", "", "directory for <workload>.jsonl and meta.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := mflags.check("gen"); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("gen: --out is required")
	}
	m, err := mflags.load(false)
	if err != nil {
		return err
	}
	defer m.Close()
	if *name == "" {
		*name = mflags.defaultName()
	}
	all, err := bench.GPUSuite(*size, m.Config.NVocab)
	if err != nil {
		return err
	}
	want := commaSet(*only)
	var suite []bench.GPUWorkload
	for _, w := range all {
		if len(want) == 0 || want[w.Name] {
			suite = append(suite, w)
		}
	}
	if len(want) > 0 && len(suite) != len(want) {
		return fmt.Errorf("gen: --workloads %s: size %s has only some of them", *only, *size)
	}
	paths, err := bench.WriteGPUSuite(*out, suite)
	if err != nil {
		return err
	}
	mf := metaFile{Model: bench.ShapeOf(*name, m), Size: *size}
	mf.Model.Base, mf.Model.Type = mflags.base(), mflags.typ
	for i, w := range suite {
		lines, err := bench.ReadJSONLFile(paths[i])
		if err != nil {
			return err
		}
		meta, err := bench.MetaOf(*name, w.Name, lines, m.Config.NCtxTrain)
		if err != nil {
			return err
		}
		mf.Workloads = append(mf.Workloads, meta)
		fmt.Printf("%s/%s: %d requests, %d total, %d unique tokens\n", *name, w.Name, meta.Requests, meta.TotalTokens, meta.UniqueTokens)
	}
	return writeJSON(filepath.Join(*out, "meta.json"), mf)
}

func runLMScore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lmscore", flag.ContinueOnError)
	var mflags modelFlags
	mflags.register(fs, "")
	name := fs.String("name", "", "the model's name in the report (default: meta.json's)")
	dir := fs.String("dir", "", "directory gen wrote")
	out := fs.String("out", "", "JSONL of the runs (appended)")
	only := fs.String("workloads", "", "comma-separated subset (default: all in meta.json)")
	var o lmscore.Options
	fs.StringVar(&o.Backend, "backend", "cuda", "cpu or cuda")
	fs.StringVar(&o.CUDALibrary, "cuda-lib", "", "liblmscore_cuda.so (default: $LMSCORE_CUDA_LIB, then beside the executable)")
	fs.IntVar(&o.Threads, "threads", 0, "cpu threads")
	kvMemory := fs.String("kv-memory", "4GiB", "KV cache budget")
	repeats := fs.Int("repeats", 3, "timed runs when a run is short")
	short := fs.Duration("short", 3*time.Second, "a run shorter than this is repeated")
	deadline := fs.Int64("deadline", 0, "unix time after which no run starts (0: none)")
	nvsmi := fs.Bool("gpu-memory", true, "measure device memory with nvidia-smi")
	profile := fs.Bool("profile", false, "time every phase of every step ("+lmscore.ProfileEnv+"=1) and write each peer's profile of its timed runs beside --out as <workload>.<peer>.profile.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile {
		// Read by lmscore and its core as the model opens.
		if err := os.Setenv(lmscore.ProfileEnv, "1"); err != nil {
			return err
		}
	}
	if err := mflags.check("lmscore"); err != nil {
		return err
	}
	if *dir == "" || *out == "" {
		return errors.New("lmscore: --dir and --out are required")
	}
	var err error
	if o.KVMemory, err = units.ParseBytes(*kvMemory); err != nil {
		return fmt.Errorf("--kv-memory: %v", err)
	}
	var mf metaFile
	if err := readJSON(filepath.Join(*dir, "meta.json"), &mf); err != nil {
		return err
	}
	if *name == "" {
		*name = mf.Model.Name
	}
	// The card's use before this process loads anything: the fallback for
	// machines whose nvidia-smi lists no processes.
	var baseline int64
	if *nvsmi {
		if baseline, err = bench.CardUsedMemory(bench.RunNvidiaSMI); err != nil {
			fmt.Fprintln(os.Stderr, "benchgpu: device memory will not be measured:", err)
			*nvsmi = false
		}
	}
	// Loaded as lmscore.Open loads a file (model.Load, then the core), so
	// that the weights' bytes are known; a shape is made in memory first.
	start := time.Now()
	weights, err := mflags.load(true)
	if err != nil {
		return err
	}
	if mflags.shape != "" {
		fmt.Printf("%s: weights made in memory in %.1f s\n", *name, time.Since(start).Seconds())
	}
	weightBytes := bench.TensorBytes(weights)
	start = time.Now()
	m, err := lmscore.OpenModel(weights, mflags.defaultName(), o)
	if err != nil {
		weights.Close()
		return err
	}
	defer m.Close()
	loaded := time.Since(start).Seconds()
	fmt.Printf("%s: loaded on %s in %.1f s, %.2f GiB of weights\n", *name, o.Backend, loaded, float64(weightBytes)/(1<<30))
	b := bench.LMScoreBench{Model: m, ModelName: *name, Timing: bench.Timing{Repeats: *repeats, Short: *short},
		WeightBytes: weightBytes, LoadSeconds: loaded}
	if *deadline > 0 {
		b.Timing.Deadline = time.Unix(*deadline, 0)
	}
	if *profile {
		b.ProfileDir = filepath.Dir(*out)
	}
	if *nvsmi {
		pid := os.Getpid()
		b.GPUMemory = func() (int64, string, error) { return bench.ProcessGPUMemory(bench.RunNvidiaSMI, pid, baseline) }
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	want := commaSet(*only)
	for _, meta := range mf.Workloads {
		if len(want) > 0 && !want[meta.Workload] {
			continue
		}
		lines, err := bench.ReadJSONLFile(filepath.Join(*dir, meta.Workload+".jsonl"))
		if err != nil {
			return err
		}
		rows, err := b.Run(ctx, meta.Workload, lines)
		if err != nil {
			// One workload's failure is a row of the report, not the end of
			// the run: the other workloads may still measure.
			fmt.Fprintln(os.Stderr, "benchgpu:", err)
			rows = []bench.PeerRun{
				{Model: *name, Workload: meta.Workload, Peer: bench.PeerLMScore, Error: err.Error()},
				{Model: *name, Workload: meta.Workload, Peer: bench.PeerLMScoreNoCache, Error: err.Error()},
			}
			if ctx.Err() != nil {
				return errors.Join(err, writeRuns(f, rows))
			}
		}
		if err := writeRuns(f, rows); err != nil {
			return err
		}
		for _, r := range rows {
			fmt.Printf("%s/%s/%s: %s\n", *name, meta.Workload, r.Peer, summarize(r))
		}
	}
	return nil
}

func summarize(r bench.PeerRun) string {
	switch {
	case r.Error != "":
		return "error: " + r.Error
	case r.Skipped != "":
		return "skipped: " + r.Skipped
	}
	return fmt.Sprintf("%.3f s (runs %v, warm-up %.2f s), %d total, %d computed tokens", r.Wall(), r.RunsSeconds,
		r.WarmupSeconds, r.TotalTokens, r.ComputedTokens)
}

func writeRuns(f *os.File, rows []bench.PeerRun) error {
	for _, r := range rows {
		if err := bench.AppendPeerRun(f, r); err != nil {
			return err
		}
	}
	return nil
}

func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	work := fs.String("work", "", "work directory: one folder per model, as gen wrote it")
	models := fs.String("models", "", "comma-separated model folders under --work, in report order")
	gemm := fs.String("gemm", "", "gemm_rate.py's JSON")
	runsFlag := fs.String("runs", "", "comma-separated JSONL files of runs (missing files are noted)")
	out := fs.String("out", "", "output prefix: writes PREFIX.md, PREFIX.json and PREFIX.png")
	card := fs.String("card", "", "the device's name (default: the GEMM file's)")
	date := fs.String("date", time.Now().UTC().Format("2006-01-02"), "the run's date")
	var comments multiFlag
	fs.Var(&comments, "note", "a note for the report (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *work == "" || *models == "" || *out == "" {
		return errors.New("report: --work, --models and --out are required")
	}
	in := bench.ReportInput{Date: *date, Lines: map[string][]workload.Line{}, Comments: comments}
	if *gemm != "" {
		if err := readJSON(*gemm, &in.GEMM); err != nil {
			in.Comments = append(in.Comments, "no GEMM rate, so no floor: "+err.Error())
		}
	}
	in.Card = *card
	if in.Card == "" {
		in.Card = in.GEMM.Device
	}
	for _, name := range strings.Split(*models, ",") {
		var mf metaFile
		if err := readJSON(filepath.Join(*work, name, "meta.json"), &mf); err != nil {
			in.Comments = append(in.Comments, fmt.Sprintf("model %s: no workloads (%v)", name, err))
			continue
		}
		in.Models = append(in.Models, mf.Model)
		in.Meta = append(in.Meta, mf.Workloads...)
		for _, w := range mf.Workloads {
			lines, err := workloadLines(filepath.Join(*work, name), mf, w)
			if err != nil {
				return err
			}
			in.Lines[mf.Model.Name+"/"+w.Workload] = lines
		}
	}
	for _, p := range strings.Split(*runsFlag, ",") {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			in.Comments = append(in.Comments, fmt.Sprintf("no runs from %s (%v)", filepath.Base(p), err))
			continue
		}
		runs, err := bench.ReadPeerRuns(p)
		if err != nil {
			return err
		}
		in.Runs = append(in.Runs, runs...)
	}
	rep, err := bench.BuildReport(in)
	if err != nil {
		return err
	}
	f, err := os.Create(*out + ".md")
	if err != nil {
		return err
	}
	if err := rep.WriteMarkdown(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := writeJSON(*out+".json", rep); err != nil {
		return err
	}
	// The plot is a view of the table: without it the report still stands.
	if err := rep.WritePlot(*out + ".png"); err != nil {
		fmt.Fprintln(os.Stderr, "benchgpu report: no plot:", err)
	}
	return nil
}

// workloadLines reads a workload's requests, or, where the file is absent
// (raw.tar.gz leaves them out: they are seeded), generates them again from
// the suite at the size and vocabulary meta.json records, and checks that
// they are the ones measured.
func workloadLines(dir string, mf metaFile, w bench.WorkloadMeta) ([]workload.Line, error) {
	path := filepath.Join(dir, w.Workload+".jsonl")
	if _, err := os.Stat(path); err == nil {
		return bench.ReadJSONLFile(path)
	}
	suite, err := bench.GPUSuite(mf.Size, mf.Model.NVocab)
	if err != nil {
		return nil, err
	}
	for _, gw := range suite {
		if gw.Name != w.Workload {
			continue
		}
		lines, err := workload.Generate(gw.Generator, gw.Options)
		if err != nil {
			return nil, err
		}
		again, err := bench.MetaOf(w.Model, w.Workload, lines, mf.Model.NCtx)
		if err != nil {
			return nil, err
		}
		if again != w {
			return nil, fmt.Errorf("%s: %s generated again differs from the one measured (%+v, not %+v)", path, w.Workload, again, w)
		}
		return lines, nil
	}
	return nil, fmt.Errorf("%s: missing, and size %q has no workload %s", path, mf.Size, w.Workload)
}

// profileReport writes the markdown summary of phase profiles.
func profileReport(args []string) error {
	fs := flag.NewFlagSet("profile-report", flag.ContinueOnError)
	out := fs.String("out", "", "the markdown file to write (- for stdout)")
	title := fs.String("title", "Where the time goes", "the report's heading")
	baseline := fs.String("baseline", "", "benchgpu lmscore's JSONL of the same runs with the profiler off: their wall times go beside the profiled ones")
	var notes multiFlag
	fs.Var(&notes, "note", "a note for the report (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("profile-report: --out and at least one profile file are required")
	}
	var runs []bench.ProfileRun
	for _, path := range fs.Args() {
		r, err := bench.ReadProfileRun(path)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	var off []bench.PeerRun
	if *baseline != "" {
		var err error
		if off, err = bench.ReadPeerRuns(*baseline); err != nil {
			return err
		}
	}
	if *out == "-" {
		return bench.WriteProfileMarkdown(os.Stdout, *title, runs, off, notes)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := bench.WriteProfileMarkdown(f, *title, runs, off, notes); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func commaSet(list string) map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.Split(list, ",") {
		if w != "" {
			set[w] = true
		}
	}
	return set
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
