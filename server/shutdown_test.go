package server

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGracefulShutdown: cancelling Serve's context lets the requests in
// flight finish with their answers, then refuses new connections.
func TestGracefulShutdown(t *testing.T) {
	fake := newFakeModel()
	fake.delay = 300 * time.Millisecond
	ts := startServer(t, fake, Config{})
	const n = 5
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = ts.post(t, "/v1/completions", `{"model":"fake","prompt":"in flight","echo":true,"max_tokens":0,"logprobs":1}`)
		}()
	}
	waitFor(t, func() bool { return fake.calls.Load() == 1 && ts.srv.inFlight.Load() == n })
	ts.stop(t) // returns once Serve has returned
	wg.Wait()
	for i, c := range codes {
		assert.Equal(t, http.StatusOK, c, "request %d was in flight at shutdown", i)
	}
	_, err := http.Get(ts.url + "/health")
	assert.Error(t, err, "no new connections after shutdown")
	assert.Zero(t, fake.CacheStats().BlocksUsed)
}

// TestSIGTERM: the way `lmscore serve` runs, SIGTERM cancels Serve's
// context; the request in flight still gets its answer.
func TestSIGTERM(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fake := newFakeModel()
	fake.delay = 300 * time.Millisecond
	srv, err := New(fake, Config{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	got := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/v1/completions", "application/json",
			stringsReader(`{"model":"fake","prompt":"x","echo":true,"max_tokens":0,"logprobs":0}`))
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	waitFor(t, func() bool { return fake.calls.Load() == 1 })
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after SIGTERM")
	}
	assert.Equal(t, http.StatusOK, <-got, "the request in flight at SIGTERM completes")
}

// TestShutdownTimeout: past Config.ShutdownTimeout the running batch is
// cancelled and Serve returns an error saying so instead of hanging.
func TestShutdownTimeout(t *testing.T) {
	fake := newFakeModel()
	fake.delay = time.Hour // cancelled through Score's context
	srv, err := New(fake, Config{ShutdownTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	go http.Post("http://"+ln.Addr().String()+"/v1/completions", "application/json",
		stringsReader(`{"model":"fake","prompt":"x","echo":true,"max_tokens":0,"logprobs":0}`))
	waitFor(t, func() bool { return fake.calls.Load() == 1 })
	cancel()
	select {
	case err := <-served:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "shutdown")
	case <-time.After(10 * time.Second):
		t.Fatal("Serve hung past its shutdown timeout")
	}
}
