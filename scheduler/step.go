package scheduler

import (
	"io"
	"sort"

	"github.com/lmscore/lmscore/prefixtrie"
)

// Step is one planned step: a Batch for the native core and the routing of
// its output rows back to the requests.
type Step struct {
	// Index counts the steps of this plan from 0; steps must run in order.
	Index int
	Batch Batch
	// Output row i of Batch (Result.LogProb[i] and friends) is the score of
	// the continuation tokens RouteToken[k] of requests RouteRequest[k] for
	// k in [RouteStart[i], RouteStart[i+1]): rows are shared by every
	// request with the same prefix and target.
	RouteStart   []int32 // (n_outputs+1) CSR over RouteRequest/RouteToken
	RouteRequest []int32 // request index in the input slice
	RouteToken   []int32 // continuation token index within the request
	// Done lists the requests whose last scored token is in this step: all
	// of their scores are known once it has run.
	Done []int32
}

type copyOp struct {
	src, dst, n int32
	valid       bool
}

// stepBuilder is an open step: Batch arrays and routes growing segment by
// segment.
type stepBuilder struct {
	b            Batch
	routeStart   []int32
	routeRequest []int32
	routeToken   []int32
	// release holds the blocks freed by the plan while this step still
	// reads them; they go back to the pool when it closes.
	release []int32
}

func (p *Planner) newStepBuilder() *stepBuilder {
	// Most steps fill up: size the token arrays for a full one at once
	// rather than grow them a dozen times.
	nt := min(p.opts.MaxBatchTokens, 1<<16)
	no := min(p.opts.MaxOutputs, 1<<12)
	return &stepBuilder{
		b: Batch{
			TokenIDs:      make([]int32, 0, nt),
			Positions:     make([]int32, 0, nt),
			Slots:         make([]int32, 0, nt),
			SegTokenStart: append(make([]int32, 0, 64), 0),
			BlockIndptr:   append(make([]int32, 0, 64), 0),
			BlockIndices:  make([]int32, 0, nt/4),
			OutTokenIndex: make([]int32, 0, no),
			OutTarget:     make([]int32, 0, no),
			TopN:          p.opts.TopN,
		},
		routeStart:   append(make([]int32, 0, no+1), 0),
		routeRequest: make([]int32, 0, no),
		routeToken:   make([]int32, 0, no),
	}
}

// stepAt returns open step s, closing the oldest steps if s lies beyond the
// window.
func (p *Planner) stepAt(s int32) *stepBuilder {
	if w := int32(p.opts.Window); s >= p.base+w {
		p.closeUpTo(s - w + 1)
	}
	for int32(len(p.open)) <= s-p.base {
		p.open = append(p.open, p.newStepBuilder())
	}
	return p.open[s-p.base]
}

// closeUpTo closes every open step before s; empty ones vanish.
func (p *Planner) closeUpTo(s int32) {
	for p.base < s {
		if len(p.open) > 0 {
			sb := p.open[0]
			p.open[0] = nil
			p.open = p.open[1:]
			if len(sb.b.TokenIDs) > 0 {
				p.ready = append(p.ready, p.finish(sb))
			}
			p.base++ // before releasing: release() files blocks by lastUse >= base
			for _, blk := range sb.release {
				p.release(blk)
			}
			continue
		}
		p.base++
	}
}

// closeFull closes the oldest open steps while they are full.
func (p *Planner) closeFull() {
	for len(p.open) > 0 {
		b := &p.open[0].b
		if len(b.TokenIDs) < p.opts.MaxBatchTokens && len(b.OutTokenIndex) < p.opts.MaxOutputs {
			return
		}
		p.closeUpTo(p.base + 1)
	}
}

func (p *Planner) finish(sb *stepBuilder) *Step {
	s := &Step{
		Index:        p.stats.Steps,
		Batch:        sb.b,
		RouteStart:   sb.routeStart,
		RouteRequest: sb.routeRequest,
		RouteToken:   sb.routeToken,
	}
	for _, r := range sb.routeRequest {
		p.remaining[r]--
		if p.remaining[r] == 0 {
			s.Done = append(s.Done, r)
		}
	}
	p.stats.Steps++
	return s
}

func lowerBound(a []int32, x int32) int32 {
	return int32(sort.Search(len(a), func(i int) bool { return a[i] >= x }))
}

// placeRun packs the consecutive positions pos0.. (work holds (position,
// slot) pairs) of node id into the open steps, first fit from step s on,
// splitting where a step is full, and returns the step of the last piece.
// A piece never separates a position from its outputs, except a position
// with more outputs than a step can hold at all: it is run again (slot -1)
// in later steps for the rest.
func (p *Planner) placeRun(id prefixtrie.NodeID, pos0 int32, work []int32, s int32, cp *copyOp) int32 {
	t := p.trie
	outLo, outHi := t.Outputs(id)
	outPos := t.OutputPositions(outLo, outHi)
	maxT, maxO := int32(p.opts.MaxBatchTokens), int32(p.opts.MaxOutputs)
	n := int32(len(work) / 2)
	a, o := int32(0), outLo+lowerBound(outPos, pos0)
	logitOnly := false
	for {
		s = max(s, p.base)
		sb := p.stepAt(s)
		capT := maxT - int32(len(sb.b.TokenIDs))
		capO := maxO - int32(len(sb.b.OutTokenIndex))
		if capT <= 0 {
			s++
			continue
		}
		k := min(capT, n-a)
		oEnd := outLo + lowerBound(outPos, pos0+a+k)
		if oEnd-o > capO {
			cut := t.OutputPos(o + capO)
			if atCut := lowerBound(outPos, cut+1) - lowerBound(outPos, cut); atCut > maxO && capO > 0 {
				// No step holds all of this position's outputs: take it with
				// as many as fit, and run it again for the rest.
				k = cut - (pos0 + a) + 1
				p.emit(sb, s, pos0+a, work[2*a:2*(a+k)], logitOnly, o, o+capO, cp)
				a, o, logitOnly = a+k-1, o+capO, true
				s++
				continue
			}
			if k = cut - (pos0 + a); k == 0 {
				s++
				continue
			}
			oEnd = outLo + lowerBound(outPos, cut)
		}
		p.emit(sb, s, pos0+a, work[2*a:2*(a+k)], logitOnly, o, oEnd, cp)
		a, o, logitOnly = a+k, oEnd, false
		if a == n {
			return s
		}
		s++
	}
}

// emit appends one segment to open step s.
func (p *Planner) emit(sb *stepBuilder, s, pos0 int32, work []int32, firstLogitOnly bool, o, oEnd int32, cp *copyOp) {
	b := &sb.b
	tokBase := int32(len(b.TokenIDs))
	for i := 0; i < len(work); i += 2 {
		pos, slot := work[i], work[i+1]
		if i == 0 && firstLogitOnly {
			slot = -1
		}
		b.TokenIDs = append(b.TokenIDs, p.pathTokens[pos])
		b.Positions = append(b.Positions, pos)
		b.Slots = append(b.Slots, slot)
		if slot >= 0 {
			p.stats.PlannedComputedTokens++
		} else {
			p.stats.LogitOnlyTokens++
		}
	}
	b.SegTokenStart = append(b.SegTokenStart, int32(len(b.TokenIDs)))
	lastPos := work[len(work)-2]
	table := p.pathBlocks[:lastPos/p.bs+1]
	b.BlockIndices = append(b.BlockIndices, table...)
	b.BlockIndptr = append(b.BlockIndptr, int32(len(b.BlockIndices)))
	for _, blk := range table {
		if p.lastUse[blk] < s {
			p.lastUse[blk] = s
		}
	}
	if cp.valid {
		b.CopySrc = append(b.CopySrc, cp.src)
		b.CopyDst = append(b.CopyDst, cp.dst)
		b.CopyTokens = append(b.CopyTokens, cp.n)
		p.lastUse[cp.src] = max(p.lastUse[cp.src], s)
		p.lastUse[cp.dst] = max(p.lastUse[cp.dst], s)
		cp.valid = false
	}
	t := p.trie
	for u := o; u < oEnd; u++ {
		b.OutTokenIndex = append(b.OutTokenIndex, tokBase+t.OutputPos(u)-pos0)
		b.OutTarget = append(b.OutTarget, t.OutputTarget(u))
		reqs, idxs := t.Routes(u)
		sb.routeRequest = append(sb.routeRequest, reqs...)
		sb.routeToken = append(sb.routeToken, idxs...)
		sb.routeStart = append(sb.routeStart, int32(len(sb.routeRequest)))
	}
	p.stats.Segments++
}

// Plan runs a planner to the end, discarding the steps, and returns its
// statistics: what `lmscore plan` prints.
func Plan(pool *BlockPool, reqs []Request, opts Options) (Stats, error) {
	p, err := NewPlanner(pool, reqs, opts)
	if err != nil {
		return Stats{}, err
	}
	defer p.Close()
	for {
		if _, err := p.Next(); err != nil {
			if err == io.EOF {
				return p.Stats(), nil
			}
			return Stats{}, err
		}
	}
}
