package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
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
	// givenBOS (Config.BOSOnce): the prompt began BOS BOS; tokens
	// holds it with one BOS, and the answer puts the other back as a given
	// token (log-probability 0) at position 1.
	givenBOS bool
	req      int // index into the job's requests, or -1 when nothing is scored
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
	if !s.acquire(w) {
		return
	}
	defer s.release()
	start := time.Now()
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	ans, err := s.completions(w, r)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status >= 500 {
			s.logf("POST /v1/completions: %v", err)
		}
		writeError(w, err)
		return
	}
	s.writeCompletion(w, ans)
	s.metrics.observeRequest(time.Since(start))
}

// completionAnswer is a scored request, ready to be written: the response
// is encoded one choice at a time (writeCompletion), never held whole.
type completionAnswer struct {
	head     completionResponse // every field but Choices
	plans    []promptPlan
	results  []lmscore.Result
	echo     bool
	logprobs *int
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) (*completionAnswer, error) {
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
	// Every text is checked against the byte bound before any is
	// tokenized: a request that must fail costs no tokenizing.
	for i, p := range prompts {
		if !p.isTokens {
			if err := s.checkPromptBytes(i, len(p.text), maxTokens); err != nil {
				return nil, err
			}
		}
	}

	wantLogprobs := req.Logprobs != nil
	job := &batchJob{ctx: r.Context()}
	plans := make([]promptPlan, len(prompts))
	promptTokens := 0
	for i, p := range prompts {
		toks := p.tokens
		if !p.isTokens {
			var err error
			if toks, err = s.encodeText(p.text, nil); err != nil {
				return nil, badRequest("prompt", "no_tokenizer", "prompt %d is text, but %v: send token ids", i, err)
			}
			if len(toks) == 0 {
				return nil, badRequest("prompt", "invalid_prompt", "prompt %d is empty: it has no tokens", i)
			}
			prompts[i].text = "" // the tokens are what is kept
		}
		if n := len(toks) + maxTokens; n > s.maxPromptTokens {
			return nil, &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: "prompt", Code: "context_length_exceeded",
				Message: fmt.Sprintf("prompt %d has %d tokens and asks for %d more: %d in all, over this server's limit of %d tokens (lm-eval-harness: pass max_length=%d in --model_args; local-completions does not read the context window from the server)", i, len(toks), maxTokens, n, s.maxPromptTokens, s.maxPromptTokens)}
		}
		promptTokens += len(toks)
		if s.cfg.BOSOnce && len(toks) >= 2 && toks[0] == s.info.BOS && toks[1] == s.info.BOS {
			plans[i].givenBOS = true
			toks = toks[1:]
		}
		plans[i].tokens = toks
	}
	if err := s.checkResponseSize(plans, req.Echo, maxTokens, req.Logprobs); err != nil {
		return nil, err
	}
	var cachedOnly int64
	for i := range plans {
		toks, givenBOS := plans[i].tokens, plans[i].givenBOS
		plans[i] = s.planPrompt(job, toks, req.Echo && wantLogprobs && len(toks) > 1, maxTokens == 1, req.Logprobs)
		plans[i].givenBOS = givenBOS
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
			if r.Context().Err() != nil {
				return nil, errClientGone
			}
			return nil, err
		}
	}

	ans := &completionAnswer{
		head: completionResponse{
			ID:      s.nextID(),
			Object:  "text_completion",
			Created: time.Now().Unix(),
			Model:   s.name,
			Usage:   usage{PromptTokens: promptTokens, CompletionTokens: maxTokens * len(plans), TotalTokens: promptTokens + maxTokens*len(plans)},
		},
		plans: plans, results: results, echo: req.Echo, logprobs: req.Logprobs,
	}
	for i := range plans {
		pl := &plans[i]
		if pl.req < 0 {
			continue
		}
		res := &results[pl.req]
		if err := checkResult(i, pl, res); err != nil {
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
	return ans, nil
}

// checkPromptBytes refuses text prompt i of n bytes when even the fewest
// tokens it could have (n / the longest token's bytes) are over the limit,
// or when it is over MaxPromptBytes: before tokenizing it, which for a
// text of megabytes costs seconds and a gigabyte.
func (s *Server) checkPromptBytes(i, n, maxTokens int) error {
	minTokens := (n + s.vocab.maxTokenBytes - 1) / s.vocab.maxTokenBytes
	if n > s.maxPromptBytes || minTokens+maxTokens > s.maxPromptTokens {
		which := fmt.Sprintf("prompt %d is", i)
		if i < 0 {
			which = "a prompt is" // found by the scan before decoding, unnumbered
		}
		return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: "prompt", Code: "context_length_exceeded",
			Message: fmt.Sprintf("%s %d bytes of text: at least %d tokens (the vocabulary's longest token has %d bytes) plus the %d asked for, over this server's limit of %d tokens (and %d bytes of text per prompt)",
				which, n, minTokens, s.vocab.maxTokenBytes, maxTokens, s.maxPromptTokens, s.maxPromptBytes)}
	}
	return nil
}

// checkResponseSize refuses a request whose answer would be over
// MaxResponseBytes, estimated from its token counts before anything is
// scored: each returned token is written with its text, log-probability,
// offset and a top list of logprobs+1 entries.
func (s *Server) checkResponseSize(plans []promptPlan, echo bool, maxTokens int, logprobs *int) error {
	positions := 0
	for i := range plans {
		if echo {
			positions += len(plans[i].tokens)
		}
		positions += maxTokens
	}
	perPosition := s.vocab.keyJSON // the text
	if logprobs != nil {
		entry := s.vocab.keyJSON + 26 // "key":-12.345678901234567,
		perPosition += entry + 8 + float64(min(*logprobs, s.info.NVocab)+1)*entry
	}
	est := int64(float64(positions)*perPosition) + int64(len(plans))*160 + 256
	if est <= s.cfg.MaxResponseBytes {
		return nil
	}
	top := 0
	if logprobs != nil {
		top = *logprobs
	}
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: "logprobs", Code: "response_too_large",
		Message: fmt.Sprintf("the response would be about %d MB (%d prompts, %d returned tokens, logprobs %d), over this server's limit of %d MB per response: send fewer prompts per request or a smaller logprobs",
			est>>20, len(plans), positions, top, s.cfg.MaxResponseBytes>>20)}
}

// writeCompletion writes the answer, encoding one choice at a time, so
// that a large response never sits in memory whole (nor its Go objects).
// Everything that could fail was checked before the status line went out.
func (s *Server) writeCompletion(w http.ResponseWriter, ans *completionAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	h := &ans.head
	fmt.Fprintf(bw, `{"id":%s,"object":%s,"created":%d,"model":%s,"choices":[`, quote(h.ID), quote(h.Object), h.Created, quote(h.Model))
	for i := range ans.plans {
		pl := &ans.plans[i]
		var res *lmscore.Result
		if pl.req >= 0 {
			res = &ans.results[pl.req]
		}
		c := s.buildChoice(pl, res, ans.echo, ans.logprobs)
		c.Index = i
		data, err := json.Marshal(c)
		if err != nil {
			// checkResult makes this unreachable; the status is out, so
			// the one honest answer left is a cut connection.
			s.logf("POST /v1/completions: encoding choice %d: %v", i, err)
			panic(http.ErrAbortHandler)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		if _, err := bw.Write(data); err != nil {
			return // the client is gone; the recorder counts it
		}
	}
	u, _ := json.Marshal(h.Usage)
	bw.WriteString(`],"usage":`)
	bw.Write(u)
	bw.WriteString("}\n")
	bw.Flush()
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

// checkResult guards the response against a result of the wrong shape (a
// bug in the model would otherwise be an index panic) and against numbers
// JSON cannot carry: a NaN or +Inf log-probability is the model's fault,
// reported as one named error for prompt i and the position it is at.
// (-Inf is a probability of 0, written as the most negative float32.)
func checkResult(i int, pl *promptPlan, res *lmscore.Result) error {
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
	if pl.generate && (len(res.TopLogProbs) == 0 || len(res.TopLogProbs[want-1]) == 0) {
		return serverFault("scoring failed: no next-token distribution for the generated token")
	}
	// Position k of the result is token pl.from+k of the prompt (the
	// generated one is len(tokens)).
	for k, v := range res.TokenLogProbs {
		if !finiteLogProb(v) {
			return nonFinite(i, pl.from+k, v, "")
		}
	}
	for k, top := range res.TopLogProbs {
		for _, e := range top {
			if !finiteLogProb(e.LogProb) {
				return nonFinite(i, pl.from+k, e.LogProb, fmt.Sprintf(" in the top list (token %d)", e.Token))
			}
		}
	}
	return nil
}

func finiteLogProb(v float32) bool {
	f := float64(v)
	return !math.IsNaN(f) && !math.IsInf(f, 1)
}

func nonFinite(prompt, pos int, v float32, where string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Type: typeModel, Code: "non_finite_logprob",
		Message: fmt.Sprintf("the model computed a log-probability of %v for prompt %d at token %d%s: the model's numbers are unusable (its weights or the backend are at fault), so no answer is given", v, prompt, pos, where)}
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
	data, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	// A text prompt too long to fit is refused before the body is decoded
	// (decoding 10 MB takes longer than refusing should).
	if n, ok := longestTextPrompt(data); ok && n > 0 {
		if err := s.checkPromptBytes(-1, n, 0); err != nil {
			return nil, err
		}
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
func (s *Server) buildChoice(pl *promptPlan, res *lmscore.Result, echo bool, wantLogprobs *int) choice {
	c := choice{FinishReason: "length"}
	var toks []int32
	given := 0 // positions before pl.tokens[1] that the model did not score
	if echo {
		if pl.givenBOS {
			toks, given = append(toks, s.info.BOS), 1
		}
		toks = append(toks, pl.tokens...)
	}
	var gen *lmscore.TokenLogProb
	if pl.generate { // checkResult saw the distribution is there
		g := res.TopLogProbs[len(res.TopLogProbs)-1][0]
		gen = &g
		toks = append(toks, g.Token)
	}
	text, offsets := s.vocab.text(toks)
	c.Text = text
	if wantLogprobs == nil {
		return c
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
	if given == 1 && len(toks) > 1 {
		lp.TokenLogprobs[1] = ptr(logprob(0))
		lp.TopLogprobs[1] = topLogprobMap{{s.vocab.display[s.info.BOS], 0}}
	}
	if pl.scoreEcho {
		for j := 1; j < len(pl.tokens); j++ {
			v, top := pl.echoOutput(j, res, s.outputBlock)
			lp.TokenLogprobs[j+given] = ptr(logprob(v))
			lp.TopLogprobs[j+given] = s.topEntries(top, topN, pl.tokens[j], v)
		}
	}
	if gen != nil {
		last := len(toks) - 1
		lp.TokenLogprobs[last] = ptr(logprob(gen.LogProb))
		lp.TopLogprobs[last] = s.topEntries(res.TopLogProbs[len(res.TopLogProbs)-1], topN, gen.Token, gen.LogProb)
	}
	c.Logprobs = lp
	return c
}

// topEntries is one position's top_logprobs: the n most likely tokens and,
// as OpenAI always adds it, the actual token, so up to n+1 entries. Tokens
// whose text is the same collapse into one key (the most likely), as they
// would in the client's dictionary anyway.
func (s *Server) topEntries(top []lmscore.TokenLogProb, n int, actual int32, actualLP float32) topLogprobMap {
	m := make(topLogprobMap, 0, min(n, len(top))+1)
	add := func(id int32, v float32) {
		k := s.vocab.display[id]
		// A linear search: n is at most MaxLogprobs, and a map per
		// position would be most of a large response's garbage.
		for _, e := range m {
			if e.key == k {
				return
			}
		}
		m = append(m, tokenEntry{k, logprob(v)})
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
