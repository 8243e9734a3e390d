package scorejob

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
)

// shardRun scores shard i of n of in into dir/shard-i.jsonl.
func shardRun(t *testing.T, model, in, dir string, i, n int) string {
	t.Helper()
	out := filepath.Join(dir, fmt.Sprintf("shard-%d-of-%d.jsonl", i, n))
	require.NoError(t, Run(context.Background(), Config{Model: model, In: in, Out: out, Stderr: io.Discard,
		Options: lmscore.Options{KVMemory: 8 << 20}, TokenLogProbs: true, Shard: i, Shards: n}))
	return out
}

// TestMergeIsOneRun: the shards' files merge into the output of one
// process byte for byte, and into its summary: the same requests, results
// and multiple-choice metrics, the total tokens summed.
func TestMergeIsOneRun(t *testing.T) {
	model := randomGGUF(t)
	in := writeLines(t, requestLines(150)...)
	dir := t.TempDir()
	full := filepath.Join(dir, "full.jsonl")
	require.NoError(t, Run(context.Background(), Config{Model: model, In: in, Out: full, Stderr: io.Discard,
		Options: lmscore.Options{KVMemory: 8 << 20}, TokenLogProbs: true, Summary: filepath.Join(dir, "full.json")}))
	want, err := os.ReadFile(full)
	require.NoError(t, err)
	fullSum := readSummary(t, filepath.Join(dir, "full.json"))
	require.NotNil(t, fullSum.MultiChoice)

	for _, n := range []int{1, 2, 5} {
		var files []string
		for i := n - 1; i >= 0; i-- { // merge takes them in any order
			files = append(files, shardRun(t, model, in, dir, i, n))
		}
		merged := filepath.Join(dir, fmt.Sprintf("merged-%d.jsonl", n))
		sumPath := filepath.Join(dir, fmt.Sprintf("merged-%d.json", n))
		require.NoError(t, Merge(MergeConfig{Inputs: files, Out: merged, Summary: sumPath, Stderr: io.Discard}))
		got, err := os.ReadFile(merged)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "n=%d: merged output", n)
		sum := readSummary(t, sumPath)
		assert.Equal(t, fullSum.MultiChoice, sum.MultiChoice, "n=%d", n)
		assert.Equal(t, fullSum.Requests, sum.Requests)
		assert.Equal(t, fullSum.ResultsLines, sum.ResultsLines)
		assert.Equal(t, fullSum.Model, sum.Model)
		assert.Equal(t, fullSum.Stats.TotalTokens, sum.Stats.TotalTokens)
		assert.GreaterOrEqual(t, sum.Stats.ComputedTokens, fullSum.Stats.ComputedTokens)
		require.Len(t, sum.Shards, n)
		for i, s := range sum.Shards {
			assert.Equal(t, i, s.Shard.Index)
			assert.Equal(t, s.Shard.Planned, s.Stats.ComputedTokens, "n=%d shard %d computes what the plan says", n, i)
		}
	}
}

// TestMergeResumedShard: a shard stopped part-way and resumed merges the
// same as one that ran through; merged before it is resumed, it is
// refused.
func TestMergeResumedShard(t *testing.T) {
	model := randomGGUF(t)
	in := writeLines(t, requestLines(120)...)
	dir := t.TempDir()
	const n = 3
	var whole []string
	for i := range n {
		whole = append(whole, shardRun(t, model, in, filepath.Join(dir, "whole"), i, n))
	}
	want := filepath.Join(dir, "want.jsonl")
	require.NoError(t, Merge(MergeConfig{Inputs: whole, Out: want, Stderr: io.Discard}))

	out := filepath.Join(dir, "resumed-1.jsonl")
	cfg := Config{Model: model, In: in, Out: out, Stderr: io.Discard, Options: lmscore.Options{KVMemory: 8 << 20,
		MaxBatchTokens: 8}, TokenLogProbs: true, Shard: 1, Shards: n}
	require.Error(t, runCancelledAfter(cfg, 5))
	err := Merge(MergeConfig{Inputs: []string{whole[0], out, whole[2]}, Out: filepath.Join(dir, "early.jsonl"), Stderr: io.Discard})
	require.ErrorContains(t, err, "shard 1/3 stopped before its end")
	require.ErrorContains(t, err, "--resume")

	other := cfg
	other.Shard, other.Resume = 2, true
	require.ErrorContains(t, Run(context.Background(), other), "shard: 1/3 in the journal, 2/3 now",
		"one shard's journal never finishes another")

	cfg.Resume = true
	require.NoError(t, Run(context.Background(), cfg))
	got := filepath.Join(dir, "got.jsonl")
	require.NoError(t, Merge(MergeConfig{Inputs: []string{whole[0], out, whole[2]}, Out: got, Summary: got + ".json", Stderr: io.Discard}))
	a, _ := os.ReadFile(want)
	b, _ := os.ReadFile(got)
	assert.Equal(t, string(a), string(b))
	assert.Positive(t, readSummary(t, got+".json").Resumed)
}

func TestMergeRefuses(t *testing.T) {
	model := randomGGUF(t)
	in := writeLines(t, requestLines(60)...)
	dir := t.TempDir()
	s := func(i, n int) string { return shardRun(t, model, in, dir, i, n) }
	s0, s1, s2 := s(0, 3), s(1, 3), s(2, 3)
	otherIn := writeLines(t, requestLines(61)...)
	foreign := shardRun(t, model, otherIn, t.TempDir(), 1, 3)
	full := filepath.Join(dir, "plain.jsonl")
	require.NoError(t, Run(context.Background(), Config{Model: model, In: in, Out: full, Stderr: io.Discard}))

	cases := []struct {
		inputs []string
		want   []string
	}{
		{[]string{s0, s2}, []string{"shard 1 of 3 is missing", "0 to 2"}},
		{[]string{s2}, []string{"shards 0, 1 of 3 are missing"}},
		{[]string{s0, s1, s1, s2}, []string{"shard 1 is in both"}},
		{[]string{s0, s1, s2, s(1, 2)}, []string{"shard 1 of 2", "share N"}},
		{[]string{s0, foreign, s2}, []string{"different runs", "requests_sha256"}},
		{[]string{s0, s1, full}, []string{"plain.jsonl", "not a shard file"}},
		{nil, []string{"no shard files"}},
	}
	for _, c := range cases {
		err := Merge(MergeConfig{Inputs: c.inputs, Out: filepath.Join(dir, "merged.jsonl"), Stderr: io.Discard})
		require.Error(t, err, "%v", c.inputs)
		for _, w := range c.want {
			assert.Contains(t, err.Error(), w)
		}
	}
	_, err := os.Stat(filepath.Join(dir, "merged.jsonl"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a refused merge writes nothing")

	err = Run(context.Background(), Config{Model: model, In: in, Out: "-", Stdout: io.Discard, Stderr: io.Discard, Shard: 0, Shards: 2})
	assert.ErrorContains(t, err, "--shard needs --out FILE")
	err = Run(context.Background(), Config{Model: model, In: in, Out: filepath.Join(dir, "x"), Stderr: io.Discard, Shard: 2, Shards: 2})
	assert.ErrorContains(t, err, "from 0 to 1")
}

func TestParseShard(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	ok := []struct {
		spec        string
		getenv      func(string) string
		index, size int
	}{
		{"0/1", env(), 0, 1},
		{"6/7", env(), 6, 7},
		{"auto/4", env("JOB_COMPLETION_INDEX", "2"), 2, 4},
		{"auto/4", env("SLURM_ARRAY_TASK_ID", "3", "SLURM_ARRAY_TASK_COUNT", "4"), 3, 4},
		{"auto/4", env("JOB_COMPLETION_INDEX", "1", "SLURM_ARRAY_TASK_ID", "1"), 1, 4},
		{"1/4", env("JOB_COMPLETION_INDEX", "3"), 1, 4}, // an explicit index wins
	}
	for _, c := range ok {
		i, n, err := ParseShard(c.spec, c.getenv)
		if assert.NoError(t, err, c.spec) {
			assert.Equal(t, [2]int{c.index, c.size}, [2]int{i, n}, c.spec)
		}
	}
	bad := []struct {
		spec   string
		getenv func(string) string
		want   string
	}{
		{"3/3", env(), "index 3 is out of range: shards of 3 run from 0 to 2"},
		{"-1/3", env(), "out of range"},
		{"1", env(), "want i/N"},
		{"1/0", env(), "at least 1"},
		{"1/x", env(), "at least 1"},
		{"x/3", env(), `index "x" is not a whole number`},
		{"auto/3", env(), "neither is set"},
		{"auto/3", env("JOB_COMPLETION_INDEX", "3"), "index 3 (from JOB_COMPLETION_INDEX) is out of range"},
		{"auto/3", env("SLURM_ARRAY_TASK_ID", "1", "SLURM_ARRAY_TASK_COUNT", "4"), "has 4 tasks (SLURM_ARRAY_TASK_COUNT) but N is 3"},
		{"auto/3", env("JOB_COMPLETION_INDEX", "0", "SLURM_ARRAY_TASK_ID", "1"), "disagree"},
	}
	for _, c := range bad {
		_, _, err := ParseShard(c.spec, c.getenv)
		if assert.Error(t, err, c.spec) {
			assert.True(t, strings.Contains(err.Error(), c.want), "%s: %v", c.spec, err)
		}
	}
}
