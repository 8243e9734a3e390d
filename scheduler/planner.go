package scheduler

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/lmscore/lmscore/prefixtrie"
)

// Planner turns a set of requests into steps, one at a time, so that the
// executor can run each step as soon as it is planned and memory stays
// bounded by the open steps.
//
// How it plans. The requests' inputs go into a radix trie; the planner walks
// it depth first. Each node, when reached, takes references on the blocks of
// its edge (hits in the pool's cache, the parent's partial tail block taken
// over in place, or fresh blocks) and emits the positions it must compute
// as segments. A node keeps its blocks until its whole subtree is done, so
// the live set is one root-to-leaf path (plus, at a branch inside a block,
// the parent's tail kept as the source of copies). Finished subtrees release
// their blocks to the pool's LRU list, where a later plan may hit them.
//
// Memory. If the pool is too small to keep a branch point's tail for
// copying (the peak computed up front says so), that branch point goes
// "tight": its later branches recompute the shared head of the block instead
// of copying it, so that every path holds exactly its own blocks. Only a
// request whose own inputs need more blocks than the pool has is refused.
//
// Steps. Segments are packed first-fit into a window of open steps, which
// lets a segment wait for a later step (its parent's edge ends there)
// without stopping the rest from filling the current one. Long edges are
// split across steps; a child may run in the same step as its parent, the
// copy of its parent's partial block included (the ABI runs, layer by
// layer, all K/V writes, then the copies, before attention reads), or
// later. A block the plan frees goes back to the pool only when
// the open steps that read it are emitted, so a fresh block never makes a
// segment wait; when the pool runs dry, the oldest open steps are emitted
// early to return theirs.
type Planner struct {
	pool *BlockPool
	opts Options
	bs   int32 // block size
	ns   BlockHash
	trie *prefixtrie.Trie

	remaining []int32 // per request: scored tokens not yet emitted
	truncated []bool

	nodes []nodeState
	stack []prefixtrie.NodeID // depth-first work list

	// The path from the root to the node being planned: its tokens, the
	// block at each block index and the hash of each full block.
	pathTokens []int32
	pathBlocks []int32
	pathHash   []BlockHash
	pathKnown  []bool // the pool knew the block's hash (a hit, or evicted lately)

	heldBlocks []int32 // each node's references, at nodes[n].held
	registered []int32 // blocks this plan registered a hash for, to forget them if it is abandoned
	lastUse    []int32 // per pool block: the last step of this plan that touches it
	work       []int32 // scratch: (position, slot) pairs of the node being planned
	peak       []int32 // between prepare and markTight: each subtree's peak of live blocks
	order      []prefixtrie.NodeID

	open  []*stepBuilder // open[i] is step base+i
	base  int32
	ready []*Step
	stats Stats
	// evictionsBefore is the pool's eviction count when this plan began.
	evictionsBefore int64
	err             error
	closed          bool
}

type nodeState struct {
	held, nHeld int32 // heldBlocks[held : held+nHeld]: one per block index from floor(start/bs)
	pending     int32 // children not yet done
	readyStep   int32 // every position of the path to this node's end is written by this step
	inPlace     prefixtrie.NodeID
	tight       bool // later branches recompute the shared tail instead of copying it
	tailGiven   bool // the tail's reference went to the in-place child (tight nodes)
}

// NewPlanner builds the trie of the requests and prepares to plan them on
// pool, which must not be in use by another plan. With a nil pool the
// planner makes its own, of Options.KVBlocks blocks of Options.BlockSize
// tokens, or, if KVBlocks is 0, of as many blocks as the plan could ever
// hold at once (nothing is evicted) up to 2^20: what `lmscore plan` uses to
// describe a workload without a memory budget.
func NewPlanner(pool *BlockPool, reqs []Request, opts Options) (*Planner, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if len(reqs) > 1<<31-1 {
		return nil, fmt.Errorf("scheduler: %d requests: at most 2^31-1", len(reqs))
	}
	p := &Planner{
		pool:      pool,
		opts:      opts,
		ns:        NamespaceHash(opts.Namespace),
		remaining: make([]int32, len(reqs)),
		truncated: make([]bool, len(reqs)),
	}
	usable := math.MaxInt
	switch {
	case pool != nil:
		if pool.NumUsed() != 0 {
			return nil, fmt.Errorf("scheduler: the block pool has %d referenced blocks: an earlier plan was not finished or closed", pool.NumUsed())
		}
		if opts.BlockSize != 0 && opts.BlockSize != pool.BlockSize() {
			return nil, fmt.Errorf("scheduler: block size %d differs from the pool's %d", opts.BlockSize, pool.BlockSize())
		}
		p.bs, usable = pool.blockSize, pool.Usable()
	case opts.BlockSize < 1 || opts.BlockSize > 1<<16:
		return nil, fmt.Errorf("scheduler: block size %d out of range [1, 65536]", opts.BlockSize)
	default:
		p.bs = int32(opts.BlockSize)
		if opts.KVBlocks > 0 {
			usable = opts.KVBlocks - 1
		}
	}
	if err := p.buildTrie(reqs, usable); err != nil {
		return nil, err
	}
	p.prepare()
	if pool == nil {
		n := opts.KVBlocks
		if n == 0 {
			// Room for every block at once, up to a large GPU's pool
			// (bookkeeping costs about 100 bytes a block), but never less
			// than computing each unique token once needs.
			n = max(min(p.maxBlocks(), 1<<20), p.stats.KVBlocksNoRecompute-1) + 1
		}
		var err error
		if p.pool, err = NewBlockPool(n, int(p.bs)); err != nil {
			return nil, err
		}
	}
	p.evictionsBefore = p.pool.Evictions()
	p.lastUse = make([]int32, p.pool.NumBlocks())
	for i := range p.lastUse {
		p.lastUse[i] = -1
	}
	p.markTight(int32(min(p.pool.Usable(), math.MaxInt32)))
	p.stack = append(p.stack, prefixtrie.Root)
	p.stats.Requests = len(reqs)
	p.stats.TotalTokens = p.trie.TotalTokens()
	p.stats.UniqueTokens = p.trie.UniqueTokens()
	p.stats.Outputs = int64(p.trie.NumOutputs())
	p.stats.ScoredTokens = int64(p.trie.NumRoutes())
	return p, nil
}

// maxBlocks bounds the blocks a plan can reference at once: every node
// holding its own block for each block index of its edge, all at once.
func (p *Planner) maxBlocks() int {
	t := p.trie
	n := 0
	for id := prefixtrie.NodeID(1); int(id) < t.NumNodes(); id++ {
		n += int((t.End(id)-1)/p.bs - t.Start(id)/p.bs + 1)
	}
	return max(n, 1)
}

// Pool is the block pool the plan runs on (the planner's own, if it made one).
func (p *Planner) Pool() *BlockPool { return p.pool }

func (p *Planner) buildTrie(reqs []Request, usable int) error {
	if p.opts.NoCache {
		p.trie = prefixtrie.NewUnshared()
	} else {
		p.trie = prefixtrie.New()
	}
	ends := make([]prefixtrie.NodeID, len(reqs))
	scored := 0
	for i := range reqs {
		scored += len(reqs[i].Continuation)
	}
	p.trie.Reserve(len(reqs), scored)
	maxDepth := 0
	for i := range reqs {
		r := &reqs[i]
		head, tail, cut, err := inputs(r, i, p.opts.MaxLen)
		if err != nil {
			return err
		}
		n := len(head) + len(tail)
		if need := (n + int(p.bs) - 1) / int(p.bs); need > usable {
			return &BudgetError{Request: i, ID: r.ID, Tokens: n, BlockSize: int(p.bs), Need: need, Have: usable}
		}
		maxDepth = max(maxDepth, n)
		if ends[i], err = p.trie.Insert(head, tail); err != nil {
			return err
		}
		if err := p.trie.AddEnd(ends[i], int32(i)); err != nil {
			return err
		}
		p.truncated[i] = cut > 0
		if cut > 0 {
			p.stats.TruncatedRequests++
		}
		p.remaining[i] = int32(len(r.Continuation))
	}
	// Outputs only once every insert is done: a later insert may split an
	// edge, moving a position to the new upper node.
	for i := range reqs {
		cont := reqs[i].Continuation
		n := ends[i]
		depth := p.trie.End(n)
		for j := len(cont) - 1; j >= 0; j-- {
			pos := depth - int32(len(cont)-j)
			for pos < p.trie.Start(n) {
				n = p.trie.Parent(n)
			}
			if err := p.trie.AddOutput(n, pos, cont[j], int32(i), int32(j)); err != nil {
				return err
			}
		}
	}
	p.trie.Freeze()
	p.pathTokens = make([]int32, maxDepth)
	nIdx := (maxDepth + int(p.bs) - 1) / int(p.bs)
	p.pathBlocks = make([]int32, nIdx)
	p.pathHash = make([]BlockHash, nIdx)
	p.pathKnown = make([]bool, nIdx)
	p.stats.KVBlocksMin = nIdx + 1
	return nil
}

// prepare computes, bottom up, each subtree's peak of live blocks when every
// branch point copies (peak[n], assuming n's first block is its own), and
// picks each branch point's in-place child (the one with the highest peak,
// so the block it saves counts where it matters).
func (p *Planner) prepare() {
	t := p.trie
	n := t.NumNodes()
	p.nodes = make([]nodeState, n)
	order := make([]prefixtrie.NodeID, 0, n)
	order = append(order, prefixtrie.Root)
	for i := 0; i < len(order); i++ { // breadth first: parents before children
		order = append(order, t.Children(order[i])...)
	}
	peak := make([]int32, n)
	bs := p.bs
	for i := len(order) - 1; i >= 0; i-- {
		id := order[i]
		st := &p.nodes[id]
		st.inPlace = prefixtrie.None
		var own int32
		if id != prefixtrie.Root {
			own = (t.End(id)-1)/bs - t.Start(id)/bs + 1
		}
		kids := t.Children(id)
		st.pending = int32(len(kids))
		var most int32
		if t.End(id)%bs != 0 && len(kids) > 0 {
			best := kids[0]
			for _, c := range kids[1:] {
				if peak[c] > peak[best] {
					best = c
				}
			}
			st.inPlace = best
			most = peak[best] - 1 // it shares this node's tail block
			for _, c := range kids {
				if c != best {
					most = max(most, peak[c])
				}
			}
		} else {
			for _, c := range kids {
				most = max(most, peak[c])
			}
		}
		peak[id] = own + most
	}
	p.stats.KVBlocksNoRecompute = int(peak[prefixtrie.Root]) + 1
	p.peak, p.order = peak, order
}

// markTight marks top down the branch points that must go tight for the
// plan to fit usable blocks.
func (p *Planner) markTight(usable int32) {
	t, bs, peak, order := p.trie, p.bs, p.peak, p.order
	p.peak, p.order = nil, nil
	// While a tight node's descendants run, the path above a child c holds
	// exactly the block indices below c's first fresh block; c's subtree
	// then peaks at peak[c] from floor(start/bs) on (one less if it is in
	// place, but then it also starts one index later): the same sum.
	p.nodes[prefixtrie.Root].tight = peak[prefixtrie.Root] > usable
	for _, id := range order {
		if !p.nodes[id].tight {
			continue
		}
		for _, c := range t.Children(id) {
			p.nodes[c].tight = t.Start(c)/bs+peak[c] > usable
		}
	}
}

// Truncated reports whether request i was left-truncated to fit MaxLen.
func (p *Planner) Truncated(i int) bool { return p.truncated[i] }

// Trie is the prefix trie of the requests' inputs (read-only).
func (p *Planner) Trie() *prefixtrie.Trie { return p.trie }

// Stats returns the statistics so far; after Next returns io.EOF, the plan's.
func (p *Planner) Stats() Stats {
	s := p.stats
	if p.pool != nil {
		s.Evictions = p.pool.evictions - p.evictionsBefore
	}
	s.RecomputedTokens = s.RecomputedEvictedTokens + s.RecomputedBranchTokens
	return s
}

// Next plans and returns the next step, or io.EOF when every output has
// been emitted. After an error the planner is done; Close it.
func (p *Planner) Next() (*Step, error) {
	for len(p.ready) == 0 {
		if p.err != nil {
			return nil, p.err
		}
		if p.closed {
			return nil, io.EOF
		}
		if len(p.stack) == 0 {
			p.closeUpTo(p.base + int32(len(p.open)))
			p.closed = true
			if used := p.pool.NumUsed(); used != 0 {
				p.err = fmt.Errorf("scheduler: internal error: %d blocks still referenced at the end of the plan", used)
			}
			continue
		}
		n := p.stack[len(p.stack)-1]
		p.stack = p.stack[:len(p.stack)-1]
		if err := p.planNode(n); err != nil {
			p.err = err
		}
		p.closeFull()
	}
	s := p.ready[0]
	p.ready[0] = nil
	p.ready = p.ready[1:]
	return s, nil
}

// Close ends the plan. After a complete plan it does nothing. A plan
// abandoned part-way (an executor error, a cancelled run) leaves blocks
// registered for steps that may never have run: Close forgets every hash
// this plan registered and drops its references, keeping the prefixes
// cached by earlier plans (this plan only read those).
func (p *Planner) Close() {
	if p.closed && p.err == nil {
		return
	}
	if p.pool != nil {
		p.pool.abandon(p.registered)
	}
	p.registered = nil
	p.closed = true
	if p.err == nil {
		p.err = errors.New("scheduler: planner closed")
	}
}

// BudgetError reports a request whose inputs alone need more KV blocks than
// the pool has: no plan can score it. Smaller budgets than the whole trie
// needs are not an error (the plan evicts, or recomputes at branch points).
type BudgetError struct {
	Request   int    // index in the input
	ID        string // the request's ID, if it had one
	Tokens    int    // its input tokens, after truncation
	BlockSize int
	Need      int // blocks it needs, without the null block
	Have      int // usable blocks of the pool
}

func (e *BudgetError) Error() string {
	r := Request{ID: e.ID}
	return fmt.Sprintf("request %s: its %d input tokens need %d KV blocks of %d tokens (--kv-blocks %d), but the pool has %d (--kv-blocks %d; block 0 is reserved)",
		requestName(&r, e.Request), e.Tokens, e.Need, e.BlockSize, e.Need+1, e.Have, e.Have+1)
}
