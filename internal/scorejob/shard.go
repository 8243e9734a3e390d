package scorejob

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/resultio"
)

// shardSelection is the part of the requests a run scores: all of them
// (plan nil) or shard index of a plan.
type shardSelection struct {
	plan          *lmscore.ShardPlan
	index, shards int
}

// selectShard plans the shards of reqs when cfg asks for one and says so
// on stderr.
func selectShard(cfg Config, m *lmscore.Model, reqs []lmscore.Request) (shardSelection, error) {
	if cfg.Shards == 0 {
		return shardSelection{}, nil
	}
	plan, err := m.Shards(reqs, cfg.Shards)
	if err != nil {
		return shardSelection{}, fmt.Errorf("planning %d shards: %w", cfg.Shards, err)
	}
	sel := shardSelection{plan: plan, index: cfg.Shard, shards: cfg.Shards}
	load := plan.Shards[cfg.Shard]
	fmt.Fprintf(cfg.Stderr, "lmscore: shard %d/%d: %d of %d requests, %d tokens to compute (all shards: %d; one process: %d)\n",
		cfg.Shard, cfg.Shards, load.Requests, len(reqs), load.ComputedTokens, plan.ComputedTokens, plan.UniqueTokens)
	return sel, nil
}

// has reports whether request i is this run's to score.
func (s shardSelection) has(i int) bool { return s.plan == nil || s.plan.Of[i] == s.index }

// requests is the number of requests this run scores of the n read.
func (s shardSelection) requests(n int) int {
	if s.plan == nil {
		return n
	}
	return s.plan.Shards[s.index].Requests
}

// name is the journal identity's Shard: "" for a whole run.
func (s shardSelection) name() string {
	if s.plan == nil {
		return ""
	}
	return strconv.Itoa(s.index) + "/" + strconv.Itoa(s.shards)
}

func (s shardSelection) summary(runRequests int) *ShardOfRun {
	if s.plan == nil {
		return nil
	}
	return &ShardOfRun{Index: s.index, Shards: s.shards, RunRequests: runRequests,
		Planned: s.plan.Shards[s.index].ComputedTokens}
}

// writeShardOut writes the shard file of the results in out (nil: not
// in), with the summary and identity Merge checks.
func writeShardOut(path string, ident resultio.Identity, s shardSelection, sum Summary, interrupted bool,
	out [][]byte, results []lmscore.Result, choices []lmscore.Choice) error {
	summary, err := marshalSummary(sum)
	if err != nil {
		return err
	}
	h := resultio.ShardHeader{Shard: s.index, Shards: s.shards, Identity: ident, Requests: s.requests(len(out)),
		Interrupted: interrupted, Summary: summary}
	var recs []resultio.ShardRecord
	for i, line := range out {
		if line == nil {
			continue
		}
		rec := resultio.ShardRecord{Index: i, NormBytes: results[i].NormBytes, Line: line}
		if c := choices[i]; c.Group != "" {
			rec.Choice = &resultio.Choice{Task: c.Task, Group: c.Group, Index: c.Index, Label: c.Label}
		}
		recs = append(recs, rec)
	}
	return resultio.WriteShardFile(path, h, recs)
}

// ParseShard reads --shard's "i/N" (0 <= i < N), or "auto/N", which takes
// i from the index a cluster scheduler gives each task of an array job:
// JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID
// (a Slurm array started as --array=0-<N-1>). getenv reads the
// environment (os.Getenv).
func ParseShard(spec string, getenv func(string) string) (index, shards int, err error) {
	is, ns, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, 0, fmt.Errorf("--shard %q: want i/N (shard i of N, from 0) or auto/N", spec)
	}
	shards, err = strconv.Atoi(ns)
	if err != nil || shards < 1 {
		return 0, 0, fmt.Errorf("--shard %q: N must be a whole number of shards, at least 1", spec)
	}
	from := ""
	if is == "auto" {
		if is, from, err = clusterIndex(getenv, shards); err != nil {
			return 0, 0, fmt.Errorf("--shard %s: %w", spec, err)
		}
	}
	index, err = strconv.Atoi(is)
	if err != nil {
		return 0, 0, fmt.Errorf("--shard %q: the index %q is not a whole number%s", spec, is, from)
	}
	if index < 0 || index >= shards {
		return 0, 0, fmt.Errorf("--shard %q: index %d%s is out of range: shards of %d run from 0 to %d", spec, index, from, shards, shards-1)
	}
	return index, shards, nil
}

// clusterIndex is the task index of auto/N, and " (from VAR)" for messages.
func clusterIndex(getenv func(string) string, shards int) (index, from string, err error) {
	k8s, slurm := getenv("JOB_COMPLETION_INDEX"), getenv("SLURM_ARRAY_TASK_ID")
	switch {
	case k8s != "" && slurm != "" && k8s != slurm:
		return "", "", fmt.Errorf("JOB_COMPLETION_INDEX=%s and SLURM_ARRAY_TASK_ID=%s disagree: give the index, i/N", k8s, slurm)
	case k8s != "":
		return k8s, " (from JOB_COMPLETION_INDEX)", nil
	case slurm != "":
		// A Slurm array knows its size: a different N means the script
		// and the array disagree, and shards would go unscored.
		if count := getenv("SLURM_ARRAY_TASK_COUNT"); count != "" && count != strconv.Itoa(shards) {
			return "", "", fmt.Errorf("the Slurm array has %s tasks (SLURM_ARRAY_TASK_COUNT) but N is %d", count, shards)
		}
		return slurm, " (from SLURM_ARRAY_TASK_ID)", nil
	}
	return "", "", fmt.Errorf("auto needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (a Slurm array) in the environment; neither is set")
}
