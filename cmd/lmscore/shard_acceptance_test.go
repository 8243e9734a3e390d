package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lmscore/lmscore/internal/scorejob"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/workload"
)

// buildBinary builds the lmscore command into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "lmscore")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// shardTestModel writes a small random llama with a window that holds a
// 16-shot MetaICL context whole (a truncated context shares nothing).
func shardTestModel(t *testing.T, dir string) string {
	t.Helper()
	m := testmodel.Must(testmodel.Options{Seed: 19, NVocab: 300, NCtx: 1024, NLayer: 2, NEmbd: 64})
	kv, err := model.FixtureTokenizer(300)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tiny.gguf")
	if err := model.WriteGGUF(path, m.Config, &m.Weights, kv...); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCLI runs the binary with env added to the test's environment and
// fails the test, with its stderr, if it fails.
func runCLI(t *testing.T, bin string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("lmscore %v: %v\n%s", args, err, stderr.Bytes())
	}
}

// runCLIOutput runs the binary and returns its stdout.
func runCLIOutput(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lmscore %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

func readSummaryFile(t *testing.T, path string) scorejob.Summary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s scorejob.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// TestShardedRunsMergeToOneProcess is issue 19's CPU acceptance test: on
// the MetaICL-shaped workloads, for N = 1, 2, 3 and 7, the shards run as
// separate `lmscore score --shard i/N` processes side by side, `lmscore
// merge` joins them, and the result is byte-identical to one process's
// output, with the same multiple-choice metrics; on metaicl16 the shards
// compute at most 5% more tokens than one process (the unique tokens).
func TestShardedRunsMergeToOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it 42 times")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	gguf := shardTestModel(t, dir)
	workloads := []struct {
		name, gen string
		scale     float64
		tasks     int     // 0: the generator's 20
		maxRatio  float64 // shards' computed tokens over the unique tokens; 0: report only
	}{
		{"metaicl16", "metaicl16", 0.05, 0, 1.05}, // 20 tasks of 50 questions under 16 demonstrations
		{"metaicl0", "metaicl0", 0.05, 0, 0},
		// 2 tasks, each larger than a shard's share at N >= 3: split by
		// question, so a task's demonstrations are computed by several
		// shards, and the merge must still be exact.
		{"metaicl16-2tasks", "metaicl16", 0.05, 2, 0},
	}
	for _, w := range workloads {
		lines, err := workload.Generate(w.gen, workload.Options{Seed: 1, Vocab: 300, FirstID: 3, Newline: 13, Scale: w.scale, Tasks: w.tasks})
		if err != nil {
			t.Fatal(err)
		}
		in := filepath.Join(dir, w.name+".jsonl")
		if err := workload.WriteFile(in, lines); err != nil {
			t.Fatal(err)
		}
		common := []string{"--model", gguf, "--in", in, "--threads", "1", "--progress", "none"}
		start := time.Now()
		one := filepath.Join(dir, w.name+"-one.jsonl")
		runCLI(t, bin, nil, append([]string{"score", "--out", one, "--summary", one + ".json"}, common...)...)
		oneSum := readSummaryFile(t, one+".json")
		t.Logf("%s: %d requests, one process: %d total, %d unique, %d computed tokens in %v",
			w.name, len(lines), oneSum.Stats.TotalTokens, oneSum.Stats.UniqueTokens, oneSum.Stats.ComputedTokens, time.Since(start).Round(time.Millisecond))

		for _, n := range []int{1, 2, 3, 7} {
			start := time.Now()
			files := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				files[i] = filepath.Join(dir, fmt.Sprintf("%s-%d-of-%d.jsonl", w.name, i, n))
				wg.Add(1)
				go func() {
					defer wg.Done()
					runCLI(t, bin, nil, append([]string{"score", "--shard", fmt.Sprintf("%d/%d", i, n), "--out", files[i]}, common...)...)
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			// plan --shards, another process, computes the split each shard
			// scored.
			var plan shardReport
			planOut := runCLIOutput(t, bin, "plan", "--in", in, "--model", gguf, "--shards", strconv.Itoa(n))
			if err := json.Unmarshal(planOut, &plan); err != nil {
				t.Fatalf("plan --shards: %v\n%s", err, planOut)
			}
			merged := filepath.Join(dir, fmt.Sprintf("%s-merged-%d.jsonl", w.name, n))
			runCLI(t, bin, nil, append([]string{"merge", "--out", merged, "--summary", merged + ".json"}, files...)...)
			if !sameFile(t, one, merged) {
				t.Errorf("%s, %d shards: the merged output differs from one process's", w.name, n)
			}
			sum := readSummaryFile(t, merged+".json")
			if mc, _ := json.Marshal(sum.MultiChoice); oneSum.MultiChoice == nil || !bytes.Equal(mc, must(json.Marshal(oneSum.MultiChoice))) {
				t.Errorf("%s, %d shards: the merged metrics differ from one process's", w.name, n)
			}
			if sum.Requests != oneSum.Requests || sum.ResultsLines != oneSum.ResultsLines || sum.Stats.TotalTokens != oneSum.Stats.TotalTokens {
				t.Errorf("%s, %d shards: merged summary has %d requests, %d lines, %d total tokens; one process %d, %d, %d", w.name, n,
					sum.Requests, sum.ResultsLines, sum.Stats.TotalTokens, oneSum.Requests, oneSum.ResultsLines, oneSum.Stats.TotalTokens)
			}
			var computed, largest int64
			for i, s := range sum.Shards {
				computed += s.Stats.ComputedTokens
				largest = max(largest, s.Stats.ComputedTokens)
				if p := plan.PerShard[i]; p.Requests != s.Requests || p.ComputedTokens != s.Stats.ComputedTokens {
					t.Errorf("%s, shard %d/%d: plan --shards says %d requests, %d tokens; the shard scored %d, computed %d",
						w.name, i, n, p.Requests, p.ComputedTokens, s.Requests, s.Stats.ComputedTokens)
				}
			}
			ratio := float64(computed) / float64(oneSum.Stats.UniqueTokens)
			t.Logf("%s, %d shards: computed %d tokens = %.4f x the unique %d; largest shard %.3f x the ideal share; %v",
				w.name, n, computed, ratio, oneSum.Stats.UniqueTokens,
				float64(largest)*float64(n)/float64(oneSum.Stats.UniqueTokens), time.Since(start).Round(time.Millisecond))
			if w.maxRatio > 0 && ratio > w.maxRatio {
				t.Errorf("%s, %d shards: the shards compute %.4f x the unique tokens, above %.2f", w.name, n, ratio, w.maxRatio)
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
