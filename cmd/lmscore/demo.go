package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/lmscore/lmscore/internal/demo"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "score a built-in few-shot workload with and without the prefix cache",
		usage:   "demo [--work out/demo] [--stories260k DIR]",
		about: `Writes a small model (or converts llama2.c's stories260K when --stories260k
names its folder) and a few-shot multiple-choice workload into --work, scores
it with the prefix cache and without, and prints both runs' figures.`,
		example: `lmscore demo --work out/demo`,
		flags:   demoFlags,
	})
}

func demoFlags(fs *flag.FlagSet) action {
	var cfg demo.Config
	fs.StringVar(&cfg.Work, "work", "out/demo", "folder for the demo model and requests")
	fs.StringVar(&cfg.Stories260K, "stories260k", "", "folder holding llama2.c's stories260K.bin and tok512.bin (default: a small random model)")
	return func(ctx context.Context, s streams, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
		}
		return demo.Run(ctx, cfg, s.out)
	}
}
