package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// metrics scrapes /metrics into "name{labels}" -> value (labels sorted by
// name, as client_golang writes them), parsed by Prometheus's own text
// parser.
func (ts *testServer) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	code, body := ts.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	return parseMetrics(t, body)
}

func parseMetrics(t testing.TB, body []byte) map[string]float64 {
	t.Helper()
	families := parseFamilies(t, body)
	out := map[string]float64{}
	add := func(name string, labels []*dto.LabelPair, extra string, v float64) {
		var parts []string
		for _, l := range labels {
			parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		if extra != "" {
			parts = append(parts, extra)
		}
		sort.Strings(parts)
		key := name
		if len(parts) > 0 {
			key += "{" + strings.Join(parts, ",") + "}"
		}
		_, dup := out[key]
		require.False(t, dup, "sample %q repeated", key)
		out[key] = v
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			lp := m.GetLabel()
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, lp, "", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, lp, "", m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, lp, "", m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				// The parser keeps the +Inf bucket as a bucket; a histogram
				// built in memory leaves it implicit.
				h := m.GetHistogram()
				inf := false
				for _, b := range h.GetBucket() {
					inf = inf || math.IsInf(b.GetUpperBound(), 1)
					add(name+"_bucket", lp, fmt.Sprintf("le=%q", promFloat(b.GetUpperBound())), float64(b.GetCumulativeCount()))
				}
				if !inf {
					add(name+"_bucket", lp, `le="+Inf"`, float64(h.GetSampleCount()))
				}
				add(name+"_sum", lp, "", h.GetSampleSum())
				add(name+"_count", lp, "", float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, lp, fmt.Sprintf("quantile=%q", promFloat(q.GetQuantile())), q.GetValue())
				}
				add(name+"_sum", lp, "", s.GetSampleSum())
				add(name+"_count", lp, "", float64(s.GetSampleCount()))
			default:
				t.Fatalf("metric family %s has type %v", name, f.GetType())
			}
		}
	}
	return out
}

// parseFamilies parses a /metrics body in the Prometheus text format,
// failing the test on anything the parser refuses.
func parseFamilies(t testing.TB, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "/metrics is not Prometheus text:\n%s", body)
	return families
}

// promFloat formats a bucket bound as the text format writes it.
func promFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
