package server

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"testing"

	"github.com/lmscore/lmscore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lmEvalBody is, byte for byte, the body lm-eval-harness 0.4.13
// (lm_eval/models/openai_completions.py, LocalCompletionsAPI._create_payload
// with generate=False, posted by api_models.py TemplateAPI.model_call through
// requests' json=) sends for a batch of two log-likelihood requests with
// batch_size=2 and model=stories260K. Captured by running lm-eval's own code
// against a recording socket: tools/lmeval/capture_request.py. Note
// "max_tokens": 1, not 0: lm-eval asks for one generated token after the
// echoed prompt and drops it again when it parses ([ctxlen:-1]).
const lmEvalBody = `{"model": "stories260K", "prompt": [[1, 87, 104, 111, 35, 100, 101], [1, 87, 104, 111, 35, 120]], "temperature": 0, "max_tokens": 1, "logprobs": 1, "seed": 1234, "echo": true}`

// lmEvalHeaders are the headers it sends besides Host, Content-Length and
// requests' defaults: an empty bearer token when OPENAI_API_KEY is unset.
var lmEvalHeaders = map[string]string{
	"Content-Type":  "application/json",
	"Authorization": "Bearer ",
	"User-Agent":    "python-requests/2.34.2",
}

// lmEvalParseLogprobs is LocalCompletionsAPI.parse_logprobs of lm-eval
// 0.4.13, line for line: choices sorted by index and zipped with the context
// lengths; the log-likelihood is sum(token_logprobs[ctxlen:-1]) (Python's
// sum: left to right in float64); is_greedy is false as soon as a token's
// logprob differs from the max of its top_logprobs values.
func lmEvalParseLogprobs(t *testing.T, body []byte, ctxlens []int) [][2]any {
	t.Helper()
	var out struct {
		Choices []struct {
			Index    int `json:"index"`
			Logprobs struct {
				TokenLogprobs []*float64           `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	sort.SliceStable(out.Choices, func(i, j int) bool { return out.Choices[i].Index < out.Choices[j].Index })
	var res [][2]any
	for i := 0; i < len(out.Choices) && i < len(ctxlens); i++ {
		choice, ctxlen := out.Choices[i], ctxlens[i]
		require.Positive(t, ctxlen, "Context length must be greater than 0")
		lps := choice.Logprobs.TokenLogprobs
		tops := choice.Logprobs.TopLogprobs
		require.GreaterOrEqual(t, len(lps), ctxlen+1)
		tokensLogprobs := lps[ctxlen : len(lps)-1]
		topLogprobs := tops[ctxlen : len(tops)-1]
		sum := 0.0
		for _, v := range tokensLogprobs {
			require.NotNil(t, v, "Python's sum would fail on None")
			sum += *v
		}
		isGreedy := true
		for k := 0; k < len(tokensLogprobs) && k < len(topLogprobs); k++ {
			best := math.Inf(-1)
			for _, v := range topLogprobs[k] {
				best = max(best, v)
			}
			if *tokensLogprobs[k] != best {
				isGreedy = false
				break
			}
		}
		res = append(res, [2]any{sum, isGreedy})
	}
	return res
}

// TestLmEvalLocalCompletions sends exactly lm-eval-harness's request, parses
// the answer exactly as it does, and checks the (log-likelihood, is_greedy)
// pairs it would record against scoring the same (context, continuation)
// pairs directly: equal to the bit.
func TestLmEvalLocalCompletions(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{ModelName: "stories260K"})

	code, body := ts.do(t, http.MethodPost, "/v1/completions", lmEvalBody, lmEvalHeaders)
	require.Equal(t, http.StatusOK, code, "%s", body)

	// lm-eval's own bookkeeping: context and continuation ids per request.
	pairs := []lmscore.Request{
		{ContextTokens: []int32{1, 87, 104, 111, 35}, ContinuationTokens: []int32{100, 101}},
		{ContextTokens: []int32{1, 87, 104, 111, 35}, ContinuationTokens: []int32{120}},
	}
	ctxlens := []int{5, 5}
	got := lmEvalParseLogprobs(t, body, ctxlens)
	require.Len(t, got, 2)

	want, _, err := newFakeModel().Score(t.Context(), pairs, lmscore.ScoreOptions{TopN: 1})
	require.NoError(t, err)
	for i := range pairs {
		assert.Equal(t, want[i].LogProb, got[i][0], "request %d: log-likelihood", i)
		assert.Equal(t, want[i].IsGreedy, got[i][1], "request %d: is_greedy", i)
	}

	// A greedy continuation must come out greedy: build one from the
	// model's own argmax and send it the same way.
	ctx := []int32{1, 87, 104, 111, 35}
	greedy := append([]int32{}, ctx...)
	for range 3 {
		greedy = append(greedy, topOf(fakeLogProbs(greedy), 1)[0].Token)
	}
	req, _ := json.Marshal(map[string]any{"model": "stories260K", "prompt": [][]int32{greedy}, "temperature": 0, "max_tokens": 1, "logprobs": 1, "seed": 1234, "echo": true})
	code, body = ts.do(t, http.MethodPost, "/v1/completions", string(req), lmEvalHeaders)
	require.Equal(t, http.StatusOK, code, "%s", body)
	got = lmEvalParseLogprobs(t, body, []int{len(ctx)})
	assert.Equal(t, true, got[0][1], "a continuation of argmax tokens is greedy")
}
