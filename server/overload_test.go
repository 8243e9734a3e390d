package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
)

// TestOverload is the load test: concurrent clients for a while,
// about 10% of their requests bad (oversized prompts, broken JSON, bodies
// that stall, clients that hang up), all on loopback. It checks that no
// answer is a 5xx other than 503, that identical prompts get bitwise
// identical answers throughout, and that memory after the load is within
// 10% of memory after the warm-up. Short by default (10 clients, 3 s);
// `make test-load` runs 50 clients for 30 s (LMSCORE_LOAD_CLIENTS,
// LMSCORE_SERVE_LOAD_SECONDS).
func TestOverload(t *testing.T) {
	clients, d := 10, 3*time.Second
	if s := os.Getenv("LMSCORE_LOAD_CLIENTS"); s != "" {
		var err error
		clients, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	if os.Getenv("LMSCORE_SERVE_LOAD_SECONDS") != "" {
		d = loadSeconds(t)
	}
	// LMSCORE_LOAD_MODEL=stories260K runs the load on the real model through
	// the native CPU core (make test-load does), so that what the core and
	// its KV pool hold after a flood is measured too.
	var scorer Scorer
	if os.Getenv("LMSCORE_LOAD_MODEL") == "stories260K" {
		scorer = openStories(t, 0, lmscore.Options{KVMemory: 64 << 20})
	} else {
		fake := newFakeModel()
		fake.capacity = 1 << 12 // the fake's own cache, bounded like the real pool
		scorer = fake
	}
	ts := startServer(t, scorer, Config{ModelName: "fake", BodyReadTimeout: 300 * time.Millisecond, OutputCacheBytes: 4 << 20, MaxPrompts: 64})
	addr := strings.TrimPrefix(ts.url, "http://")

	// The valid requests: a fixed set, so that every answer can be checked
	// against the first one given.
	rng := rand.New(rand.NewPCG(7, 7))
	var valid []string
	for i := range 24 {
		prompts := make([][]int32, 1+i%8)
		for j := range prompts {
			prompts[j] = make([]int32, 20+rng.IntN(300))
			for k := range prompts[j] {
				prompts[j][k] = 3 + rng.Int32N(256)
			}
		}
		valid = append(valid, fmt.Sprintf(`{"model":"fake","prompt":%s,"echo":true,"max_tokens":%d,"logprobs":%d}`, mustJSON(prompts), i%2, 1+i%5))
	}
	want := make([][]byte, len(valid))
	for i, b := range valid {
		code, out := ts.post(t, "/v1/completions", b)
		require.Equal(t, http.StatusOK, code, "%s", out)
		want[i] = choicesOf(out)
	}
	huge := `{"model":"fake","prompt":"` + strings.Repeat("x", 1<<20) + `","echo":true,"max_tokens":0,"logprobs":1}`

	var mu sync.Mutex
	codes := map[int]int{}
	mismatches, transportErrors := 0, 0
	run := func(d time.Duration, seed uint64) {
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(c)))
				for time.Now().Before(stop) {
					code, bad := -1, false
					switch k := r.IntN(40); {
					case k == 0: // oversized prompt
						code, _ = ts.post(t, "/v1/completions", huge)
					case k == 1: // broken JSON
						code, _ = ts.post(t, "/v1/completions", valid[0][:len(valid[0])/2])
					case k == 2: // a body that stalls
						code = stalledBody(addr)
					case k == 3: // a client that hangs up
						ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+r.IntN(5))*time.Millisecond)
						req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/completions", strings.NewReader(valid[r.IntN(len(valid))]))
						if resp, err := ts.client.Do(req); err == nil {
							code = resp.StatusCode
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
						cancel()
					default:
						i := r.IntN(len(valid))
						var out []byte
						code, out = ts.post(t, "/v1/completions", valid[i])
						bad = code == http.StatusOK && !bytes.Equal(choicesOf(out), want[i])
					}
					mu.Lock()
					codes[code]++
					if bad {
						mismatches++
					}
					if code == -1 {
						transportErrors++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}

	run(max(d/5, time.Second), 1) // warm-up
	warmHeap, warmRSS := heapAfterGC(), vmRSS(t)
	start := time.Now()
	run(d, 2)
	wall := time.Since(start)
	ts.client.CloseIdleConnections()
	afterHeap, afterRSS := heapAfterGC(), vmRSS(t)

	total := 0
	for code, n := range codes {
		total += n
		if code >= 500 && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers with status %d", n, code)
		}
	}
	m := ts.metrics(t)
	for k, v := range m {
		if strings.HasPrefix(k, "lmscore_http_requests_total{") && strings.Contains(k, `code="5`) && !strings.Contains(k, `code="503"`) {
			t.Errorf("%s %v", k, v)
		}
	}
	t.Logf("overload: %d clients, %v: %d requests (%.0f/s), statuses %v (-1: the client hung up first); 499 counted %v; %d mismatched answers",
		clients, wall.Round(time.Millisecond), total, float64(total)/wall.Seconds(), codes, m[`lmscore_http_requests_total{code="499",path="/v1/completions"}`], mismatches)
	t.Logf("memory: heap in use %d MB after warm-up, %d MB after the load; RSS %d MB, %d MB", warmHeap>>20, afterHeap>>20, warmRSS>>20, afterRSS>>20)
	assert.Zero(t, mismatches, "identical prompts gave different answers")
	assert.Positive(t, codes[http.StatusOK])
	assert.LessOrEqual(t, float64(afterRSS), 1.1*float64(warmRSS), "RSS after the load")
	assert.LessOrEqual(t, float64(afterHeap), 1.1*float64(warmHeap)+float64(1<<20), "heap after the load")
}

// choicesOf is the choices of an answer, as bytes: everything but its id
// and creation time.
func choicesOf(body []byte) []byte {
	i := bytes.Index(body, []byte(`"choices":`))
	if i < 0 {
		return body
	}
	return body[i:]
}

// stalledBody sends half a body and stops; it returns the status the
// server answers with (-1: none).
func stalledBody(addr string) int {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return -1
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

// vmRSS is the process's resident set (VmRSS of /proc/self/status), or its
// Go runtime's memory from the OS where /proc is absent.
func vmRSS(t testing.TB) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, err := strconv.ParseUint(f[1], 10, 64)
				require.NoError(t, err)
				return kb << 10
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Sys - ms.HeapReleased
}

// FuzzCompletions: no request body makes the completions handler panic or
// answer a 5xx other than 503.
func FuzzCompletions(f *testing.F) {
	for _, seed := range []string{
		`{"model":"fake","prompt":"hello","echo":true,"max_tokens":0,"logprobs":1}`,
		`{"model":"fake","prompt":[[1,40,41],[7,8]],"echo":true,"max_tokens":1,"logprobs":3,"temperature":0}`,
		`{"model":"fake","prompt":["a","b"],"max_tokens":1}`,
		`{"model":"fake","prompt":[1,2,3],"echo":true,"max_tokens":0,"logprobs":20}`,
		`{"model":"fake","prompt":"\u0000\ud800","echo":true,"max_tokens":0}`,
		`{"model":"fake","prompt":[],"max_tokens":0}`, `{"prompt":{"a":1}}`, `[1,2]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	fake := newFakeModel()
	fake.nCtx = 256
	srv, err := New(fake, Config{BatchWindow: -1, MaxPrompts: 16})
	require.NoError(f, err)
	f.Cleanup(func() { srv.Close() })
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := newRecorder()
		req, _ := http.NewRequest(http.MethodPost, "/v1/completions", bytes.NewReader(body))
		h.ServeHTTP(rec, req)
		if rec.code >= 500 && rec.code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q: %s", rec.code, body, rec.body.Bytes())
		}
		if rec.code == http.StatusOK && !json.Valid(rec.body.Bytes()) {
			t.Fatalf("invalid JSON answer for %q", body)
		}
	})
}
