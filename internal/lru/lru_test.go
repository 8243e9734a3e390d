package lru

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func order(l *List) []int32 {
	var out []int32
	for id := l.Front(); id != None; id = l.Next(id) {
		out = append(out, id)
	}
	return out
}

func TestListOrder(t *testing.T) {
	l := New(6)
	for _, id := range []int32{1, 2, 3} {
		l.PushBack(id)
	}
	l.PushFront(4) // empty, say: reused first
	if got, want := order(l), []int32{4, 1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	l.Remove(2) // a hit in the middle
	l.MoveToBack(1)
	if got, want := order(l), []int32{4, 3, 1}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if l.Contains(2) || !l.Contains(3) || l.Len() != 3 {
		t.Fatalf("contains(2) %v, contains(3) %v, len %d", l.Contains(2), l.Contains(3), l.Len())
	}
	for _, want := range []int32{4, 3, 1, None} {
		if got := l.PopFront(); got != want {
			t.Fatalf("pop %d, want %d", got, want)
		}
	}
	l.Grow(8)
	l.PushBack(7)
	if l.Cap() != 8 || l.Front() != 7 {
		t.Fatalf("after growth: cap %d, front %d", l.Cap(), l.Front())
	}
	l.Reset(3)
	if l.Len() != 0 || l.Front() != None || l.Cap() != 3 {
		t.Fatalf("after reset: len %d, front %d, cap %d", l.Len(), l.Front(), l.Cap())
	}
}

func TestListZeroValue(t *testing.T) {
	var l List
	if l.Front() != None || l.PopFront() != None || l.Len() != 0 {
		t.Fatal("the zero value is not empty")
	}
	l.Grow(3)
	l.PushBack(2)
	l.PushBack(0)
	l.PushFront(1)
	if got, want := order(&l), []int32{1, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	l.Remove(2)
	l.Remove(0)
	if got, want := order(&l), []int32{1}; !slices.Equal(got, want) || l.PopFront() != 1 || l.Front() != None {
		t.Fatalf("order %v, want %v", got, want)
	}
}

// TestListAgainstSlice checks random operations against a plain slice.
func TestListAgainstSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 50
	l := New(n)
	var ref []int32
	for range 20000 {
		id := rng.Int32N(n)
		i := slices.Index(ref, id)
		switch op := rng.IntN(4); {
		case i < 0 && op == 0:
			l.PushFront(id)
			ref = slices.Insert(ref, 0, id)
		case i < 0:
			l.PushBack(id)
			ref = append(ref, id)
		case op == 0:
			l.Remove(id)
			ref = slices.Delete(ref, i, i+1)
		case op == 1:
			l.MoveToBack(id)
			ref = append(slices.Delete(ref, i, i+1), id)
		default:
			want := None
			if len(ref) > 0 {
				want, ref = ref[0], ref[1:]
			}
			if got := l.PopFront(); got != want {
				t.Fatalf("pop %d, want %d", got, want)
			}
		}
		if l.Len() != len(ref) {
			t.Fatalf("len %d, want %d", l.Len(), len(ref))
		}
	}
	if got := order(l); !slices.Equal(got, ref) {
		t.Fatalf("order %v, want %v", got, ref)
	}
	for id := range int32(n) {
		if l.Contains(id) != slices.Contains(ref, id) {
			t.Fatalf("contains(%d) %v", id, l.Contains(id))
		}
	}
}
