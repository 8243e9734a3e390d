package main

import (
	"context"
	"flag"
	"os"

	"github.com/lmscore/lmscore/bench"
)

func init() {
	register("demo", "score a built-in few-shot workload with and without the prefix cache", runDemo)
}

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	work := fs.String("work", "out/demo", "folder for the demo model and requests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.Demo(ctx, *work, os.Stdout)
}
