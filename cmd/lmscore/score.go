package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/lmscore/lmscore/internal/scorejob"
)

func init() {
	register("score", "score (context, continuation) pairs from JSONL", runScore)
}

func runScore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	var cfg scorejob.Config
	fs.StringVar(&cfg.In, "in", "-", "request JSONL (- for stdin)")
	fs.StringVar(&cfg.Out, "out", "-", "results JSONL (- for stdout)")
	fs.StringVar(&cfg.Summary, "summary", "", "also write the statistics and metrics as JSON here")
	fs.BoolVar(&cfg.TokenLogProbs, "token-logprobs", false, "add each continuation token's log-probability")
	fs.BoolVar(&cfg.SkipInvalid, "skip-invalid", false, "report invalid lines on stderr and go on")
	mf := addModelFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if mf.Path == "" {
		return fmt.Errorf("%w: --model is required", errUsage)
	}
	var err error
	if cfg.Options, err = mf.options(); err != nil {
		return err
	}
	cfg.Model = mf.Path
	return scorejob.Run(ctx, cfg)
}
