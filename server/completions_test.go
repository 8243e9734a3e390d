package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/lmscore/lmscore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompletionsPromptForms sends each of the four prompt forms and checks
// every returned log-probability against the model's distribution at that
// position, the top-N lists, and the text offsets.
func TestCompletionsPromptForms(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{})

	ids := func(s string) []int32 { return fake.tokens(s, true) }
	cases := []struct {
		name   string
		prompt any
		want   [][]int32
	}{
		{"string", "Hello, world", [][]int32{ids("Hello, world")}},
		{"strings", []string{"a b", "Question: 2+2?"}, [][]int32{ids("a b"), ids("Question: 2+2?")}},
		{"token ids", []int32{1, 40, 41, 42, 43}, [][]int32{{1, 40, 41, 42, 43}}},
		{"lists of token ids", [][]int32{{1, 50, 60}, {7, 8}, {9}}, [][]int32{{1, 50, 60}, {7, 8}, {9}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const topN = 3
			resp := ts.complete(t, map[string]any{"model": "fake", "prompt": tc.prompt, "echo": true, "max_tokens": 0, "logprobs": topN})
			assert.Equal(t, "text_completion", resp.Object)
			assert.Equal(t, "fake", resp.Model)
			require.Len(t, resp.Choices, len(tc.want))
			total := 0
			for i, c := range resp.Choices {
				toks := tc.want[i]
				total += len(toks)
				assert.Equal(t, i, c.Index)
				assert.Equal(t, "length", c.FinishReason)
				require.NotNil(t, c.Logprobs)
				lp := c.Logprobs
				require.Len(t, lp.Tokens, len(toks))
				require.Len(t, lp.TokenLogprobs, len(toks))
				require.Len(t, lp.TopLogprobs, len(toks))
				require.Len(t, lp.TextOffset, len(toks))
				assert.Nil(t, lp.TokenLogprobs[0], "the first token has no context")
				assert.Nil(t, lp.TopLogprobs[0])
				text := ""
				for k, id := range toks {
					piece := displayToken(fake.TokenBytes(id))
					assert.Equal(t, piece, lp.Tokens[k])
					assert.Equal(t, len([]rune(text)), lp.TextOffset[k])
					text += piece
					if k == 0 {
						continue
					}
					dist := fakeLogProbs(toks[:k])
					require.NotNil(t, lp.TokenLogprobs[k])
					// Exact: the server writes the float32's exact decimal.
					assert.Equal(t, float64(dist[id]), *lp.TokenLogprobs[k], "token %d of prompt %d", k, i)
					top := topOf(dist, topN)
					inTop := false
					for _, e := range top {
						assert.Equal(t, float64(e.LogProb), lp.TopLogprobs[k][displayToken(fake.TokenBytes(e.Token))])
						inTop = inTop || e.Token == id
					}
					if inTop {
						assert.Len(t, lp.TopLogprobs[k], topN)
					} else {
						assert.Len(t, lp.TopLogprobs[k], topN+1, "the actual token joins the top %d", topN)
						assert.Equal(t, float64(dist[id]), lp.TopLogprobs[k][piece])
					}
				}
				assert.Equal(t, text, c.Text)
			}
			assert.Equal(t, total, resp.Usage.PromptTokens)
			assert.Equal(t, 0, resp.Usage.CompletionTokens)
		})
	}
}

// TestCompletionsTopLogprobsOrder checks that each top_logprobs object lists
// its tokens from the most likely down, as OpenAI writes them (a JSON
// decoder into a map would not show the order).
func TestCompletionsTopLogprobsOrder(t *testing.T) {
	ts := startServer(t, newFakeModel(), Config{})
	code, body := ts.post(t, "/v1/completions", `{"model":"fake","prompt":[1,70,71,72],"echo":true,"max_tokens":0,"logprobs":5}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var raw struct {
		Choices []struct {
			Logprobs struct {
				TopLogprobs []json.RawMessage `json:"top_logprobs"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(body, &raw))
	tops := raw.Choices[0].Logprobs.TopLogprobs
	require.Len(t, tops, 4)
	assert.Equal(t, "null", string(tops[0]))
	for _, top := range tops[1:] {
		dec := json.NewDecoder(bytesReader(top))
		_, err := dec.Token() // {
		require.NoError(t, err)
		prev := 0.0
		for i := 0; dec.More(); i++ {
			_, err := dec.Token() // key
			require.NoError(t, err)
			tok, err := dec.Token()
			require.NoError(t, err)
			v := tok.(float64)
			if i > 0 && i < 5 {
				assert.LessOrEqual(t, v, prev, "top_logprobs must go from the most likely down")
			}
			prev = v
		}
	}
}

// TestCompletionsNoLogprobs: without "logprobs" a choice carries none, and
// an echo-only request computes nothing.
func TestCompletionsNoLogprobs(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{})
	resp := ts.complete(t, map[string]any{"model": "fake", "prompt": "abc", "echo": true, "max_tokens": 0})
	require.Len(t, resp.Choices, 1)
	assert.Nil(t, resp.Choices[0].Logprobs)
	assert.Equal(t, "<s>abc", resp.Choices[0].Text)
	assert.Zero(t, fake.calls.Load(), "echo without logprobs needs no model call")

	// echo false, max_tokens 0: nothing to return, but not an error.
	resp = ts.complete(t, map[string]any{"model": "fake", "prompt": "abc", "max_tokens": 0, "logprobs": 1})
	require.NotNil(t, resp.Choices[0].Logprobs)
	assert.Empty(t, resp.Choices[0].Logprobs.Tokens)
	assert.Equal(t, "", resp.Choices[0].Text)
	assert.Equal(t, 4, resp.Usage.PromptTokens)
}

// TestCompletionsOneGreedyToken: max_tokens 1 (what lm-eval-harness sends
// with echo) returns the prompt and then the most likely next token, whose
// log-probability is the top of the distribution after the whole prompt.
func TestCompletionsOneGreedyToken(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{})
	prompt := []int32{1, 20, 30, 40}
	dist := fakeLogProbs(prompt)
	best := topOf(dist, 2)

	for _, echo := range []bool{true, false} {
		resp := ts.complete(t, map[string]any{"model": "fake", "prompt": prompt, "echo": echo, "max_tokens": 1, "logprobs": 2, "temperature": 0})
		lp := resp.Choices[0].Logprobs
		n := 1
		if echo {
			n = len(prompt) + 1
		}
		require.Len(t, lp.Tokens, n, "echo=%v", echo)
		last := n - 1
		assert.Equal(t, displayToken(fake.TokenBytes(best[0].Token)), lp.Tokens[last])
		assert.Equal(t, float64(best[0].LogProb), *lp.TokenLogprobs[last])
		assert.Len(t, lp.TopLogprobs[last], 2)
		assert.Equal(t, float64(best[1].LogProb), lp.TopLogprobs[last][displayToken(fake.TokenBytes(best[1].Token))])
		assert.Equal(t, 1, resp.Usage.CompletionTokens)
		if echo {
			// The echoed part is unchanged by the generated token.
			assert.Equal(t, float64(fakeLogProbs(prompt[:3])[40]), *lp.TokenLogprobs[3])
		}
	}
}

// TestCompletionsMatchDirectScore: the echo log-probabilities of a prompt
// ctx+cont are exactly what Score returns for the (ctx, cont) pair.
func TestCompletionsMatchDirectScore(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{})
	ctx := fake.tokens("The capital of France is", true)
	cont := fake.tokens(" Paris", false)
	res, _, err := newFakeModel().Score(t.Context(), []lmscore.Request{{ContextTokens: ctx, ContinuationTokens: cont}}, lmscore.ScoreOptions{})
	require.NoError(t, err)

	resp := ts.complete(t, map[string]any{"model": "fake", "prompt": append(append([]int32{}, ctx...), cont...), "echo": true, "max_tokens": 0, "logprobs": 0})
	lp := resp.Choices[0].Logprobs
	sum := 0.0
	for _, v := range lp.TokenLogprobs[len(ctx):] {
		sum += *v
	}
	assert.Equal(t, res[0].LogProb, sum, "bitwise: the same float32s added in the same order")
	for k := range cont {
		assert.Equal(t, float64(res[0].TokenLogProbs[k]), *lp.TokenLogprobs[len(ctx)+k])
		assert.Len(t, lp.TopLogprobs[len(ctx)+k], 1, "logprobs 0: only the actual token")
	}
}

func TestModelsAndHealth(t *testing.T) {
	ts := startServer(t, newFakeModel(), Config{ModelName: "tiny"})
	code, body := ts.get(t, "/v1/models")
	require.Equal(t, http.StatusOK, code)
	var models struct {
		Object string `json:"object"`
		Data   []struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &models))
	assert.Equal(t, "list", models.Object)
	require.Len(t, models.Data, 1)
	assert.Equal(t, "tiny", models.Data[0].ID)
	assert.Equal(t, "model", models.Data[0].Object)

	code, body = ts.get(t, "/health")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"status":"ok"}`, string(body))

	// The configured name is the one clients must use.
	ts.complete(t, map[string]any{"model": "tiny", "prompt": "x", "max_tokens": 0})
	code, _ = ts.post(t, "/v1/completions", `{"model":"fake","prompt":"x","max_tokens":0}`)
	assert.Equal(t, http.StatusNotFound, code)
}

func TestTextOffsets(t *testing.T) {
	v := &vocab{bytes: [][]byte{[]byte("a"), {0xC3}, {0xA9}, []byte("é"), []byte(" b"), {0xFF}}}
	for _, b := range v.bytes {
		v.display = append(v.display, displayToken(b))
	}
	// "a" + (é split over two byte tokens) + "é" + " b" + an invalid byte.
	text, off := v.text([]int32{0, 1, 2, 3, 4, 5})
	assert.Equal(t, "aéé b\uFFFD", text)
	assert.Equal(t, []int{0, 1, 1, 2, 3, 5}, off, "a token inside a character points at that character")
	assert.Equal(t, `bytes:\xc3`, v.display[1])
	assert.Equal(t, "é", v.display[3])

	text, off = v.text(nil)
	assert.Equal(t, "", text)
	assert.Empty(t, off)
}

func TestLogprobJSON(t *testing.T) {
	for _, tc := range []struct {
		in   float32
		want string
	}{
		{-0.5, "-0.5"},
		{float32(-0.1), "-0.10000000149011612"}, // the float32's exact value
		{0, "0"},
	} {
		b, err := logprob(tc.in).MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, tc.want, string(b))
	}
	b, err := logprob(float32(negInf())).MarshalJSON()
	require.NoError(t, err)
	assert.Equal(t, "-3.4028234663852886e+38", string(b))
	_, err = logprob(float32(nan())).MarshalJSON()
	assert.Error(t, err)
}

func ExampleServer_Name() {
	srv, _ := New(newFakeModel(), Config{})
	defer srv.Close()
	fmt.Println(srv.Name())
	// Output: fake
}
