// Package lmscore scores (context, continuation) pairs with a causal
// language model: the log-likelihood workload behind multiple-choice and
// few-shot evaluation, rank classification and reranking.
//
// It computes every shared prompt prefix once. Requests go into a radix
// trie; the scheduler plans flat, unpadded steps over paged KV blocks keyed
// by a chained prefix hash and shared by reference; the native core (CPU in
// the binary, CUDA loaded at run time) runs each step in one call. On the
// CPU, scores are bitwise identical with and without the cache and in any
// request order.
//
//	m, err := lmscore.Open("model.gguf", lmscore.Options{})
//	...
//	defer m.Close()
//	results, stats, err := m.Score(ctx, []lmscore.Request{
//		{Context: "The capital of France is", Continuation: " Paris"},
//	}, lmscore.ScoreOptions{})
//
// A Model is safe for concurrent use: Score calls are serialized, since they
// share the KV block pool, which persists across calls as a prefix cache.
package lmscore

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/lmscore/lmscore/binding"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// ErrClosed is returned by Score and ScoreStream after Close.
var ErrClosed = errors.New("lmscore: model is closed")

// Model is a model opened on a backend, with its KV cache.
type Model struct {
	mu   sync.Mutex // serializes Score: the pool, KV and step are single
	opts Options
	info ModelInfo

	weights *model.Model
	rules   requestRules // tokenizer, prefix token, vocabulary, window, namespace

	engine     *binding.Model
	kv         *binding.KV
	step       *binding.Step
	pool       *scheduler.BlockPool
	blockBytes int64
	closed     bool
	warnings   []string     // options adjusted at open (see Warnings)
	prof       *hostProfile // nil unless ProfileEnv is "1" (profile.go)
}

// Open loads a GGUF model file on the backend Options name.
func Open(path string, opts Options) (*Model, error) {
	weights, err := model.Load(path)
	if err != nil {
		return nil, classify(err)
	}
	m, err := open(weights, modelName(path), opts)
	if err != nil {
		weights.Close()
		return nil, err
	}
	return m, nil
}

// open is Open and OpenModel; its errors are classified (see Error).
func open(weights *model.Model, name string, opts Options) (*Model, error) {
	m, err := openEngine(weights, name, opts)
	return m, classify(err)
}

func openEngine(weights *model.Model, name string, opts Options) (*Model, error) {
	if err := applyDefaults(&opts); err != nil {
		return nil, err
	}
	m := &Model{opts: opts, weights: weights}
	var err error
	if m.prof, err = newHostProfile(); err != nil {
		return nil, err
	}
	// More workers than cores only adds contention (and 100000 of them
	// starve the machine): the count is capped, and the cap reported.
	if cores := runtime.NumCPU(); opts.Backend == "cpu" && opts.Threads > cores {
		m.warnings = append(m.warnings, fmt.Sprintf("lmscore: %d threads requested, capped at the %d cores available", opts.Threads, cores))
		m.opts.Threads = cores
	}
	tok, tokErr := readTokenizer(weights.File)
	m.rules = newRequestRules(name, weights.Config, tok, tokErr, opts.MaxLength)
	m.opts.MaxLength = m.rules.window
	m.info = m.rules.info()
	m.info.Backend = opts.Backend

	switch opts.Backend {
	case "cpu":
		m.engine, err = binding.OpenCPUTensorParallel(weights, m.opts.Threads, opts.TensorParallel)
	case "cuda":
		prec := binding.PrecisionBF16
		if opts.Precision == "fp32" {
			prec = binding.PrecisionFP32
		}
		devices := make([]int, opts.TensorParallel)
		for r := range devices {
			devices[r] = opts.Device + r
		}
		m.engine, err = binding.OpenCUDATensorParallel(weights, opts.CUDALibrary, prec, devices)
	}
	if err != nil {
		return nil, err
	}
	if err := m.allocate(); err != nil {
		m.engine.Close()
		return nil, err
	}
	return m, nil
}

func applyDefaults(o *Options) error {
	if o.Backend == "" {
		o.Backend = "cpu"
	}
	if o.Backend != "cpu" && o.Backend != "cuda" {
		return fmt.Errorf("lmscore: unknown backend %q (want cpu or cuda)", o.Backend)
	}
	switch o.Precision {
	case "", "bf16", "fp32":
	default:
		return fmt.Errorf("lmscore: unknown precision %q (want bf16 or fp32)", o.Precision)
	}
	if o.BlockSize == 0 {
		o.BlockSize = 16
	}
	if o.TensorParallel == 0 {
		o.TensorParallel = 1
	}
	if o.MaxBatchTokens == 0 {
		o.MaxBatchTokens = 2048
		if o.Backend == "cuda" {
			o.MaxBatchTokens = 8192
		}
	}
	if o.KVMemory == 0 && o.KVBlocks == 0 {
		o.KVMemory = 1 << 30
		if o.Backend == "cuda" {
			o.KVMemory = 8 << 30
		}
	}
	switch {
	case o.BlockSize < 1 || o.BlockSize > 1024:
		return fmt.Errorf("lmscore: block size %d: want 1 to 1024", o.BlockSize)
	case o.MaxBatchTokens < 1:
		return fmt.Errorf("lmscore: max batch tokens %d: want at least 1", o.MaxBatchTokens)
	case o.KVMemory < 0 || o.KVBlocks < 0:
		return errors.New("lmscore: negative KV budget")
	case o.MaxLength < 0:
		return fmt.Errorf("lmscore: max length %d is negative", o.MaxLength)
	case o.Threads < 0:
		return fmt.Errorf("lmscore: threads %d is negative", o.Threads)
	case o.TensorParallel < 1:
		return fmt.Errorf("lmscore: tensor parallel %d: want at least 1 (the core says how many it takes)", o.TensorParallel)
	}
	return nil
}

// allocate sizes the KV pool from the budget and creates the step executor.
func (m *Model) allocate() error {
	var err error
	if m.blockBytes, err = m.engine.KVBlockBytes(m.opts.BlockSize); err != nil {
		return err
	}
	nBlocks := m.opts.KVBlocks
	if nBlocks == 0 {
		nBlocks = int(min(m.opts.KVMemory/m.blockBytes, 1<<30)) + 1 // +1: the reserved null block
	}
	if nBlocks < 2 {
		return &BudgetError{Need: 2 * m.blockBytes, Have: m.opts.KVMemory,
			Msg: fmt.Sprintf("a KV budget of %d bytes holds no block of %d bytes", m.opts.KVMemory, m.blockBytes)}
	}
	if m.pool, err = scheduler.NewBlockPool(nBlocks, m.opts.BlockSize); err != nil {
		return err
	}
	m.pool.Retain = m.opts.RetainCache
	if m.kv, err = m.engine.NewKV(m.opts.BlockSize, nBlocks); err != nil {
		return err
	}
	if m.step, err = m.engine.NewStep(m.opts.MaxBatchTokens, m.opts.MaxBatchTokens); err != nil {
		m.kv.Close()
		return err
	}
	return nil
}

// Close frees the model, its KV cache and the file mapping.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	errs := []error{m.step.Close(), m.kv.Close(), m.engine.Close(), m.weights.Close()}
	return classify(errors.Join(errs...))
}

// namespace is the root of every block hash this model's plans compute:
// blocks (and anything keyed by block hashes) of different models never match.
func (m *Model) namespace() string { return m.rules.namespace() }

// Info describes the model.
func (m *Model) Info() ModelInfo { return m.info }

// Options returns the options in force, defaults filled in and Threads
// capped at the cores available.
func (m *Model) Options() Options { return m.opts }

// Warnings lists, one line each, the options Open adjusted rather than
// refused (a thread count above the cores available).
func (m *Model) Warnings() []string { return m.warnings }

// CacheStats describes the KV block pool.
func (m *Model) CacheStats() CacheStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return CacheStats{
		BlocksTotal:      m.pool.Usable(),
		BlocksUsed:       m.pool.NumUsed(),
		BlocksCachedFree: m.pool.NumCachedFree(),
		BlocksTouched:    m.pool.NumTouched(),
		BlockBytes:       m.blockBytes,
	}
}

// Tokenize encodes text with the model's tokenizer, with BOS first when
// addBOS is set and the model's vocabulary adds one.
func (m *Model) Tokenize(text string, addBOS bool) ([]int32, error) {
	if m.rules.tok == nil {
		return nil, m.rules.noTokenizer()
	}
	return m.rules.tok.EncodeSpecial(text, addBOS, false), nil
}

// TokenBytes returns the bytes token id decodes to (nil when there is no
// tokenizer or the id is out of range).
func (m *Model) TokenBytes(id int32) []byte {
	if m.rules.tok == nil {
		return nil
	}
	return m.rules.tok.TokenBytes(id)
}

// OpenModel opens a model already in memory (e.g. random weights for a
// benchmark) under the given name. Text requests need a tokenizer, so such
// a model scores token requests only, unless weights.File carries one. The
// Model takes weights over: its Close closes weights (and weights.File).
func OpenModel(weights *model.Model, name string, opts Options) (*Model, error) {
	return open(weights, name, opts)
}

// ResetCache forgets every cached prefix: the next call starts cold.
func (m *Model) ResetCache() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.pool.Reset()
	}
}
