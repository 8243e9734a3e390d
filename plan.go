package lmscore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/lmscore/lmscore/prefixtrie"
	"github.com/lmscore/lmscore/scheduler"
)

// PlanOptions configure Plan. Unlike Options, nothing defaults: the plan
// shows what exactly these settings do.
type PlanOptions struct {
	// Meta is the model whose rules apply: its tokenizer, prefix token,
	// vocabulary, context window and namespace. nil: requests in token form
	// only, an empty context is an error (ErrNoPrefixToken), and there is no
	// window but MaxLength.
	Meta *Meta
	// BlockSize is the KV block size in tokens; MaxBatchTokens caps the
	// tokens (and output rows) of a step.
	BlockSize      int
	MaxBatchTokens int
	// KVBlocks is the pool's size, the reserved null block included; 0
	// means room for the whole plan (nothing is evicted).
	KVBlocks int
	// MaxLength is the context window, as Options.MaxLength: with a model,
	// 0 or more than its training window means that window; without one,
	// 0 means no truncation.
	MaxLength int
	// NoCache plans every request on its own: the baseline.
	NoCache bool
	// KeepTrie hands the plan's prefix trie back in PlanReport.Trie, for
	// callers that draw or inspect it; off, it is freed with the plan.
	KeepTrie bool
}

// rules are the request rules a plan prepares with: the model's, or
// token requests only.
func (opts *PlanOptions) rules() requestRules {
	if opts.Meta != nil {
		return opts.Meta.rules(opts.MaxLength)
	}
	return requestRules{tokErr: errors.New("no model was given"), prefix: -1, window: opts.MaxLength}
}

// PlanReport is what a plan does: the scheduler's statistics and the
// settings it ran with.
type PlanReport struct {
	scheduler.Stats
	BlockSize      int     `json:"block_size"`
	KVBlocks       int     `json:"kv_blocks"` // the pool's size, the null block included
	MaxBatchTokens int     `json:"max_batch_tokens"`
	MaxLength      int     `json:"max_length"` // 0: no truncation
	NoCache        bool    `json:"no_cache"`
	PlanSeconds    float64 `json:"plan_seconds"`
	// Trie is the prefix trie of the prepared requests' inputs, frozen and
	// read-only; nil unless PlanOptions.KeepTrie.
	Trie *prefixtrie.Trie `json:"-"`
}

// Plan prepares reqs as Model.Score would (the same tokenization, prefix
// token, vocabulary check, window and namespace), then plans every step the
// scorer would run without running a model, and reports the plan. A request
// that cannot be prepared is a *RequestError naming it.
func Plan(ctx context.Context, reqs []Request, opts PlanOptions) (PlanReport, error) {
	rules := opts.rules()
	sreqs := make([]scheduler.Request, len(reqs))
	for i := range reqs {
		p, err := rules.prepare(&reqs[i])
		if err != nil {
			return PlanReport{}, &RequestError{Index: i, ID: reqs[i].ID, Err: err}
		}
		sreqs[i] = scheduler.Request{ID: reqs[i].ID, Context: p.ctx, Continuation: p.cont}
	}
	start := time.Now()
	pl, err := scheduler.NewPlanner(nil, sreqs, scheduler.Options{
		BlockSize:      opts.BlockSize,
		KVBlocks:       opts.KVBlocks,
		MaxBatchTokens: opts.MaxBatchTokens,
		MaxLen:         rules.window,
		NoCache:        opts.NoCache,
		Namespace:      rules.namespace(),
	})
	if err != nil {
		return PlanReport{}, err
	}
	defer pl.Close()
	for {
		if err := ctx.Err(); err != nil {
			return PlanReport{}, err
		}
		if _, err := pl.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return PlanReport{}, err
		}
	}
	var trie *prefixtrie.Trie
	if opts.KeepTrie {
		trie = pl.Trie()
	}
	return PlanReport{
		Trie:           trie,
		Stats:          pl.Stats(),
		BlockSize:      opts.BlockSize,
		KVBlocks:       pl.Pool().NumBlocks(),
		MaxBatchTokens: opts.MaxBatchTokens,
		MaxLength:      rules.window,
		NoCache:        opts.NoCache,
		PlanSeconds:    time.Since(start).Seconds(),
	}, nil
}
