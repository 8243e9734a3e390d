package scorejob

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/resultio"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

func requestLines(n int) []string {
	var lines []string
	for i := 0; i < n; i++ {
		b, _ := json.Marshal(map[string]any{"id": "r" + jsonInt(i), "group": "g" + jsonInt(i/4), "label": (i / 4) % 3,
			"context_tokens": []int{1, 3 + i%50, 7 + i%13}, "continuation_tokens": []int{4, 5 + i%7}})
		lines = append(lines, string(b))
	}
	return lines
}

func readSummary(t *testing.T, path string) Summary {
	t.Helper()
	var s Summary
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}

// TestResumeIsByteIdentical: a journal cut anywhere (a torn last line
// included) resumes to the uninterrupted run's output, byte for byte, and
// computes only the missing requests.
func TestResumeIsByteIdentical(t *testing.T) {
	path := randomGGUF(t)
	in := writeLines(t, requestLines(120)...)
	dir := t.TempDir()
	opts := lmscore.Options{KVMemory: 8 << 20, MaxBatchTokens: 32}
	full := filepath.Join(dir, "full.jsonl")
	require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: full, Stderr: io.Discard,
		Options: opts, TokenLogProbs: true, Summary: filepath.Join(dir, "full.json")}))
	want, err := os.ReadFile(full)
	require.NoError(t, err)
	_, err = os.Stat(JournalPath(full))
	require.ErrorIs(t, err, os.ErrNotExist, "a complete run removes its journal")
	fullSum := readSummary(t, filepath.Join(dir, "full.json"))

	// A journal of the first k results in completion order, as a run
	// killed after them leaves it: made by a run cancelled after k. (The
	// last k leaves a few steps to run: a step finishes several requests,
	// so a cut at 119 could land after the last one.)
	for _, k := range []int{0, 1, 57, 110} {
		out := filepath.Join(dir, "out"+jsonInt(k)+".jsonl")
		cfg := Config{Model: path, In: in, Out: out, Stderr: io.Discard, Options: opts, TokenLogProbs: true}
		cfg.Options.MaxBatchTokens = 8
		require.Error(t, runCancelledAfter(cfg, k))
		jp := JournalPath(out)
		if k == 57 { // and a torn line after them
			f, err := os.OpenFile(jp, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			f.WriteString(`{"i":3,"norm_bytes":1,"r":{"id":"r3","logpr`)
			f.Close()
		}
		_, recs, _, err := resultio.ReadJournal(jp)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(recs), k)
		require.Less(t, len(recs), 120, "k=%d: the run stopped before the end", k)

		err = Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: io.Discard, Options: opts, TokenLogProbs: true})
		require.Error(t, err, "a journal is there: a plain rerun refuses")
		assert.Contains(t, err.Error(), "--resume")

		sum := filepath.Join(dir, "sum"+jsonInt(k)+".json")
		require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: io.Discard,
			Options: opts, TokenLogProbs: true, Resume: true, Summary: sum}))
		got, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "k=%d", k)
		s := readSummary(t, sum)
		assert.Equal(t, len(recs), s.Resumed, "k=%d", k)
		assert.Equal(t, 120-len(recs), s.Stats.Requests, "k=%d: only the missing requests are computed", k)
		assert.Equal(t, fullSum.MultiChoice, s.MultiChoice, "k=%d: the metrics count the resumed results too", k)
		_, err = os.Stat(jp)
		assert.ErrorIs(t, err, os.ErrNotExist)
	}
}

// runCancelledAfter runs cfg, cancelled once k results are journaled (0:
// before scoring starts), as a kill after them would leave the journal.
func runCancelledAfter(cfg Config, k int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if k == 0 {
		cfg.beforeScore = cancel
	}
	cfg.afterResult = func(done int) {
		if done >= k {
			cancel()
		}
	}
	return Run(ctx, cfg)
}

func TestResumeRefusesAnotherRun(t *testing.T) {
	path := randomGGUF(t)
	lines := requestLines(30)
	in := writeLines(t, lines...)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	opts := lmscore.Options{KVMemory: 8 << 20}
	require.Error(t, runCancelledAfter(Config{Model: path, In: in, Out: out, Stderr: io.Discard, Options: opts}, 0))
	_, err := os.Stat(JournalPath(out))
	require.NoError(t, err, "a stopped run leaves its journal")

	other := writeLines(t, append(lines[:29:29], strings.Replace(lines[29], `"r29"`, `"s29"`, 1))...)
	for name, cfg := range map[string]Config{
		"requests_sha256": {Model: path, In: other, Options: opts},
		"token_logprobs":  {Model: path, In: in, Options: opts, TokenLogProbs: true},
		"max_length":      {Model: path, In: in, Options: lmscore.Options{KVMemory: 8 << 20, MaxLength: 32}},
		"model.":          {Model: randomGGUF(t), In: in, Options: opts},
	} {
		cfg.Out, cfg.Stderr, cfg.Resume = out, io.Discard, true
		err := Run(context.Background(), cfg)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "written by another run ("+name, name)
	}
	var stderr bytes.Buffer
	require.NoError(t, Run(context.Background(), Config{Model: path, In: other, Out: out, Stderr: &stderr, Options: opts, Force: true}))
	assert.Len(t, readResults(t, out), 30)
}

// TestRerunKeepsTheOldOutputUntilDone: a failing rerun leaves the previous
// output as it was.
func TestRerunKeepsTheOldOutputUntilDone(t *testing.T) {
	path := randomGGUF(t)
	in := writeLines(t, requestLines(20)...)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	opts := lmscore.Options{KVMemory: 8 << 20}
	require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: io.Discard, Options: opts}))
	before, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Error(t, runCancelledAfter(Config{Model: path, In: in, Out: out, Stderr: io.Discard, Options: opts, Force: true}, 3))
	after, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
}

func TestDuplicateIDs(t *testing.T) {
	path := randomGGUF(t)
	in := writeLines(t,
		`{"id":"a","context_tokens":[1,5],"continuation_tokens":[7]}`,
		`{"id":"b","context_tokens":[1,5],"continuation_tokens":[8]}`,
		`{"id":"a","context_tokens":[1,6],"continuation_tokens":[9]}`)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	opts := lmscore.Options{KVMemory: 8 << 20}
	err := Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: io.Discard, Options: opts})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `in.jsonl:3: duplicate id "a" (line 1 has it too)`)
	require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: out, Stderr: io.Discard, Options: opts, AllowDuplicateIDs: true}))
	res := readResults(t, out)
	require.Len(t, res, 3)
	assert.Equal(t, []string{"a", "b", "a"}, []string{res[0].ID, res[1].ID, res[2].ID})
	assert.NotEqual(t, res[0].LogProb, res[2].LogProb, "kept apart by line")
}

func TestNaNModelIsANamedError(t *testing.T) {
	m := testmodel.Must(testmodel.Options{Seed: 9, NVocab: 300, NCtx: 64})
	norm := m.Weights.OutputNorm.Data
	for i := 0; i+4 <= len(norm); i += 4 {
		binary.LittleEndian.PutUint32(norm[i:], math.Float32bits(float32(math.NaN())))
	}
	kv, err := model.FixtureTokenizer(300)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "nan.gguf")
	require.NoError(t, model.WriteGGUF(path, m.Config, &m.Weights, kv...))
	in := writeLines(t, `{"id":"a","context_tokens":[1,5],"continuation_tokens":[7,8]}`)
	for _, out := range []string{filepath.Join(t.TempDir(), "out.jsonl"), "-"} {
		var stdout bytes.Buffer
		err = Run(context.Background(), Config{Model: path, In: in, Out: out, Stdout: &stdout, Stderr: io.Discard,
			Options: lmscore.Options{KVMemory: 8 << 20}})
		require.ErrorIs(t, err, lmscore.ErrNonFinite)
		assert.Contains(t, err.Error(), `in.jsonl:1: request "a": lmscore: non-finite log-probability: continuation token 0 has a log-probability of NaN`)
		assert.NotContains(t, stdout.String(), "e+38")
		if out != "-" {
			b, _ := os.ReadFile(out)
			assert.NotContains(t, string(b), "e+38")
		}
	}
}

// endless yields request lines until the test ends.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	line := `{"id":"` + jsonInt(e.n) + `","context":"hello there","continuation":" world"}` + "\n"
	e.n++
	return copy(p, line), nil
}

// TestInterruptWhileReading: a cancel during input parsing is acted on at
// once, not after the whole input.
func TestInterruptWhileReading(t *testing.T) {
	path := randomGGUF(t)
	ctx, cancel := context.WithCancel(context.Background())
	var cancelled time.Time
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancelled = time.Now()
		cancel()
	}()
	err := Run(ctx, Config{Model: path, In: "-", Stdin: &endless{}, Out: filepath.Join(t.TempDir(), "o.jsonl"),
		Stderr: io.Discard, Options: lmscore.Options{KVMemory: 8 << 20}})
	took := time.Since(cancelled)
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Less(t, took, 200*time.Millisecond)
	assert.True(t, strings.Contains(err.Error(), "reading stdin"), "%v", err)
}
