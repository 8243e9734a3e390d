package scheduler

import (
	"errors"
	"fmt"
	"io"
)

// The simulator executes plans the way the native core does, but instead of
// K/V each slot holds the identity of the prefix whose last token was
// written there: hash(identity of the prefix before it, token). A token's
// identity is computed from what its block table actually points at, so a
// wrong table, a missing copy, a block reused while still read, a slot
// written twice or read before it is written all show up as a wrong
// identity or a direct error; the outputs are then checked against
// identities computed from the requests alone.
//
// Semantics, after lmscore.h (ABI 5): every K/V write of the step, then the
// copies in array order, then the reads. A written slot holds its token
// until the copies have run; identities are then computed in batch order,
// each token reading the prefix through its own segment's table, so a
// segment may follow its parent in the same step, and a copy may read what
// the step wrote (a branch's copy of its parent's partial block) or another
// copy's destination. The simulator asks one thing more than the cores: a
// token that reads a slot written in its own step comes after the writer
// in batch order (the planner emits a parent before its children), so it
// may refuse a valid plan but never passes a wrong one.

type slotState struct {
	id, parent uint64
	written    bool
	// tok+1 of the step token whose K/V the slot holds while its identity
	// is not known yet (0: none).
	pending int
}

type simulator struct {
	bs      int
	nBlocks int
	slots   []slotState
	// fullChain checks every position each segment attends to, not only
	// the ones it writes: O(depth) per segment, for small workloads.
	fullChain bool
}

const simRoot = 0x5ee0_0000_0000_0001

func simID(parent uint64, tok int32) uint64 {
	x := parent ^ (uint64(uint32(tok))+1)*0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	x *= 0x94d049bb133111eb
	return x ^ x>>32
}

func newSimulator(pool *BlockPool) *simulator {
	return &simulator{
		bs:        pool.BlockSize(),
		nBlocks:   pool.NumBlocks(),
		slots:     make([]slotState, pool.NumBlocks()*pool.BlockSize()),
		fullChain: true,
	}
}

// expectedOutputs lists, per request and continuation token, the identity
// of the prefix it is read after and its target, from the requests alone
// (truncating as lm-eval-harness does).
type expected struct {
	id     uint64
	target int32
}

func expectOutputs(reqs []Request, maxLen int) [][]expected {
	out := make([][]expected, len(reqs))
	for i, r := range reqs {
		whole := append(append([]int32{}, r.Context...), r.Continuation...)
		if maxLen > 0 && len(whole) > maxLen+1 {
			whole = whole[len(whole)-(maxLen+1):]
		}
		in := whole[:len(whole)-1]
		ids := make([]uint64, len(in))
		prev := uint64(simRoot)
		for p, tok := range in {
			ids[p] = simID(prev, tok)
			prev = ids[p]
		}
		for j, tgt := range r.Continuation {
			pos := len(in) - len(r.Continuation) + j
			out[i] = append(out[i], expected{id: ids[pos], target: tgt})
		}
	}
	return out
}

// simResult is what a simulated plan did.
type simResult struct {
	stats   Stats
	steps   []*Step
	written int64
	logits  int64
	copies  int64
	// copies whose source slots this step wrote, and copies whose source an
	// earlier copy of the step filled (ABI 5)
	sameStepCopies, chainedCopies int64
}

// run plans reqs on pool and executes every step. keep keeps the steps.
func (sim *simulator) run(pool *BlockPool, reqs []Request, opts Options, keep bool) (simResult, error) {
	var res simResult
	pl, err := NewPlanner(pool, reqs, opts)
	if err != nil {
		return res, err
	}
	defer pl.Close()
	want := expectOutputs(reqs, opts.MaxLen)
	got := make([][]bool, len(reqs))
	for i := range got {
		got[i] = make([]bool, len(reqs[i].Continuation))
	}
	done := make([]bool, len(reqs))
	maxT, maxO := opts.MaxBatchTokens, opts.MaxOutputs
	if maxO == 0 {
		maxO = maxT
	}
	for index := 0; ; index++ {
		st, err := pl.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		if st.Index != index {
			return res, fmt.Errorf("step %d has index %d", index, st.Index)
		}
		if keep {
			res.steps = append(res.steps, st)
		}
		if err := sim.step(st, maxT, maxO, want, got, &res); err != nil {
			return res, fmt.Errorf("step %d: %w", index, err)
		}
		for _, r := range st.Done {
			if done[r] {
				return res, fmt.Errorf("step %d: request %d done twice", index, r)
			}
			done[r] = true
			for j, ok := range got[r] {
				if !ok {
					return res, fmt.Errorf("step %d: request %d marked done but token %d not scored", index, r, j)
				}
			}
		}
	}
	for i := range reqs {
		for j, ok := range got[i] {
			if !ok {
				return res, fmt.Errorf("request %d token %d never scored", i, j)
			}
		}
		if !done[i] {
			return res, fmt.Errorf("request %d never marked done", i)
		}
	}
	if u := pool.NumUsed(); u != 0 {
		return res, fmt.Errorf("%d blocks still referenced after the plan", u)
	}
	for b := 1; b < pool.NumBlocks(); b++ {
		if pool.RefCount(int32(b)) != 0 {
			return res, fmt.Errorf("block %d has refcount %d after the plan", b, pool.RefCount(int32(b)))
		}
	}
	res.stats = pl.Stats()
	s := res.stats
	switch {
	case s.PlannedComputedTokens != res.written:
		return res, fmt.Errorf("stats say %d computed tokens, steps wrote %d", s.PlannedComputedTokens, res.written)
	case s.LogitOnlyTokens != res.logits:
		return res, fmt.Errorf("stats say %d logit-only tokens, steps ran %d", s.LogitOnlyTokens, res.logits)
	case s.CopiedBlocks != res.copies:
		return res, fmt.Errorf("stats say %d copies, steps made %d", s.CopiedBlocks, res.copies)
	case s.PeakLiveBlocks > pool.Usable():
		return res, fmt.Errorf("peak live blocks %d over the pool's %d", s.PeakLiveBlocks, pool.Usable())
	}
	return res, nil
}

func (sim *simulator) slotOf(table []int32, pos int) int {
	return int(table[pos/sim.bs])*sim.bs + pos%sim.bs
}

func (sim *simulator) step(st *Step, maxT, maxO int, want [][]expected, got [][]bool, res *simResult) error {
	b := &st.Batch
	n := len(b.TokenIDs)
	if err := checkShape(b, st); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("empty step")
	}
	if n > maxT {
		return fmt.Errorf("%d tokens over the budget of %d", n, maxT)
	}
	if b.NumOutputs() > maxO {
		return fmt.Errorf("%d outputs over the budget of %d", b.NumOutputs(), maxO)
	}
	bs := sim.bs

	// Writes, in batch order: each slot remembers the token that wrote it.
	writtenNow := map[int]bool{}
	for sgi := 0; sgi < b.NumSegments(); sgi++ {
		lo, hi := int(b.SegTokenStart[sgi]), int(b.SegTokenStart[sgi+1])
		table := b.BlockIndices[b.BlockIndptr[sgi]:b.BlockIndptr[sgi+1]]
		last := int(b.Positions[hi-1])
		if len(table) != last/bs+1 {
			return fmt.Errorf("segment %d: table of %d blocks for last position %d", sgi, len(table), last)
		}
		for _, blk := range table {
			if blk < 1 || int(blk) >= sim.nBlocks {
				return fmt.Errorf("segment %d: block %d outside [1, %d)", sgi, blk, sim.nBlocks)
			}
		}
		for ti := lo; ti < hi; ti++ {
			pos := int(b.Positions[ti])
			if ti > lo && pos != int(b.Positions[ti-1])+1 {
				return fmt.Errorf("segment %d: positions not consecutive", sgi)
			}
			if slot := int(b.Slots[ti]); slot >= 0 {
				if slot != sim.slotOf(table, pos) {
					return fmt.Errorf("segment %d: position %d writes slot %d, its table says %d", sgi, pos, slot, sim.slotOf(table, pos))
				}
				if writtenNow[slot] {
					return fmt.Errorf("slot %d written twice in one step", slot)
				}
				writtenNow[slot] = true
				sim.slots[slot] = slotState{written: true, pending: ti + 1}
				res.written++
			}
		}
	}

	// Copies, in array order, after the writes.
	dsts := map[int32]bool{}
	for i := range b.CopySrc {
		src, dst, k := b.CopySrc[i], b.CopyDst[i], int(b.CopyTokens[i])
		if src < 1 || int(src) >= sim.nBlocks || dst < 1 || int(dst) >= sim.nBlocks || src == dst || k < 1 || k > bs {
			return fmt.Errorf("bad copy %d->%d of %d", src, dst, k)
		}
		// The ABI would run it, but the planner never fills a block twice.
		if dsts[dst] {
			return fmt.Errorf("block %d is the destination of two copies", dst)
		}
		sameStep := false
		for k := 0; k < int(b.CopyTokens[i]); k++ {
			s := sim.slots[int(src)*bs+k]
			if !s.written {
				return fmt.Errorf("copy %d->%d reads unwritten slot %d", src, dst, k)
			}
			sameStep = sameStep || s.pending != 0
			sim.slots[int(dst)*bs+k] = s
		}
		if sameStep {
			res.sameStepCopies++
		}
		if dsts[src] {
			res.chainedCopies++
		}
		dsts[dst] = true
		res.copies++
	}

	// Identities, in batch order: a token's prefix is what its table
	// points at now, a slot still pending holding an earlier token's.
	ids := make([]uint64, n)
	parents := make([]uint64, n)
	resolve := func(slot, ti int) (uint64, error) {
		s := sim.slots[slot]
		if !s.written {
			return 0, errors.New("unwritten")
		}
		if s.pending == 0 {
			return s.id, nil
		}
		if tj := s.pending - 1; tj < ti {
			return ids[tj], nil
		}
		return 0, errors.New("written by a later token of the step")
	}
	for sgi := 0; sgi < b.NumSegments(); sgi++ {
		lo, hi := int(b.SegTokenStart[sgi]), int(b.SegTokenStart[sgi+1])
		table := b.BlockIndices[b.BlockIndptr[sgi]:b.BlockIndptr[sgi+1]]
		for ti := lo; ti < hi; ti++ {
			pos := int(b.Positions[ti])
			prev := uint64(simRoot)
			if pos > 0 {
				id, err := resolve(sim.slotOf(table, pos-1), ti)
				if err != nil {
					return fmt.Errorf("segment %d: position %d reads position %d: %v", sgi, pos, pos-1, err)
				}
				prev = id
			}
			ids[ti], parents[ti] = simID(prev, b.TokenIDs[ti]), prev
			if b.Slots[ti] < 0 {
				id, err := resolve(sim.slotOf(table, pos), ti)
				if err != nil || id != ids[ti] {
					return fmt.Errorf("segment %d: logit-only position %d finds no matching cached K/V", sgi, pos)
				}
				res.logits++
			}
		}
	}
	for i := range sim.slots {
		if s := &sim.slots[i]; s.pending != 0 {
			*s = slotState{id: ids[s.pending-1], parent: parents[s.pending-1], written: true}
		}
	}

	// Reads: after all writes, every position a segment attends to must
	// still hold its prefix (no later segment of the step overwrote it).
	for sgi := 0; sgi < b.NumSegments(); sgi++ {
		lo, hi := int(b.SegTokenStart[sgi]), int(b.SegTokenStart[sgi+1])
		table := b.BlockIndices[b.BlockIndptr[sgi]:b.BlockIndptr[sgi+1]]
		first, last := int(b.Positions[lo]), int(b.Positions[hi-1])
		from := max(first-1, 0)
		if sim.fullChain {
			from = 0
		}
		prev := uint64(simRoot)
		if from > 0 {
			prev = sim.slots[sim.slotOf(table, from-1)].id
		}
		for pos := from; pos <= last; pos++ {
			s := sim.slots[sim.slotOf(table, pos)]
			if !s.written || s.parent != prev {
				return fmt.Errorf("segment %d attends to position %d whose K/V is not its prefix's", sgi, pos)
			}
			prev = s.id
		}
		for ti := lo; ti < hi; ti++ {
			if sim.slots[sim.slotOf(table, int(b.Positions[ti]))].id != ids[ti] {
				return fmt.Errorf("segment %d: position %d overwritten within the step", sgi, b.Positions[ti])
			}
		}
	}

	// Outputs.
	for i := range b.OutTokenIndex {
		ti := b.OutTokenIndex[i]
		for k := st.RouteStart[i]; k < st.RouteStart[i+1]; k++ {
			r, j := st.RouteRequest[k], st.RouteToken[k]
			if int(r) >= len(want) || int(j) >= len(want[r]) {
				return fmt.Errorf("output %d routed to a request or token that does not exist (%d, %d)", i, r, j)
			}
			if w := want[r][j]; w.id != ids[ti] || w.target != b.OutTarget[i] {
				return fmt.Errorf("output %d for request %d token %d reads the wrong prefix or target", i, r, j)
			}
			if got[r][j] {
				return fmt.Errorf("request %d token %d scored twice", r, j)
			}
			got[r][j] = true
		}
	}
	return nil
}

func checkShape(b *Batch, st *Step) error {
	n := int32(len(b.TokenIDs))
	if len(b.Positions) != int(n) || len(b.Slots) != int(n) {
		return errors.New("token arrays of different lengths")
	}
	ns := len(b.SegTokenStart) - 1
	if ns < 0 || b.SegTokenStart[0] != 0 || b.SegTokenStart[ns] != n || len(b.BlockIndptr) != ns+1 ||
		b.BlockIndptr[0] != 0 || int(b.BlockIndptr[ns]) != len(b.BlockIndices) {
		return errors.New("bad segment CSR")
	}
	for i := 0; i < ns; i++ {
		if b.SegTokenStart[i+1] <= b.SegTokenStart[i] || b.BlockIndptr[i+1] < b.BlockIndptr[i] {
			return fmt.Errorf("segment %d empty or CSR not monotone", i)
		}
	}
	if len(b.CopyDst) != len(b.CopySrc) || len(b.CopyTokens) != len(b.CopySrc) {
		return errors.New("copy arrays of different lengths")
	}
	no := len(b.OutTokenIndex)
	if len(b.OutTarget) != no || len(st.RouteStart) != no+1 || st.RouteStart[0] != 0 ||
		int(st.RouteStart[no]) != len(st.RouteRequest) || len(st.RouteToken) != len(st.RouteRequest) {
		return errors.New("bad output or route arrays")
	}
	for i := 0; i < no; i++ {
		if b.OutTokenIndex[i] < 0 || b.OutTokenIndex[i] >= n {
			return fmt.Errorf("output %d points at token %d of %d", i, b.OutTokenIndex[i], n)
		}
		if st.RouteStart[i+1] <= st.RouteStart[i] {
			return fmt.Errorf("output %d routed nowhere", i)
		}
	}
	return nil
}
