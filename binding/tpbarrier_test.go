//go:build cgo

package binding

import "testing"

// TestTPBarrier: the tensor-parallel barrier's rules on threads (tp_check.cpp):
// a rank that fails before the start stops every rank with its status and
// name, and the group stays usable; one that fails after the start breaks
// the group, waking the ranks that wait and failing every later step; 2000
// steps of 4 ranks with failures now and then neither hang nor mix outcomes.
func TestTPBarrier(t *testing.T) {
	if err := tpBarrierCheck(); err != nil {
		t.Fatal(err)
	}
}
