package scheduler

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lmscore/lmscore/prefixtrie"
)

// tokReq is a request whose inputs are in (the continuation's last token,
// 99, is never an input).
func tokReq(in ...int32) Request {
	return Request{Context: in, Continuation: []int32{99}}
}

func TestAssignShardsExact(t *testing.T) {
	cases := []struct {
		name  string
		reqs  []Request
		n     int
		of    []int
		loads []int64
	}{{
		// Trie: root -> [1 2 3] -> {[4] A, [5] B}; root -> [7] -> {[6] D, [8 9] C}.
		// Unique 9, ideal 4.5: [1 2 3]'s subtree (5) is split, [7]'s (4)
		// is not. Pieces, all costing 4 alone: [7] (first in the canonical
		// order) to shard 0; [4] to the empty shard 1, which then computes
		// [1 2 3]; [5] joins it there for 1 more token rather than 4.
		name: "split the larger subtree, keep its prefix on one shard",
		reqs: []Request{tokReq(1, 2, 3, 4), tokReq(1, 2, 3, 5), tokReq(7, 8, 9), tokReq(7, 6)},
		n:    2, of: []int{1, 1, 0, 0}, loads: []int64{4, 5},
	}, {
		// Unique 8, ideal 8/3: [1 2] (4 alone) splits into the request that
		// ends at it (A, 2 alone) and [3 4] (4 alone). [7 7 7 7] to shard 0,
		// [3 4] to shard 1 (which computes [1 2]); A goes to shard 1 for
		// nothing, not to the empty shard 2 that would compute [1 2] again.
		name: "a request that ends where the trie branches follows its prefix",
		reqs: []Request{tokReq(1, 2), tokReq(1, 2, 3, 4), tokReq(7, 7, 7, 7)},
		n:    3, of: []int{1, 1, 0}, loads: []int64{4, 4, 0},
	}, {
		// One 6-token prefix under three 2-token branches, 3 shards: each
		// branch alone costs 8 > 12/3, so balance wins over sharing and
		// every shard computes the prefix (8, 8, 8 rather than 12 on one).
		name: "balance over sharing when one prefix holds all the work",
		reqs: []Request{tokReq(1, 2, 3, 4, 5, 6, 10, 11), tokReq(1, 2, 3, 4, 5, 6, 20, 21), tokReq(1, 2, 3, 4, 5, 6, 30, 31)},
		n:    3, of: []int{0, 1, 2}, loads: []int64{8, 8, 8},
	}, {
		name: "one shard takes everything",
		reqs: []Request{tokReq(1, 2), tokReq(3), tokReq(1, 5)},
		n:    1, of: []int{0, 0, 0}, loads: []int64{4},
	}, {
		// More shards than pieces: the rest stay empty.
		name: "empty shards",
		reqs: []Request{tokReq(1, 2), tokReq(3)},
		n:    4, of: []int{0, 1}, loads: []int64{2, 1, 0, 0},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := AssignShards(c.reqs, c.n, 0)
			if err != nil {
				t.Fatal(err)
			}
			var loads []int64
			for _, s := range p.Shards {
				loads = append(loads, s.ComputedTokens)
			}
			if !slices.Equal(p.Of, c.of) || !slices.Equal(loads, c.loads) {
				t.Errorf("shards %v loads %v, want %v and %v", p.Of, loads, c.of, c.loads)
			}
			checkShardPlan(t, c.reqs, c.n, 0, p)
		})
	}
}

// checkShardPlan checks what every plan must hold: each request in one
// shard, each shard's load the size of its own trie, the sums, and the
// balance bound of largest-first greedy placement (no shard above the mean
// load by more than the largest piece, which is at most the ideal share
// unless it is one unsplittable path).
func checkShardPlan(t *testing.T, reqs []Request, n, maxLen int, p *ShardPlan) {
	t.Helper()
	if len(p.Of) != len(reqs) || len(p.Shards) != n {
		t.Fatalf("%d assignments, %d shards; want %d and %d", len(p.Of), len(p.Shards), len(reqs), n)
	}
	tries := make([]*prefixtrie.Trie, n)
	for s := range tries {
		tries[s] = prefixtrie.New()
	}
	counts := make([]int, n)
	var longest int64
	for i := range reqs {
		s := p.Of[i]
		if s < 0 || s >= n {
			t.Fatalf("request %d in shard %d of %d", i, s, n)
		}
		counts[s]++
		head, tail, _, err := inputs(&reqs[i], i, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		longest = max(longest, int64(len(head)+len(tail)))
		if _, err := tries[s].Insert(head, tail); err != nil {
			t.Fatal(err)
		}
	}
	var sum, peak int64
	requests := 0
	for s, l := range p.Shards {
		if l.Requests != counts[s] || l.ComputedTokens != tries[s].UniqueTokens() || l.TotalTokens != tries[s].TotalTokens() {
			t.Errorf("shard %d: %+v; its requests: %d, trie %d unique of %d", s, l, counts[s], tries[s].UniqueTokens(), tries[s].TotalTokens())
		}
		sum += l.ComputedTokens
		peak = max(peak, l.ComputedTokens)
		requests += l.Requests
	}
	if requests != len(reqs) || sum != p.ComputedTokens || sum < p.UniqueTokens {
		t.Errorf("%d requests in shards of %d; computed %d (plan says %d), unique %d", requests, len(reqs), sum, p.ComputedTokens, p.UniqueTokens)
	}
	ideal := (p.UniqueTokens + int64(n) - 1) / int64(n)
	if bound := (sum+int64(n)-1)/int64(n) + max(ideal, longest); peak > bound {
		t.Errorf("largest shard %d tokens, above the bound %d (mean %d, ideal share %d)", peak, bound, sum/int64(n), ideal)
	}
}

func TestAssignShardsMetaICL(t *testing.T) {
	reqs := metaICLRequests(3, 20, 40)
	for _, n := range []int{1, 2, 3, 7, 16, 64} {
		p, err := AssignShards(reqs, n, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkShardPlan(t, reqs, n, 0, p)
		ratio := float64(p.ComputedTokens) / float64(p.UniqueTokens)
		var peak int64
		for _, s := range p.Shards {
			peak = max(peak, s.ComputedTokens)
		}
		imbalance := float64(peak) / (float64(p.UniqueTokens) / float64(n))
		t.Logf("n=%d: computed/unique %.4f, largest shard / ideal share %.3f", n, ratio, imbalance)
		// 20 tasks, each under the ideal share up to 20 shards: no prefix
		// needs computing twice.
		if n <= 20 && p.ComputedTokens != p.UniqueTokens {
			t.Errorf("n=%d: shards compute %d tokens, the trie has %d", n, p.ComputedTokens, p.UniqueTokens)
		}
		if n <= 7 && imbalance > 1.1 {
			t.Errorf("n=%d: the largest shard is %.3f times the ideal share", n, imbalance)
		}
		// 64 shards: every task is larger than the ideal share and its
		// 1,000-token prefix as large as the share itself, so each task
		// spans a few shards, each computing its prefix. Spread over about
		// 3 shards a task, the largest shard is near 1.7 ideal shares; a
		// greedy that gives every shard a piece of every task is near 4.5.
		if n == 64 && (ratio > 1.8 || imbalance > 2) {
			t.Errorf("n=64: computed/unique %.3f, largest shard / ideal share %.3f", ratio, imbalance)
		}
	}
}

// TestAssignShardsDeterministic: the plan is a function of the requests'
// tokens alone: the order of the lines does not move a request.
func TestAssignShardsDeterministic(t *testing.T) {
	reqs := metaICLRequests(5, 3, 30) // 3 tasks: split over 7 shards
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{2, 3, 7} {
		p, err := AssignShards(reqs, n, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkShardPlan(t, reqs, n, 0, p)
		perm := rng.Perm(len(reqs))
		shuffled := make([]Request, len(reqs))
		for i, j := range perm {
			shuffled[i] = reqs[j]
		}
		q, err := AssignShards(shuffled, n, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, j := range perm {
			if q.Of[i] != p.Of[j] {
				t.Fatalf("n=%d: request %d in shard %d, in shard %d after shuffling", n, j, p.Of[j], q.Of[i])
			}
		}
		if !slices.Equal(p.Shards, q.Shards) {
			t.Errorf("n=%d: loads %v, %v after shuffling", n, p.Shards, q.Shards)
		}
	}
}

// Random tries, truncation included: the invariants of every plan.
func TestAssignShardsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 200; trial++ {
		var reqs []Request
		for i := 0; i < 1+rng.IntN(40); i++ {
			ctx := make([]int32, 1+rng.IntN(12))
			for j := range ctx {
				ctx[j] = int32(rng.IntN(3)) // a tiny alphabet: deep sharing
			}
			reqs = append(reqs, Request{Context: ctx, Continuation: []int32{int32(rng.IntN(3)), 5}[:1+rng.IntN(2)]})
		}
		n, maxLen := 1+rng.IntN(8), []int{0, 2 + rng.IntN(8)}[rng.IntN(2)] // 0: no truncation
		p, err := AssignShards(reqs, n, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		checkShardPlan(t, reqs, n, maxLen, p)
	}
}

func TestAssignShardsErrors(t *testing.T) {
	if _, err := AssignShards([]Request{tokReq(1)}, 0, 0); err == nil {
		t.Error("0 shards: no error")
	}
	if _, err := AssignShards([]Request{{Context: []int32{1}}}, 2, 0); err == nil {
		t.Error("an empty continuation: no error")
	}
}
