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
	// BENCH_END_S=0: the device call's limit is no concern of this test,
	// and a slow machine must not lose the fidelity table to it.
	cmd.Env = append(os.Environ(), "BENCH_BACKEND=cpu", "BENCH_TINY=1", "BENCH_SIZE=tiny", "BENCH_BUDGET_S=600",
		"BENCH_END_S=0", "BENCH_MODELS=llama-3.2-1b,gpt2-large", "BENCH_WORK="+filepath.Join(dir, "work"),
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
	// The engine table: lmscore --no-cache against HF no cache on every
	// workload of both models, a rate for each and their ratio.
	engine := 0
	for _, section := range strings.Split(report, "Engines without a cache")[1:] {
		section, _, _ = strings.Cut(section, "\n\n###")
		for _, line := range strings.Split(section, "\n") {
			cells := strings.Split(line, "|")
			if len(cells) == 7 && strings.HasSuffix(strings.TrimSpace(cells[5]), "x") && !strings.Contains(line, "---") {
				engine++
			}
		}
	}
	assert.Equal(t, 2*5, engine, report)
	// The fidelity table: every workload of both models compared with the
	// fp32 reference, per token. lmscore's CPU core computes in fp32 from
	// the same weights, the transformers peer in bf16, so lmscore is the
	// closer everywhere.
	fidelity := 0
	for _, line := range strings.Split(report, "\n") {
		if strings.Contains(line, " | token | ") {
			fidelity++
			assert.True(t, strings.HasSuffix(line, "| yes |"), line)
		}
	}
	assert.Equal(t, 2*5, fidelity, report)
	assert.Equal(t, 2, strings.Count(report, "lmscore closer to fp32 on 5 of 5 workloads compared"), report)
	_, err = os.Stat(strings.TrimSuffix(md[0], ".md") + ".png")
	assert.NoError(t, err, "the plot")
	_, err = os.Stat(filepath.Join(dir, "out", "raw.tar.gz"))
	assert.NoError(t, err)
}

// TestRunGPUScriptTypesOnCPU runs `make bench`'s script on the CPU with the
// 8B shapes' 2-layer versions, bf16 and Q4_K_M, both written by `benchgpu
// random` (BENCH_HF=0: no transformers, no torch needed), and the size test
// on the 70B shape's 2-layer version made in memory: every variant gets its
// table, the by-type summary its rows, and the size test metaicl0 alone.
func TestRunGPUScriptTypesOnCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found: run_gpu.sh needs one")
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "run_gpu.sh")
	cmd.Env = append(os.Environ(), "BENCH_BACKEND=cpu", "BENCH_TINY=1", "BENCH_SIZE=tiny", "BENCH_BUDGET_S=600",
		"BENCH_HF=0", "BENCH_TYPES=bf16,q4_k_m", "BENCH_MODELS=llama-3.1-8b,qwen3-8b", "BENCH_WORKLOADS=metaicl16,metaicl0",
		"BENCH_SIZE_TEST=1", "BENCH_WORK="+filepath.Join(dir, "work"), "BENCH_BIN="+filepath.Join(dir, "bin"),
		"OUT="+filepath.Join(dir, "out"), "PYTHON=python3")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	md, err := filepath.Glob(filepath.Join(dir, "out", "cpu-*.md"))
	require.NoError(t, err)
	require.Len(t, md, 1, string(out))
	b, err := os.ReadFile(md[0])
	require.NoError(t, err)
	report := string(b)
	assert.NotContains(t, report, "error:", report)
	for _, v := range []string{"llama-3.1-8b", "llama-3.1-8b-q4_k_m", "qwen3-8b", "qwen3-8b-q4_k_m", "llama-3.1-70b-q4_k_m"} {
		assert.Contains(t, report, "## "+v+" (", report)
	}
	// The by-type table's rows: after its heading, its header and rule.
	var summary []string
	_, section, found := strings.Cut(report, "## lmscore by weight type")
	require.True(t, found, report)
	section, _, _ = strings.Cut(section, "\n## ")
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| model |") && !strings.HasPrefix(line, "| --- |") {
			summary = append(summary, line)
		}
	}
	// 2 shapes x 2 types x 2 workloads, and the size test's one.
	require.Len(t, summary, 9, report)
	for _, line := range summary {
		cells := strings.Split(line, "|")
		model, typ, wl := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])
		weights := strings.TrimSpace(cells[10])
		assert.True(t, strings.HasSuffix(weights, " GiB") || strings.HasSuffix(weights, " MiB"), "weights: %s", line)
		overBF16 := strings.TrimSpace(cells[8])
		switch {
		case model == "llama-3.1-70b":
			assert.Equal(t, "q4_k_m", typ, line)
			assert.Equal(t, "metaicl0", wl, line)
			assert.Empty(t, overBF16, "no bf16 70B: %s", line)
		case typ == "q4_k_m":
			assert.True(t, strings.HasSuffix(overBF16, "x"), "lmscore Q4_K_M / bf16: %s", line)
		default:
			assert.Empty(t, overBF16, line)
		}
	}
	// The seeded file is reproducible: writing it again gives the same bytes.
	again := filepath.Join(dir, "again.gguf")
	out, err = exec.Command(filepath.Join(dir, "bin", "benchgpu"), "random", "--shape", "qwen3-8b", "--tiny", "--type", "q4_k_m",
		"--out", again).CombinedOutput()
	require.NoError(t, err, string(out))
	first, err := os.ReadFile(filepath.Join(dir, "work", "qwen3-8b-q4_k_m.gguf"))
	require.NoError(t, err)
	second, err := os.ReadFile(again)
	require.NoError(t, err)
	assert.True(t, string(first) == string(second), "benchgpu random is not reproducible")
}
