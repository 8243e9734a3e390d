package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the limits on bad input and load: each finding of the issue
// "bounded memory, threads and time under bad input and load".

// tokenizeCounter records the longest text the server tokenizes.
type tokenizeCounter struct {
	*fakeModel
	longest atomic.Int64
}

func (c *tokenizeCounter) Tokenize(text string, addBOS bool) ([]int32, error) {
	if n := int64(len(text)); n > c.longest.Load() {
		c.longest.Store(n)
	}
	return c.fakeModel.Tokenize(text, addBOS)
}

func (c *tokenizeCounter) TokenizeSpecial(text string, addBOS, parseSpecial bool) ([]int32, error) {
	if n := int64(len(text)); n > c.longest.Load() {
		c.longest.Store(n)
	}
	return c.fakeModel.TokenizeSpecial(text, addBOS, parseSpecial)
}

// allocDuring is the bytes allocated (runtime.MemStats.TotalAlloc) while f
// runs, by the whole process: client and server.
func allocDuring(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// heapAfterGC is the live heap once garbage and pooled buffers are freed
// and the memory returned to the OS.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC() // sync.Pool's victim cache goes on the second
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func errorOf(t testing.TB, body []byte) (typ, code, msg string) {
	t.Helper()
	var e errorJSON
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.NotNil(t, e.Error, "%s", body)
	if e.Error.Code != nil {
		code = *e.Error.Code
	}
	return e.Error.Type, code, e.Error.Message
}

// TestHugeTextPromptRefusedBeforeTokenizing: a 10 MB text prompt is refused
// on its byte count (it cannot have fewer tokens than bytes / the longest
// token's bytes), never tokenized: before, the whole text went through the
// tokenizer first.
func TestHugeTextPromptRefusedBeforeTokenizing(t *testing.T) {
	model := &tokenizeCounter{fakeModel: newFakeModel()}
	ts := startServer(t, model, Config{})
	huge := strings.Repeat("All work and no play makes Jack a dull boy. ", 10<<20/44)
	body, _ := json.Marshal(map[string]any{"model": "fake", "prompt": huge, "echo": true, "max_tokens": 0, "logprobs": 1})
	var code int
	var out []byte
	var took time.Duration
	var alloc uint64
	for range 3 { // the best of 3: the machine is shared
		start := time.Now()
		a := allocDuring(func() { code, out = ts.post(t, "/v1/completions", string(body)) })
		if d := time.Since(start); took == 0 || d < took {
			took, alloc = d, a
		}
		require.Equal(t, http.StatusBadRequest, code, "%s", out)
	}
	_, ecode, msg := errorOf(t, out)
	assert.Equal(t, "context_length_exceeded", ecode)
	assert.Contains(t, msg, "a prompt is 10485728 bytes of text")
	assert.Zero(t, model.longest.Load(), "the text was tokenized")
	// The figure is 100 ms (40-75 ms on a quiet 2-core machine);
	// the bound is generous because the suite shares the cores. What must
	// hold exactly is above: nothing was tokenized.
	assert.Less(t, took, time.Second)
	// The body itself is read and decoded (about 4 copies of 10 MB); the
	// fake's tokenizer alone would have added 40 MB of ids and more.
	assert.Less(t, alloc, uint64(80<<20), "allocated %d MB", alloc>>20)
	t.Logf("10 MB text prompt: 400 in %v, %d MB allocated (client and server)", took.Round(time.Millisecond), alloc>>20)

	// A text within the bound is still tokenized and checked exactly.
	fit := strings.Repeat("x", model.nCtx) // nCtx tokens + BOS: one over
	body, _ = json.Marshal(map[string]any{"model": "fake", "prompt": fit, "echo": true, "max_tokens": 0, "logprobs": 1})
	code, out = ts.post(t, "/v1/completions", string(body))
	require.Equal(t, http.StatusBadRequest, code, "%s", out)
	_, _, msg = errorOf(t, out)
	assert.Contains(t, msg, "prompt 0 has 4097 tokens")
	assert.Equal(t, int64(model.nCtx), model.longest.Load())
}

// TestResponseSizeRefusedBeforeScoring: 512 prompts x 500 tokens with
// logprobs 20 (a 141 MB answer before) is refused before anything is
// scored, with a 400 naming the limit; a smaller one still passes.
func TestResponseSizeRefusedBeforeScoring(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{})
	prompts := make([][]int32, 512)
	for i := range prompts {
		prompts[i] = make([]int32, 500)
		for j := range prompts[i] {
			prompts[i][j] = 3 + int32((i*7+j*13)%256)
		}
	}
	body, _ := json.Marshal(map[string]any{"model": "fake", "prompt": prompts, "echo": true, "max_tokens": 0, "logprobs": 20})
	var code int
	var out []byte
	alloc := allocDuring(func() { code, out = ts.post(t, "/v1/completions", string(body)) })
	require.Equal(t, http.StatusBadRequest, code, "%.300s", out)
	_, ecode, msg := errorOf(t, out)
	assert.Equal(t, "response_too_large", ecode)
	assert.Contains(t, msg, "over this server's limit of 64 MB per response")
	assert.Zero(t, fake.calls.Load(), "the model was called")
	assert.Less(t, alloc, uint64(150<<20), "allocated %d MB", alloc>>20)
	t.Logf("512 x 500 tokens, logprobs 20: 400 before scoring; %d MB allocated (client and server): %s", alloc>>20, msg)

	// 32 of those prompts fit, and the answer is as large as estimated,
	// give or take.
	body, _ = json.Marshal(map[string]any{"model": "fake", "prompt": prompts[:32], "echo": true, "max_tokens": 0, "logprobs": 20})
	code, out = ts.post(t, "/v1/completions", string(body))
	require.Equal(t, http.StatusOK, code, "%.300s", out)
	t.Logf("32 x 500 tokens, logprobs 20: %d bytes", len(out))
}

// TestResponseWrittenInPieces: a large answer is encoded one choice at a
// time, so the server allocates about the response's size once, not its
// Go objects plus several growing copies (json.Marshal of the whole).
func TestResponseWrittenInPieces(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{OutputCacheBytes: -1})
	prompts := make([][]int32, 64)
	for i := range prompts {
		prompts[i] = make([]int32, 500)
		for j := range prompts[i] {
			prompts[i][j] = 3 + int32((i*7+j*13)%256)
		}
	}
	body, _ := json.Marshal(map[string]any{"model": "fake", "prompt": prompts, "echo": true, "max_tokens": 0, "logprobs": 5})
	// The fake's own work (a 259-entry distribution per position) and the
	// client's read are the same either way; measure them apart.
	var scoreAlloc uint64
	fake.onCall = func(int, lmscore.ScoreOptions) {}
	var size int
	total := allocDuring(func() {
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/v1/completions", strings.NewReader(string(body)))
		resp, err := ts.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		n, _ := bufio.NewReader(resp.Body).Discard(math.MaxInt) // io.EOF at the end
		size = n
	})
	scoreAlloc = allocDuring(func() {
		_, _, err := fake.Score(context.Background(), []lmscore.Request{{ContextTokens: prompts[0][:1], ContinuationTokens: prompts[0][1:]}}, lmscore.ScoreOptions{TopN: 5})
		require.NoError(t, err)
	}) * uint64(len(prompts))
	server := total - scoreAlloc
	t.Logf("64 x 500 tokens, logprobs 5: a %d MB answer; %d MB allocated besides the model's %d MB", size>>20, server>>20, scoreAlloc>>20)
	assert.Less(t, server, uint64(7*size), "the server allocated %d MB for a %d MB answer", server>>20, size>>20)
}

// TestClientGoneIs499: a client that hangs up while its request is scored
// is counted as code 499, not as a server error.
func TestClientGoneIs499(t *testing.T) {
	fake := newFakeModel()
	fake.delay = 300 * time.Millisecond
	ts := startServer(t, fake, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/completions",
		strings.NewReader(`{"model":"fake","prompt":"hello","echo":true,"max_tokens":0,"logprobs":1}`))
	_, err := ts.client.Do(req)
	require.Error(t, err)
	waitFor(t, func() bool {
		return ts.metrics(t)[`lmscore_http_requests_total{code="499",path="/v1/completions"}`] == 1
	})
	m := ts.metrics(t)
	assert.Zero(t, m[`lmscore_http_requests_total{code="500",path="/v1/completions"}`])
}

// rawRequest opens a connection and writes head (and body) as they are.
func rawConn(t *testing.T, ts *testServer) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowBodyTimesOut: a body that stops arriving is answered 408 after
// BodyReadTimeout; before, the handler waited for it forever.
func TestSlowBodyTimesOut(t *testing.T) {
	ts := startServer(t, newFakeModel(), Config{BodyReadTimeout: 200 * time.Millisecond})
	c := rawConn(t, ts)
	start := time.Now()
	_, err := fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "no answer to a stalled body")
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	assert.Less(t, time.Since(start), 2*time.Second)
	t.Logf("stalled body: %d after %v", resp.StatusCode, time.Since(start).Round(time.Millisecond))
}

// TestConnectionLimit: connections beyond MaxConnections get a 503 with
// Retry-After at once; once one closes, a new one is served.
func TestConnectionLimit(t *testing.T) {
	ts := startServer(t, newFakeModel(), Config{MaxConnections: 2})
	held := []net.Conn{rawConn(t, ts), rawConn(t, ts)}
	waitFor(t, func() bool { return ts.srv.conns.Open() == 2 })
	c := rawConn(t, ts)
	_, err := fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	held[0].Close()
	waitFor(t, func() bool { return ts.srv.conns.Open() < 2 })
	code, _ := ts.get(t, "/health")
	assert.Equal(t, http.StatusOK, code)
	held[1].Close()
	m := ts.metrics(t)
	assert.Equal(t, 1.0, m["lmscore_connections_rejected_total"])
}

// TestActiveRequestLimit: a request beyond MaxActiveRequests is answered
// 503 with Retry-After, before its body is read; the ones within finish.
func TestActiveRequestLimit(t *testing.T) {
	fake := newFakeModel()
	fake.delay = 300 * time.Millisecond
	ts := startServer(t, fake, Config{MaxActiveRequests: 2, BatchWindow: -1, RetryAfter: 2 * time.Second})
	body := `{"model":"fake","prompt":"hello","echo":true,"max_tokens":0,"logprobs":1}`
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i], _ = ts.post(t, "/v1/completions", body) }()
	}
	waitFor(t, func() bool { return len(ts.srv.active) == 2 })
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/v1/completions", strings.NewReader(body))
	resp, err := ts.client.Do(req)
	require.NoError(t, err)
	var e errorJSON
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"))
	assert.Equal(t, "overloaded", *e.Error.Code)
	wg.Wait()
	assert.Equal(t, []int{200, 200}, codes)
}

// TestNonFiniteLogprobIsNamedError: a NaN or +Inf from the model is one
// named error (500, type model_error, code non_finite_logprob) naming the
// prompt and the token; -Inf (probability 0) is a number. Before, NaN was
// a bare internal_error and +Inf in a top list failed the encoding.
func TestNonFiniteLogprobIsNamedError(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{OutputCacheBytes: -1})
	cases := []struct {
		name    string
		corrupt func([]lmscore.Result)
		want    string
	}{
		{"NaN", func(r []lmscore.Result) { r[1].TokenLogProbs[2] = float32(math.NaN()) }, "log-probability of NaN for prompt 1 at token 3"},
		{"+Inf top", func(r []lmscore.Result) { r[0].TopLogProbs[4][1].LogProb = float32(math.Inf(1)) }, "log-probability of +Inf for prompt 0 at token 5 in the top list"},
	}
	body := `{"model":"fake","prompt":["hello world","goodbye world"],"echo":true,"max_tokens":0,"logprobs":2}`
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake.corrupt = c.corrupt
			code, out := ts.post(t, "/v1/completions", body)
			require.Equal(t, http.StatusInternalServerError, code, "%s", out)
			typ, ecode, msg := errorOf(t, out)
			assert.Equal(t, "model_error", typ)
			assert.Equal(t, "non_finite_logprob", ecode)
			assert.Contains(t, msg, c.want)
		})
	}
	// The library's own check (lmscore.ErrNonFinite from Score) gives the
	// same named error.
	fake.corrupt = nil
	fake.fail = func([]lmscore.Request) error {
		return &lmscore.RequestError{Index: 1, Err: fmt.Errorf("%w: continuation token 2 has a log-probability of NaN", lmscore.ErrNonFinite)}
	}
	code, out := ts.post(t, "/v1/completions", body)
	require.Equal(t, http.StatusInternalServerError, code, "%s", out)
	typ, ecode, msg := errorOf(t, out)
	assert.Equal(t, "model_error", typ)
	assert.Equal(t, "non_finite_logprob", ecode)
	assert.Contains(t, msg, "log-probability of NaN")
	fake.fail = nil

	fake.corrupt = func(r []lmscore.Result) { r[0].TokenLogProbs[0] = float32(math.Inf(-1)) }
	resp := ts.complete(t, json.RawMessage(body))
	assert.Equal(t, -math.MaxFloat32, *resp.Choices[0].Logprobs.TokenLogprobs[1])
}

// TestOutputCacheBytesCoverMemory: the output cache's byte count covers
// what its blocks take on the heap, top-N lists included, so that its
// budget bounds memory.
func TestOutputCacheBytesCoverMemory(t *testing.T) {
	for _, topN := range []int{1, 5, 20} {
		t.Run(fmt.Sprint("top", topN), func(t *testing.T) {
			store, err := lmscore.NewOutputStore("m", 16, 1<<40)
			require.NoError(t, err)
			const prompts, n = 64, 1024
			lp := make([]float32, n-1)
			top := make([][]lmscore.TokenLogProb, n-1)
			for i := range top {
				top[i] = make([]lmscore.TokenLogProb, topN)
			}
			toks := make([]int32, n)
			before := heapAfterGC()
			for p := range prompts {
				for j := range toks {
					toks[j] = int32(p*n + j)
				}
				store.Store(toks, 1, lp, top, topN)
			}
			after := heapAfterGC()
			st := store.Stats()
			grew := int64(after) - int64(before)
			t.Logf("top-%d: %d blocks, Stats().Bytes %d, heap grew %d (%.2fx)", topN, st.Blocks, st.Bytes, grew, float64(grew)/float64(st.Bytes))
			// The count is meant to be the heap itself (outputBlockBytes);
			// 1.25 leaves room for allocation rounding and the map's growth.
			assert.LessOrEqual(t, float64(grew), 1.25*float64(st.Bytes), "the store's byte count misses part of its memory")
			assert.GreaterOrEqual(t, float64(grew), 0.6*float64(st.Bytes), "the store's byte count overstates its memory")
			runtime.KeepAlive(store)
		})
	}
}
