package scheduler

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/lmscore/lmscore/prefixtrie"
)

// ShardPlan splits a request set into shards that separate processes score
// on their own (`lmscore score --shard i/N`). Shards are prefix-affine:
// whole subtrees of the requests' trie go to one shard, so a shared prefix
// is computed by one shard wherever the balance allows.
type ShardPlan struct {
	// Of is each request's shard, by its index in the input.
	Of     []int       `json:"-"`
	Shards []ShardLoad `json:"shards"`
	// TotalTokens counts every request's inputs; UniqueTokens the one trie's
	// size, what a single process computes; ComputedTokens the sum of the
	// shards' tries: UniqueTokens plus the prefixes computed on more than
	// one shard.
	TotalTokens    int64 `json:"total_tokens"`
	UniqueTokens   int64 `json:"unique_tokens"`
	ComputedTokens int64 `json:"computed_tokens"`
	// MaxLength is the window the requests were truncated to (0: none).
	MaxLength int `json:"max_length"`
}

// ShardLoad is one shard's part of a plan.
type ShardLoad struct {
	Requests    int   `json:"requests"`
	TotalTokens int64 `json:"total_tokens"`
	// ComputedTokens is the size of the shard's own trie: the tokens it
	// computes with KV blocks to spare.
	ComputedTokens int64 `json:"computed_tokens"`
}

// AssignShards splits reqs into n shards. The result depends on the
// requests' input tokens (after truncation to maxLen, as NewPlanner
// truncates) and n alone, never on the machine or the run, so every
// process of a sharded run computes the same plan from the same file.
//
// How. The subtrees under the root are the first candidates. One that
// costs more than the ideal share (UniqueTokens/n) when computed alone (its
// path from the root plus its subtree) is split into its children, and
// the requests that end at its node, recursively; the path is then
// computed by every shard that gets a piece. The pieces go largest first,
// each to the shard where it leaves the lowest load, except that among the
// shards it can join without raising the largest load so far, it goes to
// the one that already computes most of its path. Ties go to the lowest
// shard, then to the piece whose node comes first in the trie's canonical
// order (breadth first, children by first token).
func AssignShards(reqs []Request, n int, maxLen int) (*ShardPlan, error) {
	if n < 1 {
		return nil, fmt.Errorf("scheduler: %d shards: want at least 1", n)
	}
	if maxLen < 0 {
		return nil, fmt.Errorf("scheduler: max length %d is negative", maxLen)
	}
	t := prefixtrie.New()
	inputLen := make([]int64, len(reqs))
	for i := range reqs {
		head, tail, _, err := inputs(&reqs[i], i, maxLen)
		if err != nil {
			return nil, err
		}
		node, err := t.Insert(head, tail)
		if err != nil {
			return nil, err
		}
		if err := t.AddEnd(node, int32(i)); err != nil {
			return nil, err
		}
		inputLen[i] = int64(len(head) + len(tail))
	}
	t.Freeze()
	plan := &ShardPlan{Of: make([]int, len(reqs)), Shards: make([]ShardLoad, n),
		TotalTokens: t.TotalTokens(), UniqueTokens: t.UniqueTokens(), MaxLength: maxLen}
	a := newShardAssigner(t, n)
	pieces := a.pieces()
	shardOf, load := a.bestPlacement(pieces)
	for k, it := range pieces {
		s := shardOf[k]
		a.collect(it, func(req int32) {
			plan.Of[req] = s
			plan.Shards[s].Requests++
			plan.Shards[s].TotalTokens += inputLen[req]
		})
	}
	for s := range plan.Shards {
		plan.Shards[s].ComputedTokens = load[s]
		plan.ComputedTokens += load[s]
	}
	return plan, nil
}

// shardPiece is what goes to one shard whole: the subtree of node, or, for
// a split node, the requests that end at it (endsOnly).
type shardPiece struct {
	node     prefixtrie.NodeID
	endsOnly bool
	// path is the deepest node whose path from the root the piece needs
	// computed besides its own tokens (node's parent, or node itself when
	// endsOnly); own is the size of its subtree (0 when endsOnly).
	path  prefixtrie.NodeID
	own   int64
	alone int64 // path depth + own: its cost on a shard of its own
}

type shardAssigner struct {
	t    *prefixtrie.Trie
	n    int
	cost []int64 // subtree sizes in tokens, each node's edge included
	rank []int32 // position in breadth-first order: the canonical tie-break
}

func newShardAssigner(t *prefixtrie.Trie, n int) *shardAssigner {
	a := &shardAssigner{t: t, n: n, cost: make([]int64, t.NumNodes()), rank: make([]int32, t.NumNodes())}
	order := []prefixtrie.NodeID{prefixtrie.Root}
	for i := 0; i < len(order); i++ {
		a.rank[order[i]] = int32(i)
		order = append(order, t.Children(order[i])...)
	}
	for i := len(order) - 1; i >= 0; i-- {
		id := order[i]
		a.cost[id] += int64(t.End(id) - t.Start(id))
		if p := t.Parent(id); p != prefixtrie.None {
			a.cost[p] += a.cost[id]
		}
	}
	return a
}

// pieces splits the trie into the pieces to place, largest first.
func (a *shardAssigner) pieces() []shardPiece {
	t := a.t
	unique := a.cost[prefixtrie.Root]
	var out []shardPiece
	split := []prefixtrie.NodeID{prefixtrie.Root}
	for len(split) > 0 {
		p := split[len(split)-1]
		split = split[:len(split)-1]
		if len(t.Ends(p)) > 0 {
			out = append(out, shardPiece{node: p, endsOnly: true, path: p, alone: int64(t.End(p))})
		}
		for _, c := range t.Children(p) {
			it := shardPiece{node: c, path: p, own: a.cost[c], alone: int64(t.Start(c)) + a.cost[c]}
			// alone > unique/n, in integers so that no rounding can differ
			// between machines.
			if it.alone*int64(a.n) > unique && len(t.Children(c)) > 0 {
				split = append(split, c)
				continue
			}
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(x, y shardPiece) int {
		if c := cmp.Compare(y.alone, x.alone); c != 0 {
			return c
		}
		return cmp.Compare(a.rank[x.node], a.rank[y.node])
	})
	return out
}

// bestPlacement places the pieces twice over and keeps the placement with
// the smaller largest load (then the smaller total): once greedily, each
// piece onto the shard where it leaves the lowest load; and once first-fit
// under the smallest cap on every shard's load that a binary search finds
// the pieces fit in. The greedy alone spreads one large prefix's pieces
// over every shard when the pieces are all near the ideal share (64 shards
// of 20 few-shot tasks: each task's prefix computed a dozen times);
// first-fit under a cap fills a shard with one prefix's pieces before it
// opens another. Everything is integer arithmetic over the trie: the same
// on every machine.
func (a *shardAssigner) bestPlacement(pieces []shardPiece) ([]int, []int64) {
	bestOf, bestLoad, _ := a.place(pieces, -1)
	peak, sum := loadPeakSum(bestLoad)
	lo := (a.cost[prefixtrie.Root] + int64(a.n) - 1) / int64(a.n) // no cap below the ideal share fits
	for _, it := range pieces {
		lo = max(lo, it.alone) // nor below a piece on its own
	}
	hi := peak - 1
	for lo <= hi {
		limit := lo + (hi-lo)/2
		of, load, ok := a.place(pieces, limit)
		if !ok {
			lo = limit + 1
			continue
		}
		hi = limit - 1
		if p, s := loadPeakSum(load); p < peak || p == peak && s < sum {
			bestOf, bestLoad, peak, sum = of, load, p, s
		}
	}
	return bestOf, bestLoad
}

func loadPeakSum(load []int64) (peak, sum int64) {
	for _, l := range load {
		peak, sum = max(peak, l), sum+l
	}
	return peak, sum
}

// place puts each piece, in order, on the shard that already computes most
// of its path among those it fits: under limit, or, for limit < 0, without
// raising the largest load beyond what the lowest placement would leave.
// Ties go to the less loaded shard, then the lower index. With a limit,
// ok is false when a piece fits no shard.
func (a *shardAssigner) place(pieces []shardPiece, limit int64) (of []int, load []int64, ok bool) {
	of, load = make([]int, len(pieces)), make([]int64, a.n)
	paid := make([]map[prefixtrie.NodeID]bool, a.n) // the split nodes whose edges each shard computes
	for s := range paid {
		paid[s] = map[prefixtrie.NodeID]bool{}
	}
	extra := make([]int64, a.n)
	for k, it := range pieces {
		capLoad := limit
		if limit < 0 {
			makespan, lowest := int64(0), int64(-1)
			for s := range a.n {
				extra[s] = it.own + a.unpaid(paid[s], it)
				makespan = max(makespan, load[s])
				if r := load[s] + extra[s]; lowest < 0 || r < lowest {
					lowest = r
				}
			}
			capLoad = max(makespan, lowest)
		} else {
			for s := range a.n {
				extra[s] = it.own + a.unpaid(paid[s], it)
			}
		}
		best := -1
		for s := range a.n {
			if load[s]+extra[s] > capLoad {
				continue
			}
			if best < 0 || extra[s] < extra[best] || extra[s] == extra[best] && load[s] < load[best] {
				best = s
			}
		}
		if best < 0 {
			return nil, nil, false
		}
		of[k] = best
		load[best] += extra[best]
		for id := it.path; id != prefixtrie.Root && !paid[best][id]; id = a.t.Parent(id) {
			paid[best][id] = true
		}
	}
	return of, load, true
}

// unpaid is the part of it's path that a shard computing the split nodes
// paid does not compute yet. A shard that computes a node computes its
// whole path, so the walk stops at the first node it has. Only split nodes
// are ever on a piece's path, so paid stays small.
func (a *shardAssigner) unpaid(paid map[prefixtrie.NodeID]bool, it shardPiece) int64 {
	var n int64
	for id := it.path; id != prefixtrie.Root && !paid[id]; id = a.t.Parent(id) {
		n += int64(a.t.End(id) - a.t.Start(id))
	}
	return n
}

// collect calls f on every request of the piece.
func (a *shardAssigner) collect(it shardPiece, f func(req int32)) {
	if it.endsOnly {
		for _, r := range a.t.Ends(it.node) {
			f(r)
		}
		return
	}
	stack := []prefixtrie.NodeID{it.node}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, r := range a.t.Ends(id) {
			f(r)
		}
		stack = append(stack, a.t.Children(id)...)
	}
}
