package prefixtrie

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// path returns the tokens from the root to the end of n.
func path(t *Trie, n NodeID) []int32 {
	var parts [][]int32
	for ; n != Root; n = t.Parent(n) {
		parts = append(parts, t.Label(n))
	}
	var out []int32
	for i := len(parts) - 1; i >= 0; i-- {
		out = append(out, parts[i]...)
	}
	return out
}

func key(s []int32) string { return fmt.Sprint(s) }

// canonical renders the frozen trie depth first, children in order.
func canonical(t *Trie) string {
	var b strings.Builder
	var walk func(n NodeID, indent int)
	walk = func(n NodeID, indent int) {
		fmt.Fprintf(&b, "%s%v [%d,%d) ends=%d\n", strings.Repeat(" ", indent), t.Label(n), t.Start(n), t.End(n), len(t.Ends(n)))
		for _, c := range t.Children(n) {
			walk(c, indent+1)
		}
	}
	walk(Root, 0)
	return b.String()
}

func TestSplitMidEdge(t *testing.T) {
	tr := New()
	a, _ := tr.Insert([]int32{1, 2, 3}, []int32{4, 5})
	b, _ := tr.Insert([]int32{1, 2}, []int32{9})
	c, _ := tr.Insert([]int32{1, 2}, nil) // ends exactly where the two branch
	if got := path(tr, a); !slices.Equal(got, []int32{1, 2, 3, 4, 5}) {
		t.Fatalf("path(a) = %v", got)
	}
	if got := path(tr, b); !slices.Equal(got, []int32{1, 2, 9}) {
		t.Fatalf("path(b) = %v", got)
	}
	if tr.End(c) != 2 || !slices.Equal(tr.Label(c), []int32{1, 2}) {
		t.Fatalf("c = %v ending at %d, want the split node [1 2]", tr.Label(c), tr.End(c))
	}
	if tr.Parent(a) != c || tr.Parent(b) != c {
		t.Fatalf("a and b should hang under the split node")
	}
	if tr.UniqueTokens() != 6 || tr.TotalTokens() != 10 {
		t.Fatalf("unique %d total %d, want 6 and 10", tr.UniqueTokens(), tr.TotalTokens())
	}
	tr.Freeze()
	if got := tr.Children(c); !slices.Equal(got, []NodeID{a, b}) {
		t.Fatalf("children sorted by first token: got %v want [%d %d]", got, a, b)
	}
	if tr.Locate(a, 1) != c || tr.Locate(a, 4) != a || tr.Locate(a, 5) != None || tr.Locate(b, 3) != None {
		t.Fatalf("Locate wrong")
	}
}

// TestRandomAgainstPrefixSet checks the trie against the definition: its
// size is the number of distinct non-empty prefixes; every inserted
// sequence's end node spells that sequence; and the frozen shape does not
// depend on insertion order.
func TestRandomAgainstPrefixSet(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		vocab := 1 + rng.IntN(4)
		var seqs [][]int32
		for i := 0; i < 1+rng.IntN(30); i++ {
			var s []int32
			if len(seqs) > 0 && rng.IntN(2) == 0 { // extend or cut another
				s = slices.Clone(seqs[rng.IntN(len(seqs))])
				s = s[:rng.IntN(len(s)+1)]
			}
			for j := rng.IntN(12); j > 0; j-- {
				s = append(s, int32(rng.IntN(vocab)))
			}
			seqs = append(seqs, s)
		}
		prefixes := map[string]bool{}
		var total int64
		for _, s := range seqs {
			total += int64(len(s))
			for k := 1; k <= len(s); k++ {
				prefixes[key(s[:k])] = true
			}
		}
		build := func(order []int) (*Trie, []NodeID) {
			tr := New()
			ends := make([]NodeID, len(seqs))
			for _, i := range order {
				cut := rng.IntN(len(seqs[i]) + 1)
				n, err := tr.Insert(seqs[i][:cut], seqs[i][cut:])
				if err != nil {
					t.Fatal(err)
				}
				ends[i] = n
				if err := tr.AddEnd(n, int32(i)); err != nil {
					t.Fatal(err)
				}
			}
			tr.Freeze()
			return tr, ends
		}
		order := make([]int, len(seqs))
		for i := range order {
			order[i] = i
		}
		tr, ends := build(order)
		if tr.UniqueTokens() != int64(len(prefixes)) || tr.TotalTokens() != total {
			t.Fatalf("seed %d: unique %d want %d; total %d want %d", seed, tr.UniqueTokens(), len(prefixes), tr.TotalTokens(), total)
		}
		for i, s := range seqs {
			if got := path(tr, ends[i]); !slices.Equal(got, s) && !(len(s) == 0 && len(got) == 0) {
				t.Fatalf("seed %d: seq %d ends at a node spelling %v, want %v", seed, i, got, s)
			}
			if !slices.Contains(tr.Ends(ends[i]), int32(i)) {
				t.Fatalf("seed %d: seq %d not recorded as ending at its node", seed, i)
			}
		}
		// Every node but the root is a branch point, an end, or a leaf: a
		// radix trie has no pass-through nodes.
		for n := NodeID(1); int(n) < tr.NumNodes(); n++ {
			if len(tr.Children(n)) == 1 && len(tr.Ends(n)) == 0 {
				t.Fatalf("seed %d: node %d has one child and no end", seed, n)
			}
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		tr2, _ := build(order)
		if a, b := canonical(tr), canonical(tr2); a != b {
			t.Fatalf("seed %d: shape depends on insertion order:\n%s\nvs\n%s", seed, a, b)
		}
	}
}

func TestOutputsMergeAndRoute(t *testing.T) {
	tr := New()
	a, _ := tr.Insert([]int32{5, 6, 7}, nil)
	b, _ := tr.Insert([]int32{5, 6, 8}, nil)
	shared := tr.Locate(a, 1)
	// Requests 0 and 1 both need P(9 | 5 6); request 2 needs P(3 | 5 6).
	must(t, tr.AddOutput(shared, 1, 9, 0, 0))
	must(t, tr.AddOutput(shared, 1, 9, 1, 0))
	must(t, tr.AddOutput(shared, 1, 3, 2, 1))
	must(t, tr.AddOutput(a, 2, 4, 0, 1))
	must(t, tr.AddOutput(b, 2, 4, 1, 1))
	if err := tr.AddOutput(a, 1, 4, 0, 1); err == nil {
		t.Fatal("an output off the node's edge must be refused")
	}
	tr.Freeze()
	lo, hi := tr.Outputs(shared)
	if hi-lo != 2 {
		t.Fatalf("shared node has %d outputs, want 2 (two targets)", hi-lo)
	}
	if tr.OutputTarget(lo) != 3 || tr.OutputTarget(lo+1) != 9 {
		t.Fatalf("outputs not sorted by target")
	}
	reqs, idxs := tr.Routes(lo + 1)
	if !slices.Equal(reqs, []int32{0, 1}) || !slices.Equal(idxs, []int32{0, 0}) {
		t.Fatalf("routes of P(9|5 6) = %v %v", reqs, idxs)
	}
	if tr.NumOutputs() != 4 || tr.NumRoutes() != 5 {
		t.Fatalf("outputs %d routes %d, want 4 and 5", tr.NumOutputs(), tr.NumRoutes())
	}
	if err := tr.AddEnd(a, 0); err != ErrFrozen {
		t.Fatalf("AddEnd after Freeze: %v", err)
	}
}

func TestUnsharedSharesNothing(t *testing.T) {
	tr := NewUnshared()
	a, _ := tr.Insert([]int32{1, 2, 3}, nil)
	b, _ := tr.Insert([]int32{1, 2, 3}, nil)
	if a == b || tr.UniqueTokens() != 6 || tr.Parent(a) != Root || tr.Parent(b) != Root {
		t.Fatalf("unshared trie merged sequences: a=%d b=%d unique=%d", a, b, tr.UniqueTokens())
	}
	tr.Freeze()
	if got := tr.Children(Root); !slices.Equal(got, []NodeID{a, b}) {
		t.Fatalf("children %v, want insertion order on ties", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestArenaChunks inserts enough tokens to span several arena chunks and
// splits edges in every one of them.
func TestArenaChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	tr := New()
	if got := tr.Label(Root); len(got) != 0 {
		t.Fatalf("empty trie's root label %v", got)
	}
	var seqs [][]int32
	var ends []NodeID
	for i := 0; i < 300; i++ {
		var s []int32
		if i > 0 && rng.IntN(2) == 0 {
			o := seqs[rng.IntN(len(seqs))]
			s = slices.Clone(o[:rng.IntN(len(o))])
		}
		for j := 1 + rng.IntN(3000); j > 0; j-- {
			s = append(s, int32(rng.IntN(1000)))
		}
		n, err := tr.Insert(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		seqs, ends = append(seqs, s), append(ends, n)
	}
	if len(tr.arena) < 3 {
		t.Fatalf("only %d arena chunks: the test should span several", len(tr.arena))
	}
	for i, s := range seqs {
		if got := path(tr, ends[i]); !slices.Equal(got, s) {
			t.Fatalf("sequence %d spelled wrong after chunked inserts", i)
		}
	}
	if _, err := New().Insert(make([]int32, MaxEdge+1), nil); err == nil {
		t.Fatal("an edge longer than MaxEdge must be refused")
	}
}
