package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Python peers' logic that needs no torch (harness truncation, the
// timing policy, llama-perplexity's task packing).
func TestPeersPythonLogic(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: bench/peers/test_peers.py not run")
	}
	out, err := exec.Command(py, "-m", "unittest", "discover", "-s", "peers", "-p", "test_*.py").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "OK")
}

// TestRunGPUScriptOnCPU runs `make bench`'s script end to end on the CPU,
// with 2-layer models and the tiny workloads: the models built by
// transformers, converted, scored by lmscore and both transformers peers,
// compared, reported and plotted. It needs a Python with torch and
// transformers, so it runs only when LMSCORE_BENCH_PYTHON
// names one (about 2 minutes on 2 cores):
//
//	LMSCORE_BENCH_PYTHON=.venv-bench/bin/python go test ./bench -run RunGPUScript
func TestRunGPUScriptOnCPU(t *testing.T) {
	py := os.Getenv("LMSCORE_BENCH_PYTHON")
	if py == "" {
		t.Skip("LMSCORE_BENCH_PYTHON (a python with torch and transformers) is not set")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	py, err := filepath.Abs(filepath.Join("..", py))
	if _, statErr := os.Stat(py); statErr != nil {
		py, err = exec.LookPath(os.Getenv("LMSCORE_BENCH_PYTHON"))
	}
	require.NoError(t, err)
	dir := t.TempDir()
	// The script builds lmscore and benchgpu with go into BENCH_BIN.
	cmd := exec.Command("bash", "run_gpu.sh")
	cmd.Env = append(os.Environ(), "BENCH_BACKEND=cpu", "BENCH_TINY=1", "BENCH_SIZE=tiny", "BENCH_BUDGET_S=600",
		"BENCH_MODELS=llama-3.2-1b,gpt2-large", "BENCH_WORK="+filepath.Join(dir, "work"),
		"BENCH_BIN="+filepath.Join(dir, "bin"), "OUT="+filepath.Join(dir, "out"), "PYTHON="+py)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	md, err := filepath.Glob(filepath.Join(dir, "out", "cpu-*.md"))
	require.NoError(t, err)
	require.Len(t, md, 1, string(out))
	b, err := os.ReadFile(md[0])
	require.NoError(t, err)
	report := string(b)
	for _, want := range []string{"## llama-3.2-1b", "## gpt2-large", "(a) HF, no cache", "(b) HF, prefix cache", "(c) lmscore --no-cache"} {
		assert.Contains(t, report, want)
	}
	assert.NotContains(t, report, "error:", report)
	// Every peer picks lmscore's choice on nearly every question: the
	// transformers peers compute in bf16 on the CPU, lmscore in fp32.
	agreeing := 0
	for _, line := range strings.Split(report, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasSuffix(strings.TrimSpace(cells[len(cells)-2]), "%") {
			continue
		}
		var pct float64
		_, err := fmt.Sscanf(strings.TrimSpace(cells[len(cells)-2]), "%f%%", &pct)
		require.NoError(t, err, line)
		assert.GreaterOrEqual(t, pct, 80.0, line)
		agreeing++
	}
	assert.Equal(t, 2*5*3, agreeing, "3 peers compared on 5 workloads for 2 models:\n%s", report)
	_, err = os.Stat(strings.TrimSuffix(md[0], ".md") + ".png")
	assert.NoError(t, err, "the plot")
	_, err = os.Stat(filepath.Join(dir, "out", "raw.tar.gz"))
	assert.NoError(t, err)
}
