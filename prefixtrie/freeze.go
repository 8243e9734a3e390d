package prefixtrie

import (
	"cmp"
	"slices"
)

// Freeze ends building: children are sorted by first token (so the shape,
// and any walk over it, is the same whatever order the sequences came in),
// ends and outputs are grouped per node and identical outputs merged.
// Calling it again does nothing.
func (t *Trie) Freeze() {
	if t.frozen {
		return
	}
	t.frozen = true
	t.children = nil // the CSR below replaces it; free the map's memory
	n := len(t.nodes)

	// Children: counting sort by parent, then by first token within a parent.
	t.childStart = make([]int32, n+1)
	for i := 1; i < n; i++ {
		t.childStart[t.nodes[i].parent+1]++
	}
	prefixSum(t.childStart)
	t.childList = make([]NodeID, n-1)
	fill := slices.Clone(t.childStart[:n])
	for i := 1; i < n; i++ {
		p := t.nodes[i].parent
		t.childList[fill[p]] = NodeID(i)
		fill[p]++
	}
	for p := 0; p < n; p++ {
		kids := t.childList[t.childStart[p]:t.childStart[p+1]]
		if len(kids) > 1 {
			// In unshared tries siblings may begin with the same token: break
			// ties by id, i.e. insertion order.
			slices.SortFunc(kids, func(a, b NodeID) int {
				if c := cmp.Compare(t.first(&t.nodes[a]), t.first(&t.nodes[b])); c != 0 {
					return c
				}
				return cmp.Compare(a, b)
			})
		}
	}

	// Ends: counting sort by node, stable in request order.
	t.endStart = make([]int32, n+1)
	for _, e := range t.ends {
		t.endStart[e.node+1]++
	}
	prefixSum(t.endStart)
	t.endReq = make([]int32, len(t.ends))
	fill = slices.Clone(t.endStart[:n])
	for _, e := range t.ends {
		t.endReq[fill[e.node]] = e.req
		fill[e.node]++
	}
	t.ends = nil

	t.freezeOutputs()
}

// freezeOutputs groups the output entries by node, sorts each group by
// (position, target, request, index) and merges equal (position, target)
// pairs into one output with a list of routes.
func (t *Trie) freezeOutputs() {
	n := len(t.nodes)
	count := make([]int32, n+1)
	for _, o := range t.outputs {
		count[o.node+1]++
	}
	prefixSum(count)
	sorted := make([]outputEntry, len(t.outputs))
	fill := slices.Clone(count[:n])
	for _, o := range t.outputs {
		sorted[fill[o.node]] = o
		fill[o.node]++
	}
	t.outputs = nil

	t.outStart = make([]int32, n+1)
	t.routeStart = make([]int32, 1, len(sorted)+1)
	t.routeReq = make([]int32, 0, len(sorted))
	t.routeIdx = make([]int32, 0, len(sorted))
	for node := 0; node < n; node++ {
		group := sorted[count[node]:count[node+1]]
		sortOutputs(group)
		for i, o := range group {
			if i == 0 || o.pos != group[i-1].pos || o.target != group[i-1].target {
				if i > 0 {
					t.routeStart = append(t.routeStart, int32(len(t.routeReq)))
				}
				t.outPos = append(t.outPos, o.pos)
				t.outTarget = append(t.outTarget, o.target)
			}
			t.routeReq = append(t.routeReq, o.req)
			t.routeIdx = append(t.routeIdx, o.idx)
		}
		if len(group) > 0 {
			t.routeStart = append(t.routeStart, int32(len(t.routeReq)))
		}
		t.outStart[node+1] = int32(len(t.outPos))
	}
}

func compareOutputs(a, b outputEntry) int {
	if c := cmp.Compare(a.pos, b.pos); c != 0 {
		return c
	}
	if c := cmp.Compare(a.target, b.target); c != 0 {
		return c
	}
	if c := cmp.Compare(a.req, b.req); c != 0 {
		return c
	}
	return cmp.Compare(a.idx, b.idx)
}

// sortOutputs sorts one node's entries. Most groups hold a handful (the
// scored tokens of one request's continuation), where insertion sort beats
// the general sort's overhead by a wide margin over millions of nodes.
func sortOutputs(g []outputEntry) {
	if len(g) > 12 {
		slices.SortFunc(g, compareOutputs)
		return
	}
	for i := 1; i < len(g); i++ {
		for j := i; j > 0 && compareOutputs(g[j-1], g[j]) > 0; j-- {
			g[j-1], g[j] = g[j], g[j-1]
		}
	}
}

func prefixSum(a []int32) {
	for i := 1; i < len(a); i++ {
		a[i] += a[i-1]
	}
}
