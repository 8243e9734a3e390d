package lmscore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
)

// procStatusKiB reads a "Name:   N kB" line of /proc/self/status.
func procStatusKiB(t *testing.T, name string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	require.NoError(t, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), name+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/self/status", name)
	return 0
}

// TestDefaultBudgetIsACeiling opens a tiny model with the default 1 GiB KV
// budget and scores three small requests: the budget must bound the pool,
// not be allocated up front. It runs in a fresh process (this test binary
// again) so that the memory of other tests does not count.
func TestDefaultBudgetIsACeiling(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	if os.Getenv("LMSCORE_CEILING_CHILD") == "1" {
		ceilingChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDefaultBudgetIsACeiling$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "LMSCORE_CEILING_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var rssKiB, hwmKiB int64
	var openMs, totalMs float64
	line := ""
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "ceiling:"); i >= 0 {
			line = l[i:]
		}
	}
	_, err = fmt.Sscanf(line, "ceiling: rss_kib=%d hwm_kib=%d open_ms=%g total_ms=%g", &rssKiB, &hwmKiB, &openMs, &totalMs)
	require.NoError(t, err, "child output: %s", out)
	t.Logf("default 1 GiB budget, 3 tiny requests: VmRSS %.1f MB, VmHWM %.1f MB, open %.0f ms, open+score %.0f ms",
		float64(rssKiB)/1024, float64(hwmKiB)/1024, openMs, totalMs)
	// Generous bounds for a shared 2-core machine; the whole budget is 1 GiB.
	require.Less(t, hwmKiB, int64(150<<10), "peak RSS")
	require.Less(t, totalMs, 1000.0, "open + score time")
}

func ceilingChild(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	start := time.Now()
	m, err := open(weights, "test", Options{Threads: 1}) // the default KV budget
	require.NoError(t, err)
	defer m.Close()
	openMs := float64(time.Since(start).Microseconds()) / 1000
	reqs := []Request{
		{ContextTokens: []int32{1, 2, 3, 4, 5}, ContinuationTokens: []int32{6, 7}},
		{ContextTokens: []int32{1, 2, 3, 9}, ContinuationTokens: []int32{10}},
		{ContextTokens: []int32{11, 12}, ContinuationTokens: []int32{13, 14, 15}},
	}
	res, _, err := m.Score(context.Background(), reqs, ScoreOptions{})
	require.NoError(t, err)
	require.Len(t, res, 3)
	totalMs := float64(time.Since(start).Microseconds()) / 1000
	fmt.Printf("ceiling: rss_kib=%d hwm_kib=%d open_ms=%.1f total_ms=%.1f\n",
		procStatusKiB(t, "VmRSS"), procStatusKiB(t, "VmHWM"), openMs, totalMs)
}

// A thread count above the cores available is capped, with a warning, and
// the model opens at once instead of starting one thread per request.
func TestThreadsCappedAtCores(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	start := time.Now()
	m := openTest(t, weights, Options{Threads: 100000})
	t.Logf("--threads 100000 on %d cores: open %v, warnings %q", runtime.NumCPU(), time.Since(start), m.Warnings())
	require.Equal(t, runtime.NumCPU(), m.Options().Threads)
	require.Len(t, m.Warnings(), 1)
	require.Contains(t, m.Warnings()[0], "100000 threads requested, capped at the")
	res := scoreAll(t, m, []Request{{ContextTokens: []int32{1, 2}, ContinuationTokens: []int32{3}}}, ScoreOptions{})
	require.Len(t, res, 1)

	m2 := openTest(t, weights, Options{Threads: 1})
	require.Equal(t, 1, m2.Options().Threads)
	require.Empty(t, m2.Warnings())
}
