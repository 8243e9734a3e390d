package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/workload"
)

// score --tensor-parallel 2 (-tp) on the CPU writes what the whole model
// writes, within fp32 rounding, and a split the model does not allow is a
// clear error.
func TestScoreTensorParallel(t *testing.T) {
	dir := t.TempDir()
	gguf := shardTestModel(t, dir) // 4 heads, 2 KV heads
	lines, err := workload.Generate("metaicl0", workload.Options{Seed: 3, Vocab: 300, FirstID: 3, Newline: 13, Scale: 0.02, Tasks: 3})
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in.jsonl")
	if err := workload.WriteFile(in, lines); err != nil {
		t.Fatal(err)
	}
	score := func(out string, extra ...string) error {
		args := append([]string{"--model", gguf, "--in", in, "--out", out, "--threads", "2", "--progress", "none"}, extra...)
		return runScore(context.Background(), args)
	}
	whole, split := filepath.Join(dir, "whole.jsonl"), filepath.Join(dir, "tp2.jsonl")
	if err := score(whole); err != nil {
		t.Fatal(err)
	}
	if err := score(split, "-tp", "2"); err != nil {
		t.Fatal(err)
	}
	a, b := logprobs(t, whole), logprobs(t, split)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d results", len(a), len(b))
	}
	for id, lp := range a {
		if d := math.Abs(b[id] - lp); !(d <= 1e-4*math.Max(1, math.Abs(lp))) {
			t.Errorf("%s: %.9g split, %.9g whole", id, b[id], lp)
		}
	}
	if err := score(filepath.Join(dir, "tp4.jsonl"), "--tensor-parallel", "4"); err == nil || !strings.Contains(err.Error(), "n_head_kv 2") {
		t.Errorf("--tensor-parallel 4 on 2 KV heads: error %v, want one naming them", err)
	}
}

// logprobs reads an output file's logprob per id.
func logprobs(t *testing.T, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			ID      string  `json:"id"`
			LogProb float64 `json:"logprob"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out[r.ID] = r.LogProb
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
