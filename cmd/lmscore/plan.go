package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/chart"
	"github.com/lmscore/lmscore/internal/requestio"
)

func init() {
	register(&command{
		name:    "plan",
		summary: "plan a request JSONL (no model run) and print the plan's statistics as JSON",
		usage:   "plan --in requests.jsonl [--model M.gguf] [--block-size 16] [--max-batch-tokens N] [--kv-blocks N] [--max-length N] [--no-cache] [--plot plan.png]",
		about: `Builds the prefix trie of the requests and plans every step the scorer would
run, without running a model, then prints what the plan does: tokens in all,
unique (each shared prefix once), computed, recomputed; blocks copied and
reused; steps; the peak of live KV blocks; the --kv-blocks from which the
plan computes every unique token exactly once (kv_blocks_no_recompute); and
the smallest with which it completes at all (kv_blocks_min).

--plot draws the prefix tree as an icicle (PNG, SVG or PDF, by the file's
extension): requests across, token positions down, each node as wide as the
requests that read it, so that its area is the tokens it stands for without
sharing; shared prefixes in one colour, each request's own tokens in another.

Token-form lines need no model. Text-form lines need --model for its
tokenizer, which also gives the BOS token for empty contexts and the context
window for left truncation.`,
		example: "lmscore plan --in requests.jsonl --kv-blocks 512\nlmscore plan --in requests.jsonl --plot out/plan.svg",
		flags:   planFlags,
	})
}

func runPlan(ctx context.Context, args []string) error {
	return commands["plan"].run(ctx, stdStreams(), args)
}

func planCommand(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	return commands["plan"].run(ctx, streams{stdin, stdout, os.Stderr}, args)
}

func planFlags(fs *flag.FlagSet) action {
	in := fs.String("in", "", "request JSONL (- for stdin; required)")
	var opts lmscore.PlanOptions
	fs.IntVar(&opts.BlockSize, "block-size", 16, "KV block size in tokens")
	fs.IntVar(&opts.MaxBatchTokens, "max-batch-tokens", 2048, "tokens (and output rows) per step")
	fs.IntVar(&opts.KVBlocks, "kv-blocks", 0, "KV budget in blocks, the reserved block 0 included (0: room for the whole plan)")
	fs.IntVar(&opts.MaxLength, "max-length", -1, "context window for left truncation (default: the model's, else none)")
	fs.BoolVar(&opts.NoCache, "no-cache", false, "plan every request on its own (the baseline)")
	modelPath := fs.String("model", "", "GGUF file: its tokenizer, BOS token and context window")
	plotPath := fs.String("plot", "", "also draw the prefix tree into this .png, .svg or .pdf file")
	aliasFlag(fs, "m", "model")
	aliasFlag(fs, "c", "max-length")
	shards := addShardsFlag(fs) // plan_shards.go
	return func(ctx context.Context, s streams, args []string) error {
		if *shards != 0 {
			return planShards(ctx, s, *in, *modelPath, opts, *shards, args)
		}
		return plan(ctx, s, *in, *modelPath, *plotPath, opts, args)
	}
}

func plan(ctx context.Context, s streams, in, modelPath, plotPath string, opts lmscore.PlanOptions, args []string) error {
	if in == "" || len(args) != 0 {
		return fmt.Errorf("%w: want --in requests.jsonl and no arguments", errUsage)
	}
	if plotPath != "" {
		if _, err := chart.Format(plotPath); err != nil {
			return fmt.Errorf("%w: --plot: %v", errUsage, err)
		}
		opts.KeepTrie = true
	}
	opts.MaxLength = max(opts.MaxLength, 0) // -1, the flag's default: PlanOptions' 0
	var tokenize requestio.TokenizeFunc
	if modelPath != "" {
		meta, err := lmscore.OpenMeta(modelPath)
		if err != nil {
			return err
		}
		defer meta.Close()
		opts.Meta, tokenize = meta, meta.TokenizePair
	}
	reqs, lines, name, err := readPlanRequests(in, s.in, tokenize)
	if err != nil {
		return err
	}
	report, err := lmscore.Plan(ctx, reqs, opts)
	var re *lmscore.RequestError
	if errors.As(err, &re) && re.Index >= 0 && re.Index < len(lines) {
		if errors.Is(re.Err, lmscore.ErrNoPrefixToken) {
			why := "give --model M.gguf for its BOS token"
			if opts.Meta != nil {
				why = "the model's vocabulary has neither BOS nor EOS"
			}
			return fmt.Errorf("%s:%d: request %q has an empty context: %s", name, lines[re.Index], re.ID, why)
		}
		return fmt.Errorf("%s:%d: %w", name, lines[re.Index], re.Err)
	}
	if err != nil {
		return err
	}
	if plotPath != "" {
		if _, err := chart.WriteIcicle(plotPath, report.Trie); err != nil {
			return err
		}
		fmt.Fprintf(s.err, "plan: prefix tree drawn in %s\n", plotPath)
	}
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// readPlanRequests reads the request file; lines[i] is request i's line
// number and name the file's, for messages.
func readPlanRequests(path string, stdin io.Reader, tokenize requestio.TokenizeFunc) (reqs []lmscore.Request, lines []int, name string, err error) {
	r, name := stdin, "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, "", err
		}
		defer f.Close()
		r, name = f, path
	}
	rd := requestio.NewReader(r, name, tokenize)
	for {
		req, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return reqs, lines, name, nil
		}
		if errors.Is(err, requestio.ErrNeedTokenizer) {
			return nil, nil, "", fmt.Errorf("%w: give --model M.gguf for its tokenizer", err)
		}
		if err != nil {
			return nil, nil, "", err
		}
		reqs = append(reqs, req.ScoreRequest())
		lines = append(lines, req.Line)
	}
}
