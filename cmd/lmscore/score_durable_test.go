package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// TestKillAndResume is the durable-results acceptance test: `lmscore
// score` (the binary, built here) is SIGKILLed at a random point of its
// scoring, then run again with --resume; the output must be byte-identical
// to an uninterrupted run's, and the work done twice (what the killed run
// computed but had not yet made durable) at most one second's worth.
// The fast version (the default) kills a 20k-request run twice; the
// thorough one (LMSCORE_KILL_THOROUGH=1) five times. LMSCORE_KILL_TRIES and
// LMSCORE_KILL_REQUESTS override the counts.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it a dozen times")
	}
	tries := 2
	if os.Getenv("LMSCORE_KILL_THOROUGH") != "" {
		tries = 5
	}
	tries = envInt(t, "LMSCORE_KILL_TRIES", tries)
	nreq := envInt(t, "LMSCORE_KILL_REQUESTS", 20000)
	dir := t.TempDir()
	bin := filepath.Join(dir, "lmscore")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	m := testmodel.Must(testmodel.Options{Seed: 21, NVocab: 300, NCtx: 64, NEmbd: 64, NLayer: 4})
	kv, err := model.FixtureTokenizer(300)
	if err != nil {
		t.Fatal(err)
	}
	gguf := filepath.Join(dir, "tiny.gguf")
	if err := model.WriteGGUF(gguf, m.Config, &m.Weights, kv...); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "req.jsonl")
	var reqs bytes.Buffer
	rng := rand.New(rand.NewPCG(5, 6))
	tok := func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = 2 + rng.IntN(298)
		}
		return out
	}
	for i := 0; i < nreq; i++ {
		b, _ := json.Marshal(map[string]any{"id": fmt.Sprint("r", i), "context_tokens": append([]int{1}, tok(2+rng.IntN(4))...),
			"continuation_tokens": tok(1 + rng.IntN(3))})
		reqs.Write(append(b, '\n'))
	}
	if err := os.WriteFile(in, reqs.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(out string, extra ...string) []string {
		return append([]string{"score", "--model", gguf, "--in", in, "--out", out, "--token-logprobs",
			"--kv-memory", "64MiB", "--max-batch-tokens", "512", "--threads", "1", "--progress", "bar"}, extra...)
	}

	full := filepath.Join(dir, "full.jsonl")
	fullSum := runSummary(t, bin, args(full, "--summary", full+".sum")...)
	want, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	scoreWall := time.Duration(fullSum.Stats.WallNS)
	t.Logf("uninterrupted: %d requests, %d computed tokens in %v of scoring", nreq, fullSum.Stats.ComputedTokens, scoreWall)

	for try, kills := 0, 0; kills < tries; try++ {
		if try > 4*tries {
			t.Fatalf("only %d of %d runs were killed while scoring: the run is too short to hit", kills, try)
		}
		out := filepath.Join(dir, fmt.Sprint("out", try, ".jsonl"))
		delay := time.Duration(rng.Float64() * 0.9 * float64(scoreWall))
		done, rate, killed := runKilled(t, bin, delay, args(out)...)
		if !killed {
			continue // finished first: not a try
		}
		kills++
		if got, err := os.ReadFile(out); err == nil {
			// Killed after its output was complete (written at the end, in
			// one rename): not a try, but that output must be whole.
			if !bytes.Equal(got, want) {
				t.Fatalf("try %d: the killed run left an incomplete %s", try, out)
			}
			kills--
			continue
		}
		res := runSummary(t, bin, args(out, "--resume", "--summary", out+".sum")...)
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("try %d: the resumed output differs from the uninterrupted run's (%d vs %d bytes)", try, len(got), len(want))
		}
		// What the killed run computed (as its bar last said, up to 100 ms
		// before the kill, hence the 0.1 s added) plus what the resume
		// computed, less the uninterrupted run's work: done twice.
		twice := float64(done) + 0.1*rate + float64(res.Stats.ComputedTokens) - float64(fullSum.Stats.ComputedTokens)
		t.Logf("try %d: killed after %v of scoring at %d tokens (%.0f tok/s); resumed %d results, computed %d tokens; done twice ≈ %.0f tokens = %.2f s of work",
			try, delay, done, rate, res.Resumed, res.Stats.ComputedTokens, twice, twice/rate)
		if twice > rate*1.0 {
			t.Errorf("try %d: %.0f tokens computed twice, more than the last second's %.0f", try, twice, rate)
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, s, err)
		}
		return n
	}
	return def
}

type killSummary struct {
	Resumed int `json:"resumed_results"`
	Stats   struct {
		ComputedTokens int64 `json:"computed_tokens"`
		WallNS         int64 `json:"wall_ns"`
	} `json:"stats"`
}

func runSummary(t *testing.T, bin string, args ...string) killSummary {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("lmscore %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var s killSummary
	sumPath := args[len(args)-1]
	b, err := os.ReadFile(sumPath)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		t.Fatalf("summary %s: %v", sumPath, err)
	}
	return s
}

// barLine is the progress bar's "12.3k/45.6k tokens  7.8k tok/s".
var barLine = regexp.MustCompile(`\] ([0-9.]+[kMG]?)/[0-9.]+[kMG]? tokens  ([0-9.]+[kMG]?) tok/s`)

// runKilled starts the binary, waits for its first progress bar (scoring
// has begun), then delay, and SIGKILLs it. It returns the tokens done and
// the rate as the last bar before the kill showed them, and whether the kill
// came before the run ended.
func runKilled(t *testing.T, bin string, delay time.Duration, args ...string) (done int64, rate float64, killed bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type bar struct {
		done int64
		rate float64
	}
	bars := make(chan bar, 1024)
	go func() {
		defer close(bars)
		r := bufio.NewReader(pipe)
		for {
			chunk, err := r.ReadString('\r')
			if m := barLine.FindStringSubmatch(chunk); m != nil {
				bars <- bar{int64(parseCount(m[1])), parseCount(m[2])}
			}
			if err != nil {
				io.Copy(io.Discard, r)
				return
			}
		}
	}()
	var last bar
	first, ok := <-bars
	if !ok {
		cmd.Wait()
		return 0, 0, false
	}
	last = first
	timer := time.NewTimer(delay)
	for waiting := true; waiting; {
		select {
		case b, ok := <-bars:
			if !ok {
				cmd.Wait()
				return 0, 0, false // ended before the kill
			}
			last = b
		case <-timer.C:
			waiting = false
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	for b := range bars { // a bar written just before the kill
		last = b
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		return 0, 0, false // it had exited by itself
	}
	_ = err
	return last.done, last.rate, true
}

// parseCount reads progress.Count's "12.3k".
func parseCount(s string) float64 {
	mult := 1.0
	switch s[len(s)-1] {
	case 'k':
		mult, s = 1e3, s[:len(s)-1]
	case 'M':
		mult, s = 1e6, s[:len(s)-1]
	case 'G':
		mult, s = 1e9, s[:len(s)-1]
	}
	v, _ := strconv.ParseFloat(s, 64)
	return v * mult
}
