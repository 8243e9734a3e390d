package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// randomRequests builds a request set with every kind of sharing: common
// few-shot-like bases cut at random depths, duplicates, requests that are
// prefixes of others, a tiny vocabulary for accidental overlaps, and
// continuations shared between requests.
func randomRequests(rng *rand.Rand, n int) []Request {
	vocab := 2 + rng.IntN(40)
	tok := func() int32 { return int32(rng.IntN(vocab)) }
	seq := func(k int) []int32 {
		s := make([]int32, k)
		for i := range s {
			s[i] = tok()
		}
		return s
	}
	bases := make([][]int32, 1+rng.IntN(4))
	for i := range bases {
		bases[i] = seq(rng.IntN(70))
	}
	reqs := make([]Request, 0, n)
	for len(reqs) < n {
		switch k := rng.IntN(10); {
		case k == 0 && len(reqs) > 0: // exact duplicate
			reqs = append(reqs, reqs[rng.IntN(len(reqs))])
		case k == 2 && len(reqs) > 0: // branches at consecutive depths, nested inside one block
			o := reqs[rng.IntN(len(reqs))]
			stem := append(slices.Clone(o.Context), seq(1+rng.IntN(4))...)
			for d := 0; d < 2+rng.IntN(4) && len(reqs) < n; d++ {
				ctx := append(slices.Clone(stem[:len(stem)-rng.IntN(min(len(stem), 4))]), seq(rng.IntN(3))...)
				if len(ctx) == 0 {
					ctx = seq(1)
				}
				reqs = append(reqs, Request{Context: ctx, Continuation: seq(1 + rng.IntN(3))})
			}
		case k == 1 && len(reqs) > 0: // another request's whole pair, extended or cut
			o := reqs[rng.IntN(len(reqs))]
			whole := append(slices.Clone(o.Context), o.Continuation...)
			cut := 1 + rng.IntN(len(whole))
			whole = append(whole[:cut], seq(rng.IntN(6))...)
			if len(whole) < 2 {
				whole = append(whole, tok())
			}
			split := 1 + rng.IntN(len(whole)-1)
			reqs = append(reqs, Request{Context: whole[:split], Continuation: whole[split:]})
		default:
			base := bases[rng.IntN(len(bases))]
			ctx := append(slices.Clone(base[:rng.IntN(len(base)+1)]), seq(rng.IntN(30))...)
			if len(ctx) == 0 {
				ctx = seq(1)
			}
			cont := seq(1 + rng.IntN(5))
			if rng.IntN(3) == 0 && len(reqs) > 0 { // same options as another question
				cont = reqs[rng.IntN(len(reqs))].Continuation
			}
			reqs = append(reqs, Request{Context: ctx, Continuation: cont})
		}
	}
	for i := range reqs {
		if rng.IntN(4) == 0 {
			reqs[i].ID = fmt.Sprintf("r%d", i)
		}
	}
	return reqs
}

// planCase is one randomized configuration.
type planCase struct {
	seed     uint64
	bs       int
	budget   int // 0 loose, 1 tight, 2 the minimum, 3 one below the minimum
	maxT     int
	maxO     int
	maxLen   int
	noCache  bool
	twoCalls bool
	window   int // Options.Window; 0: the default
}

func (c planCase) String() string {
	return fmt.Sprintf("seed=%d bs=%d budget=%d maxT=%d maxO=%d maxLen=%d noCache=%v twoCalls=%v window=%d",
		c.seed, c.bs, c.budget, c.maxT, c.maxO, c.maxLen, c.noCache, c.twoCalls, c.window)
}

func randomCase(rng *rand.Rand, seed uint64) planCase {
	c := planCase{seed: seed, bs: 1 + rng.IntN(64), budget: rng.IntN(4), maxT: 1 + rng.IntN(120)}
	if rng.IntN(4) == 0 {
		c.bs = []int{1, 2, 3, 16, 17, 64}[rng.IntN(6)]
	}
	if rng.IntN(3) == 0 {
		c.maxO = 1 + rng.IntN(8)
	}
	if rng.IntN(4) == 0 {
		c.maxLen = 8 + rng.IntN(60)
	}
	c.noCache = rng.IntN(6) == 0
	c.twoCalls = rng.IntN(3) == 0
	if rng.IntN(3) == 0 {
		c.window = 1 + rng.IntN(4)
	}
	return c
}

// probe reads the budget thresholds of a request set from a planner on a
// pool big enough for anything.
func probe(reqs []Request, bs int, opts Options) (Stats, error) {
	blocks := 2
	for _, r := range reqs {
		blocks += (len(r.Context)+len(r.Continuation))/bs + 2
	}
	pool, err := NewBlockPool(blocks, bs)
	if err != nil {
		return Stats{}, err
	}
	pl, err := NewPlanner(pool, reqs, opts)
	if err != nil {
		return Stats{}, err
	}
	defer pl.Close()
	return pl.Stats(), nil
}

// checkCase plans a random request set under c and checks every invariant.
func checkCase(t testing.TB, c planCase) {
	rng := rand.New(rand.NewPCG(c.seed, 99))
	reqs := randomRequests(rng, 1+rng.IntN(40))
	opts := Options{MaxBatchTokens: c.maxT, MaxOutputs: c.maxO, MaxLen: c.maxLen, NoCache: c.noCache, Namespace: "m", Window: c.window}
	for i := range reqs { // drop pairs the window cannot score at all
		if c.maxLen > 0 && len(reqs[i].Continuation) > c.maxLen {
			reqs[i].Continuation = reqs[i].Continuation[:c.maxLen]
		}
	}
	pr, err := probe(reqs, c.bs, opts)
	if err != nil {
		t.Fatalf("%v: probe: %v", c, err)
	}
	kv := pr.KVBlocksNoRecompute
	switch c.budget {
	case 1:
		kv = pr.KVBlocksMin + rng.IntN(max(1, pr.KVBlocksNoRecompute-pr.KVBlocksMin))
	case 2:
		kv = pr.KVBlocksMin
	case 3:
		kv = pr.KVBlocksMin - 1
	}
	kv = max(kv, 2)
	pool, err := NewBlockPool(kv, c.bs)
	if err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	sim := newSimulator(pool)
	res, err := sim.run(pool, reqs, opts, false)
	if kv < pr.KVBlocksMin {
		if err == nil || !strings.Contains(err.Error(), "KV blocks") {
			t.Fatalf("%v: budget %d below the minimum %d: want a clear error, got %v", c, kv, pr.KVBlocksMin, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v (kv %d, min %d, loose %d): %v", c, kv, pr.KVBlocksMin, pr.KVBlocksNoRecompute, err)
	}
	s := res.stats
	var scored int64
	for _, r := range reqs {
		scored += int64(len(r.Continuation))
	}
	if s.ScoredTokens != scored {
		t.Fatalf("%v: %d scored tokens, want %d", c, s.ScoredTokens, scored)
	}
	if c.noCache {
		if s.PlannedComputedTokens != s.TotalTokens || s.CacheHitBlocks != 0 || s.CopiedBlocks != 0 {
			t.Fatalf("%v: no-cache plan computed %d of %d tokens, %d hits, %d copies", c, s.PlannedComputedTokens, s.TotalTokens, s.CacheHitBlocks, s.CopiedBlocks)
		}
	} else {
		if s.PlannedComputedTokens != s.UniqueTokens+s.RecomputedBranchTokens {
			t.Fatalf("%v: computed %d, unique %d + recomputed %d", c, s.PlannedComputedTokens, s.UniqueTokens, s.RecomputedBranchTokens)
		}
		if kv >= pr.KVBlocksNoRecompute && s.PlannedComputedTokens != s.UniqueTokens {
			t.Fatalf("%v: loose budget %d (>= %d) but computed %d tokens for %d unique", c, kv, pr.KVBlocksNoRecompute, s.PlannedComputedTokens, s.UniqueTokens)
		}
	}
	if !c.twoCalls {
		return
	}
	// A second call on the same pool: part repeats, part new. Cached blocks
	// must be hit, and what the simulator finds in them must be right.
	reqs2 := append(slices.Clone(reqs[:len(reqs)/2]), randomRequests(rng, 1+rng.IntN(10))...)
	for i := range reqs2 {
		if c.maxLen > 0 && len(reqs2[i].Continuation) > c.maxLen {
			reqs2[i].Continuation = reqs2[i].Continuation[:c.maxLen]
		}
	}
	res2, err := sim.run(pool, reqs2, opts, false)
	if err != nil {
		if strings.Contains(err.Error(), "KV blocks") { // the new requests may be longer
			return
		}
		t.Fatalf("%v: second call: %v", c, err)
	}
	s2 := res2.stats
	if !c.noCache && s2.PlannedComputedTokens != s2.UniqueTokens-s2.CachedTokens+s2.RecomputedBranchTokens {
		t.Fatalf("%v: second call computed %d, unique %d - cached %d + recomputed %d", c, s2.PlannedComputedTokens, s2.UniqueTokens, s2.CachedTokens, s2.RecomputedBranchTokens)
	}
}

// TestPlanProperties runs a few hundred random configurations (block sizes
// 1 to 64, tight and loose budgets) through the simulator.
func TestPlanProperties(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 60
	}
	for seed := uint64(0); seed < uint64(n); seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		checkCase(t, randomCase(rng, seed))
	}
}

// FuzzPlan: go test ./scheduler -run '^$' -fuzz FuzzPlan -fuzztime 1m
func FuzzPlan(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s, uint8(16), uint8(0), uint16(64), uint8(0))
		f.Add(s, uint8(1), uint8(1), uint16(5), uint8(7))
	}
	f.Fuzz(func(t *testing.T, seed uint64, bs, budget uint8, maxT uint16, flags uint8) {
		c := planCase{
			seed:     seed,
			bs:       1 + int(bs)%64,
			budget:   int(budget) % 4,
			maxT:     1 + int(maxT)%200,
			noCache:  flags&1 != 0,
			twoCalls: flags&2 != 0,
		}
		if flags&4 != 0 {
			c.maxO = 1 + int(flags>>4)
		}
		if flags&8 != 0 {
			c.maxLen = 8 + int(seed%50)
		}
		checkCase(t, c)
	})
}
