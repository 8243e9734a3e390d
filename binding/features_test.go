//go:build cgo

package binding

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateFeatureMask builds testdata/validate_features.cpp against the
// checks both cores share and runs it: each feature outside a core's mask
// (the CUDA core's, none yet) is UNSUPPORTED by name, inside it (the CPU
// core's dense mask) accepted, and the new roles' shapes are checked.
func TestValidateFeatureMask(t *testing.T) {
	cxx, err := exec.LookPath("c++")
	if err != nil {
		t.Skip("no C++ compiler")
	}
	bin := filepath.Join(t.TempDir(), "validate_features")
	build := exec.Command(cxx, "-std=c++17", "-O0", "-Wall", "-Werror", "-o", bin, filepath.Join("testdata", "validate_features.cpp"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("%v\n%s", err, out)
	}
}
