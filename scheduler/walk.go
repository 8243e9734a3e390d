package scheduler

import (
	"fmt"
	"sort"

	"github.com/lmscore/lmscore/prefixtrie"
)

// planNode takes n's blocks, emits the positions it must compute and, if n
// is a leaf, releases what its finished subtree held.
func (p *Planner) planNode(id prefixtrie.NodeID) error {
	t := p.trie
	st := &p.nodes[id]
	if id == prefixtrie.Root {
		st.readyStep = -1
		p.pushChildren(id)
		return nil
	}
	parent := t.Parent(id)
	ps := &p.nodes[parent]
	bs := p.bs
	start, end := t.Start(id), t.End(id)
	copy(p.pathTokens[start:end], t.Label(id))
	b0, last := start/bs, (end-1)/bs
	partial := start%bs != 0
	inPlace := partial && ps.inPlace == id
	tail := noBlock
	if partial {
		// The parent's block at index b0 holds the head of this node's
		// first block: the parent's last block (every node holds one block
		// per index of its edge, and its edge ends inside b0).
		tail = p.heldBlocks[ps.held+ps.nHeld-1]
	}
	st.held, st.nHeld = int32(len(p.heldBlocks)), last-b0+1
	st.readyStep = ps.readyStep
	minStep := ps.readyStep
	cp := copyOp{}
	p.work = p.work[:0]
	outLo, outHi := t.Outputs(id)
	outPos := t.OutputPositions(outLo, outHi)

	for b := b0; b <= last; b++ {
		lo, hi := max(b*bs, start), min((b+1)*bs, end)
		full := (b+1)*bs <= end
		var h BlockHash
		known := false
		if full {
			// pathHash holds the path's hashes up to b-1; appending block b
			// writes pathHash[b] in place (its capacity is the deepest path).
			h = AppendBlockHashes(p.pathHash[:b], p.ns, p.pathTokens[:(b+1)*bs], int(bs))[b]
			// Only a block whose predecessor the pool knew (cached now, or
			// evicted lately) can be known itself: it was registered after
			// it, and is evicted before it (finished paths free their
			// deepest blocks first). Fresh content skips the map lookups.
			known = !p.opts.NoCache && (b == 0 || p.pathKnown[b-1])
			p.pathKnown[b] = false
			if known && b == b0 && inPlace {
				// The in-place branch does not take a cached copy of its
				// first block: holding it as well as the parent's tail would
				// take one block more than the budget was checked for. It
				// only learns whether deeper blocks may be cached.
				p.pathKnown[b] = p.pool.has(h)
			} else if known {
				if blk, ok := p.pool.lookup(h); ok {
					p.pathKnown[b] = true
					p.heldBlocks = append(p.heldBlocks, blk)
					p.pathBlocks[b] = blk
					p.stats.CacheHitBlocks++
					p.stats.ReusedBlocks++
					p.stats.CachedTokens += int64(hi - lo)
					// Cached K/V, but a scored position still needs its
					// logits: run it again, writing nothing (slot -1).
					for i := sort.Search(len(outPos), func(i int) bool { return outPos[i] >= lo }); i < len(outPos) && outPos[i] < hi; i++ {
						if i == 0 || outPos[i] != outPos[i-1] {
							p.work = append(p.work, outPos[i], -1)
						}
					}
					continue
				}
			}
		}
		var blk int32
		if b == b0 && inPlace {
			blk = tail
			p.pool.retain(blk)
			p.stats.InPlaceBlocks++
			p.stats.ReusedBlocks++
			if ps.tight {
				p.giveTail(ps, tail)
			}
		} else {
			var err error
			if blk, err = p.allocate(id); err != nil {
				return err
			}
			minStep = max(minStep, p.lastUse[blk]+1)
			if b == b0 && partial {
				if ps.tight {
					// Too little memory to keep the parent's tail for a
					// copy: compute the block's head again.
					p.stats.RecomputedBranchTokens += int64(start - b*bs)
					lo = b * bs
				} else {
					// The copy may share the parent's step: the ABI copies
					// after each layer's K/V writes.
					cp = copyOp{src: tail, dst: blk, n: start % bs, valid: true}
					p.stats.CopiedBlocks++
				}
			}
		}
		p.heldBlocks = append(p.heldBlocks, blk)
		p.pathBlocks[b] = blk
		if full && !p.opts.NoCache {
			p.registered = append(p.registered, blk)
		}
		if full && !p.opts.NoCache && p.pool.register(blk, h, known) {
			// Evicted earlier and computed again (a recomputed head is
			// already counted above).
			p.stats.RecomputedEvictedTokens += int64(hi - max(b*bs, start))
			p.pathKnown[b] = true
		}
		for pos := lo; pos < hi; pos++ {
			p.work = append(p.work, pos, blk*bs+pos%bs)
		}
	}
	p.stats.PeakLiveBlocks = max(p.stats.PeakLiveBlocks, p.pool.NumUsed())

	// Emit the work as runs of consecutive positions, each a segment (split
	// across steps as needed). A run may follow the previous one in the
	// same step: it reads what that one writes, which the ABI allows.
	s := max(minStep, p.base, 0)
	for i := 0; i < len(p.work); {
		j := i + 2
		for j < len(p.work) && p.work[j] == p.work[j-2]+1 {
			j += 2
		}
		s = p.placeRun(id, p.work[i], p.work[i:j], s, &cp)
		st.readyStep = max(st.readyStep, s)
		i = j
	}
	if len(t.Children(id)) == 0 {
		p.complete(id)
	} else {
		p.pushChildren(id)
	}
	return nil
}

// giveTail drops the parent's reference on its tail block when the parent is
// tight: its later branches recompute the head instead of copying it, so
// the block lives only as long as the in-place branch needs it.
func (p *Planner) giveTail(ps *nodeState, tail int32) {
	if ps.tailGiven {
		return
	}
	ps.tailGiven = true
	p.release(tail)
}

// pushChildren schedules n's children depth first: the in-place child (if
// any) first, since it needs no copy and may share its parent's step; the
// others by first token.
func (p *Planner) pushChildren(id prefixtrie.NodeID) {
	kids := p.trie.Children(id)
	first := p.nodes[id].inPlace
	for i := len(kids) - 1; i >= 0; i-- {
		if kids[i] != first {
			p.stack = append(p.stack, kids[i])
		}
	}
	if first != prefixtrie.None {
		p.stack = append(p.stack, first)
	}
}

// complete releases the blocks of a finished leaf and of every ancestor
// whose last child this was. A node's blocks are released last index
// first, and children before parents, so that the free list evicts the
// deepest (least shared) blocks first.
func (p *Planner) complete(id prefixtrie.NodeID) {
	for id != prefixtrie.Root {
		st := &p.nodes[id]
		held := p.heldBlocks[st.held : st.held+st.nHeld]
		if st.tailGiven {
			held = held[:len(held)-1]
		}
		for i := len(held) - 1; i >= 0; i-- {
			p.release(held[i])
		}
		id = p.trie.Parent(id)
		ps := &p.nodes[id]
		ps.pending--
		if ps.pending > 0 {
			return
		}
	}
}

// release drops a reference for the plan. A block an open step still reads
// goes back to the pool only when that step closes: the pool then never
// hands out a block an unexecuted step reads, so a new block never makes a
// segment wait for a later step.
func (p *Planner) release(blk int32) {
	if s := p.lastUse[blk]; s >= p.base {
		sb := p.open[s-p.base]
		sb.release = append(sb.release, blk)
		return
	}
	p.pool.release(blk)
}

// allocate takes a free block, closing the oldest open steps (which returns
// the blocks they held back) while the pool has none.
func (p *Planner) allocate(id prefixtrie.NodeID) (int32, error) {
	for {
		if blk, ok := p.pool.allocate(); ok {
			return blk, nil
		}
		if len(p.open) == 0 {
			return noBlock, fmt.Errorf("scheduler: internal error: no free KV block for node %d (pool of %d, %d in use)", id, p.pool.Usable(), p.pool.NumUsed())
		}
		p.closeUpTo(p.base + 1)
	}
}
