package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

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
	m := parseMetrics(t, body)
	text := string(body)
	for _, typ := range []string{
		"# TYPE lmscore_http_requests_total counter",
		"# TYPE lmscore_tokens_total counter",
		"# TYPE lmscore_tokens_computed_total counter",
		"# TYPE lmscore_tokens_reused_total counter",
		"# TYPE lmscore_cache_hit_ratio gauge",
		"# TYPE lmscore_kv_blocks gauge",
		"# TYPE lmscore_step_duration_seconds histogram",
	} {
		assert.Contains(t, text, typ)
	}

	assert.Equal(t, 2.0, m[`lmscore_http_requests_total{path="/v1/completions",code="200"}`])
	assert.Equal(t, 1.0, m[`lmscore_http_requests_total{path="/v1/completions",code="404"}`])
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

func TestHistogramBuckets(t *testing.T) {
	h := newHistogram([]float64{1, 2, 5})
	for _, v := range []float64{0.5, 1, 1.5, 5, 7} {
		h.observe(v)
	}
	var b strings.Builder
	writeHistogram(&b, "x", "help", h)
	assert.Equal(t, `# HELP x help
# TYPE x histogram
x_bucket{le="1"} 2
x_bucket{le="2"} 3
x_bucket{le="5"} 4
x_bucket{le="+Inf"} 5
x_sum 15
x_count 5
`, b.String())
}
