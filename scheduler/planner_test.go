package scheduler

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestBlockPoolLRU(t *testing.T) {
	p, err := NewBlockPool(5, 4)
	if err != nil {
		t.Fatal(err)
	}
	var evicted []int32
	p.OnEvict = func(b int32) { evicted = append(evicted, b) }
	var got []int32
	for i := 0; i < 4; i++ {
		b, ok := p.allocate()
		if !ok {
			t.Fatal("pool of 4 usable blocks ran out early")
		}
		got = append(got, b)
	}
	if !slices.Equal(got, []int32{1, 2, 3, 4}) {
		t.Fatalf("allocation order %v: want 1 2 3 4, never the null block", got)
	}
	if _, ok := p.allocate(); ok {
		t.Fatal("allocated a fifth block from 4 usable")
	}
	h := func(i uint64) BlockHash { return BlockHash{Hi: i, Lo: i * 7} }
	p.register(1, h(1), true)
	p.register(2, h(2), true)
	p.register(3, h(3), true)
	// 4 holds nothing: freed to the head. The cached ones go to the tail in
	// release order.
	p.release(3)
	p.release(4)
	p.release(1)
	p.release(2)
	if got := p.FreeOrder(); !slices.Equal(got, []int32{4, 3, 1, 2}) {
		t.Fatalf("free order %v, want 4 3 1 2", got)
	}
	if p.NumCachedFree() != 3 || p.NumFree() != 4 || p.NumUsed() != 0 {
		t.Fatalf("counts: cached free %d free %d used %d", p.NumCachedFree(), p.NumFree(), p.NumUsed())
	}
	// A hit in the middle of the free list is unlinked in place.
	if b, ok := p.lookup(h(1)); !ok || b != 1 || p.RefCount(1) != 1 {
		t.Fatalf("lookup(h1) = %d %v ref %d", b, ok, p.RefCount(1))
	}
	if got := p.FreeOrder(); !slices.Equal(got, []int32{4, 3, 2}) {
		t.Fatalf("free order after the hit %v, want 4 3 2", got)
	}
	if _, ok := p.lookup(BlockHash{Hi: 99, Lo: 1 * 7}); ok {
		t.Fatal("a hash with the same low half but another high half must miss")
	}
	// Allocation takes the head: the empty block first, then evicts LRU.
	a, _ := p.allocate()
	b, _ := p.allocate()
	if a != 4 || b != 3 || !slices.Equal(evicted, []int32{3}) || p.Evictions() != 1 {
		t.Fatalf("allocated %d %d, evicted %v", a, b, evicted)
	}
	if _, ok := p.lookup(h(3)); ok {
		t.Fatal("an evicted hash must miss")
	}
	if !p.register(b, h(3), true) {
		t.Fatal("registering an evicted hash again must count as a recomputation")
	}
	p.Reset()
	if p.NumFree() != 4 || p.NumCachedFree() != 0 || !slices.Equal(p.FreeOrder(), []int32{1, 2, 3, 4}) {
		t.Fatalf("Reset: free %v", p.FreeOrder())
	}
	if _, err := NewBlockPool(1, 16); err == nil {
		t.Fatal("a pool of only the null block must be refused")
	}
}

func TestRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		req  Request
		opts Options
		want string
	}{
		{Request{ID: "e", Continuation: []int32{1}}, Options{}, `request "e": empty context`},
		{Request{Context: []int32{1}}, Options{}, `request #0: empty continuation`},
		{Request{Context: []int32{1, -2}, Continuation: []int32{1}}, Options{}, `negative token id -2`},
		{Request{Context: []int32{1}, Continuation: []int32{1, 2, 3}}, Options{MaxLen: 2}, `does not fit the context window of 2`},
		{Request{Context: make([]int32, 40), Continuation: []int32{1}}, Options{KVBlocks: 3, BlockSize: 16}, `need 3 KV blocks`},
	} {
		tc.opts.MaxBatchTokens = 8
		if tc.opts.BlockSize == 0 {
			tc.opts.BlockSize = 4
		}
		_, err := NewPlanner(nil, []Request{tc.req}, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.req, err, tc.want)
		}
	}
	var be *BudgetError
	_, err := NewPlanner(nil, []Request{{ID: "x", Context: make([]int32, 40), Continuation: []int32{1}}},
		Options{MaxBatchTokens: 8, BlockSize: 16, KVBlocks: 3})
	if !errors.As(err, &be) || be.Need != 3 || be.Have != 2 || be.ID != "x" || be.Tokens != 40 {
		t.Fatalf("want a *BudgetError needing 3 of 2 blocks, got %#v", err)
	}
	pool, _ := NewBlockPool(4, 4)
	pool.allocate()
	if _, err := NewPlanner(pool, []Request{{Context: []int32{1}, Continuation: []int32{2}}}, Options{MaxBatchTokens: 8}); err == nil {
		t.Fatal("a pool with referenced blocks must be refused")
	}
	if _, err := NewPlanner(pool, nil, Options{MaxBatchTokens: 8, BlockSize: 8}); err == nil {
		t.Fatal("a block size that differs from the pool's must be refused")
	}
}

// drain plans every step of pl, failing the test on an error.
func drain(t *testing.T, pl *Planner) {
	t.Helper()
	for {
		if _, err := pl.Next(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// TestOwnPool: without a pool or a budget, the planner sizes its own so
// that nothing is recomputed, and touches no more blocks than it holds at
// once; with no requests it ends at once.
func TestOwnPool(t *testing.T) {
	reqs := metaICLRequests(3, 3, 20)
	pl, err := NewPlanner(nil, reqs, Options{MaxBatchTokens: 512, BlockSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, pl)
	s := pl.Stats()
	if s.RecomputedTokens != 0 || s.PlannedComputedTokens != s.UniqueTokens || pl.Pool().NumUsed() != 0 {
		t.Fatalf("own pool: %+v", s)
	}
	if got := pl.Pool().NumTouched(); got != s.PeakLiveBlocks {
		t.Fatalf("own pool touched %d blocks, held at most %d at once", got, s.PeakLiveBlocks)
	}
	empty, err := NewPlanner(nil, nil, Options{MaxBatchTokens: 8, BlockSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := empty.Next(); err != io.EOF || st != nil {
		t.Fatalf("no requests: got %v, %v", st, err)
	}
}

// TestRetainPolicy: the same requests planned twice on one pool. By
// default the pool's touched blocks (the memory the cores map) stay at the
// live high-water mark of one call, and the second call recomputes what
// did not fit; with Retain the pool grows to hold every prefix, and the
// second call computes only the positions whose logits it needs.
func TestRetainPolicy(t *testing.T) {
	reqs := metaICLRequests(7, 3, 20)
	for _, retain := range []bool{false, true} {
		pool, err := NewBlockPool(2000, 16)
		if err != nil {
			t.Fatal(err)
		}
		pool.Retain = retain
		var calls [2]Stats
		for i := range calls {
			pl, err := NewPlanner(pool, reqs, Options{MaxBatchTokens: 512})
			if err != nil {
				t.Fatal(err)
			}
			drain(t, pl)
			calls[i] = pl.Stats()
			pl.Close()
		}
		first, second := calls[0], calls[1]
		t.Logf("retain=%v: touched %d; first %+v; second %+v", retain, pool.NumTouched(), first, second)
		if first.PlannedComputedTokens != first.UniqueTokens {
			t.Fatalf("retain=%v: the first call computed %d of %d unique tokens", retain, first.PlannedComputedTokens, first.UniqueTokens)
		}
		touched, held := pool.NumTouched(), max(first.PeakLiveBlocks, second.PeakLiveBlocks)
		if !retain {
			if touched != held {
				t.Fatalf("default: %d blocks touched, at most %d held at once", touched, held)
			}
			if second.CachedTokens >= first.UniqueTokens/2 {
				t.Fatalf("default: the second call found %d of %d tokens cached; a pool at the live mark cannot hold them all",
					second.CachedTokens, first.UniqueTokens)
			}
		} else {
			if touched <= held {
				t.Fatalf("retain: %d blocks touched, no more than the %d held at once", touched, held)
			}
			if second.PlannedComputedTokens >= first.UniqueTokens/5 {
				t.Fatalf("retain: the second call computed %d tokens of %d; the cache should have held them",
					second.PlannedComputedTokens, first.UniqueTokens)
			}
		}
	}
}

// TestOrderInvariance: the plan depends on the set of requests, not their
// order: shuffled input gives the same steps, only routed to other indices.
func TestOrderInvariance(t *testing.T) {
	reqs := metaICLRequests(5, 2, 30)
	perm := make([]int, len(reqs))
	for i := range perm {
		perm[i] = (i*7919 + 13) % len(reqs) // 7919 is prime to len(reqs) = 180
	}
	shuffled := make([]Request, len(reqs))
	for i, j := range perm {
		shuffled[i] = reqs[j]
	}
	plan := func(rs []Request) []*Step {
		pool, _ := NewBlockPool(300, 16)
		res, err := newSimulator(pool).run(pool, rs, Options{MaxBatchTokens: 256}, true)
		if err != nil {
			t.Fatal(err)
		}
		return res.steps
	}
	a, b := plan(reqs), plan(shuffled)
	if len(a) != len(b) {
		t.Fatalf("%d steps vs %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i].Batch, b[i].Batch
		if !slices.Equal(x.TokenIDs, y.TokenIDs) || !slices.Equal(x.Slots, y.Slots) || !slices.Equal(x.BlockIndices, y.BlockIndices) ||
			!slices.Equal(x.CopySrc, y.CopySrc) || !slices.Equal(x.OutTokenIndex, y.OutTokenIndex) || !slices.Equal(x.OutTarget, y.OutTarget) {
			t.Fatalf("step %d differs between request orders", i)
		}
		for k := range a[i].RouteRequest {
			if ra, rb := a[i].RouteRequest[k], b[i].RouteRequest[k]; perm[rb] != int(ra) && !sameRequest(reqs[ra], shuffled[rb]) {
				t.Fatalf("step %d route %d: request %d vs %d", i, k, ra, rb)
			}
		}
	}
}

func sameRequest(a, b Request) bool {
	return slices.Equal(a.Context, b.Context) && slices.Equal(a.Continuation, b.Continuation)
}

// TestAbandonedPlan: a plan closed part-way forgets what it registered
// (those blocks may never have been written) but keeps what earlier plans
// cached. The simulator would catch a hit on a block never written.
func TestAbandonedPlan(t *testing.T) {
	a := metaICLRequests(11, 2, 5)
	b := metaICLRequests(12, 2, 5)
	pool, _ := NewBlockPool(400, 4)
	sim := newSimulator(pool)
	opts := Options{MaxBatchTokens: 64}
	if _, err := sim.run(pool, a, opts, false); err != nil {
		t.Fatal(err)
	}
	cached := pool.NumCachedFree()
	pl, err := NewPlanner(pool, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ { // planned, never executed
		if _, err := pl.Next(); err != nil {
			t.Fatal(err)
		}
	}
	pl.Close()
	if pool.NumUsed() != 0 {
		t.Fatalf("%d blocks still referenced after Close", pool.NumUsed())
	}
	res, err := sim.run(pool, a, opts, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.stats.CacheHitBlocks == 0 || pool.NumCachedFree() < cached/2 {
		t.Fatalf("the first plan's cache should mostly survive: %d hits, %d of %d cached blocks left", res.stats.CacheHitBlocks, pool.NumCachedFree(), cached)
	}
	if _, err := sim.run(pool, b, opts, false); err != nil {
		t.Fatalf("after an abandoned plan: %v", err)
	}
}

// TestCopiesShareTheParentsStep: branches that copy their parent's partial
// block run in the parent's step (ABI 5 copies after each layer's K/V
// writes), a copied branch's own partial block is copied again by its
// children in that step too (a chain the cores run in order), and so a
// plan that fits one step is one step.
func TestCopiesShareTheParentsStep(t *testing.T) {
	ctx := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20} // block 1 holds 4
	// Both of ctx's branches branch again inside the same block, so the
	// one that is copied (not taken over in place) has its tail copied by
	// one of its own children: a chain.
	var reqs []Request
	for _, c := range [][]int32{{30, 31, 40, 41}, {30, 31, 50, 51}, {60, 61, 70, 71}, {60, 61, 80, 81}} {
		reqs = append(reqs, Request{Context: ctx, Continuation: c})
	}
	pool, err := NewBlockPool(32, 16)
	if err != nil {
		t.Fatal(err)
	}
	res, err := newSimulator(pool).run(pool, reqs, Options{MaxBatchTokens: 64}, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.stats.Steps != 1 || res.copies == 0 || res.sameStepCopies != res.copies || res.chainedCopies == 0 {
		t.Fatalf("steps %d, copies %d (%d of what the step wrote, %d chained): want 1 step, every copy in it, one chained",
			res.stats.Steps, res.copies, res.sameStepCopies, res.chainedCopies)
	}
	if res.stats.PlannedComputedTokens != res.stats.UniqueTokens {
		t.Fatalf("computed %d of %d unique tokens", res.stats.PlannedComputedTokens, res.stats.UniqueTokens)
	}
}
