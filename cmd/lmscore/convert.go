package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lmscore/lmscore/convert"
	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/internal/progress"
	"github.com/lmscore/lmscore/internal/units"
	"github.com/lmscore/lmscore/model"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "import a llama2.c checkpoint or a Hugging Face folder as GGUF",
		usage: `convert llama2c --model M.bin --tokenizer T.bin --out M.gguf [--type auto|f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1]
       lmscore convert hf --dir D --out M.gguf [--type auto|f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1] [--vocab-only]`,
		about: `The first argument names the source: llama2c (a legacy checkpoint and its
tokenizer) or hf (a folder with config.json, *.safetensors and a tokenizer).
The output's folder is created; the file appears only once it is complete.
When done, convert reports the architecture, the tensor types, the size and
the time it took.`,
		example: `lmscore convert hf --dir ~/models/Llama-3.2-1B --out out/llama-1b.gguf --type bf16
lmscore convert llama2c --model stories260K.bin --tokenizer tok512.bin --out out/stories260K.gguf`,
		flags: convertFlags,
	})
}

func convertFlags(fs *flag.FlagSet) action {
	out := fs.String("out", "", "output GGUF file (required)")
	typ := fs.String("type", "auto", "matrix type: auto (the source's), f32, f16, bf16, q8_0, q4_0, q4_1, q5_0 or q5_1")
	modelPath := fs.String("model", "", "llama2c: the legacy checkpoint (.bin)")
	tokPath := fs.String("tokenizer", "", "llama2c: the tokenizer (.bin)")
	dir := fs.String("dir", "", "hf: the model folder (config.json, *.safetensors, tokenizer)")
	vocabOnly := fs.Bool("vocab-only", false, "hf: write the tokenizer metadata and no tensors")
	progressMode := fs.String("progress", "auto", "progress on stderr: "+strings.Join(progress.Modes, ", ")+" (auto: a bar on a terminal, a log line every few seconds elsewhere)")
	return func(ctx context.Context, s streams, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%w: want one source kind, llama2c or hf, then the flags", errUsage)
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		wrong := func(kind string, names ...string) error {
			for _, n := range names {
				if set[n] {
					return fmt.Errorf("%w: --%s is not a flag of convert %s", errUsage, n, kind)
				}
			}
			return nil
		}
		mode, err := progress.ParseMode(*progressMode)
		if err != nil {
			return fmt.Errorf("%w: --progress: %v", errUsage, err)
		}
		opts := convert.Options{Type: *typ}
		var run func() error
		switch kind := args[0]; kind {
		case "llama2c":
			if *modelPath == "" || *tokPath == "" || *out == "" {
				return fmt.Errorf("%w: --model, --tokenizer and --out are required", errUsage)
			}
			if err := wrong(kind, "dir", "vocab-only"); err != nil {
				return err
			}
			run = func() error { return convert.Llama2C(*modelPath, *tokPath, *out, opts) }
		case "hf":
			if *dir == "" || *out == "" {
				return fmt.Errorf("%w: --dir and --out are required", errUsage)
			}
			if err := wrong(kind, "model", "tokenizer"); err != nil {
				return err
			}
			opts.VocabOnly = *vocabOnly
			run = func() error { return convert.HF(*dir, *out, opts) }
		default:
			return fmt.Errorf("%w: unknown source kind %q (want llama2c or hf)", errUsage, kind)
		}
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		start := time.Now()
		bar := progress.NewWith(s.err, progress.Options{Mode: mode, Unit: "tensors", Prefix: "lmscore convert: "})
		var done, total int
		opts.OnTensor = func(_ string, d, n int) {
			done, total = d, n
			bar.Update(int64(d), int64(n), time.Since(start), false)
		}
		if err := run(); err != nil {
			return err
		}
		if total > 0 {
			bar.Update(int64(done), int64(total), time.Since(start), true)
		}
		return reportConverted(s.err, *out, time.Since(start))
	}
}

// reportConverted reads the written file back and says what it holds:
// "wrote out/m.gguf: llama, 15M parameters, 57 tensors (F16 ×37, F32 ×20),
// 30.1 MiB in 1.2s".
func reportConverted(w io.Writer, path string, took time.Duration) error {
	f, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", path, err)
	}
	defer f.Close()
	sum := model.Summarize(f)
	fmt.Fprintf(w, "lmscore convert: wrote %s: %s, %s parameters, %d tensors%s, %s in %s\n",
		path, sum.Architecture, progress.Count(float64(sum.ParamCount)), sum.TensorCount,
		typeCounts(sum.TensorTypes), units.FormatBytes(sum.FileBytes), took.Round(time.Millisecond))
	return nil
}

// typeCounts renders " (F16 ×37, F32 ×20)", the most common type first.
func typeCounts(counts map[string]int) string {
	if len(counts) == 0 {
		return ""
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	sort.Slice(types, func(a, b int) bool {
		if counts[types[a]] != counts[types[b]] {
			return counts[types[a]] > counts[types[b]]
		}
		return types[a] < types[b]
	})
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s ×%d", t, counts[t])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
