package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/lmscore/lmscore"
)

// addShardsFlag registers plan's --shards.
func addShardsFlag(fs *flag.FlagSet) *int {
	return fs.Int("shards", 0, "instead of the plan, print how the requests split into N prefix-affine shards (what lmscore score --shard i/N scores); give the --model and --max-length the score runs use")
}

// shardReport is what plan --shards prints.
type shardReport struct {
	Shards    int                 `json:"shards"`
	Requests  int                 `json:"requests"`
	MaxLength int                 `json:"max_length"` // 0: no truncation
	PerShard  []lmscore.ShardLoad `json:"per_shard"`
	// The tokens of every request's inputs, of one process's trie, and of
	// the shards' tries together; their ratio is what sharding costs.
	TotalTokens        int64   `json:"total_tokens"`
	UniqueTokens       int64   `json:"unique_tokens"`
	ComputedTokens     int64   `json:"computed_tokens"`
	ComputedOverUnique float64 `json:"computed_over_unique"`
	// LargestOverIdeal is the largest shard's computed tokens over
	// UniqueTokens/N: how far the slowest shard is from a perfect split.
	LargestOverIdeal float64 `json:"largest_over_ideal"`
}

func planShards(ctx context.Context, s streams, in, modelPath string, opts lmscore.PlanOptions, n int, args []string) error {
	if in == "" || len(args) != 0 {
		return fmt.Errorf("%w: want --in requests.jsonl and no arguments", errUsage)
	}
	if n < 1 {
		return fmt.Errorf("%w: --shards %d: want at least 1", errUsage, n)
	}
	opts.MaxLength = max(opts.MaxLength, 0) // -1, the flag's default: PlanOptions' 0
	var tokenize func(string, string) ([]int32, []int32, error)
	if modelPath != "" {
		meta, err := lmscore.OpenMeta(modelPath)
		if err != nil {
			return err
		}
		defer meta.Close()
		opts.Meta, tokenize = meta, meta.TokenizePair
	}
	reqs, lines, name, err := readPlanRequests(in, s.in, tokenize)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		return fmt.Errorf("%s: no requests", name)
	}
	plan, err := lmscore.PlanShards(reqs, n, opts)
	var re *lmscore.RequestError
	if errors.As(err, &re) && re.Index >= 0 && re.Index < len(lines) {
		return fmt.Errorf("%s:%d: %w", name, lines[re.Index], re.Err)
	}
	if err != nil {
		return err
	}
	r := shardReport{Shards: n, Requests: len(reqs), MaxLength: plan.MaxLength, PerShard: plan.Shards, TotalTokens: plan.TotalTokens,
		UniqueTokens: plan.UniqueTokens, ComputedTokens: plan.ComputedTokens}
	if plan.UniqueTokens > 0 {
		var largest int64
		for _, l := range plan.Shards {
			largest = max(largest, l.ComputedTokens)
		}
		r.ComputedOverUnique = float64(plan.ComputedTokens) / float64(plan.UniqueTokens)
		r.LargestOverIdeal = float64(largest) * float64(n) / float64(plan.UniqueTokens)
	}
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
