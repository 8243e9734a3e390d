package chart

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/prefixtrie"
)

// fewShot is a request set shaped like few-shot evaluation: one shared
// demonstration prefix, per-question contexts, 2-3 choices each, and one
// request whose input is a prefix of another's (it ends at an inner node).
func fewShot(seed uint64) []lmscore.Request {
	rng := rand.New(rand.NewPCG(seed, 1))
	tokens := func(n int) []int32 {
		t := make([]int32, n)
		for i := range t {
			t[i] = int32(3 + rng.IntN(200))
		}
		return t
	}
	demo := tokens(37)
	var reqs []lmscore.Request
	for q := range 6 {
		ctx := append(append([]int32{}, demo...), tokens(5+rng.IntN(9))...)
		for c := range 2 + q%2 {
			reqs = append(reqs, lmscore.Request{ID: string(rune('a'+q)) + string(rune('0'+c)),
				ContextTokens: ctx, ContinuationTokens: tokens(1 + rng.IntN(4))})
		}
	}
	// Its inputs, demo[:20], end inside the shared prefix.
	reqs = append(reqs, lmscore.Request{ID: "inner", ContextTokens: demo[:19], ContinuationTokens: demo[19:21]})
	return reqs
}

func planTrie(t *testing.T, reqs []lmscore.Request, noCache bool) lmscore.PlanReport {
	t.Helper()
	rep, err := lmscore.Plan(context.Background(), reqs, lmscore.PlanOptions{BlockSize: 16, MaxBatchTokens: 2048, NoCache: noCache, KeepTrie: true})
	require.NoError(t, err)
	require.NotNil(t, rep.Trie)
	return rep
}

// TestIcicleGeometry: widths add up (a node's ends plus its children's
// widths are its width, children side by side inside it), depths follow
// the edges, and the token counts are the plan's.
func TestIcicleGeometry(t *testing.T) {
	for _, noCache := range []bool{false, true} {
		reqs := fewShot(7)
		rep := planTrie(t, reqs, noCache)
		lay, err := IcicleLayout(rep.Trie)
		require.NoError(t, err)
		tr := rep.Trie

		assert.Equal(t, len(reqs), lay.Requests)
		assert.Len(t, lay.Rects, tr.NumNodes()-1, "every node but the root")
		byNode := map[prefixtrie.NodeID]IcicleRect{}
		for _, r := range lay.Rects {
			byNode[r.Node] = r
			assert.Equal(t, r.X1-r.X0, r.Requests)
			assert.Less(t, r.Start, r.End, "an edge holds tokens")
		}
		rootWidth := len(tr.Ends(prefixtrie.Root))
		for _, c := range tr.Children(prefixtrie.Root) {
			rootWidth += byNode[c].Requests
		}
		assert.Equal(t, lay.Requests, rootWidth)
		for _, r := range lay.Rects {
			width := len(tr.Ends(r.Node))
			x := r.X0 + width
			for _, c := range tr.Children(r.Node) {
				cr := byNode[c]
				width += cr.Requests
				assert.Equal(t, x, cr.X0, "children side by side, after the node's own ends")
				assert.Equal(t, r.End, cr.Start, "a child starts where its parent ends")
				x = cr.X1
			}
			assert.Equal(t, r.Requests, width, "node %d: ends + children's widths", r.Node)
			assert.LessOrEqual(t, x, r.X1)
		}

		assert.Equal(t, rep.UniqueTokens, lay.SharedTokens+lay.OwnTokens, "unique = shared + own")
		assert.Equal(t, rep.TotalTokens, lay.TotalTokens, "the areas are the tokens of a run without sharing")
		if noCache {
			assert.Zero(t, lay.SharedTokens, "an unshared trie shares nothing")
		} else {
			// The 20 input tokens of the "inner" request are read by every
			// request; the rest of the demonstration by all but it.
			assert.Positive(t, lay.SharedTokens)
			assert.Equal(t, int32(20), byNode[tr.Children(prefixtrie.Root)[0]].End)
			assert.Equal(t, len(reqs), byNode[tr.Children(prefixtrie.Root)[0]].Requests)
		}
	}
}

// TestIcicleOwnTokens pins the counts on a request set small enough to
// count by hand: two requests that share 3 input tokens and have 2 and 1
// of their own.
func TestIcicleOwnTokens(t *testing.T) {
	reqs := []lmscore.Request{
		{ID: "a", ContextTokens: []int32{5, 6, 7, 8}, ContinuationTokens: []int32{9, 10}}, // inputs 5 6 7 8 9
		{ID: "b", ContextTokens: []int32{5, 6, 7}, ContinuationTokens: []int32{11, 12}},   // inputs 5 6 7 11
	}
	lay, err := IcicleLayout(planTrie(t, reqs, false).Trie)
	require.NoError(t, err)
	assert.Equal(t, int64(3), lay.SharedTokens)
	assert.Equal(t, int64(3), lay.OwnTokens)
	assert.Equal(t, int64(9), lay.TotalTokens)
	assert.Equal(t, int32(5), lay.Depth)
	assert.Equal(t, "prefix tree: 2 requests, 9 input tokens, 6 unique (1.5x)", IcicleTitle(lay))
}

func TestIcicleNeedsFrozenTrie(t *testing.T) {
	tr := prefixtrie.New()
	_, err := tr.Insert([]int32{1, 2}, nil)
	require.NoError(t, err)
	_, err = IcicleLayout(tr)
	assert.ErrorContains(t, err, "not frozen")
}

// TestIcicleFiles writes the picture in each format and checks that each
// file is what its extension says.
func TestIcicleFiles(t *testing.T) {
	rep := planTrie(t, fewShot(3), false)
	lay, err := IcicleLayout(rep.Trie)
	require.NoError(t, err)
	dir := t.TempDir()
	for ext, magic := range map[string][]byte{
		".png": []byte("\x89PNG\r\n\x1a\n"),
		".svg": []byte("<?xml"),
		".pdf": []byte("%PDF-"),
	} {
		path := filepath.Join(dir, "sub", "plan"+ext) // the folder is created
		got, err := WriteIcicle(path, rep.Trie)
		require.NoError(t, err, ext)
		assert.Equal(t, lay, got)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Greater(t, len(data), 1000, ext)
		assert.True(t, bytes.HasPrefix(data, magic), "%s starts %q", ext, data[:min(len(data), 16)])
		if ext == ".svg" {
			assert.Contains(t, string(data), "<svg")
		}
	}
	_, err = Format("plan.jpeg")
	assert.ErrorContains(t, err, ".png, .svg or .pdf")
	_, err = WriteIcicle(filepath.Join(dir, "plan.gif"), rep.Trie)
	assert.ErrorContains(t, err, "plan.gif")
	assert.NoFileExists(t, filepath.Join(dir, "plan.gif"))
}
