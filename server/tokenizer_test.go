package server

import (
	"encoding/json"
	"net/http"
	"strings"
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
	// lm-eval's probe and its encode(): add_special_tokens false, which
	// the default rule (Hugging Face's) does not heed: BOS first, as the
	// model's add_bos_token says.
	r := tokenize(`{"prompt": "test", "add_special_tokens": false}`)
	assert.Equal(t, fake.tokens("test", true), r.Tokens)
	assert.Equal(t, 5, r.Count)
	assert.Equal(t, fake.nCtx, r.MaxModelLen)
	assert.Equal(t, fake.tokens("test", true), tokenize(`{"prompt": "test"}`).Tokens)
	// bos_token_id = encode(bos_token)[0]; a text that starts with BOS's
	// text gets no second one (HFLM.tok_encode, has_bos_prefix).
	assert.Equal(t, []int32{fakeBOS}, tokenize(`{"prompt": "<s>", "add_special_tokens": false}`).Tokens)
	// Special tokens' texts are those tokens, anywhere.
	ab := func(sp int32) []int32 {
		return append(append(fake.tokens("a", true), sp), fake.tokens("b", false)...)
	}
	assert.Equal(t, ab(fakeBOS), tokenize(`{"prompt": "a<s>b", "add_special_tokens": false}`).Tokens)
	assert.Equal(t, ab(fakeEOS), tokenize(`{"prompt": "a</s>b", "add_special_tokens": false}`).Tokens)
	assert.Equal(t, ab(fakeUnk), tokenize(`{"prompt": "a<unk>b"}`).Tokens)
	assert.Equal(t, true, info["add_bos_token"])

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

// TestBOSRules: Config.BOS on /tokenize and on text prompts, with the
// model's add_bos_token true and false.
func TestBOSRules(t *testing.T) {
	no, yes := false, true
	for _, tc := range []struct {
		rule       BOSRule
		noAddBOS   bool
		text       string
		addSpecial *bool
		bos        bool
	}{
		{BOSAuto, false, "x", &no, true},
		{BOSAuto, false, "x", nil, true},
		{BOSAuto, false, "<s>x", &yes, false},
		{BOSAuto, false, "", &no, true},
		{BOSAuto, true, "x", &yes, false},
		{BOSAlways, true, "x", &no, true},
		{BOSAlways, true, "<s>x", &no, false},
		{BOSNever, false, "x", &yes, false},
		{BOSRequest, false, "x", &no, false},
		{BOSRequest, false, "x", &yes, true},
		{BOSRequest, false, "x", nil, true},
		{BOSRequest, false, "<s>x", nil, true},
		{BOSRequest, true, "x", &yes, false},
	} {
		fake := newFakeModel()
		fake.noAddBOS = tc.noAddBOS
		ts := startServer(t, fake, Config{BOS: tc.rule})
		body := map[string]any{"prompt": tc.text}
		if tc.addSpecial != nil {
			body["add_special_tokens"] = *tc.addSpecial
		}
		b, _ := json.Marshal(body)
		code, out := ts.post(t, "/tokenize", string(b))
		require.Equal(t, http.StatusOK, code, "%s", out)
		var r tokenizeResponse
		require.NoError(t, json.Unmarshal(out, &r))
		want, _ := fake.TokenizeSpecial(tc.text, false, true)
		if tc.bos {
			want = append([]int32{fakeBOS}, want...)
		}
		if want == nil {
			want = []int32{}
		}
		assert.Equal(t, want, r.Tokens, "%s add_bos_token=%v %q add_special_tokens=%v", tc.rule, !tc.noAddBOS, tc.text, tc.addSpecial)
		if tc.addSpecial == nil && tc.text != "" {
			// A text prompt of /v1/completions follows the same rule.
			c := ts.complete(t, map[string]any{"model": "fake", "prompt": tc.text, "max_tokens": 0, "echo": true, "logprobs": 0})
			assert.Equal(t, len(want), len(c.Choices[0].Logprobs.Tokens), "%s %q as a completions prompt", tc.rule, tc.text)
		}
		ts.stop(t)
	}
	_, err := New(newFakeModel(), Config{BOS: "sometimes"})
	assert.ErrorContains(t, err, "want auto, true, false or request")
}

// TestLMEvalHFRules replays lm-eval-harness 0.4.13's remote-tokenizer
// client against the default server and checks it yields the token requests
// its hf backend builds (lm_eval/api/model.py TemplateLM.loglikelihood and
// _encode_pair, lm_eval/models/huggingface.py tok_encode and
// loglikelihood_rolling, lm_eval/utils.py get_rolling_token_windows).
func TestLMEvalHFRules(t *testing.T) {
	fake := newFakeModel()
	ts := startServer(t, fake, Config{})
	// RemoteTokenizer.encode
	encode := func(text string) []int32 {
		code, out := ts.post(t, "/tokenize", `{"prompt": `+quote(text)+`, "add_special_tokens": false}`)
		require.Equal(t, http.StatusOK, code, "%s", out)
		var r tokenizeResponse
		require.NoError(t, json.Unmarshal(out, &r))
		return r.Tokens
	}
	// The hf backend's tok_encode on a Llama-style tokenizer (add_bos_token true).
	hfEncode := func(text string, addSpecial bool) []int32 {
		ids, _ := fake.TokenizeSpecial(text, false, true)
		if addSpecial && !strings.HasPrefix(text, "<s>") {
			ids = append([]int32{fakeBOS}, ids...)
		}
		return ids
	}
	prefix := encode("<s>")[0] // prefix_token_id: bos_token_id = encode(bos_token)[0]
	require.Equal(t, int32(fakeBOS), prefix)

	// loglikelihood: _encode_pair, trailing spaces of the context moved to
	// the continuation; an empty context is the prefix token.
	pair := func(enc func(string) []int32, encNoSpecial func(string) []int32, ctx, cont string) ([]int32, []int32) {
		if ctx == "" {
			c := encNoSpecial(cont)
			if prefix != c[0] {
				return []int32{prefix}, c
			}
			return c[:1], c[1:]
		}
		trimmed := strings.TrimRight(ctx, " \t\n")
		cont, ctx = ctx[len(trimmed):]+cont, trimmed
		whole, c := enc(ctx+cont), enc(ctx)
		return c, whole[len(c):]
	}
	for _, tc := range [][2]string{
		{"Question: 1+1?", " 2"},
		{"Question: 1+1? ", "2"},
		{"Answer:  ", " two"},
		{"", "Once upon a time"},
		{"<s>Once", " upon"},
		{"The end.</s>", "Once"},
		{"a", "</s>"},
	} {
		gotCtx, gotCont := pair(encode, encode, tc[0], tc[1])
		wantCtx, wantCont := pair(func(s string) []int32 { return hfEncode(s, true) }, func(s string) []int32 { return hfEncode(s, false) }, tc[0], tc[1])
		assert.Equal(t, wantCtx, gotCtx, "context of %q", tc)
		assert.Equal(t, wantCont, gotCont, "continuation of %q", tc)
	}
	// loglikelihood_rolling: the first window is the prefix token, then the
	// text's encoding, BOS included: P(BOS | BOS) is scored, as the hf
	// backend scores it.
	doc := "One day, a cat sat."
	assert.Equal(t, hfEncode(doc, true), encode(doc))
	assert.Equal(t, []int32{fakeBOS, fakeBOS}, append([]int32{prefix}, encode(doc)...)[:2])
}

// TestBOSOnce: with Config.BOSOnce a prompt that starts BOS BOS is scored as
// BOS alone, its second BOS a given token (log-probability 0); others are
// untouched.
func TestBOSOnce(t *testing.T) {
	fake := newFakeModel()
	text := fake.tokens("a cat", false)
	double := append([]int32{fakeBOS, fakeBOS}, text...)
	once := append([]int32{fakeBOS}, text...)
	req := func(p []int32) map[string]any {
		return map[string]any{"model": "fake", "prompt": [][]int32{p}, "max_tokens": 1, "echo": true, "logprobs": 1}
	}
	plain := startServer(t, fake, Config{})
	hf := plain.complete(t, req(double)).Choices[0].Logprobs
	ref := plain.complete(t, req(once)).Choices[0].Logprobs
	plain.stop(t)
	require.NotZero(t, *hf.TokenLogprobs[1], "by default P(BOS | BOS) is scored")

	ts := startServer(t, newFakeModel(), Config{BOSOnce: true})
	got := ts.complete(t, req(double)).Choices[0].Logprobs
	require.Len(t, got.TokenLogprobs, len(double)+1)
	assert.Nil(t, got.TokenLogprobs[0])
	assert.Equal(t, 0.0, *got.TokenLogprobs[1])
	assert.Equal(t, "<s>", got.Tokens[1])
	for j := 2; j < len(got.TokenLogprobs); j++ {
		assert.Equal(t, *ref.TokenLogprobs[j-1], *got.TokenLogprobs[j], "position %d", j)
		assert.Equal(t, ref.Tokens[j-1], got.Tokens[j])
	}
	// One BOS: as without the flag.
	assert.Equal(t, ref.TokenLogprobs, ts.complete(t, req(once)).Choices[0].Logprobs.TokenLogprobs)
}
