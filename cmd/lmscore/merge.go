package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/lmscore/lmscore/internal/scorejob"
)

func init() {
	register(&command{
		name:    "merge",
		summary: "join the shard files of lmscore score --shard into one run's results and summary",
		usage:   "merge --out results.jsonl [--summary summary.json] SHARD_FILE...",
		about: `Reads the files that lmscore score --shard i/N --out FILE wrote, one per
shard, in any order, and writes the output one process would have written
(byte for byte, in input order) and its summary: the same multiple-choice
metrics over every question, the shards' work summed (and listed per shard
under "shards"). Refuses shards of different models, request files,
settings or N, names the shard indices missing or given twice, and refuses
a shard that stopped before its end (finish it with --resume first).`,
		example: `lmscore merge --out out/results.jsonl --summary out/summary.json out/shard-*.jsonl`,
		flags:   mergeFlags,
	})
}

func mergeFlags(fs *flag.FlagSet) action {
	var cfg scorejob.MergeConfig
	fs.StringVar(&cfg.Out, "out", "", "the merged results JSONL (required)")
	fs.StringVar(&cfg.Summary, "summary", "", "also write the merged statistics and metrics as JSON here")
	return func(ctx context.Context, s streams, args []string) error {
		if cfg.Out == "" || len(args) == 0 {
			return fmt.Errorf("%w: want --out FILE and the shard files", errUsage)
		}
		cfg.Inputs, cfg.Stderr = args, s.err
		return scorejob.Merge(cfg)
	}
}
