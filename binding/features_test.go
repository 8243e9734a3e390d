//go:build cgo

package binding

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/model"
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

// The CPU core computes every dense feature but not experts: a
// mixture-of-experts model is refused by name.
func TestCPURefusesExperts(t *testing.T) {
	cfg := model.Config{Arch: model.ArchQwen3MoE, NVocab: 64, NEmbd: 32, NLayer: 1, NHead: 2, NHeadKV: 2, NFF: 64,
		NCtxTrain: 64, RopeType: model.RopeNeox, RopeFreqBase: 1e4, NormEps: 1e-6,
		NExpert: 4, NExpertUsed: 2, NFFExp: 16}
	w, err := model.RandomWeights(cfg, 1, model.TypeF32)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := OpenCPU(&model.Model{Config: cfg, Weights: *w}, 1)
	if err == nil {
		mod.Close()
		t.Fatal("loaded a mixture of experts")
	}
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "mixture of experts is not supported yet") {
		t.Errorf("got %v, want ErrUnsupported naming mixture of experts", err)
	}
}
