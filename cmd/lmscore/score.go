package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/scorejob"
	"github.com/lmscore/lmscore/internal/units"
)

func init() {
	register("score", "score (context, continuation) pairs from JSONL", runScore)
}

func runScore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	var cfg scorejob.Config
	fs.StringVar(&cfg.Model, "model", "", "GGUF model file (required)")
	fs.StringVar(&cfg.In, "in", "-", "request JSONL (- for stdin)")
	fs.StringVar(&cfg.Out, "out", "-", "results JSONL (- for stdout)")
	fs.StringVar(&cfg.Summary, "summary", "", "also write the statistics and metrics as JSON here")
	fs.BoolVar(&cfg.TokenLogProbs, "token-logprobs", false, "add each continuation token's log-probability")
	fs.BoolVar(&cfg.SkipInvalid, "skip-invalid", false, "report invalid lines on stderr and go on")
	addModelFlags(fs, &cfg.Options)
	kvMemory := fs.String("kv-memory", "", "KV cache budget, e.g. 2GiB (default 1GiB on cpu, 8GiB on cuda)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Model == "" {
		return fmt.Errorf("%w: --model is required", errUsage)
	}
	if *kvMemory != "" {
		n, err := units.ParseBytes(*kvMemory)
		if err != nil {
			return fmt.Errorf("%w: --kv-memory: %v", errUsage, err)
		}
		cfg.Options.KVMemory = n
	}
	return scorejob.Run(ctx, cfg)
}

// addModelFlags registers the flags every command that opens a model shares.
func addModelFlags(fs *flag.FlagSet, o *lmscore.Options) {
	fs.StringVar(&o.Backend, "backend", "cpu", "cpu or cuda")
	fs.StringVar(&o.CUDALibrary, "cuda-lib", "", "path of liblmscore_cuda.so (default $LMSCORE_CUDA_LIB, then next to the executable)")
	fs.StringVar(&o.Precision, "precision", "", "cuda arithmetic: bf16 (default) or fp32")
	fs.IntVar(&o.Device, "device", 0, "cuda device ordinal")
	fs.IntVar(&o.Threads, "threads", 0, "cpu threads (0 = all cores)")
	fs.IntVar(&o.BlockSize, "block-size", 16, "KV block size in tokens")
	fs.IntVar(&o.MaxBatchTokens, "max-batch-tokens", 0, "tokens per step (default 2048 on cpu, 8192 on cuda)")
	fs.IntVar(&o.KVBlocks, "kv-blocks", 0, "KV cache budget in blocks (overrides --kv-memory)")
	fs.BoolVar(&o.NoCache, "no-cache", false, "compute every request on its own (the baseline)")
	fs.IntVar(&o.MaxLength, "max-length", 0, "context window for left truncation (default: the model's)")
}
