package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/internal/testshared"
)

// The README's worked example, through the command's own flag parsing.
func TestScoreCommandOnStories260K(t *testing.T) {
	model := testshared.Stories260KGGUF(t)
	dir := t.TempDir()
	const lily = "Once upon a time, there was a little girl named Lily. She loved to play outside in the"
	in := filepath.Join(dir, "req.jsonl")
	lines := []string{
		`{"id": "park", "context": "` + lily + `", "continuation": " park.", "group": "q1", "label": 0}`,
		`{"id": "spoon", "context": "` + lily + `", "continuation": " spoon.", "group": "q1"}`,
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, sum := filepath.Join(dir, "res.jsonl"), filepath.Join(dir, "summary.json")
	err := runScore(context.Background(), []string{"--model", model, "--in", in, "--out", out,
		"--summary", sum, "--kv-memory", "8MiB", "--block-size", "4", "--token-logprobs"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		ID            string    `json:"id"`
		LogProb       float64   `json:"logprob"`
		TokenLogProbs []float32 `json:"token_logprobs"`
	}
	var got []result
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0].ID != "park" || got[1].ID != "spoon" {
		t.Fatalf("results out of order or missing: %+v", got)
	}
	for i, want := range []float64{-1.66, -11.69} {
		if d := got[i].LogProb - want; d > 0.01 || d < -0.01 || len(got[i].TokenLogProbs) == 0 {
			t.Errorf("%s: logprob %.4f, want %.2f (token logprobs %v)", got[i].ID, got[i].LogProb, want, got[i].TokenLogProbs)
		}
	}
	var s struct {
		MultipleChoice struct {
			Groups int     `json:"groups"`
			Acc    float64 `json:"acc"`
		} `json:"multiple_choice"`
		Stats struct {
			TotalTokens  int64 `json:"total_tokens"`
			UniqueTokens int64 `json:"unique_tokens"`
		} `json:"stats"`
	}
	raw, err = os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.MultipleChoice.Groups != 1 || s.MultipleChoice.Acc != 1 || s.Stats.UniqueTokens >= s.Stats.TotalTokens {
		t.Fatalf("summary: %s", raw)
	}
}

func TestScoreCommandFlagErrors(t *testing.T) {
	for args, want := range map[string]string{
		"--in x.jsonl":                  "--model is required",
		"--model m.gguf --kv-memory 2X": "--kv-memory",
	} {
		err := runScore(context.Background(), strings.Fields(args))
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want a usage error naming %s", args, err, want)
		}
	}
}
