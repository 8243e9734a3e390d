package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLlamaCppAgreement runs ../check.py, which checks lmscore's GGUF files
// against llama.cpp's own code (the gguf package and llama-cpp-python) in
// the repository's Python venv. It skips when the venv is absent. Set
// LMSCORE_HF_MODELS to a folder made by tools/hf_models/make_models.py to
// also compare converted Hugging Face models with transformers' logits.
func TestLlamaCppAgreement(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the llama.cpp check takes about 15 seconds")
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	py := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no Python venv at .venv (it needs the gguf and llama-cpp-python packages): %v", err)
	}
	if out, err := exec.Command(py, "-c", "import gguf, llama_cpp, numpy").CombinedOutput(); err != nil {
		t.Skipf("the venv lacks gguf, llama-cpp-python or numpy: %v\n%s", err, out)
	}
	args := []string{filepath.Join("tools", "gguf_check", "check.py")}
	if dir := os.Getenv("LMSCORE_HF_MODELS"); dir != "" {
		args = append(args, "--hf", dir)
	}
	cmd := exec.Command(py, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("check.py failed: %v", err)
	}
}
