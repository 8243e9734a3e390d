package scheduler

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// millionRequests builds 1,000,000 requests of about 100 input tokens:
// 2,500 tasks, each a 40-80-token few-shot prefix, 100 questions of 20-40
// tokens and 4 options of 1-8 tokens (the options of a question share its
// context slice). unshared makes every context unique instead: the worst
// case, where every token must be planned.
func millionRequests(unshared bool) []Request {
	rng := rand.New(rand.NewPCG(7, 7))
	toks := func(n int) []int32 {
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(rng.IntN(32000))
		}
		return s
	}
	reqs := make([]Request, 0, 1_000_000)
	for task := 0; task < 2500; task++ {
		prefix := toks(40 + rng.IntN(41))
		for q := 0; q < 100; q++ {
			ctx := append(append(make([]int32, 0, len(prefix)+40), prefix...), toks(20+rng.IntN(21))...)
			for c := 0; c < 4; c++ {
				r := Request{Context: ctx, Continuation: toks(1 + rng.IntN(8))}
				if unshared {
					r.Context = toks(len(ctx))
				}
				reqs = append(reqs, r)
			}
		}
	}
	return reqs
}

// usage returns the process's peak resident set and its CPU time so far.
func usage() (maxRSS int64, cpu time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1, 0
	}
	return ru.Maxrss * 1024, time.Duration(ru.Utime.Nano() + ru.Stime.Nano()) // Maxrss is in kilobytes on Linux
}

// TestPlanMillion plans 1,000,000 requests (about 100 M input tokens) and
// reports the time and memory; it fails over 10 s or 4 GB. Opt-in, since
// it takes the whole machine for a while:
//
//	LMSCORE_PLAN_MILLION=1 go test ./scheduler -run TestPlanMillion -v
//	LMSCORE_PLAN_MILLION=unshared ...   (every context unique: the worst case)
func TestPlanMillion(t *testing.T) {
	mode := os.Getenv("LMSCORE_PLAN_MILLION")
	if mode == "" {
		t.Skip("set LMSCORE_PLAN_MILLION=1 (or =unshared) to plan 1,000,000 requests")
	}
	reqs := millionRequests(mode == "unshared")
	var total int64
	for _, r := range reqs {
		total += int64(len(r.Context) + len(r.Continuation) - 1)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	inputHeap := ms.HeapAlloc
	rssBefore, cpuBefore := usage()

	start := time.Now()
	pool, err := NewBlockPool(1<<20, 16) // 16 M token slots: a large GPU's KV pool
	if err != nil {
		t.Fatal(err)
	}
	pl, err := NewPlanner(pool, reqs, Options{MaxBatchTokens: 8192, Namespace: "million"})
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	var peakHeap uint64
	for n := 0; ; n++ {
		_, err := pl.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n%1024 == 0 {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapAlloc)
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms)
	peakHeap = max(peakHeap, ms.HeapAlloc)
	s := pl.Stats()
	rss, cpu := usage()
	t.Logf("%d requests, %d input tokens (%d unique): trie built in %v, plan done in %v wall, %v CPU (GC included; a loaded machine inflates wall); %d steps, %d segments, %d computed",
		s.Requests, s.TotalTokens, s.UniqueTokens, built.Round(time.Millisecond), elapsed.Round(time.Millisecond), (cpu - cpuBefore).Round(time.Millisecond), s.Steps, s.Segments, s.PlannedComputedTokens)
	t.Logf("memory: requests %.0f MB; sampled peak heap %.0f MB (%.0f MB over the requests); max RSS %.0f MB (%.0f MB before planning)",
		float64(inputHeap)/1e6, float64(peakHeap)/1e6, float64(peakHeap-inputHeap)/1e6, float64(rss)/1e6, float64(rssBefore)/1e6)
	if s.TotalTokens != total || s.PlannedComputedTokens != s.UniqueTokens {
		t.Fatalf("total %d (want %d), computed %d != unique %d", s.TotalTokens, total, s.PlannedComputedTokens, s.UniqueTokens)
	}
	// The bound is on CPU time: planning runs on one goroutine (plus the
	// collector), so on an idle machine wall time is about the CPU time,
	// while the shared development machine's load can inflate wall time
	// several-fold.
	if cpu-cpuBefore > 10*time.Second {
		t.Errorf("planning took %v of CPU, over 10 s", cpu-cpuBefore)
	}
	if rss > 4<<30 {
		t.Errorf("max RSS %d MB, over 4 GB", rss>>20)
	}
}

// BenchmarkPlanMetaICL plans the MetaICL test workload at 100 questions per
// task and reports planned tokens per second.
func BenchmarkPlanMetaICL(b *testing.B) {
	reqs := metaICLRequests(1, 20, 100)
	var total int64
	for b.Loop() {
		pool, err := NewBlockPool(1<<16, 16)
		if err != nil {
			b.Fatal(err)
		}
		s, err := Plan(pool, reqs, Options{MaxBatchTokens: 4096})
		if err != nil {
			b.Fatal(err)
		}
		total += s.TotalTokens
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "input-tokens/s")
}
