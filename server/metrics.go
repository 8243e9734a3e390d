package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lmscore/lmscore"
)

// latencyBuckets span a 100 µs CPU step of a tiny model to a minute-long
// request queued behind a large batch.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

var batchPromptBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}

// liveStats are the values read at scrape time rather than counted.
type liveStats struct {
	cache    lmscore.CacheStats
	outputs  lmscore.OutputStoreStats
	inFlight int
	queued   int
	conns    int64
}

// metrics is one server's Prometheus registry. Each server has its own
// rather than the global default one, so that tests (and programs) can run
// several servers in one process without their counts mixing or their
// registrations colliding.
type metrics struct {
	registry *prometheus.Registry

	requests      *prometheus.CounterVec // HTTP requests by endpoint and status
	prompts       prometheus.Counter
	scoreCalls    prometheus.Counter
	scoreErrors   prometheus.Counter
	rejectedConns prometheus.Counter // connections answered 503 beyond MaxConnections

	stepLatency    prometheus.Histogram // one model step, from ScoreOptions.OnProgress
	callLatency    prometheus.Histogram // one Score call
	requestLatency prometheus.Histogram // one /v1/completions request, queueing included
	batchPrompts   prometheus.Histogram // prompts merged into one Score call

	scrape *scrapeCollector
}

// scrapeCollector makes the metrics that are computed at scrape time: the
// token counters and what liveStats reads. The token counters are kept
// under one mutex rather than as separate prometheus.Counters because
// tokens_reused_total and the hit ratio are derived from tokens_total and
// tokens_computed_total, and a scrape must see the three from one moment.
type scrapeCollector struct {
	mu         sync.Mutex
	total      int64 // as a cacheless engine would compute them
	computed   int64
	kvReused   int64 // the engine's ReusedTokens: K/V not written again
	recomputed int64
	evictions  int64

	live func() liveStats

	descTotal, descComputed, descReused, descKVReused, descRecomputed, descEvictions *prometheus.Desc
	descHitRatio, descKVBlocks, descKVBlocksTotal, descKVBlockBytes                  *prometheus.Desc
	descOCHits, descOCEvictions, descOCBlocks, descOCBytes, descOCBudget             *prometheus.Desc
	descInFlight, descQueued, descConns                                              *prometheus.Desc
}

// newMetrics registers every metric, the Go runtime's and the process's
// included; live is called on each scrape.
func newMetrics(live func() liveStats) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lmscore_http_requests_total",
			Help: "HTTP requests served, by endpoint and status code.",
		}, []string{"path", "code"}),
		prompts:        counter("lmscore_prompts_total", "Prompts scored."),
		scoreCalls:     counter("lmscore_score_calls_total", "Calls into the model's Score, each one merged batch."),
		scoreErrors:    counter("lmscore_score_errors_total", "Score calls that failed."),
		rejectedConns:  counter("lmscore_connections_rejected_total", "Connections answered 503 and closed because the connection limit was reached."),
		stepLatency:    histogram("lmscore_step_duration_seconds", "Latency of one model step (one planned batch of tokens).", latencyBuckets),
		callLatency:    histogram("lmscore_score_call_duration_seconds", "Latency of one Score call (one merged batch of requests).", latencyBuckets),
		requestLatency: histogram("lmscore_request_duration_seconds", "Latency of one /v1/completions request, queueing included.", latencyBuckets),
		batchPrompts:   histogram("lmscore_batch_prompts", "Prompts merged into one Score call.", batchPromptBuckets),
		scrape:         newScrapeCollector(live),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.prompts, m.scoreCalls, m.scoreErrors, m.rejectedConns,
		m.stepLatency, m.callLatency, m.requestLatency, m.batchPrompts,
		m.scrape,
	)
	return m
}

// handler serves the registry in the format the scraper asks for (the
// text format by default).
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) countRequest(path string, code int) {
	m.requests.WithLabelValues(path, strconv.Itoa(code)).Inc()
}

func (m *metrics) countRejectedConn() { m.rejectedConns.Inc() }

// addCachedOnly counts tokens of prompts answered from the output cache
// without a model call: a cacheless engine would have run them.
func (m *metrics) addCachedOnly(tokens int64) {
	if tokens == 0 {
		return
	}
	m.scrape.mu.Lock()
	m.scrape.total += tokens
	m.scrape.mu.Unlock()
}

func (m *metrics) observeRequest(d time.Duration) { m.requestLatency.Observe(d.Seconds()) }

func (m *metrics) observeStep(d time.Duration) { m.stepLatency.Observe(d.Seconds()) }

// observeCall records one Score call of nPrompts prompts.
func (m *metrics) observeCall(nPrompts int, st lmscore.Stats, wall time.Duration, err error) {
	m.scoreCalls.Inc()
	m.callLatency.Observe(wall.Seconds())
	m.batchPrompts.Observe(float64(nPrompts))
	if err != nil {
		m.scoreErrors.Inc()
		return
	}
	m.prompts.Add(float64(nPrompts))
	t := m.scrape
	t.mu.Lock()
	t.total += st.TotalTokens
	t.computed += st.ComputedTokens
	t.kvReused += st.ReusedTokens
	t.recomputed += st.RecomputedTokens
	t.evictions += st.Evictions
	t.mu.Unlock()
}

func newScrapeCollector(live func() liveStats) *scrapeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &scrapeCollector{
		live:           live,
		descTotal:      d("lmscore_tokens_total", "Input tokens of every scored prompt: what an engine without a prefix cache would run through the model."),
		descComputed:   d("lmscore_tokens_computed_total", "Tokens that ran through the model (their K/V written, or run for their logits only)."),
		descReused:     d("lmscore_tokens_reused_total", "tokens_total - tokens_computed_total: tokens not run, thanks to the KV prefix cache, the output cache or a prefix shared within a batch."),
		descKVReused:   d("lmscore_tokens_kv_reused_total", "Tokens whose K/V came from cached blocks or a prefix shared within a batch (some still ran for their logits)."),
		descRecomputed: d("lmscore_tokens_recomputed_total", "Tokens computed again because their KV blocks had been evicted."),
		descEvictions:  d("lmscore_kv_evictions_total", "KV blocks evicted from the prefix cache."),
		descHitRatio:   d("lmscore_cache_hit_ratio", "1 - tokens_computed_total / tokens_total since the server started."),
		descKVBlocks: d("lmscore_kv_blocks", "KV blocks of the pool: used (held by a running batch) and free (free_cached: free but still holding a cached prefix, reused on a hit, evicted least recently used first).",
			"state"),
		descKVBlocksTotal: d("lmscore_kv_blocks_total", "Usable KV blocks in the pool."),
		descKVBlockBytes:  d("lmscore_kv_block_bytes", "Bytes one KV block takes on the backend."),
		descOCHits:        d("lmscore_output_cache_hits_total", "Prompt positions whose log-probabilities came from the output cache."),
		descOCEvictions:   d("lmscore_output_cache_evictions_total", "Output cache blocks evicted."),
		descOCBlocks:      d("lmscore_output_cache_blocks", "Prompt blocks in the output cache."),
		descOCBytes:       d("lmscore_output_cache_bytes", "Bytes the output cache holds (its budget: lmscore_output_cache_budget_bytes)."),
		descOCBudget:      d("lmscore_output_cache_budget_bytes", "The output cache's budget."),
		descInFlight:      d("lmscore_requests_in_flight", "Completions requests being served."),
		descQueued:        d("lmscore_requests_queued", "Completions requests waiting for the next batch."),
		descConns:         d("lmscore_connections_open", "HTTP connections open (at most the connection limit)."),
	}
}

func (t *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		t.descTotal, t.descComputed, t.descReused, t.descKVReused, t.descRecomputed, t.descEvictions,
		t.descHitRatio, t.descKVBlocks, t.descKVBlocksTotal, t.descKVBlockBytes,
		t.descOCHits, t.descOCEvictions, t.descOCBlocks, t.descOCBytes, t.descOCBudget,
		t.descInFlight, t.descQueued, t.descConns,
	} {
		ch <- d
	}
}

func (t *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	total, computed, kvReused, recomputed, evictions := t.total, t.computed, t.kvReused, t.recomputed, t.evictions
	t.mu.Unlock()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(t.descTotal, float64(total))
	counter(t.descComputed, float64(computed))
	counter(t.descReused, float64(total-computed))
	counter(t.descKVReused, float64(kvReused))
	counter(t.descRecomputed, float64(recomputed))
	counter(t.descEvictions, float64(evictions))
	// The hit ratio is over the server's lifetime: the share of the tokens a
	// cacheless engine would compute that this one did not.
	ratio := 0.0
	if total > 0 {
		ratio = 1 - float64(computed)/float64(total)
	}
	gauge(t.descHitRatio, ratio)

	l := t.live()
	gauge(t.descKVBlocks, float64(l.cache.BlocksUsed), "used")
	gauge(t.descKVBlocks, float64(l.cache.BlocksTotal-l.cache.BlocksUsed), "free")
	gauge(t.descKVBlocks, float64(l.cache.BlocksCachedFree), "free_cached")
	gauge(t.descKVBlocksTotal, float64(l.cache.BlocksTotal))
	gauge(t.descKVBlockBytes, float64(l.cache.BlockBytes))
	counter(t.descOCHits, float64(l.outputs.Hits))
	counter(t.descOCEvictions, float64(l.outputs.Evicted))
	gauge(t.descOCBlocks, float64(l.outputs.Blocks))
	gauge(t.descOCBytes, float64(l.outputs.Bytes))
	gauge(t.descOCBudget, float64(l.outputs.Budget))
	gauge(t.descInFlight, float64(l.inFlight))
	gauge(t.descQueued, float64(l.queued))
	gauge(t.descConns, float64(l.conns))
}
