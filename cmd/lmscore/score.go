package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/progress"
	"github.com/lmscore/lmscore/internal/scorejob"
)

func init() {
	register(&command{
		name:    "score",
		summary: "score (context, continuation) pairs from JSONL",
		usage:   "score --model M.gguf [--in requests.jsonl] [--out results.jsonl] [--summary summary.json] [flags]",
		about: `Reads one request per line, {"context": ..., "continuation": ...} or its token
form {"context_tokens": [...], "continuation_tokens": [...]}, with optional
"id", "task", "group", "label" and "choice" (another field is an error, as
is an id given twice); writes one result per line, in input order. To a
file, results go to FILE.journal as they complete (durable every half
second) and FILE is written once, atomically, when all are in: a run
killed part-way keeps its results in the journal, and --resume computes
only the missing ones, with output byte-identical to an uninterrupted run.
A journal left by a stopped run must be resumed (--resume) or discarded
(--force). Lines with a group and a label are scored as
multiple choice: at the end the statistics and an lm-eval-style table of
acc, acc_norm and acc_per_token per task, with standard errors, go to
stderr. Folders named by --out and --summary are created.

--shard i/N scores only shard i (from 0) of the requests split into N
prefix-affine parts (lmscore plan --shards N shows them): every process of a
sharded run reads the same request file and picks its own part, and --out
gets a shard file for lmscore merge. --shard auto/N takes i from
JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (a
Slurm array, --array=0-<N-1>).

--devices all|0,1,... opens the model once per device (its own context
and KV pool, --kv-memory each) and spreads the requests over them by
prefix-affine pieces, a device that finishes one taking the next: the
results are one device's, byte for byte. It combines with --shard (the
shard's requests spread over the devices) and --resume (a journal resumes
on any devices). A failing device stops the run, named in the error.`,
		example: `lmscore score -m stories260K.gguf --in requests.jsonl --out out/results.jsonl --summary out/summary.json
lmscore score -m stories260K.gguf --in requests.jsonl --shard 2/7 --out out/shard-2.jsonl
lmscore score -m model.gguf --backend cuda --devices all --in requests.jsonl --out out/results.jsonl`,
		flags: scoreFlags,
	})
}

func runScore(ctx context.Context, args []string) error {
	return commands["score"].run(ctx, stdStreams(), args)
}

func scoreFlags(fs *flag.FlagSet) action {
	var cfg scorejob.Config
	fs.StringVar(&cfg.In, "in", "-", "request JSONL (- for stdin)")
	fs.StringVar(&cfg.Out, "out", "-", "results JSONL (- for stdout)")
	fs.StringVar(&cfg.Summary, "summary", "", "also write the statistics and metrics as JSON here")
	fs.StringVar(&cfg.Profile, "profile", "", "time every phase of every step (sets "+lmscore.ProfileEnv+"=1) and write where the time went as JSON here")
	fs.BoolVar(&cfg.TokenLogProbs, "token-logprobs", false, "add each continuation token's log-probability")
	fs.BoolVar(&cfg.SkipInvalid, "skip-invalid", false, "report invalid lines on stderr and go on")
	fs.BoolVar(&cfg.AllowDuplicateIDs, "allow-duplicate-ids", false, "score lines that repeat an id (results are kept apart by line)")
	fs.BoolVar(&cfg.Resume, "resume", false, "finish the run whose journal (--out FILE.journal) is there, computing only the missing results; the model, requests and settings must be the same")
	fs.BoolVar(&cfg.Force, "force", false, "discard the journal of an earlier, stopped run and start over")
	devices := fs.String("devices", "", "score on several devices at once: all or ordinals such as 0,1,3 (CUDA; on the CPU, instances sharing the cores); scores are one device's")
	shard := fs.String("shard", "", "score only shard i of N of the requests (i/N, from 0; auto/N: i from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID); --out gets a shard file for lmscore merge")
	progressMode := fs.String("progress", "auto", "progress on stderr: "+strings.Join(progress.Modes, ", ")+" (auto: a bar on a terminal, a log line every few seconds elsewhere)")
	mf := addModelFlags(fs)
	return func(ctx context.Context, s streams, args []string) error {
		if mf.Path == "" {
			return fmt.Errorf("%w: --model is required", errUsage)
		}
		if len(args) != 0 {
			return fmt.Errorf("%w: unexpected argument %q (the requests come from --in)", errUsage, args[0])
		}
		var err error
		if cfg.Progress, err = progress.ParseMode(*progressMode); err != nil {
			return fmt.Errorf("%w: --progress: %v", errUsage, err)
		}
		if *shard != "" {
			if cfg.Shard, cfg.Shards, err = scorejob.ParseShard(*shard, os.Getenv); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		if cfg.Options, err = mf.options(); err != nil {
			return err
		}
		if *devices != "" {
			deviceSet := false
			fs.Visit(func(f *flag.Flag) { deviceSet = deviceSet || f.Name == "device" })
			if deviceSet {
				return fmt.Errorf("%w: --device and --devices exclude each other", errUsage)
			}
			if cfg.Devices, err = lmscore.ParseDevices(*devices, lmscore.AvailableDevices(cfg.Options.Backend)); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		cfg.Model = mf.Path
		if cfg.Profile != "" {
			// The cores read it as the model opens, once.
			if err := os.Setenv(lmscore.ProfileEnv, "1"); err != nil {
				return err
			}
		}
		cfg.Stdin, cfg.Stdout, cfg.Stderr = s.in, s.out, s.err
		return scorejob.Run(ctx, cfg)
	}
}
