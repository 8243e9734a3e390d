package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lmscore/lmscore/workload"
)

// GPUWorkload is one workload of the GPU benchmark at the size one run
// affords: a generator of workload.Generators and the options it runs with.
type GPUWorkload struct {
	Name      string // as the report names it
	Generator string // a key of workload.Generators
	Options   workload.Options
}

// GPUSizes lists the sizes GPUSuite knows, smallest first.
var GPUSizes = []string{"tiny", "default", "issue"}

// GPUSuite returns the workloads of `make bench` at a size:
//
//   - "default" fits both models, every peer and the repeats into one
//     device call of a few minutes: metaicl16 is the issue's "first
//     measurement" shape (4 tasks x 100 questions, 16 demonstrations of
//     20-60 tokens, ~731k total tokens); the others are cut to a few hundred
//     thousand tokens so that the uncached peers finish.
//   - "issue" is the full table (20 tasks x 1000 questions, 10,000
//     HellaSwag contexts, 5,000 system-prompt requests): hours for the
//     uncached peers.
//   - "tiny" is a few requests of each, to check the pipeline end to end on
//     the CPU with a small model.
//
// Token ids are drawn from [3, vocab) and demonstrations are joined by
// token 198 ("\n" in both GPT-2's and Llama 3's vocabularies); window is
// the context that --long truncates to (gpt2-large's 1024).
func GPUSuite(size string, vocab int) ([]GPUWorkload, error) {
	base := workload.Options{Seed: 1, Vocab: vocab, FirstID: 3, Newline: 198, Window: 1024}
	with := func(f func(o *workload.Options)) workload.Options {
		o := base
		f(&o)
		return o
	}
	type sizes struct{ mTasks, mLongTasks, m0Tasks, mScale, mLongScale, m0Scale, hScale, sScale float64 }
	var s sizes
	switch size {
	case "tiny":
		s = sizes{2, 1, 2, 0.005, 0.004, 0.005, 0.001, 0.001}
	case "default":
		s = sizes{4, 2, 4, 0.1, 0.05, 0.1, 0.02, 0.02}
	case "issue":
		s = sizes{20, 20, 20, 1, 1, 1, 1, 1}
	default:
		return nil, fmt.Errorf("unknown size %q (have %s)", size, strings.Join(GPUSizes, ", "))
	}
	return []GPUWorkload{
		{"metaicl16", "metaicl16", with(func(o *workload.Options) { o.Tasks, o.Scale = int(s.mTasks), s.mScale })},
		{"metaicl16-long", "metaicl16", with(func(o *workload.Options) {
			o.Tasks, o.Scale, o.Long = int(s.mLongTasks), s.mLongScale, true
		})},
		{"metaicl0", "metaicl0", with(func(o *workload.Options) { o.Tasks, o.Scale = int(s.m0Tasks), s.m0Scale })},
		{"hellaswag", "hellaswag", with(func(o *workload.Options) { o.Scale = s.hScale })},
		{"sysprompt", "sysprompt", with(func(o *workload.Options) { o.Scale = s.sScale })},
	}, nil
}

// WriteGPUSuite generates every workload of the suite into dir as
// <name>.jsonl and returns the file paths in suite order.
func WriteGPUSuite(dir string, suite []GPUWorkload) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, w := range suite {
		lines, err := workload.Generate(w.Generator, w.Options)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, w.Name+".jsonl")
		if err := workload.WriteFile(path, lines); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}
