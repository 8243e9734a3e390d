// Package prefixtrie is a radix trie over the token ids of many sequences:
// every distinct prefix is stored once, so the trie's size is the number of
// tokens a model must compute when every shared prefix is computed once.
//
// A trie is built in two phases. While building, Insert adds sequences
// (splitting an edge where a sequence leaves it mid-way), AddEnd records
// which request ends at a node and AddOutput which positions need a
// log-probability. Freeze then fixes the shape: children sorted by their
// first token, ends and outputs grouped per node, identical outputs merged.
// After Freeze the trie is read-only and safe for concurrent readers.
package prefixtrie

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// NodeID names a node. The root, the empty prefix, is Root.
type NodeID int32

// Root is the empty prefix: depth 0, no tokens, the parent of every first token.
const Root NodeID = 0

// None is the absent node (the root's parent).
const None NodeID = -1

// node is one edge of the trie and the node at its end. Its label, the
// tokens at depths start..end-1 of every sequence that passes through it,
// sits in arena chunk tokOff>>offsetBits at offset tokOff&offsetMask.
type node struct {
	parent     NodeID
	start, end int32
	tokOff     uint32
}

// The arena is a list of chunks that grow geometrically up to 2^offsetBits
// tokens, so that building never copies the tokens already stored (a copy
// per doubling of a flat slice costs seconds at 100 M unique tokens).
const (
	offsetBits = 23
	offsetMask = 1<<offsetBits - 1
	maxChunks  = 1 << (32 - offsetBits)
	// MaxEdge is the longest sequence one insert may add in one piece.
	MaxEdge = 1 << offsetBits
)

// Trie is a radix trie over int32 token sequences. The zero value is not
// usable; call New or NewUnshared.
type Trie struct {
	nodes []node
	// arena holds every edge label back to back: the unique tokens. A split
	// only moves offsets, so the arena never holds a token twice.
	arena  [][]int32
	unique int64
	// children finds a child by (parent, first token) while building. A map
	// rather than sibling lists: a node may have thousands of children (one
	// per question under a shared few-shot prefix) and inserts must stay
	// O(1) per node visited.
	children map[uint64]NodeID
	// unshared gives every sequence its own path: the no-cache baseline.
	unshared bool
	frozen   bool
	total    int64

	ends    []endEntry
	outputs []outputEntry

	// Set by Freeze.
	childStart []int32 // CSR over childList, (len(nodes)+1)
	childList  []NodeID
	endStart   []int32 // CSR over endReq
	endReq     []int32
	outStart   []int32 // CSR over the unique outputs, per node
	outPos     []int32
	outTarget  []int32
	routeStart []int32 // CSR over routeReq/routeIdx, per unique output
	routeReq   []int32
	routeIdx   []int32
}

type endEntry struct {
	node NodeID
	req  int32
}

type outputEntry struct {
	node   NodeID
	pos    int32
	target int32
	req    int32
	idx    int32
}

// ErrFrozen is returned by the building methods after Freeze.
var ErrFrozen = errors.New("prefixtrie: trie is frozen")

// New returns an empty trie that shares every common prefix.
func New() *Trie {
	return &Trie{
		nodes:    []node{{parent: None}},
		children: make(map[uint64]NodeID),
	}
}

// NewUnshared returns a trie in which every inserted sequence gets a path of
// its own under the root, sharing nothing: the shape of a cacheless engine's
// work, with the same API.
func NewUnshared() *Trie {
	t := New()
	t.unshared = true
	return t
}

func childKey(parent NodeID, first int32) uint64 {
	return uint64(uint32(parent))<<32 | uint64(uint32(first))
}

// Insert adds the sequence head+tail (two parts so that a caller holding a
// context and a continuation need not concatenate them) and returns the node
// at whose end it finishes; an empty sequence returns Root. Edges are split
// so that a node boundary falls exactly at the sequence's end.
func (t *Trie) Insert(head, tail []int32) (NodeID, error) {
	if t.frozen {
		return None, ErrFrozen
	}
	n := int64(len(head)) + int64(len(tail))
	if t.unique+n > math.MaxInt32 {
		return None, fmt.Errorf("prefixtrie: more than %d unique tokens", math.MaxInt32)
	}
	t.total += n
	if n == 0 {
		return Root, nil
	}
	if t.unshared {
		return t.addLeaf(Root, 0, head, tail)
	}
	seq := pair{head, tail}
	cur, depth := Root, 0
	for depth < seq.len() {
		child, ok := t.children[childKey(cur, seq.at(depth))]
		if !ok {
			a, b := seq.from(depth)
			return t.addLeaf(cur, int32(depth), a, b)
		}
		c := t.nodes[child]
		label := t.label(&c)
		k := seq.commonPrefix(depth, label)
		if k < len(label) {
			child = t.split(child, int32(k))
		}
		cur, depth = child, depth+k
	}
	return cur, nil
}

// split cuts child's edge after k tokens; the new upper node takes child's
// place under its parent and is returned. child keeps its id, so ends and
// outputs already recorded on it stay where they belong (at its end).
func (t *Trie) split(child NodeID, k int32) NodeID {
	c := t.nodes[child]
	mid := NodeID(len(t.nodes))
	t.nodes = append(t.nodes, node{parent: c.parent, start: c.start, end: c.start + k, tokOff: c.tokOff})
	t.children[childKey(c.parent, t.first(&c))] = mid
	lower := &t.nodes[child]
	lower.parent, lower.start, lower.tokOff = mid, c.start+k, c.tokOff+uint32(k)
	t.children[childKey(mid, t.first(lower))] = child
	return mid
}

func (t *Trie) addLeaf(parent NodeID, depth int32, head, tail []int32) (NodeID, error) {
	n := len(head) + len(tail)
	if n > MaxEdge {
		return None, fmt.Errorf("prefixtrie: a sequence adds %d new tokens at once; at most %d", n, MaxEdge)
	}
	last := len(t.arena) - 1
	if last < 0 || cap(t.arena[last])-len(t.arena[last]) < n {
		if len(t.arena) == maxChunks {
			return None, errors.New("prefixtrie: token arena full")
		}
		size := 1 << 12
		if last >= 0 {
			size = min(2*cap(t.arena[last]), MaxEdge)
		}
		t.arena = append(t.arena, make([]int32, 0, max(size, n)))
		last++
	}
	chunk := &t.arena[last]
	off := uint32(last)<<offsetBits | uint32(len(*chunk))
	*chunk = append(append(*chunk, head...), tail...)
	t.unique += int64(n)
	id := NodeID(len(t.nodes))
	t.nodes = append(t.nodes, node{parent: parent, start: depth, end: depth + int32(n), tokOff: off})
	if !t.unshared {
		t.children[childKey(parent, t.first(&t.nodes[id]))] = id
	}
	return id, nil
}

// label returns a node's edge tokens (aliasing the arena).
func (t *Trie) label(nd *node) []int32 {
	if nd.end == nd.start {
		return nil // the root
	}
	c := t.arena[nd.tokOff>>offsetBits]
	o := nd.tokOff & offsetMask
	e := o + uint32(nd.end-nd.start)
	return c[o:e:e]
}

// first returns the first token of a node's edge.
func (t *Trie) first(nd *node) int32 {
	return t.arena[nd.tokOff>>offsetBits][nd.tokOff&offsetMask]
}

// pair is the virtual concatenation head+tail.
type pair struct{ head, tail []int32 }

func (p pair) len() int { return len(p.head) + len(p.tail) }

func (p pair) at(i int) int32 {
	if i < len(p.head) {
		return p.head[i]
	}
	return p.tail[i-len(p.head)]
}

// from returns the suffix starting at i as two parts.
func (p pair) from(i int) ([]int32, []int32) {
	if i < len(p.head) {
		return p.head[i:], p.tail
	}
	return nil, p.tail[i-len(p.head):]
}

// commonPrefix is the length of the common prefix of p[i:] and label.
func (p pair) commonPrefix(i int, label []int32) int {
	a, b := p.from(i)
	k := 0
	for k < len(label) && k < len(a) && a[k] == label[k] {
		k++
	}
	if k < len(a) || k == len(label) {
		return k
	}
	j := 0
	for k < len(label) && j < len(b) && b[j] == label[k] {
		k, j = k+1, j+1
	}
	return k
}

// Reserve makes room for ends and outputs more AddEnd and AddOutput calls
// without regrowing (a planner knows both counts before it adds them).
func (t *Trie) Reserve(ends, outputs int) {
	t.ends = slices.Grow(t.ends, ends)
	t.outputs = slices.Grow(t.outputs, outputs)
}

// AddEnd records that request req ends at node n.
func (t *Trie) AddEnd(n NodeID, req int32) error {
	if t.frozen {
		return ErrFrozen
	}
	if err := t.checkNode(n); err != nil {
		return err
	}
	t.ends = append(t.ends, endEntry{node: n, req: req})
	return nil
}

// AddOutput records that request req needs, as its idx-th scored token, the
// log-probability of target under the distribution that follows position pos
// of the path through n (n's edge must hold pos). Entries with the same node,
// position and target become one output routed to all of their requests.
func (t *Trie) AddOutput(n NodeID, pos, target, req, idx int32) error {
	if t.frozen {
		return ErrFrozen
	}
	if err := t.checkNode(n); err != nil {
		return err
	}
	if nd := t.nodes[n]; pos < nd.start || pos >= nd.end {
		return fmt.Errorf("prefixtrie: position %d is not on node %d's edge [%d, %d)", pos, n, nd.start, nd.end)
	}
	t.outputs = append(t.outputs, outputEntry{node: n, pos: pos, target: target, req: req, idx: idx})
	return nil
}

func (t *Trie) checkNode(n NodeID) error {
	if n < 0 || int(n) >= len(t.nodes) {
		return fmt.Errorf("prefixtrie: no node %d", n)
	}
	return nil
}

// Locate returns the node on the path from the root to n whose edge holds
// position pos (0 <= pos < Depth(n)), or None if pos is not on that path.
func (t *Trie) Locate(n NodeID, pos int32) NodeID {
	if t.checkNode(n) != nil || pos < 0 {
		return None
	}
	for n != None {
		nd := t.nodes[n]
		if pos >= nd.start {
			if pos < nd.end {
				return n
			}
			return None
		}
		n = nd.parent
	}
	return None
}
