package server

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadSeconds is how long load tests run: 2 s by default, or
// LMSCORE_SERVE_LOAD_SECONDS (e.g. 30 for the bounded load test).
func loadSeconds(t *testing.T) time.Duration {
	if s := os.Getenv("LMSCORE_SERVE_LOAD_SECONDS"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err, "LMSCORE_SERVE_LOAD_SECONDS=%q", s)
		return time.Duration(v * float64(time.Second))
	}
	return 2 * time.Second
}

type loadReport struct {
	Requests, Prompts, Tokens int
	Errors                    int
	Wall                      time.Duration
	P50, P99, Max             time.Duration
	HitRatio                  float64
	Computed                  float64 // tokens that ran through the model
}

func (r loadReport) String() string {
	s := r.Wall.Seconds()
	return fmt.Sprintf("%d requests (%d prompts, %d tokens) in %.1f s: %.1f requests/s, %.1f prompts/s, %.0f tokens/s; latency p50 %v, p99 %v, max %v; %d errors; cache hit ratio %.3f (%.0f tokens computed)",
		r.Requests, r.Prompts, r.Tokens, s, float64(r.Requests)/s, float64(r.Prompts)/s, float64(r.Tokens)/s,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.Errors, r.HitRatio, r.Computed)
}

// loadTest runs clients concurrent clients against a fresh server for d,
// each sending multiple-choice requests in lm-eval's shape (a few-shot
// prefix shared by many questions, 4 choices per request), and checks: no
// errors, no goroutines left once the server is stopped, and no KV blocks
// held once the load is over.
func loadTest(t *testing.T, model Scorer, clients int, d time.Duration, prefixLen int) loadReport {
	info := model.Info()
	baseline := runtime.NumGoroutine()
	ts := startServer(t, model, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	randomIDs := func(r *rand.Rand, k int) []int32 {
		out := make([]int32, k)
		for i := range out {
			out[i] = 3 + r.Int32N(int32(info.NVocab-3))
		}
		return out
	}
	// Four tasks, each with its few-shot prefix.
	prefixes := make([][]int32, 4)
	for i := range prefixes {
		prefixes[i] = append([]int32{info.BOS}, randomIDs(rng, prefixLen-1)...)
	}

	var mu sync.Mutex
	var latencies []time.Duration
	rep := loadReport{}
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 99))
			for time.Now().Before(stop) {
				prefix := prefixes[r.IntN(len(prefixes))]
				question := randomIDs(r, 8+r.IntN(24))
				var prompts [][]int32
				tokens := 0
				for range 4 {
					p := slices.Concat(prefix, question, randomIDs(r, 1+r.IntN(6)))
					prompts = append(prompts, p)
					tokens += len(p)
				}
				body := fmt.Sprintf(`{"model": %q, "prompt": %s, "temperature": 0, "max_tokens": 1, "logprobs": 1, "seed": 1234, "echo": true}`,
					ts.srv.Name(), mustJSON(prompts))
				t0 := time.Now()
				code, out := ts.post(t, "/v1/completions", body)
				lat := time.Since(t0)
				mu.Lock()
				rep.Requests++
				if code != 200 {
					rep.Errors++
					if rep.Errors <= 3 {
						t.Errorf("status %d: %s", code, out)
					}
				} else {
					rep.Prompts += len(prompts)
					rep.Tokens += tokens
					latencies = append(latencies, lat)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.Wall = time.Since(start)
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		rep.P50 = latencies[n/2]
		rep.P99 = latencies[min(n-1, n*99/100)]
		rep.Max = latencies[n-1]
	}
	m := ts.metrics(t)
	rep.HitRatio = m["lmscore_cache_hit_ratio"]
	rep.Computed = m["lmscore_tokens_computed_total"]
	assert.Zero(t, rep.Errors, "errors under load")
	assert.Positive(t, rep.Requests)
	assert.Zero(t, model.CacheStats().BlocksUsed, "KV blocks still held after the load")
	assert.Zero(t, m[`lmscore_kv_blocks{state="used"}`])
	assert.Zero(t, m[`lmscore_requests_in_flight`])
	assert.Zero(t, m[`lmscore_requests_queued`])

	ts.stop(t)
	// Goroutines: client and server connections close asynchronously; give
	// them a grace period to be gone.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > baseline {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the load test, %d before:\n%s", g, baseline, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("load: %d clients: %v", clients, rep)
	return rep
}

func mustJSON(v any) string {
	b, err := jsonMarshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestLoadFake(t *testing.T) {
	loadTest(t, newFakeModel(), 50, loadSeconds(t), 200)
}
