package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlanShards(t *testing.T) {
	in := filepath.Join(t.TempDir(), "req.jsonl")
	// Inputs [1 2 3 4], [1 2 3 5], [7 8 9], [7 6]: scheduler's exact case,
	// two shards of 5 and 4 tokens, the [1 2 3] prefix on one.
	lines := `{"id":"a","context_tokens":[1,2,3,4],"continuation_tokens":[9]}
{"id":"b","context_tokens":[1,2,3],"continuation_tokens":[5,9]}
{"id":"c","context_tokens":[7,8],"continuation_tokens":[9,9]}
{"id":"d","context_tokens":[7,6],"continuation_tokens":[9]}
`
	if err := os.WriteFile(in, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := planCommand(context.Background(), []string{"--in", in, "--shards", "2"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	var r shardReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.Bytes())
	}
	if r.Shards != 2 || r.Requests != 4 || r.UniqueTokens != 9 || r.ComputedTokens != 9 || r.TotalTokens != 13 || len(r.PerShard) != 2 {
		t.Fatalf("report %+v", r)
	}
	if a, b := r.PerShard[0], r.PerShard[1]; a.Requests != 2 || a.ComputedTokens != 4 || b.Requests != 2 || b.ComputedTokens != 5 {
		t.Errorf("shards %+v %+v: want 2 requests, 4 tokens and 2 requests, 5 tokens", a, b)
	}
	if r.ComputedOverUnique != 1 || r.LargestOverIdeal != 10.0/9 {
		t.Errorf("ratios %v, %v", r.ComputedOverUnique, r.LargestOverIdeal)
	}
	err := planCommand(context.Background(), []string{"--in", in, "--shards", "-1"}, nil, &out)
	if err == nil || !strings.Contains(err.Error(), "--shards -1: want at least 1") {
		t.Errorf("--shards -1: %v", err)
	}
}
