package server

import (
	"context"

	"github.com/lmscore/lmscore"
)

// Scorer is what the server needs from a model: exactly the methods of
// *lmscore.Model it calls, so that handler tests can run against a fake and
// the server never depends on how the model is opened.
//
// Score must keep its KV block pool across calls: that pool is the
// server's prefix cache. The server calls Score and CacheStats from one
// goroutine only (the batcher), since *lmscore.Model's CacheStats waits for a
// running Score; Tokenize, TokenBytes and Info are called from handlers
// beside it. Tokenize fails when the model file carries no tokenizer.
type Scorer interface {
	Score(ctx context.Context, reqs []lmscore.Request, opts lmscore.ScoreOptions) ([]lmscore.Result, lmscore.Stats, error)
	Tokenize(text string, addBOS bool) ([]int32, error)
	TokenBytes(id int32) []byte
	Info() lmscore.ModelInfo
	CacheStats() lmscore.CacheStats
}
