package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/units"
	"github.com/lmscore/lmscore/server"
)

func init() {
	register("serve", "serve an OpenAI-compatible completions endpoint for scoring, with a persistent prefix cache", runServe)
}

const serveUsage = `usage: lmscore serve --model M.gguf [--addr 127.0.0.1:8080] [--backend cpu|cuda] [--kv-memory 1GiB] [--max-batch-tokens N] [flags]

Serves POST /v1/completions (echo + logprobs scoring, as lm-eval-harness's
local-completions sends it), GET /v1/models, GET /health, GET /metrics and
vLLM's /tokenize, /detokenize and /tokenizer_info. SIGTERM or Ctrl-C shuts
down gracefully: requests in flight finish first.`

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(os.Stderr, serveUsage+"\n\nflags:"); fs.PrintDefaults() }
	mf := addModelFlags(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address host:port (port 0 picks a free one)")
	name := fs.String("model-name", "", "the model name clients send (default the file name without .gguf)")
	window := fs.Duration("batch-window", 5*time.Millisecond, "how long an idle server waits to merge requests that arrive together")
	maxBody := fs.String("max-body", "64MiB", "largest request body")
	maxPrompts := fs.Int("max-prompts", 4096, "most prompts in one request")
	maxPromptTokens := fs.Int("max-prompt-tokens", 0, "most tokens in one prompt (default and at most the context window)")
	maxLogprobs := fs.Int("max-logprobs", 20, "largest logprobs (top-N) a request may ask for")
	tokenizeBOS := fs.Bool("tokenize-bos", false, "POST /tokenize puts BOS first even for add_special_tokens false (lm-eval-harness's remote tokenizer then scores what llama.cpp and `lmscore score` score)")
	outputCache := fs.String("output-cache", "256MiB", "memory for the scored outputs of prompt blocks, reused when a prefix is echoed again (0: off)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 2*time.Minute, "how long shutdown waits for requests in flight")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if mf.Path == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: --model is required and no arguments follow the flags\n%s", errUsage, serveUsage)
	}
	opts, err := mf.options()
	if err != nil {
		return err
	}
	bodyCap, err := units.ParseBytes(*maxBody)
	if err != nil || bodyCap <= 0 {
		return fmt.Errorf("%w: --max-body %q: want a size such as 64MiB", errUsage, *maxBody)
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil {
		return fmt.Errorf("%w: --addr %q: %v", errUsage, *addr, err)
	} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(os.Stderr, "lmscore serve: warning: %s is reachable from other machines and the server has no authentication\n", *addr)
	}

	outputBytes, err := units.ParseBytes(*outputCache)
	if err != nil {
		return fmt.Errorf("%w: --output-cache: %v", errUsage, err)
	}
	if outputBytes == 0 {
		outputBytes = -1 // Config's zero value means the default
	}

	model, err := lmscore.Open(mf.Path, opts)
	if err != nil {
		return err
	}
	defer model.Close()
	logger := log.New(os.Stderr, "lmscore serve: ", log.LstdFlags)
	srv, err := server.New(model, server.Config{
		ModelName:        *name,
		BatchWindow:      *window,
		MaxBodyBytes:     bodyCap,
		MaxPrompts:       *maxPrompts,
		MaxPromptTokens:  *maxPromptTokens,
		MaxLogprobs:      *maxLogprobs,
		OutputCacheBytes: outputBytes,
		TokenizeBOS:      *tokenizeBOS,
		ShutdownTimeout:  *shutdownTimeout,
		Logger:           logger,
	})
	if err != nil {
		return err
	}
	// ctx is cancelled by SIGTERM or Ctrl-C (main.go): Serve then drains.
	return srv.ListenAndServe(ctx, *addr, func(a net.Addr) {
		// One line scripts can wait for and parse, port 0 resolved.
		fmt.Fprintf(os.Stderr, "lmscore serve: listening on http://%s (model %q)\n", a, srv.Name())
	})
}
