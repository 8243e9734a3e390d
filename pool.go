package lmscore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lmscore/lmscore/scheduler"
)

// piecesPerDevice is how many prefix-affine pieces a Pool cuts per member:
// more than one, so that a member that runs ahead takes another piece
// rather than waiting for the slowest one's last.
const piecesPerDevice = 4

// Pool is one model opened on several devices, each member with its own
// context and KV pool, scoring one request set together. A request's
// scores do not depend on which other requests share its run, so a Pool's
// scores are a single Model's: bit for bit on the CPU (pool_test.go), and
// on CUDA as far as its cached and uncached scores agree.
//
// Work is spread by prefix-affine pieces (Model.Shards: whole subtrees of
// the request trie, balanced by the tokens each computes), more pieces than
// members, largest first; a member that finishes a piece takes another
// from a shared queue, preferring one that shares a prefix with what it
// ran (see pieceQueue). A shared prefix is computed by one member wherever
// the pieces and the balance allow.
//
// A Pool is safe for concurrent use; its members serialize their own calls.
type Pool struct {
	members  []*Model
	devices  []int    // each member's ordinal, for errors
	warnings []string // the pool's own, before the members'
	// score runs one piece on member i; tests replace it to slow a member
	// down or make it fail.
	score func(ctx context.Context, i int, reqs []Request, so ScoreOptions) ([]Result, Stats, error)
}

// OpenPool opens the model file once per device with opts, Device set to
// each ordinal in turn; KVMemory and KVBlocks are per device. On the CPU
// the ordinals name instances, which share the Threads (0: all cores)
// between them. A device that fails to open closes the others and is
// named in the error (a *DeviceError).
func OpenPool(path string, opts Options, devices []int) (*Pool, error) {
	if err := checkDevices(devices, -1); err != nil {
		return nil, err
	}
	if err := applyDefaults(&opts); err != nil {
		return nil, err
	}
	if opts.TensorParallel > 1 && len(devices) > 1 {
		return nil, fmt.Errorf("lmscore: several devices (%d) with tensor parallel %d: a pool of split models is not supported", len(devices), opts.TensorParallel)
	}
	var threads []int
	var warnings []string
	if opts.Backend == "cpu" {
		threads, warnings = instanceThreads(opts.Threads, runtime.NumCPU(), len(devices))
	}
	members := make([]*Model, 0, len(devices))
	for k, d := range devices {
		o := opts
		o.Device = d
		if threads != nil {
			o.Threads = threads[k]
		}
		m, err := Open(path, o)
		if err != nil {
			closeAll(members)
			return nil, &DeviceError{Backend: opts.Backend, Device: d, Err: err}
		}
		members = append(members, m)
	}
	p := newPool(members, devices)
	p.warnings = warnings
	return p, nil
}

// instanceThreads shares threads (0: all cores) between n CPU instances so
// that together they run what one Model would: at most the cores, the
// remainder of the division to the first instances (a CPU score does not
// depend on the thread count). Each instance gets at least one, so more
// instances than cores oversubscribe them; the warnings say so, and say
// when the count asked for was capped.
func instanceThreads(threads, cores, n int) ([]int, []string) {
	var warnings []string
	if threads > cores {
		warnings = append(warnings, fmt.Sprintf("lmscore: %d threads requested, capped at the %d cores available", threads, cores))
	}
	threads = min(cmp.Or(threads, cores), cores)
	if n > threads {
		warnings = append(warnings, fmt.Sprintf("lmscore: %d CPU instances, %d threads: one thread each, %d in all", n, threads, n))
	}
	each := make([]int, n)
	for k := range each {
		each[k] = max(1, threads/n)
		if k < threads%n && threads >= n {
			each[k]++
		}
	}
	return each, warnings
}

// NewPool makes a Pool of models already open (OpenModel's, for example),
// which must be the same model under the same request rules. The Pool
// takes them over: its Close closes them. Errors name a member by its CUDA
// device ordinal, or on the CPU by its index in models.
func NewPool(models ...*Model) (*Pool, error) {
	if len(models) == 0 {
		return nil, errors.New("lmscore: a pool needs at least one model")
	}
	devices := make([]int, len(models))
	first := models[0]
	for i, m := range models {
		// What a score depends on besides the weights: the request rules,
		// the backend and its arithmetic.
		if m.info != first.info || m.namespace() != first.namespace() || m.opts.MaxLength != first.opts.MaxLength || m.opts.Precision != first.opts.Precision {
			return nil, fmt.Errorf("lmscore: pool member %d is not the same model as member 0 (%s on %s %s, window %d; member 0: %s on %s %s, window %d)",
				i, m.info.Name, m.info.Backend, m.opts.Precision, m.opts.MaxLength, first.info.Name, first.info.Backend, first.opts.Precision, first.opts.MaxLength)
		}
		devices[i] = i
		if m.opts.Backend == "cuda" {
			devices[i] = m.opts.Device
		}
	}
	return newPool(slices.Clone(models), devices), nil
}

func newPool(members []*Model, devices []int) *Pool {
	p := &Pool{members: members, devices: slices.Clone(devices)}
	p.score = func(ctx context.Context, i int, reqs []Request, so ScoreOptions) ([]Result, Stats, error) {
		return p.members[i].Score(ctx, reqs, so)
	}
	return p
}

func closeAll(members []*Model) error {
	var errs []error
	for _, m := range members {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// Close closes every member.
func (p *Pool) Close() error { return closeAll(p.members) }

// Devices lists the members' device ordinals, in member order.
func (p *Pool) Devices() []int { return slices.Clone(p.devices) }

// Model is member i, for what does not score: Info, Check, Tokenize...
func (p *Pool) Model(i int) *Model { return p.members[i] }

// Len is the number of members.
func (p *Pool) Len() int { return len(p.members) }

// Warnings lists the pool's own warnings (how the CPU threads were shared)
// and each member's, once each.
func (p *Pool) Warnings() []string {
	out := slices.Clone(p.warnings)
	for _, m := range p.members {
		for _, w := range m.Warnings() {
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	return out
}

// Score is Model.Score over the pool's members: results in input order,
// so.OnResult called once per request (as its piece completes it, so not in
// input order) and so.OnProgress after every member's step, never two
// callbacks at once. The statistics add up the members' (peaks are the
// largest member's); UniqueTokens is the whole request set's trie, as one
// Model reports it, and ComputedTokens exceeds it by the prefixes that more
// than one piece computes. A member's failure stops the others and is
// returned as a *DeviceError naming it; a *RequestError inside has Index
// counted in reqs.
func (p *Pool) Score(ctx context.Context, reqs []Request, so ScoreOptions) ([]Result, Stats, error) {
	start := time.Now()
	if so.TopN < 0 {
		return nil, Stats{}, fmt.Errorf("lmscore: top-n %d is negative", so.TopN)
	}
	run := &poolRun{so: so, start: start, nReqs: len(reqs),
		devTokens: make([]int64, len(p.members)), devDone: make([]int, len(p.members)), cur: make([]Progress, len(p.members))}
	// A bad request is the caller's, whatever the members: checked here
	// once, it is never a member's failure (a *DeviceError).
	first := p.members[0]
	sreqs, err := shardRequests(&first.rules, reqs)
	if err != nil {
		return nil, Stats{}, err
	}
	// The members score the prepared tokens, so that text is tokenized
	// once, here; the continuation's text stays for its byte counts.
	reqs = preparedRequests(reqs, sreqs)
	if len(p.members) == 1 {
		// One member computes the one trie: cutting it would only compute
		// the pieces' shared prefixes twice.
		idx := make([]int, len(reqs))
		for i := range idx {
			idx[i] = i
		}
		one := run.pieceOptions(0, idx)
		one.OnProgress = so.OnProgress // the member's progress is the pool's
		res, st, err := p.score(ctx, 0, reqs, one)
		return res, st, run.err(ctx, p.deviceError(0, err, idx))
	}
	plan, err := scheduler.AssignShards(sreqs, max(1, min(piecesPerDevice*len(p.members), len(reqs))), first.rules.window)
	if err != nil {
		return nil, Stats{}, err
	}
	queue := newPieceQueue(poolPieces(plan, sreqs), len(p.members), first.opts.BlockSize)
	run.unique = plan.ComputedTokens

	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]Result, len(reqs))
	var (
		mu       sync.Mutex // guards queue, total, firstErr and panicked
		total    Stats
		firstErr error
		panicked any // a callback's panic, raised again in the caller's goroutine
		wg       sync.WaitGroup
	)
	take := func(i int) ([]int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil || panicked != nil {
			return nil, false
		}
		return queue.next(i)
	}
	for i := range p.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopped := false // the loop's own return
			defer func() {
				// A panic on a member's goroutine would end the process;
				// Model.Score's caller can recover a callback's panic, and so
				// can this one's, once every member has stopped. A callback
				// that ends the goroutine (runtime.Goexit) leaves its piece
				// unscored: that is an error, not results left zero.
				v := recover()
				if stopped {
					return
				}
				mu.Lock()
				switch {
				case v != nil && panicked == nil:
					panicked = v
				case v == nil && firstErr == nil:
					firstErr = errCallbackStopped
				}
				mu.Unlock()
				cancel()
			}()
			for {
				idx, ok := take(i)
				if !ok {
					stopped = true
					return
				}
				sub := make([]Request, len(idx))
				for k, r := range idx {
					sub[k] = reqs[r]
				}
				res, st, err := p.score(inner, i, sub, run.pieceOptions(i, idx))
				mu.Lock()
				total.Add(st)
				if err != nil && firstErr == nil {
					// The first failure is the cause; the others' are the
					// cancellation it sends them.
					firstErr = p.deviceError(i, err, idx)
					cancel()
				}
				mu.Unlock()
				if err != nil {
					stopped = true
					return
				}
				for k, r := range idx {
					res[k].Index = r
					results[r] = res[k]
				}
				run.pieceDone(i, st)
			}
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	total.UniqueTokens = plan.UniqueTokens
	total.Wall = time.Since(start)
	total.SetRates()
	if err := run.err(ctx, firstErr); err != nil {
		return nil, total, err
	}
	return results, total, nil
}

// preparedRequests is reqs in token form, as shardRequests prepared them
// (the prefix token of an empty context included): a member's preparation
// of one is then the identity, and gives the same byte counts, since the
// continuation's text, where given, is kept.
func preparedRequests(reqs []Request, sreqs []scheduler.Request) []Request {
	out := make([]Request, len(reqs))
	for i, r := range reqs {
		out[i] = Request{ID: r.ID, Continuation: r.Continuation,
			ContextTokens: sreqs[i].Context, ContinuationTokens: sreqs[i].Continuation}
	}
	return out
}

// deviceError names member i in err, and counts a *RequestError's index in
// the pool's requests (idx maps the piece's to them). The caller's own
// errors (callbackError) are not looked into: run.err returns them as
// they were.
func (p *Pool) deviceError(i int, err error, idx []int) error {
	if err == nil {
		return nil
	}
	var re *RequestError
	var ce *callbackError
	if !errors.As(err, &ce) && errors.As(err, &re) && re.Index >= 0 && re.Index < len(idx) {
		re.Index = idx[re.Index]
	}
	return &DeviceError{Backend: p.members[i].opts.Backend, Device: p.devices[i], Err: err}
}

// poolPiece is one shard of the plan: its requests (in input order) and
// the longest prefix they all share, which a member that ran it holds in
// its KV cache.
type poolPiece struct {
	reqs   []int
	prefix []int32
}

// poolPieces is the plan's non-empty shards, largest (by computed tokens)
// first, so that the last pieces taken are small and the members finish
// close together.
func poolPieces(plan *ShardPlan, sreqs []scheduler.Request) []poolPiece {
	byShard := make([]poolPiece, len(plan.Shards))
	for r, s := range plan.Of {
		pc := &byShard[s]
		input := sreqs[r].Context
		if len(pc.reqs) == 0 {
			pc.prefix = input
		} else {
			pc.prefix = pc.prefix[:commonPrefix(pc.prefix, input)]
		}
		pc.reqs = append(pc.reqs, r)
	}
	order := make([]int, 0, len(byShard))
	for s := range byShard {
		if len(byShard[s].reqs) > 0 {
			order = append(order, s)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(plan.Shards[b].ComputedTokens, plan.Shards[a].ComputedTokens)
	})
	pieces := make([]poolPiece, len(order))
	for k, s := range order {
		pieces[k] = byShard[s]
	}
	return pieces
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// pieceQueue hands the pieces out. A piece's affinity to another is the
// prefix they share, counted only from a whole KV block on (a shorter one
// is never read from the cache). A member takes the piece with the most
// affinity to one it ran, whose prefix its cache may still hold; failing
// that, the one with the least affinity to the pieces the others took, so
// that members start on different subtrees instead of computing one
// prefix each; ties go to the larger piece. This is where the prefixes
// that the plan splits between pieces are won back: two pieces of one
// split subtree tend to run on one member, one after the other.
type pieceQueue struct {
	pieces   []poolPiece
	affinity [][]int // affinity[a][b]: shared prefix tokens, 0 under a block
	byMember []int   // who took each piece; -1: still queued
	left     int
}

func newPieceQueue(pieces []poolPiece, members, blockSize int) *pieceQueue {
	q := &pieceQueue{pieces: pieces, affinity: make([][]int, len(pieces)), byMember: make([]int, len(pieces)), left: len(pieces)}
	for a := range pieces {
		q.byMember[a] = -1
		q.affinity[a] = make([]int, len(pieces))
		for b := range pieces {
			if n := commonPrefix(pieces[a].prefix, pieces[b].prefix); n >= blockSize {
				q.affinity[a][b] = n
			}
		}
	}
	return q
}

// next takes member i's next piece (its requests), or says there is none.
func (q *pieceQueue) next(i int) ([]int, bool) {
	if q.left == 0 {
		return nil, false
	}
	best, bestOwn, bestOthers := -1, 0, 0
	for c := range q.pieces {
		if q.byMember[c] >= 0 {
			continue
		}
		own, others := 0, 0
		for t, m := range q.byMember {
			switch {
			case m == i:
				own = max(own, q.affinity[c][t])
			case m >= 0:
				others = max(others, q.affinity[c][t])
			}
		}
		if best < 0 || own > bestOwn || own == bestOwn && own == 0 && others < bestOthers {
			best, bestOwn, bestOthers = c, own, others
		}
	}
	q.byMember[best] = i
	q.left--
	return q.pieces[best].reqs, true
}

// poolRun serializes one Pool.Score's callbacks and adds the members'
// progress up.
type poolRun struct {
	so     ScoreOptions
	start  time.Time
	nReqs  int
	unique int64 // the pieces' tries together: what the members compute

	mu          sync.Mutex
	devTokens   []int64    // each member's tokens in the pieces it finished
	devDone     []int      // and their requests
	cur         []Progress // each member's progress in its current piece
	callbackErr error      // the first error OnResult returned
	panicked    bool       // a callback panicked: no member calls back again
}

// err is what Score returns for a run that ended with err (a member's,
// named): the callback's own error, or the caller's cancellation, as
// Model.Score returns them; otherwise err.
func (r *poolRun) err(ctx context.Context, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		return nil
	case r.panicked:
		return errCallbackStopped
	case r.callbackErr != nil:
		return r.callbackErr
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ctx.Err()
	}
	return err
}

// pieceOptions are so for a piece of requests idx on member i: results
// reported with their index in the pool's requests, progress added up over
// the members.
func (r *poolRun) pieceOptions(i int, idx []int) ScoreOptions {
	so := r.so
	so.OnResult, so.OnProgress = nil, nil
	if r.so.OnResult != nil {
		so.OnResult = func(res Result) error {
			res.Index = idx[res.Index]
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.panicked {
				return &callbackError{errCallbackStopped}
			}
			if r.callbackErr != nil {
				return &callbackError{r.callbackErr}
			}
			returned := false
			defer r.stopIfPanicking(&returned)
			err := r.so.OnResult(res)
			returned = true
			if err != nil {
				r.callbackErr = err
				return &callbackError{err}
			}
			return nil
		}
	}
	if r.so.OnProgress != nil {
		so.OnProgress = func(pr Progress) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.panicked {
				return
			}
			returned := false
			defer r.stopIfPanicking(&returned)
			r.cur[i] = pr
			r.so.OnProgress(r.progress())
			returned = true
		}
	}
	return so
}

// stopIfPanicking, deferred around a callback with r.mu held, marks the
// run when the callback did not return (it panicked: the panic goes on, to
// Score's caller), so that no member calls back again, as Model.Score does
// not after a panic.
func (r *poolRun) stopIfPanicking(returned *bool) {
	if !*returned {
		r.panicked = true
	}
}

// errCallbackStopped stops the members after a callback panicked (Score
// then panics again with its value) or ended its goroutine
// (runtime.Goexit, as testing's FailNow does: Score returns this error).
var errCallbackStopped = errors.New("lmscore: a callback panicked or ended a pool member's goroutine (runtime.Goexit)")

// callbackError carries OnResult's error through a member's Score without
// Unwrap, so that deviceError cannot take a *RequestError of the caller's
// for one of the member's; poolRun.err returns the error itself.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// pieceDone moves member i's finished piece into its totals.
func (r *poolRun) pieceDone(i int, st Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.devTokens[i] += st.ComputedTokens
	r.devDone[i] += st.Requests
	r.cur[i] = Progress{}
}

func (r *poolRun) progress() Progress {
	pr := Progress{UniqueTokens: r.unique, Requests: r.nReqs, Elapsed: time.Since(r.start)}
	for i := range r.devTokens {
		pr.DoneTokens += r.devTokens[i] + r.cur[i].DoneTokens
		pr.DoneRequests += r.devDone[i] + r.cur[i].DoneRequests
	}
	return pr
}
