package lmscore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
)

// poolModelOptions is the random model the pool tests open once per member:
// the same options give the same weights, so every member is the same model.
var poolModelOptions = testmodel.Options{Seed: 4, NVocab: 97, NCtx: 256}

// openTestPool opens n CPU members of the test model, named by devices
// (0..n-1 when nil), each with o.
func openTestPool(t *testing.T, n int, devices []int, o Options) *Pool {
	t.Helper()
	if devices == nil {
		for i := range n {
			devices = append(devices, i)
		}
	}
	var members []*Model
	for range n {
		m, err := open(testmodel.Must(poolModelOptions), "test", o)
		require.NoError(t, err)
		members = append(members, m)
	}
	p := newPool(members, devices)
	t.Cleanup(func() { p.Close() })
	return p
}

// poolRequests are task-shaped: few-shot prefixes shared by many questions,
// each with a few choices (randomRequests, with longer shared prefixes so
// that the trie splits into many subtrees).
func poolRequests() []Request { return randomRequests(31, 97, 150) }

// scorePoolChecked scores reqs on p and checks the streaming contract: one
// OnResult per request, equal to its result; callbacks never overlapping;
// progress that ends with every request done.
func scorePoolChecked(t *testing.T, p *Pool, reqs []Request) ([]Result, Stats) {
	t.Helper()
	var inCallback atomic.Bool
	overlap := false
	enter := func() {
		if inCallback.Swap(true) {
			overlap = true
		}
	}
	var streamed []Result
	var last Progress
	res, st, err := p.Score(context.Background(), reqs, ScoreOptions{
		OnResult: func(r Result) error {
			enter()
			defer inCallback.Store(false)
			streamed = append(streamed, r)
			return nil
		},
		OnProgress: func(pr Progress) {
			enter()
			defer inCallback.Store(false)
			assert.GreaterOrEqual(t, pr.DoneRequests, last.DoneRequests, "progress goes forward")
			last = pr
		},
	})
	require.NoError(t, err)
	require.Len(t, res, len(reqs))
	assert.False(t, overlap, "two callbacks ran at once")
	require.Len(t, streamed, len(reqs), "one OnResult per request")
	seen := map[int]bool{}
	for _, r := range streamed {
		require.False(t, seen[r.Index], "request %d delivered twice", r.Index)
		seen[r.Index] = true
		assert.Equal(t, res[r.Index], r, "request %d: streamed as returned", r.Index)
	}
	for i, r := range res {
		assert.Equal(t, i, r.Index, "results in input order")
	}
	assert.Equal(t, len(reqs), last.DoneRequests)
	assert.Equal(t, len(reqs), last.Requests)
	assert.GreaterOrEqual(t, last.UniqueTokens, st.UniqueTokens, "progress counts the pieces' tries")
	return res, st
}

func TestPoolScoresAsOneModel(t *testing.T) {
	reqs := poolRequests()
	one := openTest(t, testmodel.Must(poolModelOptions), Options{Threads: 2})
	_, oneStats, err := one.Score(context.Background(), reqs, ScoreOptions{})
	require.NoError(t, err)
	want := scoreAll(t, openTest(t, testmodel.Must(poolModelOptions), Options{Threads: 2, NoCache: true}), reqs, ScoreOptions{})
	for _, n := range []int{1, 2, 3} {
		// RetainCache: the warm second call below is the cross-call cache
		// at work; without it a member keeps only what one call held at
		// once, and work stealing may hand a piece to another member.
		p := openTestPool(t, n, nil, Options{Threads: 1, RetainCache: true})
		got, st := scorePoolChecked(t, p, reqs)
		requireBitwise(t, want, got, fmt.Sprintf("pool of %d", n))
		assert.Equal(t, oneStats.Requests, st.Requests, "n=%d", n)
		assert.Equal(t, oneStats.TotalTokens, st.TotalTokens, "n=%d", n)
		assert.Equal(t, oneStats.UniqueTokens, st.UniqueTokens, "n=%d: the whole set's trie", n)
		assert.GreaterOrEqual(t, st.ComputedTokens, oneStats.ComputedTokens, "n=%d: pieces compute their shared prefixes again", n)
		if n == 1 {
			assert.Equal(t, oneStats.ComputedTokens, st.ComputedTokens, "one member computes the one trie")
		}
		// The members that ran pieces keep their prefixes for the next call
		// (RetainCache); which ones did depends on timing.
		cached := 0
		for i := 0; i < p.Len(); i++ {
			cached += p.Model(i).CacheStats().BlocksCachedFree
		}
		assert.Positive(t, cached, "n=%d: the members keep cached prefixes", n)
		// A warm second call reads the members' prefix caches. Which member
		// takes which piece depends on timing (work stealing), so the saving
		// is asserted for one member, which is sure to find all of its
		// prefixes again, and logged for more.
		got2, st2 := scorePoolChecked(t, p, reqs)
		requireBitwise(t, want, got2, "warm pool")
		if n == 1 {
			assert.Less(t, st2.ComputedTokens, st.ComputedTokens, "the second call reuses cached prefixes")
		}
		t.Logf("n=%d: computed %d tokens cold, %d warm", n, st.ComputedTokens, st2.ComputedTokens)
	}
}

// A member that runs slow takes fewer pieces: the others take the rest from
// the queue, and the scores are the same.
func TestPoolWorkStealing(t *testing.T) {
	reqs := poolRequests()
	want := scoreAll(t, openTest(t, testmodel.Must(poolModelOptions), Options{Threads: 2, NoCache: true}), reqs, ScoreOptions{})
	p := openTestPool(t, 3, nil, Options{Threads: 1})
	m0 := p.Model(0)
	sreqs, err := shardRequests(&m0.rules, reqs)
	require.NoError(t, err)
	plan, err := m0.Shards(reqs, piecesPerDevice*3)
	require.NoError(t, err)
	nPieces := len(poolPieces(plan, sreqs))
	require.Greater(t, nPieces, 3, "the requests cut into more pieces than members")

	var mu sync.Mutex
	ran := make([]int, 3)
	var others atomic.Int32 // pieces the other members finished
	real := p.score
	p.score = func(ctx context.Context, i int, sub []Request, so ScoreOptions) ([]Result, Stats, error) {
		mu.Lock()
		ran[i]++
		mu.Unlock()
		if i == 0 {
			// Member 0 stalls on its first piece until the others have
			// done every other one.
			deadline := time.Now().Add(30 * time.Second)
			for int(others.Load()) < nPieces-1 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		res, st, err := real(ctx, i, sub, so)
		if i != 0 {
			others.Add(1)
		}
		return res, st, err
	}
	got, _ := scorePoolChecked(t, p, reqs)
	requireBitwise(t, want, got, "with a slow member")
	assert.Equal(t, 1, ran[0], "the slow member took one piece")
	assert.Equal(t, nPieces-1, ran[1]+ran[2], "the others took the rest")
	assert.Positive(t, ran[1])
	assert.Positive(t, ran[2])
}

// A member that fails mid-run stops the run, and the error names it.
func TestPoolDeviceFailureNamesIt(t *testing.T) {
	reqs := poolRequests()
	want := scoreAll(t, openTest(t, testmodel.Must(poolModelOptions), Options{Threads: 2, NoCache: true}), reqs, ScoreOptions{})
	p := openTestPool(t, 3, []int{0, 3, 5}, Options{Threads: 1})
	injected := &Error{Kind: ErrDevice, Err: errors.New("injected: an illegal memory access was encountered")}
	real := p.score
	var failing atomic.Bool
	p.score = func(ctx context.Context, i int, sub []Request, so ScoreOptions) ([]Result, Stats, error) {
		if i == 1 {
			// Part of the piece is scored and streamed, then the device fails.
			failing.Store(true)
			_, st, _ := real(ctx, i, sub[:1], so)
			return nil, st, injected
		}
		// The others wait for member 1 to take a piece: it always gets one.
		deadline := time.Now().Add(30 * time.Second)
		for !failing.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return real(ctx, i, sub, so)
	}
	_, _, err := p.Score(context.Background(), reqs, ScoreOptions{})
	require.Error(t, err)
	var de *DeviceError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 3, de.Device, "the failing member's ordinal")
	assert.Contains(t, err.Error(), "cpu instance 3")
	assert.ErrorIs(t, err, ErrDevice)
	assert.ErrorIs(t, err, injected)

	p.score = real
	requireBitwise(t, want, scoreAll2(t, p, reqs), "after a failed run")
}

func scoreAll2(t *testing.T, p *Pool, reqs []Request) []Result {
	t.Helper()
	res, _, err := p.Score(context.Background(), reqs, ScoreOptions{})
	require.NoError(t, err)
	return res
}

// Errors that are not a member's own come back as Model.Score gives them:
// a bad request (before any member runs), a callback's error, the caller's
// cancellation. A request too large for a member's KV pool is that
// member's error, with the request's index counted in the pool's input.
func TestPoolErrors(t *testing.T) {
	reqs := poolRequests()
	p := openTestPool(t, 2, nil, Options{Threads: 1})

	bad := append([]Request{}, reqs...)
	bad[7] = Request{ID: "oob", ContextTokens: []int32{1, 2}, ContinuationTokens: []int32{97}}
	_, _, err := p.Score(context.Background(), bad, ScoreOptions{})
	var re *RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 7, re.Index)
	assert.Equal(t, "oob", re.ID)
	assert.NotErrorAs(t, err, new(*DeviceError), "a bad request is no device's fault")

	stop := errors.New("stop here")
	_, _, err = p.Score(context.Background(), reqs, ScoreOptions{OnResult: func(Result) error { return stop }})
	assert.Same(t, stop, err, "the callback's error, as returned")

	ctx, cancel := context.WithCancel(context.Background())
	var delivered atomic.Int32
	_, _, err = p.Score(ctx, reqs, ScoreOptions{OnResult: func(Result) error {
		if delivered.Add(1) == 5 {
			cancel()
		}
		return nil
	}})
	assert.Equal(t, context.Canceled, err)

	_, _, err = p.Score(context.Background(), reqs, ScoreOptions{TopN: -1})
	assert.ErrorContains(t, err, "top-n -1 is negative")

	// 5 usable blocks of 16 tokens: 80 input tokens at most, more than
	// any of reqs needs (66).
	small := openTestPool(t, 2, []int{2, 6}, Options{Threads: 1, KVBlocks: 6})
	long := append([]Request{}, reqs[:20]...)
	long[13] = Request{ID: "long", ContextTokens: make([]int32, 100), ContinuationTokens: []int32{5}}
	for i := range long[13].ContextTokens {
		long[13].ContextTokens[i] = int32(1 + i%90)
	}
	_, _, err = small.Score(context.Background(), long, ScoreOptions{})
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 13, re.Index, "the index in the pool's input")
	assert.ErrorAs(t, err, new(*BudgetError))
	var de *DeviceError
	require.ErrorAs(t, err, &de)
	assert.Contains(t, []int{2, 6}, de.Device)
}

func TestNewPoolRefusesDifferentModels(t *testing.T) {
	a, err := open(testmodel.Must(poolModelOptions), "a", Options{Threads: 1})
	require.NoError(t, err)
	defer a.Close()
	b, err := open(testmodel.Must(poolModelOptions), "b", Options{Threads: 1})
	require.NoError(t, err)
	defer b.Close()
	_, err = NewPool(a, b)
	assert.ErrorContains(t, err, "pool member 1 is not the same model")
	_, err = NewPool()
	assert.Error(t, err)
	p, err := NewPool(a)
	require.NoError(t, err)
	assert.Equal(t, []int{0}, p.Devices())
}

// OpenPool names a device that does not open: here a CUDA core that is not
// there, which is how a missing device reads on a machine without CUDA.
func TestOpenPoolNamesTheDeviceThatFails(t *testing.T) {
	path := storiesGGUF(t)
	_, err := OpenPool(path, Options{Backend: "cuda", CUDALibrary: "no-such-dir/liblmscore_cuda.so"}, []int{2, 3})
	var de *DeviceError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 2, de.Device)
	assert.Contains(t, err.Error(), "cuda device 2")

	_, err = OpenPool(path, Options{}, []int{0, 0})
	assert.ErrorContains(t, err, "device 0 is listed twice")
	_, err = OpenPool(path, Options{}, nil)
	assert.ErrorContains(t, err, "no devices")

	p, err := OpenPool(path, Options{Threads: 2, KVMemory: 16 << 20}, []int{0, 1})
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, []int{0, 1}, p.Devices())
	assert.Equal(t, 1, p.Model(0).Options().Threads, "the threads are split between CPU instances")
	assert.Equal(t, 1, p.Model(1).Options().Device)
}

func TestParseDevices(t *testing.T) {
	for _, c := range []struct {
		spec      string
		available int
		want      []int
		err       string
	}{
		{"all", 3, []int{0, 1, 2}, ""},
		{" all ", 1, []int{0}, ""},
		{"0,1,3", 4, []int{0, 1, 3}, ""},
		{"2", 3, []int{2}, ""},
		{"3,1", 4, []int{3, 1}, ""},
		{"0, 1", 2, []int{0, 1}, ""},
		{"5,7", -1, []int{5, 7}, ""}, // count unknown: taken as given
		{"all", -1, nil, "number of devices is unknown"},
		{"all", 0, nil, "no device is available"},
		{"", 2, nil, "empty list"},
		{"0,,1", 2, nil, `"" is not a device ordinal`},
		{"0,x", 2, nil, `"x" is not a device ordinal`},
		{"-1", 2, nil, `"-1" is not a device ordinal`},
		{"+1", 2, nil, `"+1" is not a device ordinal`},
		{"01", 2, nil, `"01" is not a device ordinal`},
		{"1,0,1", 2, nil, "device 1 is listed twice"},
		{"0,2", 2, nil, "device 2 is not there (2 devices are available: 0 to 1)"},
		{"1", 1, nil, "device 1 is not there (1 device is available: 0)"},
		{"0", 0, nil, "device 0 is not there (no device is available)"},
	} {
		got, err := ParseDevices(c.spec, c.available)
		if c.err != "" {
			assert.ErrorContains(t, err, c.err, "%q of %d", c.spec, c.available)
			assert.Nil(t, got)
			continue
		}
		require.NoError(t, err, "%q of %d", c.spec, c.available)
		assert.Equal(t, c.want, got, "%q of %d", c.spec, c.available)
	}
}

func TestVisibleCUDADevicesReadsTheEnvironment(t *testing.T) {
	t.Setenv("CUDA_VISIBLE_DEVICES", "3,5")
	assert.Equal(t, 2, VisibleCUDADevices())
	t.Setenv("CUDA_VISIBLE_DEVICES", "")
	assert.Equal(t, 0, VisibleCUDADevices(), "an empty list hides every device")
}

// The queue's order, pinned: members start on different subtrees, then
// each continues the subtree whose prefix it computed; a prefix shorter
// than a block is no affinity.
func TestPieceQueueOrder(t *testing.T) {
	a, b := []int32{1, 2, 3, 4, 5}, []int32{6, 7, 8, 9, 10}
	pieces := []poolPiece{ // largest first
		{reqs: []int{0}, prefix: a},
		{reqs: []int{1}, prefix: append(a[:4:4], 11)},
		{reqs: []int{2}, prefix: b},
		{reqs: []int{3}, prefix: []int32{1, 2, 12}}, // shares 2 tokens with a: under a block of 4
		{reqs: []int{4}, prefix: b[:4]},
	}
	q := newPieceQueue(pieces, 2, 4)
	var got [][2]int // (member, first request)
	for _, m := range []int{0, 1, 0, 1, 0, 1} {
		reqs, ok := q.next(m)
		if !ok {
			got = append(got, [2]int{m, -1})
			continue
		}
		got = append(got, [2]int{m, reqs[0]})
	}
	assert.Equal(t, [][2]int{
		{0, 0},  // the largest
		{1, 2},  // not piece 1, which shares member 0's prefix
		{0, 1},  // member 0's own subtree
		{1, 4},  // member 1's
		{0, 3},  // what is left
		{1, -1}, // empty
	}, got)
}

// A callback's own error comes back as the callback returned it, even a
// *RequestError in the caller's numbering: the pool maps only the indices
// of its members' errors into its requests.
func TestPoolCallbackRequestErrorUntouched(t *testing.T) {
	reqs := poolRequests()
	p := openTestPool(t, 2, nil, Options{Threads: 1})
	last := len(reqs) - 1
	mine := &RequestError{Index: 0, ID: "caller's", Err: errors.New("refused by the caller")}
	_, _, err := p.Score(context.Background(), reqs, ScoreOptions{OnResult: func(r Result) error {
		if r.Index == last {
			return mine
		}
		return nil
	}})
	require.Same(t, mine, err, "the callback's error, as returned")
	assert.Equal(t, 0, mine.Index, "the caller's index, not mapped through a piece")
}

// A panic in a callback reaches Score's caller, as Model.Score's does,
// instead of ending the process from a member's goroutine; the pool is
// then still usable.
func TestPoolCallbackPanicReachesTheCaller(t *testing.T) {
	reqs := poolRequests()
	want := scoreAll(t, openTest(t, testmodel.Must(poolModelOptions), Options{Threads: 2, NoCache: true}), reqs, ScoreOptions{})
	p := openTestPool(t, 2, nil, Options{Threads: 1})
	assert.PanicsWithValue(t, "from the callback", func() {
		p.Score(context.Background(), reqs, ScoreOptions{OnResult: func(Result) error { panic("from the callback") }})
	})
	requireBitwise(t, want, scoreAll2(t, p, reqs), "after a panicking callback")
}

// A bad request is the caller's, not a device's, however many members.
func TestPoolBadRequestIsNoDevicesFault(t *testing.T) {
	reqs := poolRequests()
	bad := append([]Request{}, reqs...)
	bad[7] = Request{ID: "oob", ContextTokens: []int32{1, 2}, ContinuationTokens: []int32{97}}
	for _, n := range []int{1, 2} {
		p := openTestPool(t, n, nil, Options{Threads: 1})
		_, _, err := p.Score(context.Background(), bad, ScoreOptions{})
		var re *RequestError
		require.ErrorAs(t, err, &re, "n=%d", n)
		assert.Equal(t, 7, re.Index, "n=%d", n)
		assert.NotErrorAs(t, err, new(*DeviceError), "n=%d: a bad request is no device's fault", n)
	}
}

// CPU instances share the threads one Model would run: never more than
// the cores (unless there are more instances than cores), none left idle.
func TestInstanceThreads(t *testing.T) {
	for _, c := range []struct {
		threads, cores, n int
		want              []int
		warnings          int
	}{
		{0, 8, 2, []int{4, 4}, 0},
		{0, 8, 3, []int{3, 3, 2}, 0},
		{5, 8, 2, []int{3, 2}, 0},
		{16, 8, 2, []int{4, 4}, 1},   // capped at the cores first
		{0, 2, 3, []int{1, 1, 1}, 1}, // oversubscribed, and said
		{2, 2, 3, []int{1, 1, 1}, 1},
		{1, 2, 1, []int{1}, 0},
	} {
		got, warnings := instanceThreads(c.threads, c.cores, c.n)
		assert.Equal(t, c.want, got, "%d threads, %d cores, %d instances", c.threads, c.cores, c.n)
		assert.Len(t, warnings, c.warnings, "%d threads, %d cores, %d instances: %v", c.threads, c.cores, c.n, warnings)
	}
}

// OpenPool's CPU instances together run at most the cores, whatever
// Threads asks for.
func TestOpenPoolThreadsWithinTheCores(t *testing.T) {
	cores := runtime.NumCPU()
	if cores < 2 {
		t.Skipf("%d core: two instances oversubscribe it by design", cores)
	}
	p, err := OpenPool(storiesGGUF(t), Options{Threads: 4 * cores, KVMemory: 16 << 20}, []int{0, 1})
	require.NoError(t, err)
	defer p.Close()
	sum := 0
	for i := range p.Len() {
		sum += p.Model(i).Options().Threads
	}
	assert.Equal(t, cores, sum, "the instances' threads together")
	assert.Contains(t, p.Warnings(), fmt.Sprintf("lmscore: %d threads requested, capped at the %d cores available", 4*cores, cores))
}

// After a callback panics, no member calls back again (Model.Score does
// not): here member 1 is mid-piece, its cancellation not yet seen, when
// member 0's callback panics.
func TestPoolNoCallbackAfterAPanic(t *testing.T) {
	reqs := poolRequests()
	p := openTestPool(t, 2, nil, Options{Threads: 1})
	var calls atomic.Int32
	var panicking atomic.Bool
	real := p.score
	p.score = func(ctx context.Context, i int, sub []Request, so ScoreOptions) ([]Result, Stats, error) {
		if i == 1 {
			deadline := time.Now().Add(30 * time.Second)
			for !panicking.Load() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			ctx = context.Background() // a step already under way
		}
		return real(ctx, i, sub, so)
	}
	assert.PanicsWithValue(t, "from the callback", func() {
		p.Score(context.Background(), reqs, ScoreOptions{OnResult: func(r Result) error {
			calls.Add(1)
			panicking.Store(true)
			panic("from the callback")
		}})
	})
	assert.Equal(t, int32(1), calls.Load(), "callbacks after the panic")
}

// A callback that ends a member's goroutine (runtime.Goexit) leaves its
// piece unscored: Score says so instead of returning results left zero.
func TestPoolCallbackGoexitIsAnError(t *testing.T) {
	reqs := poolRequests()
	p := openTestPool(t, 2, nil, Options{Threads: 1})
	var once atomic.Bool
	res, _, err := p.Score(context.Background(), reqs, ScoreOptions{OnResult: func(r Result) error {
		if !once.Swap(true) {
			runtime.Goexit()
		}
		return nil
	}})
	assert.ErrorIs(t, err, errCallbackStopped)
	assert.True(t, res == nil, "no results, some of them left zero")
}

// A pool tokenizes text once: its members get the prepared tokens (the
// prefix token of an empty context included) and the continuation's text,
// and score as one model does on the text itself, byte counts included.
func TestPoolTokenizesOnce(t *testing.T) {
	path := storiesGGUF(t)
	reqs := []Request{
		{ID: "a", Context: "Once upon a time, there was a little girl.", Continuation: " She liked to play."},
		{ID: "b", Context: "Once upon a time, there was a little girl.", Continuation: " He was sad."},
		{ID: "c", Context: "", Continuation: "The cat sat."},
		{ID: "d", Context: "Lily saw a big dog ", Continuation: "in the park."},
		{ID: "e", ContextTokens: []int32{1, 400, 401}, ContinuationTokens: []int32{402, 403}},
	}
	one, err := Open(path, Options{Threads: 1})
	require.NoError(t, err)
	defer one.Close()
	want, _, err := one.Score(context.Background(), reqs, ScoreOptions{})
	require.NoError(t, err)

	for _, n := range []int{1, 2} {
		p, err := OpenPool(path, Options{Threads: 2}, []int{0, 1}[:n])
		require.NoError(t, err)
		var mu sync.Mutex
		var given []Request
		member := p.score
		p.score = func(ctx context.Context, i int, sub []Request, so ScoreOptions) ([]Result, Stats, error) {
			mu.Lock()
			given = append(given, sub...)
			mu.Unlock()
			return member(ctx, i, sub, so)
		}
		got, _, err := p.Score(context.Background(), reqs, ScoreOptions{})
		require.NoError(t, err)
		p.Close()
		require.Len(t, given, len(reqs), "n=%d: each request goes to one member once", n)
		for _, r := range given {
			assert.Empty(t, r.Context, "n=%d %s: no text left to tokenize", n, r.ID)
			assert.NotEmpty(t, r.ContextTokens, "n=%d %s", n, r.ID)
			assert.NotEmpty(t, r.ContinuationTokens, "n=%d %s", n, r.ID)
		}
		requireBitwise(t, want, got, fmt.Sprintf("pool of %d on text", n))
		for i := range want {
			assert.Equal(t, want[i].NBytes, got[i].NBytes, "n=%d %s: bytes of the continuation's text", n, want[i].ID)
			assert.Equal(t, want[i].NormBytes, got[i].NormBytes, "n=%d %s", n, want[i].ID)
			assert.Equal(t, want[i].NTokens, got[i].NTokens, "n=%d %s", n, want[i].ID)
		}
	}
}
