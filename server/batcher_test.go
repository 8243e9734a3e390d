package server

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBatchingWindow: requests that arrive together are scored in one call,
// with the top-N of the call the largest any of them asked for, and each
// gets its own answers back.
func TestBatchingWindow(t *testing.T) {
	fake := newFakeModel()
	var mu sync.Mutex
	var topNs []int
	fake.onCall = func(n int, opts lmscore.ScoreOptions) {
		mu.Lock()
		topNs = append(topNs, opts.TopN)
		mu.Unlock()
	}
	// A window far longer than it takes to send 8 requests on loopback.
	ts := startServer(t, fake, Config{BatchWindow: 500 * time.Millisecond})
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	resps := make([]completionJSON, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resps[i] = ts.complete(t, map[string]any{"model": "fake", "prompt": fmt.Sprintf("shared few-shot prefix, question %d", i), "echo": true, "max_tokens": 0, "logprobs": i % 3})
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(1), fake.calls.Load(), "8 requests inside one window make one Score call")
	assert.Equal(t, []int{n}, fake.sizes)
	assert.Equal(t, []int{2}, topNs)
	for i, r := range resps {
		toks := fake.tokens(fmt.Sprintf("shared few-shot prefix, question %d", i), true)
		lp := r.Choices[0].Logprobs
		require.Len(t, lp.TokenLogprobs, len(toks))
		last := len(toks) - 1
		assert.Equal(t, float64(fakeLogProbs(toks[:last])[toks[last]]), *lp.TokenLogprobs[last])
		// Each answer has the top-N its own request asked for (plus the
		// actual token when it is not among them), not the merged call's.
		assert.LessOrEqual(t, len(lp.TopLogprobs[last]), i%3+1)
	}
	m := ts.metrics(t)
	assert.Equal(t, 1.0, m[`lmscore_batch_prompts_count`])
	assert.Equal(t, 1.0, m[`lmscore_batch_prompts_bucket{le="8"}`])
}

// TestBatchingBusyModel: while the model is busy, requests queue, and the
// next call takes all of them at once, without waiting out another window
// (they have waited longer than that already); MaxMergeTokens splits them.
func TestBatchingBusyModel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxTokens int
		sizes     []int
	}{
		{"merged", 0, []int{1, 4}},
		// Each prompt is 9 tokens: a cap of 10 closes a call after two.
		{"capped", 10, []int{1, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeModel()
			release := make(chan struct{})
			var calls sync.WaitGroup
			calls.Add(1)
			var once sync.Once
			fake.onCall = func(int, lmscore.ScoreOptions) {
				once.Do(func() { calls.Done(); <-release })
			}
			const window = 100 * time.Millisecond
			ts := startServer(t, fake, Config{BatchWindow: window, MaxMergeTokens: tc.maxTokens})
			var wg sync.WaitGroup
			post := func(p string) {
				defer wg.Done()
				ts.complete(t, map[string]any{"model": "fake", "prompt": p, "echo": true, "max_tokens": 0, "logprobs": 0})
			}
			wg.Add(1)
			go post("first...")
			calls.Wait() // the first call is running and held
			for i := range 4 {
				wg.Add(1)
				go post(fmt.Sprintf("queued.%d", i))
			}
			waitFor(t, func() bool { return ts.srv.batcher.queued.Load() == 4 })
			time.Sleep(2 * window) // longer than a window: no more waiting
			released := time.Now()
			close(release)
			wg.Wait()
			assert.Less(t, time.Since(released), window, "queued requests must not wait another window")
			assert.Equal(t, tc.sizes, fake.sizes)
		})
	}
}

// TestClientGoneBeforeItsBatch: a request whose client disconnected while
// it waited is dropped from the batch, and nothing leaks.
func TestClientGoneBeforeItsBatch(t *testing.T) {
	fake := newFakeModel()
	release := make(chan struct{})
	var once sync.Once
	running := make(chan struct{})
	fake.onCall = func(int, lmscore.ScoreOptions) { once.Do(func() { close(running); <-release }) }
	ts := startServer(t, fake, Config{BatchWindow: -1})
	go ts.complete(t, map[string]any{"model": "fake", "prompt": "holds the model", "max_tokens": 0, "echo": true, "logprobs": 0})
	<-running

	client := &http.Client{Timeout: 200 * time.Millisecond}
	_, err := client.Post(ts.url+"/v1/completions", "application/json",
		stringsReader(`{"model":"fake","prompt":"gives up","max_tokens":0,"echo":true,"logprobs":0}`))
	require.Error(t, err, "the client times out while the model is busy")
	waitFor(t, func() bool { return ts.srv.batcher.queued.Load() == 0 })
	close(release)
	ts.complete(t, map[string]any{"model": "fake", "prompt": "after", "max_tokens": 0, "echo": true, "logprobs": 0})
	assert.Equal(t, []int{1, 1}, fake.sizes, "the abandoned request never ran")
}
