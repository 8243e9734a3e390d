package server

import (
	"context"

	"github.com/lmscore/lmscore"
)

// Scorer is what the server needs from a model: exactly the methods of
// *lmscore.Model it calls, so that handler tests can run against a fake and
// the server never depends on how the model is opened.
//
// Score must be safe for concurrent use (the server calls it from one
// goroutine, but /tokenize and /metrics run beside it) and must keep its KV
// block pool across calls: that pool is the server's prefix cache.
type Scorer interface {
	Score(ctx context.Context, reqs []lmscore.Request, opts lmscore.ScoreOptions) ([]lmscore.Result, lmscore.Stats, error)
	Tokenize(text string, addBOS bool) []int32
	TokenBytes(id int32) []byte
	Info() lmscore.ModelInfo
	CacheStats() lmscore.CacheStats
}
