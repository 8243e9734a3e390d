package server

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lmscore/lmscore"
)

// histogram is a Prometheus histogram: cumulative counts per upper bound.
// Written by hand because the project takes no Prometheus dependency; the
// text exposition format is small and stable.
type histogram struct {
	bounds []float64 // upper bounds, ascending; +Inf is implicit
	counts []uint64  // per bucket, not cumulative; len(bounds)+1
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v: the le bucket
	h.counts[i]++
	h.sum += v
	h.count++
}

// latencyBuckets span a 100 µs CPU step of a tiny model to a minute-long
// request queued behind a large batch.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// metrics holds the server's counters. One mutex guards all of it: updates
// are a few per request or step, far from contended.
type metrics struct {
	mu sync.Mutex

	requests map[requestKey]uint64 // HTTP requests by endpoint and status

	prompts          uint64 // prompts scored through /v1/completions
	totalTokens      int64  // as a cacheless engine would compute them
	computedTokens   int64
	kvReusedTokens   int64 // the engine's ReusedTokens: K/V not written again
	recomputedTokens int64
	evictions        int64
	scoreCalls       uint64
	scoreErrors      uint64
	rejectedConns    uint64 // connections answered 503 beyond MaxConnections

	stepLatency    *histogram // one model step, from ScoreOptions.OnProgress
	callLatency    *histogram // one Score call
	requestLatency *histogram // one /v1/completions request, queueing included
	batchPrompts   *histogram // prompts merged into one Score call
}

type requestKey struct {
	path string
	code int
}

func newMetrics() *metrics {
	return &metrics{
		requests:       map[requestKey]uint64{},
		stepLatency:    newHistogram(latencyBuckets),
		callLatency:    newHistogram(latencyBuckets),
		requestLatency: newHistogram(latencyBuckets),
		batchPrompts:   newHistogram([]float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}),
	}
}

func (m *metrics) countRequest(path string, code int) {
	m.mu.Lock()
	m.requests[requestKey{path, code}]++
	m.mu.Unlock()
}

func (m *metrics) countRejectedConn() {
	m.mu.Lock()
	m.rejectedConns++
	m.mu.Unlock()
}

// addCachedOnly counts tokens of prompts answered from the output cache
// without a model call: a cacheless engine would have run them.
func (m *metrics) addCachedOnly(tokens int64) {
	if tokens == 0 {
		return
	}
	m.mu.Lock()
	m.totalTokens += tokens
	m.mu.Unlock()
}

func (m *metrics) observeRequest(d time.Duration) {
	m.mu.Lock()
	m.requestLatency.observe(d.Seconds())
	m.mu.Unlock()
}

func (m *metrics) observeStep(d time.Duration) {
	m.mu.Lock()
	m.stepLatency.observe(d.Seconds())
	m.mu.Unlock()
}

// observeCall records one Score call of nPrompts prompts.
func (m *metrics) observeCall(nPrompts int, st lmscore.Stats, wall time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scoreCalls++
	m.callLatency.observe(wall.Seconds())
	m.batchPrompts.observe(float64(nPrompts))
	if err != nil {
		m.scoreErrors++
		return
	}
	m.prompts += uint64(nPrompts)
	m.totalTokens += st.TotalTokens
	m.computedTokens += st.ComputedTokens
	m.kvReusedTokens += st.ReusedTokens
	m.recomputedTokens += st.RecomputedTokens
	m.evictions += st.Evictions
}

// write renders every metric in the Prometheus text exposition format
// (version 0.0.4). cache is read by the caller, outside m.mu.
func (m *metrics) write(w io.Writer, cache lmscore.CacheStats, oc lmscore.OutputStoreStats, inFlight, queued int, conns int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder

	header(&b, "lmscore_http_requests_total", "counter", "HTTP requests served, by endpoint and status code.")
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].path != keys[j].path {
			return keys[i].path < keys[j].path
		}
		return keys[i].code < keys[j].code
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "lmscore_http_requests_total{path=%q,code=\"%d\"} %d\n", k.path, k.code, m.requests[k])
	}

	counter(&b, "lmscore_prompts_total", "Prompts scored.", float64(m.prompts))
	counter(&b, "lmscore_score_calls_total", "Calls into the model's Score, each one merged batch.", float64(m.scoreCalls))
	counter(&b, "lmscore_score_errors_total", "Score calls that failed.", float64(m.scoreErrors))
	counter(&b, "lmscore_tokens_total", "Input tokens of every scored prompt: what an engine without a prefix cache would run through the model.", float64(m.totalTokens))
	counter(&b, "lmscore_tokens_computed_total", "Tokens that ran through the model (their K/V written, or run for their logits only).", float64(m.computedTokens))
	counter(&b, "lmscore_tokens_reused_total", "tokens_total - tokens_computed_total: tokens not run, thanks to the KV prefix cache, the output cache or a prefix shared within a batch.", float64(m.totalTokens-m.computedTokens))
	counter(&b, "lmscore_tokens_kv_reused_total", "Tokens whose K/V came from cached blocks or a prefix shared within a batch (some still ran for their logits).", float64(m.kvReusedTokens))
	counter(&b, "lmscore_tokens_recomputed_total", "Tokens computed again because their KV blocks had been evicted.", float64(m.recomputedTokens))
	counter(&b, "lmscore_kv_evictions_total", "KV blocks evicted from the prefix cache.", float64(m.evictions))

	// The hit ratio is over the server's lifetime: the share of the tokens a
	// cacheless engine would compute that this one did not.
	ratio := 0.0
	if m.totalTokens > 0 {
		ratio = 1 - float64(m.computedTokens)/float64(m.totalTokens)
	}
	gauge(&b, "lmscore_cache_hit_ratio", "1 - tokens_computed_total / tokens_total since the server started.", ratio)

	header(&b, "lmscore_kv_blocks", "gauge", "KV blocks of the pool: used (held by a running batch) and free (free_cached: free but still holding a cached prefix, reused on a hit, evicted least recently used first).")
	free := cache.BlocksTotal - cache.BlocksUsed
	fmt.Fprintf(&b, "lmscore_kv_blocks{state=\"used\"} %d\n", cache.BlocksUsed)
	fmt.Fprintf(&b, "lmscore_kv_blocks{state=\"free\"} %d\n", free)
	fmt.Fprintf(&b, "lmscore_kv_blocks{state=\"free_cached\"} %d\n", cache.BlocksCachedFree)
	gauge(&b, "lmscore_kv_blocks_total", "Usable KV blocks in the pool.", float64(cache.BlocksTotal))
	gauge(&b, "lmscore_kv_block_bytes", "Bytes one KV block takes on the backend.", float64(cache.BlockBytes))

	counter(&b, "lmscore_output_cache_hits_total", "Prompt positions whose log-probabilities came from the output cache.", float64(oc.Hits))
	counter(&b, "lmscore_output_cache_evictions_total", "Output cache blocks evicted.", float64(oc.Evicted))
	gauge(&b, "lmscore_output_cache_blocks", "Prompt blocks in the output cache.", float64(oc.Blocks))
	gauge(&b, "lmscore_output_cache_bytes", "Bytes the output cache holds (its budget: lmscore_output_cache_budget_bytes).", float64(oc.Bytes))
	gauge(&b, "lmscore_output_cache_budget_bytes", "The output cache's budget.", float64(oc.Budget))

	gauge(&b, "lmscore_requests_in_flight", "Completions requests being served.", float64(inFlight))
	gauge(&b, "lmscore_requests_queued", "Completions requests waiting for the next batch.", float64(queued))
	gauge(&b, "lmscore_connections_open", "HTTP connections open (at most the connection limit).", float64(conns))
	counter(&b, "lmscore_connections_rejected_total", "Connections answered 503 and closed because the connection limit was reached.", float64(m.rejectedConns))

	writeHistogram(&b, "lmscore_step_duration_seconds", "Latency of one model step (one planned batch of tokens).", m.stepLatency)
	writeHistogram(&b, "lmscore_score_call_duration_seconds", "Latency of one Score call (one merged batch of requests).", m.callLatency)
	writeHistogram(&b, "lmscore_request_duration_seconds", "Latency of one /v1/completions request, queueing included.", m.requestLatency)
	writeHistogram(&b, "lmscore_batch_prompts", "Prompts merged into one Score call.", m.batchPrompts)

	_, err := io.WriteString(w, b.String())
	return err
}

func header(b *strings.Builder, name, kind, help string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
}

func counter(b *strings.Builder, name, help string, v float64) {
	header(b, name, "counter", help)
	fmt.Fprintf(b, "%s %s\n", name, promFloat(v))
}

func gauge(b *strings.Builder, name, help string, v float64) {
	header(b, name, "gauge", help)
	fmt.Fprintf(b, "%s %s\n", name, promFloat(v))
}

func writeHistogram(b *strings.Builder, name, help string, h *histogram) {
	header(b, name, "histogram", help)
	var cum uint64
	for i, le := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(b, "%s_bucket{le=\"%s\"} %d\n", name, promFloat(le), cum)
	}
	cum += h.counts[len(h.bounds)]
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n", name, cum)
	fmt.Fprintf(b, "%s_sum %s\n", name, promFloat(h.sum))
	fmt.Fprintf(b, "%s_count %d\n", name, h.count)
}

// promFloat formats a sample value the way Prometheus parses it.
func promFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
