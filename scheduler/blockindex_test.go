package scheduler

import (
	"math/rand/v2"
	"testing"
)

// TestBlockIndex runs random puts and removes on a small, crowded table
// (many keys share home slots, probe runs wrap around the end) against a
// Go map.
func TestBlockIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := newBlockIndex(8) // 16 slots
	ref := map[uint64]int32{}
	keys := []uint64{}
	for i := 0; i < 20000; i++ {
		if len(ref) < 8 && rng.IntN(2) == 0 {
			lo := uint64(rng.IntN(64)) // few distinct keys: home-slot collisions galore
			if _, ok := ref[lo]; ok {
				continue
			}
			b := int32(1 + rng.IntN(1000))
			x.put(lo, b)
			ref[lo] = b
			keys = append(keys, lo)
		} else if len(keys) > 0 {
			k := rng.IntN(len(keys))
			lo := keys[k]
			if rng.IntN(5) == 0 {
				x.remove(lo, ref[lo]+1) // the wrong block: must stay
			} else {
				x.remove(lo, ref[lo])
				delete(ref, lo)
				keys = append(keys[:k], keys[k+1:]...)
			}
		}
		for lo := uint64(0); lo < 64; lo++ {
			if got, want := x.get(lo), ref[lo]; got != want {
				t.Fatalf("op %d: get(%d) = %d, want %d", i, lo, got, want)
			}
		}
		if x.len() != len(ref) {
			t.Fatalf("op %d: len %d, want %d", i, x.len(), len(ref))
		}
	}
	// A second put of the same key takes the entry over.
	x.put(1000, 5)
	x.put(1000, 6)
	if x.get(1000) != 6 {
		t.Fatal("put of a present key must replace it")
	}
	x.remove(1000, 5)
	if x.get(1000) != 6 {
		t.Fatal("removing the older block must not drop the newer")
	}
}
