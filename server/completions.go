package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/lmscore/lmscore"
)

// completionRequest holds the fields of POST /v1/completions this server
// reads. Other OpenAI fields (seed, stop, top_p, user, ...) are accepted and
// ignored: none of them changes a score.
type completionRequest struct {
	Model       string          `json:"model"`
	Prompt      json.RawMessage `json:"prompt"`
	MaxTokens   *int            `json:"max_tokens"`
	Echo        bool            `json:"echo"`
	Logprobs    *int            `json:"logprobs"`
	Temperature *float64        `json:"temperature"`
	N           *int            `json:"n"`
	BestOf      *int            `json:"best_of"`
	Stream      bool            `json:"stream"`
}

type completionResponse struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   usage    `json:"usage"`
}

type choice struct {
	Index        int          `json:"index"`
	Text         string       `json:"text"`
	Logprobs     *logprobsObj `json:"logprobs"`
	FinishReason string       `json:"finish_reason"`
}

// logprobsObj is OpenAI's legacy completions logprobs object. The four lists
// are parallel, one entry per returned token; the first echoed token has no
// preceding context, so its token_logprobs and top_logprobs entries are null.
type logprobsObj struct {
	Tokens        []string        `json:"tokens"`
	TokenLogprobs []*logprob      `json:"token_logprobs"`
	TopLogprobs   []topLogprobMap `json:"top_logprobs"`
	TextOffset    []int           `json:"text_offset"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// logprob is a natural-log probability, written as the exact decimal of the
// float32 the model computed (float32 -> float64 is exact), so that a client
// summing them in float64 gets exactly lmscore's float64 sum, and a client
// comparing a token's logprob with the top one (lm-eval's is_greedy) compares
// the same two numbers the model did.
type logprob float32

func (l logprob) MarshalJSON() ([]byte, error) {
	v := float64(l)
	if math.IsInf(v, -1) {
		// JSON has no -Infinity; the most negative float32 orders the same.
		v = -math.MaxFloat32
	}
	if math.IsNaN(v) || math.IsInf(v, 1) {
		return nil, fmt.Errorf("log-probability %v", v)
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

type tokenEntry struct {
	key string
	lp  logprob
}

// topLogprobMap is one position's {token: logprob} object, written in
// descending order of probability as OpenAI does (a Go map would sort keys
// by name). A nil map is written as null.
type topLogprobMap []tokenEntry

func (m topLogprobMap) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	out := []byte{'{'}
	for i, e := range m {
		if i > 0 {
			out = append(out, ',')
		}
		k, err := json.Marshal(e.key)
		if err != nil {
			return nil, err
		}
		v, err := e.lp.MarshalJSON()
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, k...), ':'), v...)
	}
	return append(out, '}'), nil
}

// generatedFiller is the continuation token appended to a prompt when the
// request asks for one generated token: its own log-probability is ignored;
// what is read is the top-N list at its position, the next-token
// distribution after the whole prompt. Any valid id would do.
const generatedFiller int32 = 0

// promptPlan is how one prompt is scored and answered.
type promptPlan struct {
	tokens    []int32
	scoreEcho bool // the prompt's own tokens get log-probabilities
	generate  bool // one greedy token follows the prompt
	req       int  // index into the job's requests, or -1 when nothing is scored
	// With scoreEcho: the outputs of tokens[1:from] come from cached, the
	// output cache's blocks for the leading blocks; those of tokens[from:]
	// from the model, which scores (tokens[:from], tokens[from:]).
	cached []*lmscore.OutputBlock
	from   int
}

// echoOutput returns token j's log-probability and top list (j >= 1).
func (pl *promptPlan) echoOutput(j int, res *lmscore.Result, blockSize int) (float32, []lmscore.TokenLogProb) {
	if j < pl.from {
		e := pl.cached[j/blockSize]
		return e.LogProb(j % blockSize), e.TopLogProbs(j % blockSize)
	}
	var top []lmscore.TokenLogProb
	if res.TopLogProbs != nil {
		top = res.TopLogProbs[j-pl.from]
	}
	return res.TokenLogProbs[j-pl.from], top
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	resp, err := s.completions(w, r)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status >= 500 {
			s.logf("POST /v1/completions: %v", err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
	s.metrics.observeRequest(time.Since(start))
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) (*completionResponse, error) {
	req, err := s.decodeCompletion(w, r)
	if err != nil {
		return nil, err
	}
	maxTokens, err := s.validateCompletion(req)
	if err != nil {
		return nil, err
	}
	prompts, err := parsePrompts(req.Prompt, s.info.NVocab)
	if err != nil {
		return nil, err
	}
	if len(prompts) > s.cfg.MaxPrompts {
		return nil, badRequest("prompt", "too_many_prompts", "the request holds %d prompts; this server takes at most %d per request", len(prompts), s.cfg.MaxPrompts)
	}

	wantLogprobs := req.Logprobs != nil
	job := &batchJob{ctx: r.Context()}
	plans := make([]promptPlan, len(prompts))
	promptTokens := 0
	var cachedOnly int64
	for i, p := range prompts {
		toks := p.tokens
		if !p.isTokens {
			var err error
			if toks, err = s.model.Tokenize(p.text, s.info.AddBOS); err != nil {
				return nil, badRequest("prompt", "no_tokenizer", "prompt %d is text, but %v: send token ids", i, err)
			}
			if len(toks) == 0 {
				return nil, badRequest("prompt", "invalid_prompt", "prompt %d is empty: it has no tokens", i)
			}
		}
		if n := len(toks) + maxTokens; n > s.maxPromptTokens {
			return nil, &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: "prompt", Code: "context_length_exceeded",
				Message: fmt.Sprintf("prompt %d has %d tokens and asks for %d more: %d in all, over this server's limit of %d tokens", i, len(toks), maxTokens, n, s.maxPromptTokens)}
		}
		promptTokens += len(toks)
		plans[i] = s.planPrompt(job, toks, req.Echo && wantLogprobs && len(toks) > 1, maxTokens == 1, req.Logprobs)
		if pl := &plans[i]; pl.req < 0 && (pl.scoreEcho || pl.generate) {
			// Served from the output cache alone: what a cacheless
			// engine would have run, none of it run here.
			cachedOnly += int64(len(toks) - 1 + maxTokens)
		}
	}
	if wantLogprobs {
		job.topN = *req.Logprobs
	}
	if maxTokens == 1 {
		job.topN = max(job.topN, 1) // the generated token is the top one
	}
	s.metrics.addCachedOnly(cachedOnly)

	var results []lmscore.Result
	if len(job.reqs) > 0 {
		results, err = s.batcher.submit(job)
		if err != nil {
			return nil, err
		}
	}

	resp := &completionResponse{
		ID:      s.nextID(),
		Object:  "text_completion",
		Created: time.Now().Unix(),
		Model:   s.name,
		Choices: make([]choice, len(plans)),
		Usage:   usage{PromptTokens: promptTokens, CompletionTokens: maxTokens * len(plans), TotalTokens: promptTokens + maxTokens*len(plans)},
	}
	for i := range plans {
		pl := &plans[i]
		var res *lmscore.Result
		if pl.req >= 0 {
			res = &results[pl.req]
			if err := checkResult(pl, res); err != nil {
				return nil, err
			}
			if pl.scoreEcho && pl.from < len(pl.tokens) {
				n := len(pl.tokens) - pl.from
				var top [][]lmscore.TokenLogProb
				if res.TopLogProbs != nil {
					top = res.TopLogProbs[:n]
				}
				s.outputs.Store(pl.tokens, pl.from, res.TokenLogProbs[:n], top, topLen(res))
			}
		}
		c, err := s.buildChoice(pl, res, req.Echo, req.Logprobs)
		if err != nil {
			return nil, err
		}
		c.Index = i
		resp.Choices[i] = c
	}
	return resp, nil
}

// planPrompt decides what the model must score for one prompt and adds
// that request to the job.
func (s *Server) planPrompt(job *batchJob, toks []int32, scoreEcho, generate bool, logprobs *int) promptPlan {
	pl := promptPlan{tokens: toks, scoreEcho: scoreEcho, generate: generate, req: -1}
	var filler []int32
	if generate {
		filler = []int32{generatedFiller}
	}
	add := func(ctx, cont []int32) {
		pl.req = len(job.reqs)
		job.reqs = append(job.reqs, lmscore.Request{ContextTokens: ctx, ContinuationTokens: cont})
		job.tokens += len(ctx) + len(cont)
	}
	switch {
	case scoreEcho:
		pl.cached = s.outputs.Lookup(toks, *logprobs)
		// The first token is the context of the rest: it has no output.
		pl.from = max(len(pl.cached)*s.outputBlock, 1)
		if pl.from < len(toks) {
			add(toks[:pl.from], append(toks[pl.from:len(toks):len(toks)], filler...))
		} else if generate {
			add(toks, filler)
		}
	case generate:
		add(toks, filler)
	}
	return pl
}

// checkResult guards the response against a result of the wrong shape: a
// bug in the model would otherwise be an index panic.
func checkResult(pl *promptPlan, res *lmscore.Result) error {
	want := 0
	if pl.scoreEcho {
		want = max(len(pl.tokens)-pl.from, 0)
	}
	if pl.generate {
		want++
	}
	if len(res.TokenLogProbs) != want || (res.TopLogProbs != nil && len(res.TopLogProbs) != want) {
		return serverFault("scoring failed: the model returned %d log-probabilities for %d tokens", len(res.TokenLogProbs), want)
	}
	for k, v := range res.TokenLogProbs {
		if math.IsNaN(float64(v)) {
			return serverFault("scoring failed: the model returned NaN for token %d", k)
		}
	}
	return nil
}

// topLen is the length of the result's top lists: the call's top-N, which
// may exceed the request's (the batch takes the largest any job asked for).
func topLen(res *lmscore.Result) int {
	for _, top := range res.TopLogProbs {
		return len(top)
	}
	return 0
}

// decodeCompletion reads the body, within the size cap, as one JSON object.
func (s *Server) decodeCompletion(w http.ResponseWriter, r *http.Request) (*completionRequest, error) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest, Code: "request_too_large",
				Message: fmt.Sprintf("the request body is over this server's limit of %d bytes", s.cfg.MaxBodyBytes)}
		}
		return nil, badRequest("", "invalid_body", "reading the request body: %v", err)
	}
	var req completionRequest
	if err := json.Unmarshal(data, &req); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return nil, badRequest(typeErr.Field, "invalid_type", "%s must be %s, not a JSON %s", typeErr.Field, goTypeName(typeErr.Type.String()), typeErr.Value)
		case errors.As(err, &syntaxErr):
			return nil, badRequest("", "invalid_json", "the request body is not valid JSON: %v (at byte %d)", err, syntaxErr.Offset)
		default:
			return nil, badRequest("", "invalid_json", "the request body must be a JSON object: %v", err)
		}
	}
	return &req, nil
}

// goTypeName words a Go type of completionRequest the way a client thinks of it.
func goTypeName(t string) string {
	switch t {
	case "*int", "int":
		return "an integer"
	case "*float64", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	}
	return t
}

// validateCompletion checks the fields other than the prompt and returns the
// number of tokens to generate (0 or 1).
func (s *Server) validateCompletion(req *completionRequest) (int, error) {
	if req.Model == "" {
		return 0, badRequest("model", "missing_model", "model is required; this server serves %q", s.name)
	}
	if req.Model != s.name {
		return 0, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Param: "model", Code: "model_not_found",
			Message: fmt.Sprintf("the model %q does not exist; this server serves %q", req.Model, s.name)}
	}
	if req.Stream {
		return 0, badRequest("stream", "unsupported", "stream is not supported: this server answers in one response")
	}
	if req.N != nil && *req.N != 1 {
		return 0, badRequest("n", "unsupported", "n must be 1, not %d", *req.N)
	}
	if req.BestOf != nil && *req.BestOf != 1 {
		return 0, badRequest("best_of", "unsupported", "best_of must be 1, not %d", *req.BestOf)
	}
	if req.Logprobs != nil && (*req.Logprobs < 0 || *req.Logprobs > s.cfg.MaxLogprobs) {
		return 0, badRequest("logprobs", "invalid_logprobs", "logprobs must be between 0 and %d, not %d", s.cfg.MaxLogprobs, *req.Logprobs)
	}
	// OpenAI's default max_tokens is 16: a request without it asks for
	// generation, which this scoring server does not do.
	switch {
	case req.MaxTokens == nil:
		return 0, badRequest("max_tokens", "generation_not_supported", "max_tokens is missing, and OpenAI's default of 16 asks for generation, which this server does not do: send max_tokens 0 with echo true to score a prompt")
	case *req.MaxTokens < 0:
		return 0, badRequest("max_tokens", "invalid_max_tokens", "max_tokens must be 0 or more, not %d", *req.MaxTokens)
	case *req.MaxTokens > 1:
		return 0, badRequest("max_tokens", "generation_not_supported", "max_tokens is %d, but generation is out of scope for this server: send max_tokens 0 with echo true to score a prompt (1 returns the one greedy next token, as lm-eval-harness asks)", *req.MaxTokens)
	}
	if *req.MaxTokens == 1 && req.Temperature != nil && *req.Temperature != 0 {
		return 0, badRequest("temperature", "unsupported", "the one generated token is the greedy one: temperature must be 0, not %v", *req.Temperature)
	}
	return *req.MaxTokens, nil
}

// buildChoice writes one prompt's answer from its score (nil when nothing
// was scored) and the output cache's entries.
func (s *Server) buildChoice(pl *promptPlan, res *lmscore.Result, echo bool, wantLogprobs *int) (choice, error) {
	c := choice{FinishReason: "length"}
	var toks []int32
	if echo {
		toks = append(toks, pl.tokens...)
	}
	var gen *lmscore.TokenLogProb
	if pl.generate {
		if res == nil || len(res.TopLogProbs) == 0 || len(res.TopLogProbs[len(res.TopLogProbs)-1]) == 0 {
			return c, serverFault("scoring failed: no next-token distribution for the generated token")
		}
		g := res.TopLogProbs[len(res.TopLogProbs)-1][0]
		gen = &g
		toks = append(toks, g.Token)
	}
	text, offsets := s.vocab.text(toks)
	c.Text = text
	if wantLogprobs == nil {
		return c, nil
	}
	topN := *wantLogprobs
	lp := &logprobsObj{
		Tokens:        make([]string, len(toks)),
		TokenLogprobs: make([]*logprob, len(toks)),
		TopLogprobs:   make([]topLogprobMap, len(toks)),
		TextOffset:    offsets,
	}
	for i, t := range toks {
		lp.Tokens[i] = s.vocab.display[t]
	}
	if pl.scoreEcho {
		for j := 1; j < len(pl.tokens); j++ {
			v, top := pl.echoOutput(j, res, s.outputBlock)
			lp.TokenLogprobs[j] = ptr(logprob(v))
			lp.TopLogprobs[j] = s.topEntries(top, topN, pl.tokens[j], v)
		}
	}
	if gen != nil {
		last := len(toks) - 1
		lp.TokenLogprobs[last] = ptr(logprob(gen.LogProb))
		lp.TopLogprobs[last] = s.topEntries(res.TopLogProbs[len(res.TopLogProbs)-1], topN, gen.Token, gen.LogProb)
	}
	c.Logprobs = lp
	return c, nil
}

// topEntries is one position's top_logprobs: the n most likely tokens and,
// as OpenAI always adds it, the actual token, so up to n+1 entries. Tokens
// whose text is the same collapse into one key (the most likely), as they
// would in the client's dictionary anyway.
func (s *Server) topEntries(top []lmscore.TokenLogProb, n int, actual int32, actualLP float32) topLogprobMap {
	m := make(topLogprobMap, 0, min(n, len(top))+1)
	seen := make(map[string]bool, n+1)
	add := func(id int32, v float32) {
		k := s.vocab.display[id]
		if !seen[k] {
			seen[k] = true
			m = append(m, tokenEntry{k, logprob(v)})
		}
	}
	hasActual := false
	for i := 0; i < n && i < len(top); i++ {
		add(top[i].Token, top[i].LogProb)
		hasActual = hasActual || top[i].Token == actual
	}
	if !hasActual {
		add(actual, actualLP)
	}
	return m
}

func ptr[T any](v T) *T { return &v }
