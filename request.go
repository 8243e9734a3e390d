package lmscore

// Request is one (context, continuation) pair to score: the log-probability
// of Continuation given Context. Give either the text form or the token form.
type Request struct {
	ID string

	// Text form, tokenized the way lm-eval-harness does: the context's
	// trailing whitespace moves to the start of the continuation, and the
	// continuation's tokens are encode(context+continuation) minus
	// encode(context). An empty context becomes BOS alone.
	Context      string
	Continuation string

	// Token form: used as given when ContinuationTokens is non-empty. An
	// empty ContextTokens becomes BOS alone. When the text is given too, the
	// tokens are scored and the continuation's text gives NBytes.
	ContextTokens      []int32
	ContinuationTokens []int32
}

// tokenForm reports whether the request carries tokens rather than text.
func (r *Request) tokenForm() bool { return len(r.ContinuationTokens) > 0 }

// Result is the score of one request.
type Result struct {
	// Index is the request's position in the input slice or stream.
	Index int
	ID    string

	// LogProb is the sum of the continuation tokens' natural-log
	// probabilities, added in token order in float64.
	LogProb float64
	// TokenLogProbs holds each continuation token's log-probability.
	TokenLogProbs []float32
	// TopLogProbs holds, per continuation token, the ScoreOptions.TopN most
	// likely tokens at its position; nil when TopN is 0.
	TopLogProbs [][]TokenLogProb
	// NTokens is the number of continuation tokens; NBytes the number of
	// bytes of the continuation (its text, or its tokens' decoded bytes).
	NTokens int
	NBytes  int
	// NormBytes is NBytes without the continuation's leading whitespace:
	// what acc_norm divides by, as lm-eval-harness divides by the length of
	// the choice without its delimiter.
	NormBytes int
	// IsGreedy is true when every continuation token is the argmax of its
	// next-token distribution (ties count as greedy).
	IsGreedy bool
	// Truncated is true when context+continuation exceeded the context
	// window and the context was cut on the left, as lm-eval-harness does.
	Truncated bool
}
