package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetricsExposition checks the text format and that each metric the
// issue asks for is there and counts what it says.
func TestMetricsExposition(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{})
	// 40 tokens shared, then 5 of its own: the second request reuses the
	// first two full 16-token blocks.
	prefix := strings.Repeat("p", 39)
	for _, q := range []string{"one??", "two??"} {
		ts.complete(t, map[string]any{"model": "fake", "prompt": prefix + q, "echo": true, "max_tokens": 0, "logprobs": 1})
	}
	ts.post(t, "/v1/completions", `{"model":"nope","prompt":"x","max_tokens":0}`)

	code, body := ts.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	families := parseFamilies(t, body)
	m := parseMetrics(t, body)
	for name, typ := range map[string]dto.MetricType{
		"lmscore_http_requests_total":     dto.MetricType_COUNTER,
		"lmscore_tokens_total":            dto.MetricType_COUNTER,
		"lmscore_tokens_computed_total":   dto.MetricType_COUNTER,
		"lmscore_tokens_reused_total":     dto.MetricType_COUNTER,
		"lmscore_cache_hit_ratio":         dto.MetricType_GAUGE,
		"lmscore_kv_blocks":               dto.MetricType_GAUGE,
		"lmscore_step_duration_seconds":   dto.MetricType_HISTOGRAM,
		"lmscore_batch_prompts":           dto.MetricType_HISTOGRAM,
		"lmscore_connections_open":        dto.MetricType_GAUGE,
		"lmscore_output_cache_hits_total": dto.MetricType_COUNTER,
		// What client_golang's standard collectors bring.
		"go_goroutines":                 dto.MetricType_GAUGE,
		"go_memstats_heap_alloc_bytes":  dto.MetricType_GAUGE,
		"go_gc_duration_seconds":        dto.MetricType_SUMMARY,
		"process_cpu_seconds_total":     dto.MetricType_COUNTER,
		"process_resident_memory_bytes": dto.MetricType_GAUGE,
		"process_open_fds":              dto.MetricType_GAUGE,
	} {
		f, ok := families[name]
		if assert.True(t, ok, "family %s missing", name) {
			assert.Equal(t, typ, f.GetType(), name)
			assert.NotEmpty(t, f.GetHelp(), name)
		}
	}

	assert.Equal(t, 2.0, m[`lmscore_http_requests_total{code="200",path="/v1/completions"}`])
	assert.Equal(t, 1.0, m[`lmscore_http_requests_total{code="404",path="/v1/completions"}`])
	assert.Equal(t, 2.0, m[`lmscore_prompts_total`])
	// Inputs: each prompt is 45 tokens, its last one a target only.
	assert.Equal(t, 88.0, m[`lmscore_tokens_total`])
	assert.Equal(t, 32.0, m[`lmscore_tokens_reused_total`])
	assert.Equal(t, 56.0, m[`lmscore_tokens_computed_total`])
	assert.InDelta(t, 1-56.0/88.0, m[`lmscore_cache_hit_ratio`], 1e-12)
	assert.Equal(t, 0.0, m[`lmscore_kv_blocks{state="used"}`])
	assert.Equal(t, float64(fake.capacity), m[`lmscore_kv_blocks{state="free"}`])
	assert.Equal(t, 2.0, m[`lmscore_kv_blocks{state="free_cached"}`], "the two shared full blocks")

	// Histograms: cumulative buckets ending in +Inf == count.
	for _, h := range []string{"lmscore_step_duration_seconds", "lmscore_request_duration_seconds", "lmscore_score_call_duration_seconds"} {
		prev := 0.0
		for _, le := range latencyBuckets {
			v, ok := m[fmt.Sprintf(`%s_bucket{le="%s"}`, h, promFloat(le))]
			require.True(t, ok, "%s bucket %v", h, le)
			assert.GreaterOrEqual(t, v, prev)
			prev = v
		}
		assert.Equal(t, m[h+`_count`], m[h+`_bucket{le="+Inf"}`])
		assert.GreaterOrEqual(t, m[h+`_bucket{le="+Inf"}`], prev)
	}
	assert.Equal(t, 2.0, m[`lmscore_step_duration_seconds_count`], "the fake reports one step per request")
	assert.Equal(t, 2.0, m[`lmscore_request_duration_seconds_count`])
	assert.Positive(t, m[`lmscore_step_duration_seconds_sum`])
}

// TestMetricsNamesKept pins every lmscore_ family the hand-written
// exposition had, so that a rename (which breaks dashboards and alerts) is
// a decision, not an accident.
func TestMetricsNamesKept(t *testing.T) {
	ts := startServer(t, newFakeModel(), Config{})
	// A labelled family shows only once it has a sample.
	code, _ := ts.get(t, "/health")
	require.Equal(t, http.StatusOK, code)
	code, body := ts.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	var got []string
	for name := range parseFamilies(t, body) {
		if strings.HasPrefix(name, "lmscore_") {
			got = append(got, name)
		}
	}
	assert.ElementsMatch(t, []string{
		"lmscore_http_requests_total", "lmscore_prompts_total", "lmscore_score_calls_total", "lmscore_score_errors_total",
		"lmscore_tokens_total", "lmscore_tokens_computed_total", "lmscore_tokens_reused_total", "lmscore_tokens_kv_reused_total",
		"lmscore_tokens_recomputed_total", "lmscore_kv_evictions_total", "lmscore_cache_hit_ratio",
		"lmscore_kv_blocks", "lmscore_kv_blocks_total", "lmscore_kv_block_bytes",
		"lmscore_output_cache_hits_total", "lmscore_output_cache_evictions_total", "lmscore_output_cache_blocks",
		"lmscore_output_cache_bytes", "lmscore_output_cache_budget_bytes",
		"lmscore_requests_in_flight", "lmscore_requests_queued", "lmscore_connections_open", "lmscore_connections_rejected_total",
		"lmscore_step_duration_seconds", "lmscore_score_call_duration_seconds", "lmscore_request_duration_seconds", "lmscore_batch_prompts",
	}, got)
	resp, err := ts.client.Get(ts.url + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain", "the text format unless the scraper asks for another")
}

// TestMetricsLint runs client_golang's linter over the registry. The one
// problem it is allowed is the name kept from before the move to
// client_golang: lmscore_kv_blocks_total is a gauge.
func TestMetricsLint(t *testing.T) {
	m := newMetrics(func() liveStats { return liveStats{} })
	problems, err := testutil.GatherAndLint(m.registry)
	require.NoError(t, err)
	var names []string
	for _, p := range problems {
		names = append(names, p.Metric)
		t.Logf("lint: %s: %s", p.Metric, p.Text)
	}
	assert.Equal(t, []string{"lmscore_kv_blocks_total"}, names)
}
