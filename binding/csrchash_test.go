package binding

import (
	"testing"

	"github.com/lmscore/lmscore/binding/internal/csrchash"
)

// TestCsrcHashIsCurrent: csrc_hash.go matches csrc/, so that go build
// recompiled the core after its last edit (see csrc_hash.go).
func TestCsrcHashIsCurrent(t *testing.T) {
	sum, err := csrchash.Hash("../csrc")
	if err != nil {
		t.Fatal(err)
	}
	if sum != csrcHash {
		t.Fatalf("csrc/ changed since csrc_hash.go was generated: run `go generate ./binding` (and rerun the tests, which may have used a stale build of the core)")
	}
}
