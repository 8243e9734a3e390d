package scheduler

import (
	"fmt"
	"strconv"
)

// Request is one (context, continuation) pair in tokens. The planner scores
// every continuation token: token j's log-probability is read at the
// position just before it.
type Request struct {
	// ID names the request in error messages only; empty means "#<index>".
	ID string
	// Context must not be empty: a caller with an empty context substitutes
	// the BOS token, as lm-eval-harness does.
	Context []int32
	// Continuation must not be empty.
	Continuation []int32
}

// Options shape a plan.
type Options struct {
	// BlockSize and KVBlocks (the null block included) size the planner's
	// own pool when NewPlanner gets none; KVBlocks 0 means room for the
	// whole plan. With a pool, BlockSize must be 0 or the pool's, and
	// KVBlocks is ignored.
	BlockSize int
	KVBlocks  int

	// MaxBatchTokens caps the tokens of one step (--max-batch-tokens).
	MaxBatchTokens int
	// MaxOutputs caps the output rows of one step; 0 means MaxBatchTokens.
	MaxOutputs int
	// MaxLen is the model's context window: a pair longer than MaxLen+1
	// tokens is left-truncated as lm-eval-harness does. 0: no limit.
	MaxLen int
	// NoCache plans every request on its own, sharing nothing and neither
	// reading nor filling the pool's prefix cache: the baseline.
	NoCache bool
	// Namespace identifies the model (and anything else that changes K/V)
	// in the block hashes, so that one pool never serves another model's K/V.
	Namespace string
	// TopN is copied into every Batch.
	TopN int32
	// Window is the number of steps kept open for packing (default 4): a
	// segment that cannot run before its parent's last step (a long edge
	// split into a later one) does not stop others from filling the
	// earlier ones.
	Window int
}

const defaultWindow = 4

func (o *Options) check() error {
	if o.MaxBatchTokens < 1 {
		return fmt.Errorf("scheduler: max batch tokens %d: must be at least 1", o.MaxBatchTokens)
	}
	if o.MaxOutputs == 0 {
		o.MaxOutputs = o.MaxBatchTokens
	}
	if o.MaxOutputs < 1 {
		return fmt.Errorf("scheduler: max outputs %d: must be at least 1", o.MaxOutputs)
	}
	if o.MaxLen < 0 {
		return fmt.Errorf("scheduler: max length %d is negative", o.MaxLen)
	}
	if o.TopN < 0 {
		return fmt.Errorf("scheduler: top-n %d is negative", o.TopN)
	}
	if o.Window == 0 {
		o.Window = defaultWindow
	}
	if o.KVBlocks < 0 || o.KVBlocks == 1 {
		return fmt.Errorf("scheduler: %d KV blocks: want 0 (no limit) or at least 2 (block 0 is reserved)", o.KVBlocks)
	}
	if o.Window < 1 {
		return fmt.Errorf("scheduler: window %d: must be at least 1", o.Window)
	}
	return nil
}

func requestName(r *Request, i int) string {
	if r.ID != "" {
		return strconv.Quote(r.ID)
	}
	return "#" + strconv.Itoa(i)
}

// inputs applies lm-eval-harness's truncation, whole = (ctx+cont)[-(maxLen+1):],
// and returns the model's input, whole[:-1], as two parts (no copy), how
// many context tokens were cut, and an error naming the request if it
// cannot be scored at all.
func inputs(r *Request, i, maxLen int) (head, tail []int32, cut int, err error) {
	if len(r.Context) == 0 {
		return nil, nil, 0, fmt.Errorf("request %s: empty context (the caller substitutes BOS)", requestName(r, i))
	}
	if len(r.Continuation) == 0 {
		return nil, nil, 0, fmt.Errorf("request %s: empty continuation", requestName(r, i))
	}
	for _, part := range [2][]int32{r.Context, r.Continuation} {
		for _, t := range part {
			if t < 0 {
				return nil, nil, 0, fmt.Errorf("request %s: negative token id %d", requestName(r, i), t)
			}
		}
	}
	whole := len(r.Context) + len(r.Continuation)
	if maxLen > 0 && whole > maxLen+1 {
		if len(r.Continuation) > maxLen {
			return nil, nil, 0, fmt.Errorf("request %s: continuation of %d tokens does not fit the context window of %d",
				requestName(r, i), len(r.Continuation), maxLen)
		}
		cut = whole - (maxLen + 1) // < len(Context) because len(Continuation) <= maxLen
	}
	return r.Context[cut:], r.Continuation[:len(r.Continuation)-1], cut, nil
}

// Stats describe one plan. Token counts are of model inputs (the last
// continuation token is never an input).
type Stats struct {
	Requests          int   `json:"requests"`
	TruncatedRequests int   `json:"truncated_requests"`
	TotalTokens       int64 `json:"total_tokens"`  // every request's inputs, as a cacheless engine computes them
	UniqueTokens      int64 `json:"unique_tokens"` // the trie's size (with NoCache, the unshared trie's: TotalTokens)
	// PlannedComputedTokens are the tokens whose K/V the steps write.
	PlannedComputedTokens int64 `json:"planned_computed_tokens"`
	// RecomputedTokens are written more than once in this pool's life:
	// tokens of full blocks evicted earlier and computed again, and the
	// shared head of a partial block recomputed at a branch point when the
	// budget is too small to keep it for a copy.
	RecomputedTokens int64 `json:"recomputed_tokens"`
	// The two parts of RecomputedTokens.
	RecomputedEvictedTokens int64 `json:"recomputed_evicted_tokens"`
	RecomputedBranchTokens  int64 `json:"recomputed_branch_tokens"`
	// CachedTokens came from blocks cached by an earlier plan on this pool.
	CachedTokens int64 `json:"cached_tokens"`
	// LogitOnlyTokens ran with slot -1: their K/V was cached, only their
	// next-token distribution was needed.
	LogitOnlyTokens int64 `json:"logit_only_tokens"`
	CopiedBlocks    int64 `json:"copied_blocks"`
	// ReusedBlocks = CacheHitBlocks (found under their hash) + InPlaceBlocks
	// (a partial tail block taken over by a branch instead of copied).
	ReusedBlocks   int64 `json:"reused_blocks"`
	CacheHitBlocks int64 `json:"cache_hit_blocks"`
	InPlaceBlocks  int64 `json:"in_place_blocks"`
	Steps          int   `json:"steps"`
	Segments       int64 `json:"segments"`
	Outputs        int64 `json:"outputs"`       // output rows: merged (prefix, target) pairs
	ScoredTokens   int64 `json:"scored_tokens"` // continuation tokens routed back, over all requests
	PeakLiveBlocks int   `json:"peak_live_blocks"`
	Evictions      int64 `json:"evictions"`
	// With KVBlocksNoRecompute blocks or more (null block included) the
	// plan computes every unique token exactly once: one root-to-leaf path
	// plus the tails kept for copies (steps pack better with more room).
	// KVBlocksMin is the smallest budget with which it completes at all:
	// the longest request's blocks, plus the null block.
	KVBlocksNoRecompute int `json:"kv_blocks_no_recompute"`
	KVBlocksMin         int `json:"kv_blocks_min"`
}
