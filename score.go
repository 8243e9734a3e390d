package lmscore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lmscore/lmscore/scheduler"
)

// TokenizePair tokenizes a text pair the way lm-eval-harness does (see
// Request). The context may come back empty (it then stands for BOS).
func (m *Model) TokenizePair(context, continuation string) (ctx, cont []int32, err error) {
	return m.rules.tokenizePair(context, continuation)
}

// Check reports whether a request can be scored (non-empty continuation,
// token ids inside the vocabulary, a tokenizer for text) without scoring it.
func (m *Model) Check(r Request) error {
	_, err := m.prepare(&r)
	return err
}

// prepare is the shared request preparation plus what only a model with a
// pool can check: that the request's inputs fit the pool at all.
func (m *Model) prepare(r *Request) (prepared, error) {
	p, err := m.rules.prepare(r)
	if err != nil {
		return p, err
	}
	inputs := min(len(p.ctx)+len(p.cont)-1, m.opts.MaxLength)
	if need := (inputs + m.opts.BlockSize - 1) / m.opts.BlockSize; need > m.pool.Usable() {
		return p, m.budgetError(inputs, need, m.pool.Usable())
	}
	return p, nil
}

// Score scores every request and returns the results in input order. It
// stops at the first request that cannot be scored (a *RequestError naming
// it), or when ctx is cancelled; results already delivered through
// ScoreOptions.OnResult stay valid either way. The callbacks run while the
// model is busy with this call: they must not call the Model's methods.
func (m *Model) Score(ctx context.Context, reqs []Request, so ScoreOptions) ([]Result, Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, Stats{}, ErrClosed
	}
	start := time.Now()
	results := make([]Result, len(reqs))
	sreqs := make([]scheduler.Request, len(reqs))
	for i := range reqs {
		p, err := m.prepare(&reqs[i])
		if err != nil {
			return nil, Stats{}, &RequestError{Index: i, ID: reqs[i].ID, Err: err}
		}
		sreqs[i] = scheduler.Request{ID: reqs[i].ID, Context: p.ctx, Continuation: p.cont}
		results[i] = Result{
			Index: i, ID: reqs[i].ID, NTokens: len(p.cont), NBytes: p.nBytes, NormBytes: p.normBytes, IsGreedy: true,
			TokenLogProbs: make([]float32, len(p.cont)),
		}
		if so.TopN > 0 {
			results[i].TopLogProbs = make([][]TokenLogProb, len(p.cont))
		}
	}
	if so.TopN < 0 {
		return nil, Stats{}, fmt.Errorf("lmscore: top-n %d is negative", so.TopN)
	}
	planner, err := scheduler.NewPlanner(m.pool, sreqs, scheduler.Options{
		MaxBatchTokens: m.opts.MaxBatchTokens,
		MaxLen:         m.opts.MaxLength,
		NoCache:        m.opts.NoCache || so.NoCache,
		Namespace:      m.rules.namespace(),
		TopN:           int32(so.TopN),
	})
	if err != nil {
		return nil, Stats{}, m.planError(err, reqs)
	}
	for i := range results {
		results[i].Truncated = planner.Truncated(i)
	}
	run := executor{m: m, planner: planner, results: results, so: so, start: start, prof: m.prof}
	m.prof.lap(hostPrepare, start)
	ok := false
	defer func() {
		var st Stats
		if m.prof != nil {
			st = run.stats() // before Close, which empties the planner
		}
		// Deferred so that a panicking callback cannot leave blocks
		// referenced. After a failure, blocks registered by the plan may
		// never have been written: the cache must forget them all.
		planner.Close()
		if !ok {
			m.pool.Reset()
		}
		m.prof.scored(start, st)
	}()
	if err := run.loop(ctx); err != nil {
		return nil, run.stats(), err
	}
	ok = true
	return results, run.stats(), nil
}

// budgetError reports a request whose inputs need more KV blocks than the
// pool has, in blocks and in the bytes a budget flag would need.
func (m *Model) budgetError(inputs, need, have int) *BudgetError {
	needBytes := int64(need) * m.blockBytes
	return &BudgetError{Need: needBytes, Have: int64(have) * m.blockBytes,
		Msg: fmt.Sprintf("its %d input tokens need %d KV blocks of %d tokens (%d bytes), the pool has %d usable blocks (--kv-blocks %d or --kv-memory of at least %d bytes would do)",
			inputs, need, m.opts.BlockSize, needBytes, have, need+1, needBytes)}
}

// planError turns the planner's budget failure into a *RequestError around a
// *BudgetError in bytes, naming the request.
func (m *Model) planError(err error, reqs []Request) error {
	var be *scheduler.BudgetError
	if !errors.As(err, &be) {
		return err
	}
	budget := m.budgetError(be.Tokens, be.Need, be.Have)
	re := &RequestError{Index: be.Request, Err: budget}
	if be.Request >= 0 && be.Request < len(reqs) {
		re.ID = reqs[be.Request].ID
	}
	return re
}

// executor runs one plan: each step through the native core, each output
// row routed back to the requests that asked for it.
type executor struct {
	m       *Model
	planner *scheduler.Planner
	results []Result
	so      ScoreOptions
	start   time.Time
	res     scheduler.Result
	done    int
	tokens  int64
	prof    *hostProfile // nil: not profiling
}

// planned is one planner.Next result, made ahead of its turn.
type planned struct {
	step *scheduler.Step
	err  error
}

// planAhead calls planner.Next on its own goroutine: step n+1 is planned
// while the core runs step n (a Go planner and a native step share nothing
// but the order in which steps run, which stays the plan's). The channel
// holds the one result.
func (x *executor) planAhead() <-chan planned {
	ch := make(chan planned, 1)
	go func() {
		s, err := x.planner.Next()
		ch <- planned{s, err}
	}()
	return ch
}

func (x *executor) loop(ctx context.Context) error {
	// Read before the planner runs on another goroutine; it does not change.
	unique := x.planner.Stats().UniqueTokens
	pending := x.planAhead()
	defer func() {
		// Never return with Next still running: Score closes the planner next.
		if pending != nil {
			<-pending
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := x.prof.now()
		p := <-pending // what planning costs here is only the wait for it
		pending = nil
		x.prof.lap(hostPlan, t)
		step, err := p.step, p.err
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return x.m.planError(err, nil)
		}
		pending = x.planAhead()
		err = x.m.step.RunTimed(x.m.kv, &step.Batch, &x.res, x.prof.runTimes())
		x.prof.stepRan()
		if err != nil {
			return fmt.Errorf("lmscore: step %d: %w", step.Index, classify(err))
		}
		t = x.prof.now()
		var inCallbacks time.Duration // when profiling: the caller's time, its own phase
		x.route(step)
		x.tokens += int64(step.Batch.NumTokens())
		for _, r := range step.Done {
			x.done++
			res := x.finish(int(r))
			if err := checkFinite(&res); err != nil {
				return &RequestError{Index: res.Index, ID: res.ID, Err: err}
			}
			if x.so.OnResult != nil {
				c := x.prof.now()
				err := x.so.OnResult(res)
				inCallbacks += x.prof.since(c)
				if err != nil {
					return err
				}
			}
		}
		if x.so.OnProgress != nil {
			c := x.prof.now()
			x.so.OnProgress(Progress{
				DoneTokens: x.tokens, UniqueTokens: unique,
				DoneRequests: x.done, Requests: len(x.results), Elapsed: time.Since(x.start),
			})
			inCallbacks += x.prof.since(c)
		}
		x.prof.routed(t, inCallbacks)
	}
}

func (x *executor) route(step *scheduler.Step) {
	topN := int(step.Batch.TopN)
	for row := 0; row+1 < len(step.RouteStart); row++ {
		lp, greedy := x.res.LogProb[row], x.res.IsGreedy[row]
		var top []TokenLogProb
		if topN > 0 {
			top = make([]TokenLogProb, topN)
			for k := range top {
				top[k] = TokenLogProb{Token: x.res.TopIDs[row*topN+k], LogProb: x.res.TopLogProbs[row*topN+k]}
			}
		}
		for k := step.RouteStart[row]; k < step.RouteStart[row+1]; k++ {
			r := &x.results[step.RouteRequest[k]]
			j := step.RouteToken[k]
			r.TokenLogProbs[j] = lp
			r.IsGreedy = r.IsGreedy && greedy
			if top != nil {
				r.TopLogProbs[j] = append([]TokenLogProb(nil), top...) // results own their slices
			}
		}
	}
}

// finish sums a completed request's log-probabilities in token order, so
// the sum is the same whatever order its tokens were computed in.
func (x *executor) finish(i int) Result {
	r := &x.results[i]
	r.LogProb = 0
	for _, lp := range r.TokenLogProbs {
		r.LogProb += float64(lp)
	}
	return *r
}

func (x *executor) stats() Stats {
	ps := x.planner.Stats()
	wall := time.Since(x.start)
	s := Stats{
		Requests:         ps.Requests,
		TotalTokens:      ps.TotalTokens,
		UniqueTokens:     ps.UniqueTokens,
		ComputedTokens:   ps.PlannedComputedTokens + ps.LogitOnlyTokens,
		ReusedTokens:     max(ps.TotalTokens-ps.PlannedComputedTokens, 0),
		RecomputedTokens: ps.RecomputedTokens,
		CopiedBlocks:     ps.CopiedBlocks,
		Evictions:        ps.Evictions,
		Steps:            ps.Steps,
		PeakKVBlocks:     ps.PeakLiveBlocks,
		PeakKVBytes:      int64(ps.PeakLiveBlocks) * x.m.blockBytes,
		Wall:             wall,
	}
	s.SetRates()
	return s
}
