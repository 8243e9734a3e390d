package scorejob

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/resultio"
)

// A run on three devices (CPU instances) stopped part-way resumes on two
// of them, the journal's results kept, to one device's output byte for
// byte: issue 19's "the run resumes on the remaining devices".
func TestDevicesRunResumesOnFewerDevices(t *testing.T) {
	path := randomGGUF(t)
	in := writeLines(t, requestLines(120)...)
	dir := t.TempDir()
	opts := lmscore.Options{KVMemory: 8 << 20, MaxBatchTokens: 32, Threads: 2}
	one := filepath.Join(dir, "one.jsonl")
	require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: one, Stderr: io.Discard, Options: opts, TokenLogProbs: true}))
	want, err := os.ReadFile(one)
	require.NoError(t, err)

	out := filepath.Join(dir, "out.jsonl")
	cfg := Config{Model: path, In: in, Out: out, Stderr: io.Discard, Options: opts, TokenLogProbs: true, Devices: []int{0, 1, 2}}
	require.Error(t, runCancelledAfter(cfg, 40))
	_, recs, _, err := resultio.ReadJournal(JournalPath(out))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(recs), 40)
	require.Less(t, len(recs), 120, "the run stopped before the end")

	cfg.Devices, cfg.Resume = []int{0, 2}, true
	cfg.Summary = filepath.Join(dir, "sum.json")
	require.NoError(t, Run(context.Background(), cfg))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	s := readSummary(t, cfg.Summary)
	assert.Equal(t, len(recs), s.Resumed)
	assert.Equal(t, 120-len(recs), s.Stats.Requests, "only the missing requests are computed")
}

// The pool's own warnings reach stderr: here that CPU instances
// outnumbering the threads run one thread each, more than asked for.
func TestDevicesRunPrintsThePoolsWarnings(t *testing.T) {
	path := randomGGUF(t)
	in := writeLines(t, requestLines(8)...)
	var stderr strings.Builder
	cfg := Config{Model: path, In: in, Out: filepath.Join(t.TempDir(), "out.jsonl"), Stderr: &stderr,
		Options: lmscore.Options{KVMemory: 8 << 20, Threads: 1}, Devices: []int{0, 1}}
	require.NoError(t, Run(context.Background(), cfg))
	assert.Contains(t, stderr.String(), "lmscore: 2 CPU instances, 1 threads: one thread each, 2 in all")
}
