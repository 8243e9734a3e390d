package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lmscore/lmscore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadRequests: every malformed or over-cap request gets a 4xx with an
// OpenAI error object naming the problem, and never reaches the model.
func TestBadRequests(t *testing.T) {
	fake := newFakeModel()
	fake.nCtx = 64
	ts := startServer(t, fake, Config{MaxBodyBytes: 4096, MaxPrompts: 3, MaxLogprobs: 5})
	long := strings.Repeat("x", 64) // 65 tokens with BOS: over the 64-token window

	cases := []struct {
		name, body string
		status     int
		param      string
		code       string
		msg        string // a substring of the message
	}{
		{"malformed JSON", `{"model": "fake", "prompt": `, 400, "", "invalid_json", "not valid JSON"},
		{"not an object", `[1, 2]`, 400, "", "invalid_json", "JSON object"},
		{"wrong field type", `{"model": "fake", "prompt": "x", "max_tokens": "0"}`, 400, "max_tokens", "invalid_type", "max_tokens must be an integer"},
		{"logprobs as bool", `{"model": "fake", "prompt": "x", "max_tokens": 0, "logprobs": true}`, 400, "logprobs", "invalid_type", "logprobs"},
		{"missing model", `{"prompt": "x", "max_tokens": 0}`, 400, "model", "missing_model", "model is required"},
		{"unknown model", `{"model": "gpt-4", "prompt": "x", "max_tokens": 0}`, 404, "model", "model_not_found", `"gpt-4" does not exist`},
		{"missing prompt", `{"model": "fake", "max_tokens": 0}`, 400, "prompt", "missing_prompt", "prompt is required"},
		{"prompt a number", `{"model": "fake", "prompt": 5, "max_tokens": 0}`, 400, "prompt", "invalid_prompt", "prompt must be"},
		{"empty prompt list", `{"model": "fake", "prompt": [], "max_tokens": 0}`, 400, "prompt", "invalid_prompt", "empty list"},
		{"empty token list", `{"model": "fake", "prompt": [[1, 2], []], "max_tokens": 0}`, 400, "prompt", "invalid_prompt", "prompt[1] is an empty list"},
		{"mixed list", `{"model": "fake", "prompt": ["a", 5], "max_tokens": 0}`, 400, "prompt", "invalid_prompt", "prompt[1]"},
		{"token id too large", `{"model": "fake", "prompt": [1, 2, 259], "max_tokens": 0}`, 400, "prompt", "invalid_token_id", "prompt[2]: token id 259 is out of range"},
		{"negative token id", `{"model": "fake", "prompt": [[1], [1, -3]], "max_tokens": 0}`, 400, "prompt", "invalid_token_id", "prompt[1][1]: token id -3"},
		{"fractional token id", `{"model": "fake", "prompt": [1, 2.5], "max_tokens": 0}`, 400, "prompt", "invalid_token_id", "2.5 is not an integer"},
		{"token id as string", `{"model": "fake", "prompt": [1, "2"], "max_tokens": 0}`, 400, "prompt", "invalid_token_id", "not a string"},
		{"too many prompts", `{"model": "fake", "prompt": ["a", "b", "c", "d"], "max_tokens": 0}`, 400, "prompt", "too_many_prompts", "4 prompts"},
		{"prompt too long", `{"model": "fake", "prompt": "` + long + `", "max_tokens": 0}`, 400, "prompt", "context_length_exceeded", "65 tokens"},
		{"prompt too long with max_tokens 1", `{"model": "fake", "prompt": "` + long[:63] + `", "max_tokens": 1, "echo": true}`, 400, "prompt", "context_length_exceeded", "65 in all"},
		{"body too large", `{"model": "fake", "prompt": "` + strings.Repeat("y", 5000) + `", "max_tokens": 0}`, 413, "", "request_too_large", "4096 bytes"},
		{"generation", `{"model": "fake", "prompt": "x", "max_tokens": 16}`, 400, "max_tokens", "generation_not_supported", "generation is out of scope"},
		{"generation by default", `{"model": "fake", "prompt": "x"}`, 400, "max_tokens", "generation_not_supported", "default of 16"},
		{"negative max_tokens", `{"model": "fake", "prompt": "x", "max_tokens": -1}`, 400, "max_tokens", "invalid_max_tokens", "0 or more"},
		{"sampling", `{"model": "fake", "prompt": "x", "max_tokens": 1, "temperature": 0.7}`, 400, "temperature", "unsupported", "greedy"},
		{"logprobs over cap", `{"model": "fake", "prompt": "x", "max_tokens": 0, "logprobs": 6}`, 400, "logprobs", "invalid_logprobs", "between 0 and 5"},
		{"negative logprobs", `{"model": "fake", "prompt": "x", "max_tokens": 0, "logprobs": -1}`, 400, "logprobs", "invalid_logprobs", "not -1"},
		{"stream", `{"model": "fake", "prompt": "x", "max_tokens": 0, "stream": true}`, 400, "stream", "unsupported", "stream"},
		{"n", `{"model": "fake", "prompt": "x", "max_tokens": 0, "n": 2}`, 400, "n", "unsupported", "n must be 1"},
		{"best_of", `{"model": "fake", "prompt": "x", "max_tokens": 0, "best_of": 3}`, 400, "best_of", "unsupported", "best_of"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.post(t, "/v1/completions", tc.body)
			assert.Equal(t, tc.status, code, "%s", body)
			e := decodeError(t, body)
			assert.Equal(t, "invalid_request_error", e.Error.Type)
			assert.Contains(t, e.Error.Message, tc.msg)
			if tc.param == "" {
				assert.Nil(t, e.Error.Param)
			} else if assert.NotNil(t, e.Error.Param) {
				assert.Equal(t, tc.param, *e.Error.Param)
			}
			require.NotNil(t, e.Error.Code)
			assert.Equal(t, tc.code, *e.Error.Code)
		})
	}
	assert.Zero(t, fake.calls.Load(), "no bad request may reach the model")

	// Unknown endpoints and methods answer in the same shape.
	code, body := ts.get(t, "/v1/chat/completions")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "not_found_error", decodeError(t, body).Error.Type)
	code, body = ts.get(t, "/v1/completions")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
	assert.Contains(t, decodeError(t, body).Error.Message, "does not take GET")
}

func decodeError(t *testing.T, body []byte) errorJSON {
	t.Helper()
	var e errorJSON
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.NotNil(t, e.Error, "no error object in %s", body)
	return e
}

// TestServerFault: a model failure is a 500 with an error object, and a
// request merged with a failing one still gets its answer.
func TestServerFault(t *testing.T) {
	fake := newFakeModel()
	poison := int32(3 + '!')
	fake.fail = func(reqs []lmscore.Request) error {
		for _, r := range reqs {
			for _, id := range r.ContinuationTokens {
				if id == poison {
					return errors.New("device lost")
				}
			}
		}
		return nil
	}
	var mu sync.Mutex
	release := make(chan struct{})
	started := 0
	ts := startServer(t, fake, Config{BatchWindow: -1})
	// Hold the model busy with a first call so that the next two requests
	// queue up and are merged into one call.
	fake.onCall = func(n int, _ lmscore.ScoreOptions) {
		mu.Lock()
		started++
		first := started == 1
		mu.Unlock()
		if first {
			<-release
		}
	}
	var wg sync.WaitGroup
	codes := make([]int, 3)
	bodies := make([][]byte, 3)
	prompts := []string{"warm up", "fine", "bad!"}
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i] = ts.post(t, "/v1/completions", fmt.Sprintf(`{"model":"fake","prompt":%q,"echo":true,"max_tokens":0,"logprobs":0}`, p))
		}()
		if i == 0 {
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return started == 1 })
		}
	}
	waitFor(t, func() bool { return ts.srv.batcher.queued.Load() == 2 })
	close(release)
	wg.Wait()

	assert.Equal(t, http.StatusOK, codes[0])
	assert.Equal(t, http.StatusOK, codes[1], "the request merged with the failing one succeeds on its own: %s", bodies[1])
	assert.Equal(t, http.StatusInternalServerError, codes[2])
	e := decodeError(t, bodies[2])
	assert.Equal(t, "server_error", e.Error.Type)
	assert.Contains(t, e.Error.Message, "device lost")
	// Calls: the warm-up, the merged pair, then each of the pair alone.
	assert.Equal(t, []int{1, 2, 1, 1}, fake.sizes)

	m := ts.metrics(t)
	assert.Equal(t, 2.0, m[`lmscore_score_errors_total`])
	assert.Equal(t, 1.0, m[`lmscore_http_requests_total{code="500",path="/v1/completions"}`])
	assert.Equal(t, 2.0, m[`lmscore_http_requests_total{code="200",path="/v1/completions"}`])
}
