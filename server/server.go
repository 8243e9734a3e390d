// Package server serves a model over HTTP as an OpenAI-compatible
// completions endpoint for scoring: POST /v1/completions with echo and
// logprobs, the request lm-eval-harness's local-completions model sends for
// log-likelihoods. Requests that arrive together are merged into one Score
// call (a short batching window), and the model's KV block pool persists
// across calls, so a few-shot prefix shared by many requests is computed once
// per server lifetime, not once per request.
//
// Endpoints: POST /v1/completions, GET /v1/models, GET /health, GET /metrics
// (Prometheus text format), and vLLM's tokenizer endpoints POST /tokenize,
// POST /detokenize and GET /tokenizer_info, which lm-eval-harness uses to
// tokenize with the served model's own vocabulary.
package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lmscore/lmscore"
)

// Config tunes a Server. The zero value takes every default below.
type Config struct {
	// ModelName is the name clients put in "model"; default the model's
	// own name (its file name without .gguf).
	ModelName string
	// BatchWindow is how long an idle server waits for more requests to
	// merge with the first one (default 5ms; negative: no waiting).
	BatchWindow time.Duration
	// MaxMergeTokens stops merging requests into one Score call once it
	// holds this many prompt tokens (default 262144).
	MaxMergeTokens int
	// MaxBodyBytes caps a request body (default 64 MiB).
	MaxBodyBytes int64
	// MaxPrompts caps the prompts of one request (default 4096).
	MaxPrompts int
	// MaxPromptTokens caps one prompt's tokens plus max_tokens (default and
	// at most the model's context window: a longer prompt would be
	// truncated, and echo must score every token it returns).
	MaxPromptTokens int
	// MaxLogprobs caps "logprobs", the top-N per position (default 20).
	MaxLogprobs int
	// OutputCacheBytes is the budget of the output cache, which keeps the
	// scored outputs of prompt blocks so that a prefix echoed again is not
	// run through the model again (default 256 MiB; negative: off).
	OutputCacheBytes int64
	// OutputBlockSize is the output cache's block in tokens; default the
	// model's KV block size (Options().BlockSize when the model has it),
	// else 16. Aligned with the KV blocks, the context handed to the model
	// for the uncached rest ends on a KV block boundary.
	OutputBlockSize int
	// BOS says where a text (POST /tokenize, a text prompt) gets BOS first.
	// The default, BOSAuto, is Hugging Face's tokenizer default, which
	// lm-eval-harness's hf backend keeps: BOS when the model's add_bos_token
	// metadata says so, none when the text already starts with the BOS
	// token's text (HFLM.tok_encode). It ignores /tokenize's
	// add_special_tokens, which lm-eval's remote tokenizer sends false on
	// every call, even where its hf backend adds BOS; BOSRequest honours it
	// (vLLM's meaning: the old behaviour). BOSAlways and BOSNever override
	// the metadata, as lm-eval's add_bos_token model argument does for its
	// hf backend (that argument never reaches a remote tokenizer).
	BOS BOSRule
	// BOSOnce scores a prompt that starts with BOS twice as if it started
	// with one, its second BOS a given token of log-probability 0. lm-eval's
	// loglikelihood_rolling puts its prefix token (BOS) before a text
	// encoding that already starts with BOS, as its hf backend does, and so
	// scores P(BOS | BOS); with this, its perplexity counts BOS once, as
	// `lmscore score` and llama.cpp's perplexity do, which is not what the
	// hf backend reports.
	BOSOnce bool
	// MaxPromptBytes caps one text prompt's bytes, checked before it is
	// tokenized (default: the prompt token limit times the byte length of
	// the vocabulary's longest token). A text cannot have fewer tokens than
	// its bytes divided by that length, so the default refuses only texts
	// that could not fit anyway, without tokenizing them; the one exception
	// is a vocabulary without byte fallback, whose <unk> swallows a run of
	// unknown characters whole: raise it for such a model if need be.
	MaxPromptBytes int
	// MaxResponseBytes caps the estimated size of one completions response
	// (default 64 MiB): prompts x tokens x (logprobs+1) entries, estimated
	// from the token counts before anything is scored.
	MaxResponseBytes int64
	// ReadHeaderTimeout bounds reading a request's headers (default 30s).
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds reading a request's body, from the end of its
	// headers (default 60s): past it the client gets a 408.
	BodyReadTimeout time.Duration
	// MaxConnections caps open connections (default 1024). A connection
	// beyond it is answered 503 with Retry-After and closed.
	MaxConnections int
	// MaxActiveRequests caps the completions, tokenize and detokenize
	// requests being served at once, queued for the model or not (default
	// 128). A request beyond it is answered 503 with Retry-After at once,
	// before its body is read.
	MaxActiveRequests int
	// RetryAfter is the Retry-After of those 503s (default 1s).
	RetryAfter time.Duration
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context is cancelled (default 2 minutes); past it, the
	// running batch is cancelled and connections are closed.
	ShutdownTimeout time.Duration
	// Logger receives startup, shutdown and server-fault lines; nil: none.
	Logger *log.Logger
}

func (c Config) withDefaults() Config {
	if c.BOS == "" {
		c.BOS = BOSAuto
	}
	if c.BatchWindow == 0 {
		c.BatchWindow = 5 * time.Millisecond
	}
	if c.BatchWindow < 0 {
		c.BatchWindow = 0
	}
	if c.MaxMergeTokens <= 0 {
		c.MaxMergeTokens = 1 << 18
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 20
	}
	if c.MaxPrompts <= 0 {
		c.MaxPrompts = 4096
	}
	if c.MaxLogprobs <= 0 {
		c.MaxLogprobs = 20
	}
	if c.OutputCacheBytes == 0 {
		c.OutputCacheBytes = 256 << 20
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = 64 << 20
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 30 * time.Second
	}
	if c.BodyReadTimeout <= 0 {
		c.BodyReadTimeout = time.Minute
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1024
	}
	if c.MaxActiveRequests <= 0 {
		c.MaxActiveRequests = 128
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 2 * time.Minute
	}
	return c
}

// Server answers the HTTP API for one model.
type Server struct {
	model   Scorer
	cfg     Config
	info    infoSnapshot
	name    string
	bosText string // the BOS token's text, "" when it has none
	vocab   *vocab

	maxPromptTokens int
	maxPromptBytes  int
	active          chan struct{} // one slot per request being served (MaxActiveRequests)
	conns           *limitListener
	outputs         *lmscore.OutputStore // nil when off
	outputBlock     int
	metrics         *metrics
	batcher         *batcher
	mux             *http.ServeMux
	inFlight        atomic.Int64
	closing         atomic.Bool
	closeOnce       sync.Once

	idPrefix string
	idSeq    atomic.Uint64
	started  time.Time
}

// infoSnapshot is the model description read once at start.
type infoSnapshot struct {
	NVocab int
	NCtx   int
	BOS    int32
	AddBOS bool
	Arch   string
}

// New builds a server for the model and starts its batcher. Close it (or
// let Serve return) to stop the batcher; the model stays the caller's.
func New(model Scorer, cfg Config) (*Server, error) {
	if model == nil {
		return nil, errors.New("server: no model")
	}
	cfg = cfg.withDefaults()
	if _, err := ParseBOSRule(string(cfg.BOS)); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	mi := model.Info()
	if mi.NVocab <= 0 || mi.NCtx <= 1 {
		return nil, fmt.Errorf("server: the model reports %d vocabulary entries and a context window of %d tokens", mi.NVocab, mi.NCtx)
	}
	s := &Server{
		model:    model,
		cfg:      cfg,
		info:     infoSnapshot{NVocab: mi.NVocab, NCtx: mi.NCtx, BOS: mi.BOS, AddBOS: mi.AddBOS, Arch: mi.Arch},
		name:     cfg.ModelName,
		started:  time.Now(),
		idPrefix: fmt.Sprintf("cmpl-%x", time.Now().UnixNano()),
	}
	s.metrics = newMetrics(s.liveStats)
	if s.name == "" {
		s.name = mi.Name
	}
	s.maxPromptTokens = mi.NCtx
	if cfg.MaxPromptTokens > 0 && cfg.MaxPromptTokens < mi.NCtx {
		s.maxPromptTokens = cfg.MaxPromptTokens
	}
	s.outputBlock = cfg.OutputBlockSize
	if o, ok := model.(interface{ Options() lmscore.Options }); ok && s.outputBlock <= 0 {
		s.outputBlock = o.Options().BlockSize
	}
	if s.outputBlock <= 0 {
		s.outputBlock = 16
	}
	if cfg.OutputCacheBytes > 0 {
		var err error
		if s.outputs, err = newOutputStore(model, s.name, s.outputBlock, cfg.OutputCacheBytes); err != nil {
			return nil, fmt.Errorf("server: output cache: %w", err)
		}
	}
	s.vocab = newVocab(model, mi.NVocab)
	s.maxPromptBytes = cfg.MaxPromptBytes
	if s.maxPromptBytes <= 0 {
		s.maxPromptBytes = s.maxPromptTokens * s.vocab.maxTokenBytes
	}
	s.active = make(chan struct{}, cfg.MaxActiveRequests)
	if mi.BOS >= 0 && int(mi.BOS) < mi.NVocab {
		s.bosText = string(s.vocab.bytes[mi.BOS])
	}
	s.batcher = newBatcher(model, s.metrics, cfg.BatchWindow, cfg.MaxMergeTokens)
	s.routes()
	return s, nil
}

// newOutputStore makes the output cache: for an *lmscore.Model, keyed by
// the block hashes its plans cache K/V under; for another Scorer (a test's
// fake), under the model's name: a server's store holds one model's blocks.
func newOutputStore(model Scorer, name string, blockSize int, budget int64) (*lmscore.OutputStore, error) {
	if m, ok := model.(interface {
		NewOutputStore(blockSize int, budgetBytes int64) (*lmscore.OutputStore, error)
	}); ok {
		return m.NewOutputStore(blockSize, budget)
	}
	return lmscore.NewOutputStore(name, blockSize, budget)
}

// Name is the model name clients must send.
func (s *Server) Name() string { return s.name }

// Handler is the server's HTTP handler, for embedding in another server.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	handle := func(pattern, label string, h http.HandlerFunc) {
		s.mux.Handle(pattern, s.count(label, h))
	}
	handle("POST /v1/completions", "/v1/completions", s.handleCompletions)
	handle("GET /v1/models", "/v1/models", s.handleModels)
	handle("GET /health", "/health", s.handleHealth)
	handle("GET /metrics", "/metrics", s.metrics.handler().ServeHTTP)
	handle("POST /tokenize", "/tokenize", s.handleTokenize)
	handle("POST /detokenize", "/detokenize", s.handleDetokenize)
	handle("GET /tokenizer_info", "/tokenizer_info", s.handleTokenizerInfo)
	// Everything else: OpenAI-style 404 and 405 bodies rather than Go's
	// plain-text ones, so that clients show a readable message.
	known := []string{"/v1/completions", "/v1/models", "/health", "/metrics", "/tokenize", "/detokenize", "/tokenizer_info"}
	handle("/", "other", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range known {
			if r.URL.Path == p {
				writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalidRequest, Code: "method_not_allowed",
					Message: fmt.Sprintf("%s does not take %s", p, r.Method)})
				return
			}
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "not_found",
			Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
	})
}

// statusRecorder keeps the status code a handler wrote, for the request
// counter.
type statusRecorder struct {
	http.ResponseWriter
	code     int
	writeErr bool // a write failed: the client is gone
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	if err != nil {
		r.writeErr = true
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// count wraps a handler to count its requests by label and status. Labels
// are the fixed endpoint names, never the raw path, so that a scan of random
// URLs cannot grow the metric without bound.
func (s *Server) count(label string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		code := rec.code
		if rec.writeErr || (code >= 500 && r.Context().Err() != nil && !s.closing.Load()) {
			// The client left before its answer was written: not a fault
			// of the server, however the handler ended.
			code = statusClientClosed
		}
		s.metrics.countRequest(label, code)
	})
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id":            s.name,
			"object":        "model",
			"created":       s.started.Unix(),
			"owned_by":      "lmscore",
			"max_model_len": s.info.NCtx,
		}},
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// liveStats is what /metrics reads at each scrape.
func (s *Server) liveStats() liveStats {
	return liveStats{
		cache:    *s.batcher.cache.Load(),
		outputs:  s.outputs.Stats(),
		inFlight: int(s.inFlight.Load()),
		queued:   int(s.batcher.queued.Load()),
		conns:    s.conns.Open(),
	}
}

func (s *Server) nextID() string {
	return fmt.Sprintf("%s-%d", s.idPrefix, s.idSeq.Add(1))
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logger != nil {
		s.cfg.Logger.Printf(format, args...)
	}
}

// Close stops the batcher after the Score call in progress; requests that
// reach it later get a 503. It does not close the model.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.batcher.stop(false)
	})
	return nil
}

// Serve answers HTTP on ln until ctx is cancelled, then shuts down
// gracefully: it stops accepting connections, lets the requests in flight
// finish (within Config.ShutdownTimeout), stops the batcher and returns nil.
// Serve may be called once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.conns = newLimitListener(ln, s.cfg.MaxConnections, s.cfg.RetryAfter, s.metrics)
	ln = s.conns
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		// No ReadTimeout: it would also cut the connection's background
		// read while a long batch is scored, cancelling the request; the
		// body's deadline is set per request (BodyReadTimeout). No write
		// timeout: a large batch may take minutes to score.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    s.cfg.Logger,
	}
	s.logf("serving %s (%s, %d tokens of context) on http://%s; %s", s.name, s.info.Arch, s.info.NCtx, ln.Addr(), s.batcher)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		// The listener failed on its own: nothing is left to drain.
		s.Close()
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.closing.Store(true)
	s.logf("shutting down: finishing %d requests in flight", s.inFlight.Load())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		// Out of patience: cancel the running batch and drop connections.
		s.batcher.stop(true)
		hs.Close()
	}
	s.Close()
	<-errc // http.ErrServerClosed
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.logf("shut down")
	return nil
}

// ListenAndServe listens on addr (host:port; port 0 picks a free one) and
// serves until ctx is cancelled. ready, when set, gets the bound address
// once the server accepts connections.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", addr, err)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	return s.Serve(ctx, ln)
}

// BOSRule is Config.BOS.
type BOSRule string

const (
	BOSAuto    BOSRule = "auto"    // the model's add_bos_token, as a Hugging Face tokenizer (the default)
	BOSAlways  BOSRule = "true"    // BOS first whatever the model says (unless the text starts with it)
	BOSNever   BOSRule = "false"   // never BOS
	BOSRequest BOSRule = "request" // /tokenize's add_special_tokens decides (default true), as vLLM
)

// ParseBOSRule reads a BOSRule by its name ("" is BOSAuto).
func ParseBOSRule(s string) (BOSRule, error) {
	switch r := BOSRule(s); r {
	case "":
		return BOSAuto, nil
	case BOSAuto, BOSAlways, BOSNever, BOSRequest:
		return r, nil
	}
	return "", fmt.Errorf("BOS rule %q: want auto, true, false or request", s)
}
