package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/units"
	"github.com/lmscore/lmscore/server"
)

func init() {
	register(&command{
		name:    "serve",
		summary: "serve an OpenAI-compatible completions endpoint for scoring, with a persistent prefix cache",
		usage:   "serve --model M.gguf [--addr 127.0.0.1:8080 | --host H --port P] [flags]",
		about: `Serves POST /v1/completions (echo + logprobs scoring, as lm-eval-harness's
local-completions sends it), GET /v1/models, GET /health, GET /metrics and
vLLM's /tokenize, /detokenize and /tokenizer_info. SIGTERM or Ctrl-C shuts
down gracefully: requests in flight finish first. --host and --port, as
llama.cpp's server spells them, stand for the two halves of --addr.`,
		example: `lmscore serve -m stories260K.gguf --port 8080`,
		flags:   serveFlags,
	})
}

// Where serve listens unless told otherwise.
const (
	defaultHost = "127.0.0.1"
	defaultPort = "8080"
)

func runServe(ctx context.Context, args []string) error {
	return commands["serve"].run(ctx, stdStreams(), args)
}

func serveFlags(fs *flag.FlagSet) action {
	mf := addModelFlags(fs)
	addr := fs.String("addr", net.JoinHostPort(defaultHost, defaultPort), "listen address host:port (port 0 picks a free one)")
	host := fs.String("host", defaultHost, "listen host, with --port instead of --addr")
	port := fs.String("port", defaultPort, "listen port, with --host instead of --addr (0 picks a free one)")
	name := fs.String("model-name", "", "the model name clients send (default the file name without .gguf)")
	window := fs.Duration("batch-window", 5*time.Millisecond, "how long an idle server waits to merge requests that arrive together")
	maxBody := fs.String("max-body", "64MiB", "largest request body")
	maxPrompts := fs.Int("max-prompts", 4096, "most prompts in one request")
	maxPromptTokens := fs.Int("max-prompt-tokens", 0, "most tokens in one prompt (default and at most the context window)")
	maxLogprobs := fs.Int("max-logprobs", 20, "largest logprobs (top-N) a request may ask for")
	addBOS := fs.String("add-bos", "auto", "where text gets BOS first (POST /tokenize, text prompts): auto (the model's add_bos_token, unless the text starts with BOS's text: Hugging Face's default, which lm-eval-harness's hf backend keeps), true, false, or request (/tokenize's add_special_tokens decides, as vLLM)")
	bosOnce := fs.Bool("bos-once", false, "score a prompt that starts BOS BOS as if it had one BOS (the second given, log-probability 0): lm-eval's loglikelihood_rolling then counts BOS once, unlike its hf backend")
	fs.Bool("tokenize-bos", false, "deprecated: what --add-bos auto (the default) does")
	outputCache := fs.String("output-cache", "256MiB", "memory for the scored outputs of prompt blocks, reused when a prefix is echoed again (0: off)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 2*time.Minute, "how long shutdown waits for requests in flight")
	maxPromptBytes := fs.Int("max-prompt-bytes", 0, "most bytes of one text prompt, checked before tokenizing (0: max-prompt-tokens x the longest token's bytes)")
	maxResponse := fs.String("max-response", "64MiB", "most bytes of one completions response, estimated before scoring")
	readHeaderTimeout := fs.Duration("read-header-timeout", 30*time.Second, "time allowed to read a request's headers")
	bodyTimeout := fs.Duration("body-timeout", time.Minute, "time allowed to read a request's body (408 past it)")
	maxConnections := fs.Int("max-connections", 1024, "most open connections; more are answered 503 with Retry-After")
	maxActive := fs.Int("max-active-requests", 128, "most completions and tokenize requests served at once; more are answered 503 with Retry-After")
	retryAfter := fs.Duration("retry-after", time.Second, "the Retry-After of those 503s")
	return func(ctx context.Context, s streams, args []string) error {
		if mf.Path == "" || len(args) != 0 {
			return fmt.Errorf("%w: --model is required and no arguments follow the flags", errUsage)
		}
		listen, err := listenAddr(fs, *addr, *host, *port)
		if err != nil {
			return err
		}
		bosRule, err := server.ParseBOSRule(*addBOS)
		if err != nil {
			return fmt.Errorf("%w: --add-bos: %v", errUsage, err)
		}
		responseCap, err := units.ParseBytes(*maxResponse)
		if err != nil || responseCap <= 0 {
			return fmt.Errorf("%w: --max-response %q: want a size such as 64MiB", errUsage, *maxResponse)
		}
		return serve(ctx, s, mf, listen, server.Config{
			MaxPromptBytes:    *maxPromptBytes,
			MaxResponseBytes:  responseCap,
			ReadHeaderTimeout: *readHeaderTimeout,
			BodyReadTimeout:   *bodyTimeout,
			MaxConnections:    *maxConnections,
			MaxActiveRequests: *maxActive,
			RetryAfter:        *retryAfter,
			ModelName:         *name,
			BatchWindow:       *window,
			MaxPrompts:        *maxPrompts,
			MaxPromptTokens:   *maxPromptTokens,
			MaxLogprobs:       *maxLogprobs,
			BOS:               bosRule,
			BOSOnce:           *bosOnce,
			ShutdownTimeout:   *shutdownTimeout,
		}, *maxBody, *outputCache)
	}
}

// listenAddr combines --addr, --host and --port: --addr alone, or --host
// and/or --port (each defaulting to --addr's default half), but not both
// forms.
func listenAddr(fs *flag.FlagSet, addr, host, port string) (string, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["addr"] && (set["host"] || set["port"]) {
		return "", fmt.Errorf("%w: give --addr host:port or --host and --port, not both", errUsage)
	}
	if set["host"] || set["port"] {
		addr = net.JoinHostPort(host, port)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("%w: --addr %q: %v", errUsage, addr, err)
	}
	return addr, nil
}

func serve(ctx context.Context, s streams, mf *modelFlags, addr string, cfg server.Config, maxBody, outputCache string) error {
	opts, err := mf.options()
	if err != nil {
		return err
	}
	bodyCap, err := units.ParseBytes(maxBody)
	if err != nil || bodyCap <= 0 {
		return fmt.Errorf("%w: --max-body %q: want a size such as 64MiB", errUsage, maxBody)
	}
	if host, _, _ := net.SplitHostPort(addr); host != "localhost" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			fmt.Fprintf(s.err, "lmscore serve: warning: %s is reachable from other machines and the server has no authentication\n", addr)
		}
	}

	// Clients send the choices of one question in separate calls: keep
	// prefixes cached across calls, up to the KV budget.
	opts.RetainCache = true

	outputBytes, err := units.ParseBytes(outputCache)
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
	for _, w := range model.Warnings() {
		fmt.Fprintf(s.err, "lmscore serve: warning: %s\n", w)
	}
	cfg.MaxBodyBytes, cfg.OutputCacheBytes = bodyCap, outputBytes
	cfg.Logger = log.New(s.err, "lmscore serve: ", log.LstdFlags)
	srv, err := server.New(model, cfg)
	if err != nil {
		return err
	}
	// ctx is cancelled by SIGTERM or Ctrl-C (main.go): Serve then drains.
	return srv.ListenAndServe(ctx, addr, func(a net.Addr) {
		// One line scripts can wait for and parse, port 0 resolved.
		fmt.Fprintf(s.err, "lmscore serve: listening on http://%s (model %q)\n", a, srv.Name())
	})
}
