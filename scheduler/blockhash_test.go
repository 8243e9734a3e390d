package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func randomTokens(rng *rand.Rand, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = rng.Int32N(50000)
	}
	return out
}

// TestPlannerRegistersAppendBlockHashes: the blocks a plan leaves cached
// are named exactly by AppendBlockHashes over the request's input tokens
// (context and continuation but its last token), so that anything keyed by
// AppendBlockHashes (the root package's OutputStore) names the same blocks
// as the KV cache.
func TestPlannerRegistersAppendBlockHashes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for _, bs := range []int{1, 16, 64} {
		for _, n := range []int{17, 37, 137} {
			t.Run(fmt.Sprintf("bs=%d/n=%d", bs, n), func(t *testing.T) {
				ctx, cont := randomTokens(rng, n-5), randomTokens(rng, 6)
				pool, err := NewBlockPool(256, bs)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Plan(pool, []Request{{Context: ctx, Continuation: cont}}, Options{MaxBatchTokens: 4096, Namespace: "model-a"}); err != nil {
					t.Fatal(err)
				}
				inputs := append(append([]int32{}, ctx...), cont[:len(cont)-1]...)
				want := AppendBlockHashes(nil, NamespaceHash("model-a"), inputs, bs)
				if len(want) != n/bs {
					t.Fatalf("%d hashes for %d tokens in blocks of %d", len(want), n, bs)
				}
				got := map[BlockHash]bool{}
				for b := int32(1); b < int32(pool.NumBlocks()); b++ {
					if h := pool.Hash(b); !h.IsZero() {
						got[h] = true
					}
				}
				if len(got) != len(want) {
					t.Fatalf("the pool holds %d hashed blocks, AppendBlockHashes names %d", len(got), len(want))
				}
				for i, h := range want {
					if !got[h] {
						t.Fatalf("block %d: hash %v not registered by the planner", i, h)
					}
				}
			})
		}
	}
}

func TestAppendBlockHashesChain(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	toks := randomTokens(rng, 37)
	ns := NamespaceHash("model-a")
	all := AppendBlockHashes(nil, ns, toks, 8)
	if len(all) != 4 {
		t.Fatalf("%d hashes for 37 tokens in blocks of 8, want 4", len(all))
	}
	// Extending a prefix's hashes gives the same chain as hashing at once.
	for k := range len(all) + 1 {
		ext := AppendBlockHashes(append([]BlockHash{}, all[:k]...), ns, toks, 8)
		for i := range all {
			if ext[i] != all[i] {
				t.Fatalf("extending %d hashes: block %d differs", k, i)
			}
		}
	}
	// A block's hash names its whole prefix: changing an earlier token
	// changes every later block's hash, not the ones before it.
	other := append([]int32{}, toks...)
	other[9]++ // in block 1
	changed := AppendBlockHashes(nil, ns, other, 8)
	for i := range all {
		if (changed[i] == all[i]) != (i < 1) {
			t.Fatalf("block %d: equal %v after changing token 9", i, changed[i] == all[i])
		}
	}
	// The namespace separates models: no block of one matches the other's.
	seen := map[BlockHash]bool{}
	for _, h := range all {
		seen[h] = true
	}
	for i, h := range AppendBlockHashes(nil, NamespaceHash("model-b"), toks, 8) {
		if seen[h] {
			t.Fatalf("block %d: the same hash under two namespaces", i)
		}
	}
}

// TestNamespaceSeparatesPlans: a pool warmed by one namespace gives no hit
// to the same tokens under another.
func TestNamespaceSeparatesPlans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	reqs := []Request{{Context: randomTokens(rng, 64), Continuation: randomTokens(rng, 3)}}
	pool, err := NewBlockPool(32, 16)
	if err != nil {
		t.Fatal(err)
	}
	hits := func(ns string) int64 {
		st, err := Plan(pool, reqs, Options{MaxBatchTokens: 4096, Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		return st.CacheHitBlocks
	}
	if h := hits("a"); h != 0 {
		t.Fatalf("cold pool: %d hits", h)
	}
	if h := hits("a"); h != 4 {
		t.Fatalf("same namespace: %d hits, want the context's 4 full blocks", h)
	}
	if h := hits("b"); h != 0 {
		t.Fatalf("another namespace: %d hits", h)
	}
}
