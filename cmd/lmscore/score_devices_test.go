package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/workload"
)

// score --devices on CPU instances writes what one device writes, byte for
// byte, alone and under --shard (one shard on two devices, the other on
// one, merged).
func TestScoreDevicesMatchesOneDevice(t *testing.T) {
	dir := t.TempDir()
	gguf := shardTestModel(t, dir)
	// 6 tasks of 16 demonstrations, 10 questions each: more subtrees than
	// a pool of 3 cuts pieces (12), so some pieces split a task.
	lines, err := workload.Generate("metaicl16", workload.Options{Seed: 2, Vocab: 300, FirstID: 3, Newline: 13, Scale: 0.01, Tasks: 6})
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in.jsonl")
	if err := workload.WriteFile(in, lines); err != nil {
		t.Fatal(err)
	}
	score := func(out string, extra ...string) {
		t.Helper()
		args := append([]string{"--model", gguf, "--in", in, "--out", out, "--summary", out + ".json", "--threads", "2", "--progress", "none"}, extra...)
		if err := runScore(context.Background(), args); err != nil {
			t.Fatalf("score %v: %v", extra, err)
		}
	}
	one := filepath.Join(dir, "one.jsonl")
	score(one)
	oneSum := readSummaryFile(t, one+".json")
	for _, devices := range []string{"0,1", "0,1,2"} {
		out := filepath.Join(dir, "devices-"+devices+".jsonl")
		score(out, "--devices", devices)
		if !sameFile(t, one, out) {
			t.Errorf("--devices %s: the output differs from one device's", devices)
		}
		s := readSummaryFile(t, out+".json")
		if s.Requests != oneSum.Requests || s.Stats.TotalTokens != oneSum.Stats.TotalTokens || s.Stats.UniqueTokens != oneSum.Stats.UniqueTokens {
			t.Errorf("--devices %s: summary has %d requests, %d total and %d unique tokens; one device %d, %d, %d", devices,
				s.Requests, s.Stats.TotalTokens, s.Stats.UniqueTokens, oneSum.Requests, oneSum.Stats.TotalTokens, oneSum.Stats.UniqueTokens)
		}
		t.Logf("--devices %s: %d requests, computed %d tokens (one device %d)", devices, s.Requests, s.Stats.ComputedTokens, oneSum.Stats.ComputedTokens)
	}

	shards := []string{filepath.Join(dir, "shard-0.jsonl"), filepath.Join(dir, "shard-1.jsonl")}
	score(shards[0], "--shard", "0/2", "--devices", "0,1")
	score(shards[1], "--shard", "1/2")
	merged := filepath.Join(dir, "merged.jsonl")
	if err := commands["merge"].run(context.Background(), stdStreams(), append([]string{"--out", merged}, shards...)); err != nil {
		t.Fatal(err)
	}
	if !sameFile(t, one, merged) {
		t.Error("--shard with --devices, merged: the output differs from one device's")
	}
}

func TestScoreDevicesFlagErrors(t *testing.T) {
	t.Setenv("CUDA_VISIBLE_DEVICES", "") // no CUDA device, whatever the machine has
	for args, want := range map[string]string{
		"--model m.gguf --devices 0,0":                "device 0 is listed twice",
		"--model m.gguf --devices 0,x":                `"x" is not a device ordinal`,
		"--model m.gguf --devices all":                "number of devices is unknown", // the CPU's instances are not counted
		"--model m.gguf --devices 0,1 --device 1":     "--device and --devices exclude each other",
		"--model m.gguf --backend cuda --devices 0":   "device 0 is not there (no device is available)",
		"--model m.gguf --backend cuda --devices all": "no device is available",
	} {
		err := runScore(context.Background(), strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming %s", args, err, want)
			continue
		}
		if !errors.Is(err, errUsage) {
			t.Errorf("%s: %v is not a usage error", args, err)
		}
	}
}
