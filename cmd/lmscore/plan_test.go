package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/convert"
	"github.com/lmscore/lmscore/internal/testshared"
	"github.com/lmscore/lmscore/workload"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runPlanJSON(t *testing.T, args ...string) map[string]float64 {
	t.Helper()
	var out bytes.Buffer
	if err := planCommand(context.Background(), args, strings.NewReader(""), &out); err != nil {
		t.Fatalf("plan %v: %v", args, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("plan printed no JSON object: %v\n%s", err, out.String())
	}
	nums := map[string]float64{}
	for k, v := range m {
		if f, ok := v.(float64); ok {
			nums[k] = f
		}
	}
	return nums
}

// TestPlanTokenForm: the figures of a small plan, worked out by hand.
func TestPlanTokenForm(t *testing.T) {
	// Inputs: a = 1 2 3 4 5 6, b = 1 2 3 4 5, c = 9 (the last continuation
	// token is never an input): 12 in all, 7 unique. At block size 4, a
	// takes b's partial block 1 over in place (one reused block); the peak
	// is blocks 0 and 1 of a and b's path plus c's block.
	in := writeFile(t, "r.jsonl", `{"id": "a", "context_tokens": [1, 2, 3, 4, 5], "continuation_tokens": [6, 7]}
{"context_tokens": [1, 2, 3, 4, 5], "continuation_tokens": [8]}
{"id": "c", "context_tokens": [9], "continuation_tokens": [10]}
`)
	got := runPlanJSON(t, "--in", in, "--block-size", "4")
	for k, want := range map[string]float64{
		"requests": 3, "total_tokens": 12, "unique_tokens": 7, "planned_computed_tokens": 7,
		"recomputed_tokens": 0, "copied_blocks": 0, "reused_blocks": 1, "steps": 1,
		"peak_live_blocks": 3, "scored_tokens": 4, "block_size": 4,
	} {
		if g, ok := got[k]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, want)
		}
	}
	// One block less than that peak still completes.
	got = runPlanJSON(t, "--in", in, "--block-size", "4", "--kv-blocks", "3")
	if got["planned_computed_tokens"] != 7 || got["kv_blocks"] != 3 {
		t.Errorf("tight plan: %v", got)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		file, args, want string
	}{
		{`{"context": "Hi", "continuation": " there"}`, "", "r.jsonl:1: text-form request needs a tokenizer (give a model): give --model M.gguf"},
		{`{"context_tokens": [], "continuation_tokens": [3]}`, "", `r.jsonl:1: request "1" has an empty context: give --model`},
		{`{"context_tokens": [1, 2, 3, 4, 5, 6, 7, 8, 9], "continuation_tokens": [3]}`, "--kv-blocks 2 --block-size 4", `request "1": its 9 input tokens need 3 KV blocks`},
		{`{"context_tokens": [1], "continuation_tokens": [2, 3, 4]}`, "--max-length 2", `continuation of 3 tokens does not fit the context window of 2`},
		{`{"context_tokens": [1], "continuation_tokens": [2]}`, "--block-size 0", `block size 0`},
	} {
		in := writeFile(t, "r.jsonl", tc.file+"\n")
		args := append([]string{"--in", in}, strings.Fields(tc.args)...)
		err := planCommand(context.Background(), args, nil, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: got %v, want %q", tc.file, tc.args, err, tc.want)
		}
	}
}

// TestPlanMetaICL: the generated MetaICL workload through the command: a
// loose budget computes exactly the unique tokens; a budget of 1/20 of the
// unique tokens' blocks completes. The default run uses a tenth of the
// questions; LMSCORE_PLAN_FULL=1 runs all 1000 per task (a 300 MB file).
func TestPlanMetaICL(t *testing.T) {
	scale := 0.1
	if os.Getenv("LMSCORE_PLAN_FULL") != "" {
		scale = 1
	}
	lines, err := workload.Generate("metaicl16", workload.Options{Seed: 1, Vocab: 32000, FirstID: 3, Newline: 13, Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := workload.WriteJSONL(&buf, lines); err != nil {
		t.Fatal(err)
	}
	in := writeFile(t, "metaicl.jsonl", buf.String())
	loose := runPlanJSON(t, "--in", in)
	if loose["planned_computed_tokens"] != loose["unique_tokens"] || loose["unique_tokens"] <= 0 || loose["requests"] != float64(len(lines)) {
		t.Fatalf("loose: %v", loose)
	}
	uniqueBlocks := int(loose["unique_tokens"]+15) / 16
	tight := runPlanJSON(t, "--in", in, "--kv-blocks", strconv.Itoa(uniqueBlocks/20))
	if tight["unique_tokens"] != loose["unique_tokens"] || tight["peak_live_blocks"] > float64(uniqueBlocks/20-1) {
		t.Fatalf("1/20 budget: %v", tight)
	}
	t.Logf("%d requests, %v tokens, %v unique; loose: %v steps, peak %v blocks; 1/20 (%d blocks): %v steps, computed %v, evictions %v",
		len(lines), loose["total_tokens"], loose["unique_tokens"], loose["steps"], loose["peak_live_blocks"],
		uniqueBlocks/20, tight["steps"], tight["planned_computed_tokens"], tight["evictions"])
}

// TestPlanTextForm plans text requests with the tokenizer of stories260K
// (converted to GGUF here), when ../shared has it.
func TestPlanTextForm(t *testing.T) {
	model := testshared.Stories260KGGUF(t)
	in := writeFile(t, "text.jsonl", `{"id": "q1a", "context": "Once upon a time, there was a", "continuation": " girl"}
{"id": "q1b", "context": "Once upon a time, there was a", "continuation": " dog"}
{"id": "e", "context": "", "continuation": "Lily"}
`)
	got := runPlanJSON(t, "--in", in, "--model", model)
	if got["requests"] != 3 || got["unique_tokens"] >= got["total_tokens"] || got["planned_computed_tokens"] != got["unique_tokens"] {
		t.Fatalf("text plan: %v", got)
	}
	if got["max_length"] <= 0 {
		t.Errorf("the model's context window should be the default max_length, got %v", got["max_length"])
	}
}

// TestPlanVocabOnlyModel: a vocabulary-only file (convert --vocab-only)
// carries the tokenizer and the context window, which is all a plan needs;
// it plans text requests exactly as the full model file does.
func TestPlanVocabOnlyModel(t *testing.T) {
	dir := filepath.Join("..", "..", "internal", "hfcheck", "testdata", "llama")
	full := filepath.Join(t.TempDir(), "full.gguf")
	vocab := filepath.Join(t.TempDir(), "vocab.gguf")
	if err := convert.HF(dir, full, convert.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := convert.HF(dir, vocab, convert.Options{VocabOnly: true}); err != nil {
		t.Fatal(err)
	}
	in := writeFile(t, "text.jsonl", `{"id": "a", "context": "the cat sat on the", "continuation": " mat"}
{"id": "b", "context": "the cat sat on the", "continuation": " hat"}
{"id": "e", "context": "", "continuation": "the"}
`)
	want := runPlanJSON(t, "--in", in, "--model", full)
	got := runPlanJSON(t, "--in", in, "--model", vocab)
	delete(want, "plan_seconds")
	delete(got, "plan_seconds")
	if got["requests"] != 3 || got["max_length"] <= 0 {
		t.Fatalf("vocabulary-only plan: %v", got)
	}
	if !maps.Equal(got, want) {
		t.Errorf("vocabulary-only plan %v\nfull-model plan %v", got, want)
	}
}

// TestPlanPlot: --plot writes the picture in the format its extension
// names, creating the folder, and still prints the plan; a name of another
// type is refused before any work.
func TestPlanPlot(t *testing.T) {
	in := writeFile(t, "r.jsonl", `{"id": "a", "context_tokens": [1, 2, 3, 4, 5], "continuation_tokens": [6, 7]}
{"id": "b", "context_tokens": [1, 2, 3, 4, 5], "continuation_tokens": [8]}
`)
	dir := t.TempDir()
	for ext, magic := range map[string]string{".png": "\x89PNG\r\n\x1a\n", ".svg": "<?xml"} {
		path := filepath.Join(dir, "new", "plan"+ext)
		got := runPlanJSON(t, "--in", in, "--plot", path)
		if got["unique_tokens"] != 6 {
			t.Errorf("%s: unique_tokens %v, want 6", ext, got["unique_tokens"])
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte(magic)) || len(data) < 1000 {
			t.Errorf("%s: %d bytes starting %q", ext, len(data), data[:min(len(data), 16)])
		}
	}
	var out bytes.Buffer
	err := planCommand(context.Background(), []string{"--in", filepath.Join(dir, "missing.jsonl"), "--plot", "plan.gif"}, strings.NewReader(""), &out)
	if err == nil || !strings.Contains(err.Error(), ".png, .svg or .pdf") {
		t.Fatalf("--plot plan.gif: %v", err)
	}
}
