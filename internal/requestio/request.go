package requestio

import "github.com/lmscore/lmscore"

// ScoreRequest is the line as the public API takes it: its tokens, with the
// continuation's text when the line gave it (NBytes and acc_norm count the
// text's bytes), and the context's text only when there are no tokens to
// stand for it.
func (r *Request) ScoreRequest() lmscore.Request {
	req := lmscore.Request{ID: r.ID, ContextTokens: r.ContextTokens, ContinuationTokens: r.ContinuationTokens}
	if r.HasText {
		req.Continuation = r.Continuation
		if len(r.ContinuationTokens) == 0 {
			req.Context = r.Context
		}
	}
	return req
}
