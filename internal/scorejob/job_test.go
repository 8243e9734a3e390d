package scorejob

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/resultio"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/internal/testshared"
	"github.com/lmscore/lmscore/model"
)

// stories converts the shared stories260K model, or skips.
func stories(t *testing.T) string { return testshared.Stories260KGGUF(t) }

// randomGGUF writes a small random llama model with a fixture vocabulary.
func randomGGUF(t *testing.T) string {
	t.Helper()
	m := testmodel.Must(testmodel.Options{Seed: 9, NVocab: 300, NCtx: 64})
	kv, err := model.FixtureTokenizer(300)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "random.gguf")
	require.NoError(t, model.WriteGGUF(path, m.Config, &m.Weights, kv...))
	return path
}

func writeLines(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return path
}

func readResults(t *testing.T, path string) []resultio.Line {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []resultio.Line
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var r resultio.Line
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		out = append(out, r)
	}
	return out
}

// The four log-likelihoods and the greedy story of the stories260K README.
func TestStories260KEndToEnd(t *testing.T) {
	path := stories(t)
	const lily = "Once upon a time, there was a little girl named Lily. She loved to play outside in the"
	const tom = "Tom was very hungry, so he asked his mom for"
	const story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."
	line := func(id, ctx, cont string) string {
		b, _ := json.Marshal(map[string]string{"id": id, "context": ctx, "continuation": cont})
		return string(b)
	}
	in := writeLines(t,
		line("park", lily, " park."), line("spoon", lily, " spoon."),
		line("food", tom, " some food."), line("rock", tom, " a big rock."),
		line("story", "", story))
	for _, noCache := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "out.jsonl")
		var stderr bytes.Buffer
		require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: &stderr,
			Options: lmscore.Options{NoCache: noCache, KVMemory: 64 << 20}, TokenLogProbs: true}))
		res := readResults(t, out)
		require.Len(t, res, 5)
		for i, want := range []float64{-1.66, -11.69, -5.83, -8.81} {
			assert.InDelta(t, want, res[i].LogProb, 0.01, res[i].ID)
		}
		assert.Equal(t, "story", res[4].ID)
		assert.True(t, res[4].IsGreedy, "every token of the greedy story is the argmax")
		assert.Greater(t, res[4].NTokens, 40)
		assert.Len(t, res[4].TokenLogProbs, res[4].NTokens)
		assert.Contains(t, stderr.String(), "tokens: total / unique / computed")
	}
}

func TestBadLinesNameTheLine(t *testing.T) {
	path := randomGGUF(t)
	good := `{"id":"ok","context_tokens":[1,5,6],"continuation_tokens":[7]}`
	good2 := `{"id":"ok2","context_tokens":[1,5,6],"continuation_tokens":[7]}` // ids are unique
	for want, bad := range map[string]string{
		"in.jsonl:2: invalid JSON":         `{"id": "x", "context_tokens": [1,`,
		`in.jsonl:2: empty "continuation"`: `{"id":"x","context":"a","continuation":""}`,
		"in.jsonl:2: token id 300 outside": `{"id":"x","context_tokens":[1],"continuation_tokens":[300]}`,
		"in.jsonl:2:":                      `{"id":"x","context_tokens":[1]}`,
	} {
		in := writeLines(t, good, bad, good2)
		out := filepath.Join(t.TempDir(), "out.jsonl")
		err := Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: &bytes.Buffer{},
			Options: lmscore.Options{KVMemory: 8 << 20}})
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)

		var stderr bytes.Buffer
		sum := filepath.Join(t.TempDir(), "sum.json")
		require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: &stderr,
			Summary: sum, SkipInvalid: true, Options: lmscore.Options{KVMemory: 8 << 20}}))
		assert.Contains(t, stderr.String(), "lmscore: skipped: ")
		assert.Contains(t, stderr.String(), want)
		assert.Len(t, readResults(t, out), 2, "the two good lines are scored")
		var s Summary
		b, err := os.ReadFile(sum)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &s))
		assert.Equal(t, 1, s.Skipped)
		assert.Equal(t, 2, s.Requests)
	}
}

func TestCancelledRunKeepsCompletedResults(t *testing.T) {
	path := randomGGUF(t)
	var lines []string
	for i := 0; i < 200; i++ {
		b, _ := json.Marshal(map[string]any{"id": i, "context_tokens": []int{1, 3 + i%50, 7}, "continuation_tokens": []int{4, 5}})
		lines = append(lines, strings.Replace(string(b), `"id":`+jsonInt(i), `"id":"r`+jsonInt(i)+`"`, 1))
	}
	in := writeLines(t, lines...)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // cancelled before the first step: nothing scored, nothing lost, a clear error
	err := Run(ctx, Config{Model: path, In: in, Out: out, Stderr: &bytes.Buffer{},
		Options: lmscore.Options{KVMemory: 8 << 20, MaxBatchTokens: 16}})
	require.ErrorIs(t, err, context.Canceled)
	_, statErr := os.Stat(out)
	require.NoError(t, statErr, "the output file exists even when nothing completed")
}

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestOverBudgetLineIsNamedAndSkippable(t *testing.T) {
	path := randomGGUF(t)
	in := writeLines(t,
		`{"id":"ok","context_tokens":[1,5,6],"continuation_tokens":[7]}`,
		`{"id":"big","context_tokens":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20],"continuation_tokens":[7]}`)
	opts := lmscore.Options{BlockSize: 4, KVBlocks: 3} // 2 usable blocks: 8 tokens
	out := filepath.Join(t.TempDir(), "out.jsonl")
	err := Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: &bytes.Buffer{}, Options: opts})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "in.jsonl:2:")
	assert.Contains(t, err.Error(), "20 input tokens need 5 KV blocks")

	var stderr bytes.Buffer
	require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: &stderr,
		Options: opts, SkipInvalid: true}))
	assert.Contains(t, stderr.String(), "in.jsonl:2:")
	assert.Len(t, readResults(t, out), 1)
}
