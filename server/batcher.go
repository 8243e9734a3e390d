package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lmscore/lmscore"
)

// batchJob is the scoring work of one HTTP request.
type batchJob struct {
	ctx      context.Context // the HTTP request's: a job whose client left is dropped before it runs
	reqs     []lmscore.Request
	topN     int
	tokens   int
	enqueued time.Time
	done     chan batchReply // buffered: the dispatcher never waits on a client
}

type batchReply struct {
	results []lmscore.Result // parallel to the job's reqs
	err     error
}

// batcher merges the jobs that arrive together into one Score call, so that
// they share one prefix trie and one pass over their common prefixes. One
// goroutine (run) owns the model's Score; handlers hand it jobs through an
// unbuffered channel, which is why a job can never be stranded in a queue
// that nobody reads after the batcher stops.
//
// The window is counted from the first job's arrival: when the model is idle
// a lone request waits at most window for company; when the model is busy,
// the jobs that piled up meanwhile have waited longer than that already and
// go into the next call at once.
type batcher struct {
	model     Scorer
	metrics   *metrics
	window    time.Duration
	maxTokens int // stop merging once a call holds this many tokens

	// cache is the KV pool's state after the last call. The batcher reads
	// it between calls because the model's CacheStats waits for a running
	// Score: /metrics reads this snapshot and never stalls behind a batch.
	cache atomic.Pointer[lmscore.CacheStats]

	queue    chan *batchJob
	queued   atomic.Int64
	ctx      context.Context // Score's: cancelled only when shutdown gives up waiting
	cancel   context.CancelFunc
	quit     chan struct{}
	quitOnce sync.Once
	stopped  chan struct{}
}

func newBatcher(model Scorer, m *metrics, window time.Duration, maxTokens int) *batcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batcher{
		model: model, metrics: m, window: window, maxTokens: maxTokens,
		queue: make(chan *batchJob), ctx: ctx, cancel: cancel,
		quit: make(chan struct{}), stopped: make(chan struct{}),
	}
	cs := model.CacheStats()
	b.cache.Store(&cs)
	go b.run()
	return b
}

// submit queues the job and waits for its results. It returns early with
// the context's error when the client goes away (the job may still run: a
// Score call cannot drop one of its requests), and errShuttingDown once the
// batcher has stopped.
func (b *batcher) submit(j *batchJob) ([]lmscore.Result, error) {
	j.done = make(chan batchReply, 1)
	j.enqueued = time.Now()
	b.queued.Add(1)
	select {
	case b.queue <- j:
	case <-b.quit:
		b.queued.Add(-1)
		return nil, errShuttingDown
	case <-j.ctx.Done():
		b.queued.Add(-1)
		return nil, j.ctx.Err()
	}
	select {
	case r := <-j.done:
		return r.results, r.err
	case <-j.ctx.Done():
		return nil, j.ctx.Err()
	}
}

// stop ends the dispatcher after the call in progress. Jobs submitted later
// get errShuttingDown. With abort, the call in progress is cancelled too.
func (b *batcher) stop(abort bool) {
	if abort {
		b.cancel()
	}
	b.quitOnce.Do(func() { close(b.quit) })
	<-b.stopped
	b.cancel()
}

func (b *batcher) run() {
	defer close(b.stopped)
	for {
		var first *batchJob
		select {
		case first = <-b.queue:
		case <-b.quit:
			return
		}
		b.queued.Add(-1)
		jobs := []*batchJob{first}
		tokens := first.tokens
		deadline := first.enqueued.Add(b.window)
		var timer *time.Timer
	gather:
		for tokens < b.maxTokens {
			select {
			case j := <-b.queue:
				b.queued.Add(-1)
				jobs = append(jobs, j)
				tokens += j.tokens
				continue
			default:
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			}
			select {
			case j := <-b.queue:
				b.queued.Add(-1)
				jobs = append(jobs, j)
				tokens += j.tokens
			case <-timer.C:
				break gather
			case <-b.quit:
				// Shutdown waits for handlers, and these jobs' handlers
				// are waiting for them: run what we hold, then stop.
				break gather
			}
		}
		if timer != nil {
			timer.Stop()
		}
		b.execute(jobs)
		cs := b.model.CacheStats()
		b.cache.Store(&cs)
	}
}

// execute scores the jobs in one call. When a merged call fails, each job is
// retried alone, so that a request that trips the model fails by itself
// rather than taking the requests merged with it down too.
func (b *batcher) execute(jobs []*batchJob) {
	live := jobs[:0:0]
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			j.done <- batchReply{err: err}
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	err := b.score(live)
	if err == nil {
		return
	}
	if len(live) == 1 || b.ctx.Err() != nil {
		for _, j := range live {
			j.done <- batchReply{err: err}
		}
		return
	}
	for _, j := range live {
		if err := b.score([]*batchJob{j}); err != nil {
			j.done <- batchReply{err: err}
		}
	}
}

// score runs one Score call over the jobs and, on success, answers each of
// them. A failure is returned for the caller to answer.
func (b *batcher) score(jobs []*batchJob) (err error) {
	var reqs []lmscore.Request
	topN := 0
	for _, j := range jobs {
		reqs = append(reqs, j.reqs...)
		topN = max(topN, j.topN)
	}
	// Each progress report ends one model step: the time since the previous
	// report is that step's latency.
	var last time.Duration
	opts := lmscore.ScoreOptions{
		TopN: topN,
		OnProgress: func(p lmscore.Progress) {
			b.metrics.observeStep(p.Elapsed - last)
			last = p.Elapsed
		},
	}
	start := time.Now()
	var results []lmscore.Result
	var stats lmscore.Stats
	observed := false
	defer func() {
		// A panic in the model is a bug there, but it must cost the
		// requests of this call, not the server.
		if p := recover(); p != nil {
			err = serverFault("scoring failed: the model panicked: %v", p)
		}
		if !observed {
			b.metrics.observeCall(len(reqs), stats, time.Since(start), err)
		}
	}()
	results, stats, err = b.model.Score(b.ctx, reqs, opts)
	if err != nil {
		if b.ctx.Err() != nil {
			return errShuttingDown
		}
		if errors.Is(err, lmscore.ErrNonFinite) {
			// The same named error as a non-finite number found while
			// building the response.
			return &apiError{Status: http.StatusInternalServerError, Type: typeModel, Code: "non_finite_logprob",
				Message: fmt.Sprintf("%v: the model's numbers are unusable (its weights or the backend are at fault), so no answer is given", err)}
		}
		return serverFault("scoring failed: %v", err)
	}
	if len(results) != len(reqs) {
		return serverFault("scoring failed: the model returned %d results for %d requests", len(results), len(reqs))
	}
	ordered := make([]lmscore.Result, len(reqs))
	seen := make([]bool, len(reqs))
	for _, r := range results {
		if r.Index < 0 || r.Index >= len(reqs) || seen[r.Index] {
			return serverFault("scoring failed: the model returned a result with index %d for %d requests", r.Index, len(reqs))
		}
		seen[r.Index] = true
		ordered[r.Index] = r
	}
	// Counted before anyone is answered: a client that scrapes /metrics
	// after its answer sees its call.
	b.metrics.observeCall(len(reqs), stats, time.Since(start), nil)
	observed = true
	off := 0
	for _, j := range jobs {
		j.done <- batchReply{results: ordered[off : off+len(j.reqs) : off+len(j.reqs)]}
		off += len(j.reqs)
	}
	return nil
}

// String describes the batcher's settings for the startup log.
func (b *batcher) String() string {
	return fmt.Sprintf("batching window %v, at most %d tokens per merged call", b.window, b.maxTokens)
}
