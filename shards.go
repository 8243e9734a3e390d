package lmscore

import "github.com/lmscore/lmscore/scheduler"

// ShardPlan is how a request set splits into prefix-affine shards: each
// request's shard, and each shard's requests and tokens (see
// scheduler.AssignShards).
type ShardPlan = scheduler.ShardPlan

// ShardLoad is one shard's part of a ShardPlan.
type ShardLoad = scheduler.ShardLoad

// Shards splits reqs into n shards for separate processes to score, each
// computing its own part of the prefix trie. Requests are prepared as Score
// prepares them (tokenization, the prefix token of an empty context, the
// context window), and the plan depends on nothing else: every process
// given the same requests, model rules and n computes the same plan.
func (m *Model) Shards(reqs []Request, n int) (*ShardPlan, error) {
	return shardPlan(&m.rules, reqs, n)
}

// PlanShards is Model.Shards without a model run: the rules of opts.Meta
// (or token requests only, without) and opts.MaxLength, as Plan takes
// them. With the model and window a score run uses, the plan is the one
// its shards compute.
func PlanShards(reqs []Request, n int, opts PlanOptions) (*ShardPlan, error) {
	rules := opts.rules()
	return shardPlan(&rules, reqs, n)
}

func shardPlan(rules *requestRules, reqs []Request, n int) (*ShardPlan, error) {
	sreqs, err := shardRequests(rules, reqs)
	if err != nil {
		return nil, err
	}
	return scheduler.AssignShards(sreqs, n, rules.window)
}

// shardRequests prepares reqs as Score does, for the scheduler's plans.
func shardRequests(rules *requestRules, reqs []Request) ([]scheduler.Request, error) {
	sreqs := make([]scheduler.Request, len(reqs))
	for i := range reqs {
		p, err := rules.prepare(&reqs[i])
		if err != nil {
			return nil, &RequestError{Index: i, ID: reqs[i].ID, Err: err}
		}
		sreqs[i] = scheduler.Request{ID: reqs[i].ID, Context: p.ctx, Continuation: p.cont}
	}
	return sreqs, nil
}
