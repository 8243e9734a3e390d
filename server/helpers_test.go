package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testServer is a Server listening on a loopback port, as in production:
// every test talks to it over real HTTP.
type testServer struct {
	srv    *Server
	url    string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

func startServer(t testing.TB, model Scorer, cfg Config) *testServer {
	t.Helper()
	srv, err := New(model, cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{
		srv:    srv,
		url:    "http://" + ln.Addr().String(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop shuts the server down gracefully and waits for Serve to return.
func (ts *testServer) stop(t testing.TB) {
	if ts.cancel == nil {
		return
	}
	// Close the client's idle connections first: http.Server.Shutdown
	// counts a connection that never carried a request as busy for 5 s.
	ts.client.CloseIdleConnections()
	ts.cancel()
	ts.cancel = nil
	select {
	case err := <-ts.done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	ts.client.CloseIdleConnections()
}

func (ts *testServer) do(t testing.TB, method, path, body string, header map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := ts.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

func (ts *testServer) post(t testing.TB, path, body string) (int, []byte) {
	t.Helper()
	return ts.do(t, http.MethodPost, path, body, nil)
}

func (ts *testServer) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	return ts.do(t, http.MethodGet, path, "", nil)
}

// complete posts a completions request and decodes a 200 answer.
func (ts *testServer) complete(t testing.TB, body any) completionJSON {
	t.Helper()
	data, err := json.Marshal(body)
	require.NoError(t, err)
	code, out := ts.post(t, "/v1/completions", string(data))
	require.Equal(t, http.StatusOK, code, "body: %s", out)
	var resp completionJSON
	require.NoError(t, json.Unmarshal(out, &resp), "body: %s", out)
	return resp
}

// completionJSON is a completions response as a client decodes it.
type completionJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index    int    `json:"index"`
		Text     string `json:"text"`
		Logprobs *struct {
			Tokens        []string             `json:"tokens"`
			TokenLogprobs []*float64           `json:"token_logprobs"`
			TopLogprobs   []map[string]float64 `json:"top_logprobs"`
			TextOffset    []int                `json:"text_offset"`
		} `json:"logprobs"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// errorJSON is an OpenAI error object.
type errorJSON struct {
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// metrics scrapes /metrics into "name{labels}" -> value, checking each line
// against the text exposition format on the way.
func (ts *testServer) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	code, body := ts.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	return parseMetrics(t, body)
}

func parseMetrics(t testing.TB, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			require.Len(t, f, 4, "TYPE line %q", line)
			typed[f[2]] = f[3]
			continue
		}
		if strings.HasPrefix(line, "#") {
			require.True(t, strings.HasPrefix(line, "# HELP "), "comment line %q", line)
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		require.Positive(t, sp, "sample line %q", line)
		name, val := line[:sp], line[sp+1:]
		v, err := strconv.ParseFloat(val, 64)
		require.NoError(t, err, "sample line %q", line)
		base := name
		if i := strings.IndexByte(base, '{'); i >= 0 {
			base = base[:i]
		}
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(base, "_bucket"), "_sum"), "_count")
		_, ok := typed[family]
		if !ok {
			_, ok = typed[base]
		}
		require.True(t, ok, "sample %q has no TYPE line before it", line)
		_, dup := out[name]
		require.False(t, dup, "sample %q repeated", name)
		out[name] = v
	}
	return out
}
