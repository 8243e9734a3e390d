package prefixtrie

// ---------------------------------------------------------------------------
// Reading the trie. Node geometry (Parent, Start, End, Label) is valid at any
// time; Children, Ends, Outputs and Routes only after Freeze.

// NumNodes counts the nodes, root included. Ids run from 0 to NumNodes()-1.
func (t *Trie) NumNodes() int { return len(t.nodes) }

// TotalTokens is the sum of the lengths of every inserted sequence.
func (t *Trie) TotalTokens() int64 { return t.total }

// UniqueTokens is the trie's size: the number of distinct non-empty
// prefixes, i.e. the tokens to compute when each prefix is computed once.
func (t *Trie) UniqueTokens() int64 { return t.unique }

// Frozen reports whether Freeze has been called.
func (t *Trie) Frozen() bool { return t.frozen }

// Parent returns n's parent (None for the root).
func (t *Trie) Parent(n NodeID) NodeID { return t.nodes[n].parent }

// Start is the depth at which n's edge begins: the position of its first token.
func (t *Trie) Start(n NodeID) int32 { return t.nodes[n].start }

// End is n's depth: the length of the prefix that n stands for.
func (t *Trie) End(n NodeID) int32 { return t.nodes[n].end }

// Label returns the tokens of n's edge, positions Start(n) to End(n)-1.
// The slice aliases the trie's storage: do not modify it.
func (t *Trie) Label(n NodeID) []int32 {
	return t.label(&t.nodes[n])
}

// Children returns n's children sorted by first token. The slice aliases
// the trie's storage.
func (t *Trie) Children(n NodeID) []NodeID {
	return t.childList[t.childStart[n]:t.childStart[n+1]]
}

// Ends returns the requests that end at n, in the order they were added.
func (t *Trie) Ends(n NodeID) []int32 {
	return t.endReq[t.endStart[n]:t.endStart[n+1]]
}

// NumOutputs counts the merged outputs of the whole trie.
func (t *Trie) NumOutputs() int { return len(t.outPos) }

// Outputs returns the range [lo, hi) of n's merged outputs, sorted by
// position then target. Output ids are global: use OutputPos, OutputTarget
// and Routes on them.
func (t *Trie) Outputs(n NodeID) (lo, hi int32) {
	return t.outStart[n], t.outStart[n+1]
}

// OutputPos is the position whose next-token distribution output o reads.
func (t *Trie) OutputPos(o int32) int32 { return t.outPos[o] }

// OutputTarget is the token whose log-probability output o gives.
func (t *Trie) OutputTarget(o int32) int32 { return t.outTarget[o] }

// OutputPositions returns the positions of outputs [lo, hi), for searching.
func (t *Trie) OutputPositions(lo, hi int32) []int32 { return t.outPos[lo:hi:hi] }

// Routes returns the (request, index) pairs that output o feeds, sorted.
// The slices alias the trie's storage.
func (t *Trie) Routes(o int32) (reqs, idxs []int32) {
	lo, hi := t.routeStart[o], t.routeStart[o+1]
	return t.routeReq[lo:hi:hi], t.routeIdx[lo:hi:hi]
}

// NumRoutes counts every (request, index) pair over all outputs.
func (t *Trie) NumRoutes() int { return len(t.routeReq) }
