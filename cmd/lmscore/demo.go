package main

import (
	"context"
	"flag"
	"os"

	"github.com/lmscore/lmscore/internal/demo"
)

func init() {
	register("demo", "score a built-in few-shot workload with and without the prefix cache", runDemo)
}

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var cfg demo.Config
	fs.StringVar(&cfg.Work, "work", "out/demo", "folder for the demo model and requests")
	fs.StringVar(&cfg.Stories260K, "stories260k", "", "folder holding llama2.c's stories260K.bin and tok512.bin (default: a small random model)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return demo.Run(ctx, cfg, os.Stdout)
}
