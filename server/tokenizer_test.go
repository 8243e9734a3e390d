package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTokenizerEndpoints covers what lm-eval-harness's remote tokenizer
// reads: tokenizer_info with an eos_token key, /tokenize without special
// tokens, the BOS id found by tokenizing bos_token, and /detokenize.
func TestTokenizerEndpoints(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{})

	code, body := ts.get(t, "/tokenizer_info")
	require.Equal(t, http.StatusOK, code)
	var info map[string]any
	require.NoError(t, json.Unmarshal(body, &info))
	assert.Contains(t, info, "eos_token", "lm-eval's check_remote_tokenizer_support needs the key")
	assert.Equal(t, "<s>", info["bos_token"])
	assert.Equal(t, float64(fake.nCtx), info["model_max_length"])

	tokenize := func(body string) tokenizeResponse {
		code, out := ts.post(t, "/tokenize", body)
		require.Equal(t, http.StatusOK, code, "%s", out)
		var r tokenizeResponse
		require.NoError(t, json.Unmarshal(out, &r))
		return r
	}
	// lm-eval's probe and its encode(): add_special_tokens false.
	r := tokenize(`{"prompt": "test", "add_special_tokens": false}`)
	assert.Equal(t, fake.tokens("test", false), r.Tokens)
	assert.Equal(t, 4, r.Count)
	assert.Equal(t, fake.nCtx, r.MaxModelLen)
	// vLLM's default adds the special tokens (BOS, as the model says).
	assert.Equal(t, fake.tokens("test", true), tokenize(`{"prompt": "test"}`).Tokens)
	// bos_token_id = encode(bos_token)[0]
	assert.Equal(t, []int32{fakeBOS}, tokenize(`{"prompt": "<s>", "add_special_tokens": false}`).Tokens)
	assert.Equal(t, append(append(fake.tokens("a", false), fakeBOS), fake.tokens("b", false)...),
		tokenize(`{"prompt": "a<s>b", "add_special_tokens": false}`).Tokens)

	code, body = ts.post(t, "/detokenize", `{"tokens": [75, 76, 77]}`)
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"prompt": "HIJ"}`, string(body))

	code, body = ts.post(t, "/detokenize", `{"tokens": [1, 99999]}`)
	assert.Equal(t, http.StatusBadRequest, code)
	e := decodeError(t, body)
	assert.Equal(t, "tokens", *e.Error.Param)
	assert.Contains(t, e.Error.Message, "99999 is out of range")

	code, body = ts.post(t, "/tokenize", `{"add_special_tokens": false}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, decodeError(t, body).Error.Message, "prompt is required")
	code, _ = ts.post(t, "/tokenize", `{"prompt": "x", "model": "other"}`)
	assert.Equal(t, http.StatusNotFound, code)
}

// TestTokenizeBOS: with Config.TokenizeBOS, /tokenize puts BOS first even
// for add_special_tokens false, and lm-eval's pair encoding then yields
// BOS-first contexts, its empty-context path included.
func TestTokenizeBOS(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{TokenizeBOS: true})
	encode := func(text string) []int32 {
		code, out := ts.post(t, "/tokenize", `{"prompt": `+quote(text)+`, "add_special_tokens": false}`)
		require.Equal(t, http.StatusOK, code, "%s", out)
		var r tokenizeResponse
		require.NoError(t, json.Unmarshal(out, &r))
		return r.Tokens
	}
	assert.Equal(t, fake.tokens("test", true), encode("test"))
	// lm-eval: bos_token_id = encode(bos_token)[0]
	assert.Equal(t, int32(fakeBOS), encode("<s>")[0])
	// _encode_pair: continuation = whole[len(context):]
	ctx, whole := encode("Question: 1+1?"), encode("Question: 1+1? 2")
	assert.Equal(t, fake.tokens(" 2", false), whole[len(ctx):])
	assert.Equal(t, int32(fakeBOS), ctx[0])
}
