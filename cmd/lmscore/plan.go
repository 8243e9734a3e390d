package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/internal/requestio"
	"github.com/lmscore/lmscore/scheduler"
	"github.com/lmscore/lmscore/tokenizer"
)

func init() {
	register("plan", "plan a request JSONL (no model run) and print the plan's statistics as JSON", runPlan)
}

const planUsage = `usage: lmscore plan --in requests.jsonl [--block-size 16] [--max-batch-tokens N]
                    [--kv-blocks N] [--model M.gguf] [--max-length N] [--no-cache]

Builds the prefix trie of the requests and plans every step the scorer would
run, without running a model, then prints what the plan does: tokens in all,
unique (each shared prefix once), computed, recomputed; blocks copied and
reused; steps; the peak of live KV blocks; the --kv-blocks from which the
plan computes every unique token exactly once (kv_blocks_no_recompute); and
the smallest with which it completes at all (kv_blocks_min).

Token-form lines need no model. Text-form lines need --model for its
tokenizer, which also gives the BOS token for empty contexts and the context
window for left truncation.
`

// planReport is what plan prints: the plan's statistics and its setting.
type planReport struct {
	scheduler.Stats
	BlockSize      int     `json:"block_size"`
	KVBlocks       int     `json:"kv_blocks"` // the pool's size, the null block included
	MaxBatchTokens int     `json:"max_batch_tokens"`
	MaxLength      int     `json:"max_length"` // 0: no truncation
	NoCache        bool    `json:"no_cache"`
	PlanSeconds    float64 `json:"plan_seconds"`
}

func runPlan(ctx context.Context, args []string) error {
	return planCommand(ctx, args, os.Stdin, os.Stdout)
}

func planCommand(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, planUsage); fs.PrintDefaults() }
	in := fs.String("in", "", "request JSONL (- for stdin; required)")
	opts := scheduler.Options{}
	fs.IntVar(&opts.BlockSize, "block-size", 16, "KV block size in tokens")
	fs.IntVar(&opts.MaxBatchTokens, "max-batch-tokens", 2048, "tokens (and output rows) per step")
	fs.IntVar(&opts.KVBlocks, "kv-blocks", 0, "KV budget in blocks, the reserved block 0 included (0: room for the whole plan)")
	fs.IntVar(&opts.MaxLen, "max-length", -1, "context window for left truncation (default: the model's, else none)")
	fs.BoolVar(&opts.NoCache, "no-cache", false, "plan every request on its own (the baseline)")
	modelPath := fs.String("model", "", "GGUF file: its tokenizer, BOS token and context window")
	if err := fs.Parse(args); err != nil {
		return convertFlagErr(err)
	}
	if *in == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: want --in requests.jsonl and no arguments", errUsage)
	}

	var tok *tokenizer.Tokenizer
	if *modelPath != "" {
		f, err := gguf.Open(*modelPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if tok, err = tokenizer.FromGGUF(f); err != nil {
			return err
		}
		if opts.MaxLen < 0 {
			if opts.MaxLen, err = contextLength(f); err != nil {
				return err
			}
		}
		// Plans of different models never share blocks; the file name
		// stands for the model here (plan runs no model).
		opts.Namespace = filepath.Base(*modelPath)
	}
	opts.MaxLen = max(opts.MaxLen, 0)

	reqs, err := readPlanRequests(*in, stdin, tok)
	if err != nil {
		return err
	}
	start := time.Now()
	pl, err := scheduler.NewPlanner(nil, reqs, opts)
	if err != nil {
		return err
	}
	defer pl.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := pl.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
	}
	report := planReport{
		Stats:          pl.Stats(),
		BlockSize:      opts.BlockSize,
		KVBlocks:       pl.Pool().NumBlocks(),
		MaxBatchTokens: opts.MaxBatchTokens,
		MaxLength:      opts.MaxLen,
		NoCache:        opts.NoCache,
		PlanSeconds:    time.Since(start).Seconds(),
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// contextLength reads {arch}.context_length, the model's context window.
func contextLength(f *gguf.File) (int, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return 0, err
	}
	n, err := f.Int(arch + ".context_length")
	if err != nil {
		return 0, err
	}
	if n <= 0 || n > 1<<30 {
		return 0, fmt.Errorf("%s: %s.context_length is %d", f.Name, arch, n)
	}
	return int(n), nil
}

// readPlanRequests reads the request file and turns it into the planner's
// token pairs: text through the tokenizer (lm-eval-harness's rules), an
// empty context as the prefix token (BOS, else EOS), as the scorer does.
func readPlanRequests(path string, stdin io.Reader, tok *tokenizer.Tokenizer) ([]scheduler.Request, error) {
	r, name := stdin, "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, path
	}
	var tokenize requestio.TokenizeFunc
	prefix := int32(-1)
	if tok != nil {
		tokenize = func(ctx, cont string) ([]int32, []int32, error) {
			c, k := tokenizer.EncodePair(tok, ctx, cont)
			return c, k, nil
		}
		if prefix = tok.BOS(); prefix < 0 {
			prefix = tok.EOS()
		}
	}
	rd := requestio.NewReader(r, name, tokenize)
	var out []scheduler.Request
	for {
		req, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if errors.Is(err, requestio.ErrNeedTokenizer) {
			return nil, fmt.Errorf("%w: give --model M.gguf for its tokenizer", err)
		}
		if err != nil {
			return nil, err
		}
		ctx := req.ContextTokens
		if len(ctx) == 0 {
			if prefix < 0 {
				why := "give --model M.gguf for its BOS token"
				if tok != nil {
					why = "the model's vocabulary has neither BOS nor EOS"
				}
				return nil, fmt.Errorf("%s:%d: request %q has an empty context: %s", name, req.Line, req.ID, why)
			}
			ctx = []int32{prefix}
		}
		out = append(out, scheduler.Request{ID: req.ID, Context: ctx, Continuation: req.ContinuationTokens})
	}
}
