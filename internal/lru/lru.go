// Package lru is the one least-recently-used list of lmscore: a doubly
// linked list of int32 ids threaded through an array indexed by id, after
// vLLM's free block queue. The caller keeps its items in its own array and
// names them by index; the list only orders them. Push, remove and
// pop-oldest are O(1) and allocate nothing (but growth), so a cache hit can
// unlink an item from the middle of the list cheaply.
//
// The scheduler's BlockPool orders its free blocks with it and the root
// package's OutputStore its scored prompt blocks.
package lru

import "slices"

// None is the id of no item: what Front and Next return past the end.
const None int32 = -1

// List orders a subset of the ids [0, Cap()) from the front (least recently
// used: evicted first) to the back (most recently used). The zero value is
// an empty list of capacity 0. It is not safe for concurrent use.
type List struct {
	links       []link
	front, back int32
	n           int
}

type link struct {
	prev, next int32
	in         bool
}

// New returns an empty list of ids [0, n).
func New(n int) *List {
	l := &List{}
	l.Reset(n)
	return l
}

// Reset empties the list and sets its capacity to n ids.
func (l *List) Reset(n int) {
	l.links = l.links[:0]
	l.front, l.back, l.n = None, None, 0
	l.Grow(n)
}

// Grow raises the capacity to n ids (never lowers it); the new ids are not
// in the list.
func (l *List) Grow(n int) {
	old := len(l.links)
	if n <= old {
		return
	}
	l.links = slices.Grow(l.links, n-old)[:n]
	for i := old; i < n; i++ {
		l.links[i] = link{prev: None, next: None}
	}
}

// Cap is the number of ids the list can hold.
func (l *List) Cap() int { return len(l.links) }

// Len is the number of ids in the list.
func (l *List) Len() int { return l.n }

// Contains reports whether id is in the list.
func (l *List) Contains(id int32) bool { return l.links[id].in }

// Front is the least recently used id, or None when the list is empty.
func (l *List) Front() int32 {
	if l.n == 0 {
		return None
	}
	return l.front
}

// normalize gives the zero value's ends their empty value.
func (l *List) normalize() {
	if l.n == 0 {
		l.front, l.back = None, None
	}
}

// Next is the id after id towards the back, or None.
func (l *List) Next(id int32) int32 { return l.links[id].next }

// PushBack adds id, which must not be in the list, as the most recently used.
func (l *List) PushBack(id int32) {
	l.normalize()
	k := &l.links[id]
	k.in, k.prev, k.next = true, l.back, None
	if l.back != None {
		l.links[l.back].next = id
	} else {
		l.front = id
	}
	l.back = id
	l.n++
}

// PushFront adds id, which must not be in the list, as the first to go.
func (l *List) PushFront(id int32) {
	l.normalize()
	k := &l.links[id]
	k.in, k.prev, k.next = true, None, l.front
	if l.front != None {
		l.links[l.front].prev = id
	} else {
		l.back = id
	}
	l.front = id
	l.n++
}

// Remove takes id, which must be in the list, out of it.
func (l *List) Remove(id int32) {
	k := &l.links[id]
	if k.prev != None {
		l.links[k.prev].next = k.next
	} else {
		l.front = k.next
	}
	if k.next != None {
		l.links[k.next].prev = k.prev
	} else {
		l.back = k.prev
	}
	k.in, k.prev, k.next = false, None, None
	l.n--
}

// MoveToBack marks id, which must be in the list, as the most recently used.
func (l *List) MoveToBack(id int32) {
	if l.back != id {
		l.Remove(id)
		l.PushBack(id)
	}
}

// PopFront removes and returns the least recently used id, or None when the
// list is empty.
func (l *List) PopFront() int32 {
	id := l.Front()
	if id != None {
		l.Remove(id)
	}
	return id
}
