package resultio

import (
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
)

func TestJournalRoundTripAndTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl.journal")
	h := Header{Version: JournalVersion, Identity: Identity{Requests: 3, Backend: "cpu", TokenLogProbs: true}}
	j, err := CreateJournal(path, h, time.Hour)
	require.NoError(t, err)
	var lines [][]byte
	for i, r := range []lmscore.Result{{Index: 2, ID: "c", LogProb: -1.25, TokenLogProbs: []float32{-1.25}, NTokens: 1},
		{Index: 0, ID: "a", LogProb: math.Inf(-1), TokenLogProbs: []float32{float32(math.Inf(-1))}}} {
		b, err := Encode(r, true)
		require.NoError(t, err)
		lines = append(lines, b)
		require.NoError(t, j.Add(r.Index, 10+i, b))
	}
	require.NoError(t, j.Close())

	// A kill mid-write leaves part of a line.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"i":1,"norm_bytes":3,"r":{"id":"b","logp`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	got, recs, valid, err := ReadJournal(path)
	require.NoError(t, err)
	assert.Equal(t, h, got)
	require.Len(t, recs, 2)
	assert.Equal(t, 2, recs[0].Index)
	assert.Equal(t, 11, recs[1].NormBytes)
	assert.Equal(t, string(lines[0]), string(recs[0].Line)+"\n", "the output line comes back byte for byte")
	assert.Equal(t, string(lines[1]), string(recs[1].Line)+"\n")

	j, err = AppendJournal(path, valid, time.Hour)
	require.NoError(t, err)
	require.NoError(t, j.Add(1, 3, []byte(`{"id":"b"}`+"\n")))
	require.NoError(t, j.Close())
	_, recs, _, err = ReadJournal(path)
	require.NoError(t, err)
	require.Len(t, recs, 3, "the torn line is replaced, not kept")
	assert.Equal(t, `{"id":"b"}`, string(recs[2].Line))
}

func TestJournalSyncsOnItsOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := CreateJournal(path, Header{Version: JournalVersion}, 20*time.Millisecond)
	require.NoError(t, err)
	defer j.Close()
	require.NoError(t, j.Add(0, 0, []byte(`{"id":"a"}`)))
	require.Eventually(t, func() bool {
		_, recs, _, err := ReadJournal(path)
		return err == nil && len(recs) == 1
	}, 2*time.Second, 10*time.Millisecond, "a record reaches the file without Close")
}

func TestReadJournalRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"middle":  `{"lmscore_journal":1,"identity":{}}` + "\nnot json\n" + `{"i":0,"norm_bytes":0,"r":{}}` + "\n",
		"version": `{"lmscore_journal":7,"identity":{}}` + "\n",
		"foreign": `{"id":"x"}` + "\n",
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
		_, _, _, err := ReadJournal(path)
		assert.Error(t, err, name)
	}
	path := filepath.Join(dir, "torn")
	require.NoError(t, os.WriteFile(path, []byte(`{"lmscore_jou`), 0o644))
	_, _, _, err := ReadJournal(path)
	assert.True(t, errors.Is(err, ErrTornHeader), "%v", err)
}

func TestIdentityDiff(t *testing.T) {
	a := Identity{Model: ModelIdentity{Size: 5}, Backend: "cpu", MaxLength: 64}
	assert.Equal(t, "", a.Diff(a))
	b := a
	b.Model.Size = 6
	assert.Equal(t, "model.size: 5 in the journal, 6 now", a.Diff(b))
	b = a
	b.MaxLength = 32
	assert.Equal(t, "max_length: 64 in the journal, 32 now", a.Diff(b))
}

func TestIdentifyModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	data := []byte(strings.Repeat("x", 3000))
	require.NoError(t, os.WriteFile(path, data, 0o644))
	a, err := IdentifyModel(path)
	require.NoError(t, err)
	assert.Equal(t, int64(3000), a.Size)
	data[2999] = 'y'
	mtime := time.Now().Add(-time.Hour)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	require.NoError(t, os.Chtimes(path, mtime, mtime))
	b, err := IdentifyModel(path)
	require.NoError(t, err)
	assert.NotEqual(t, a.SHA256, b.SHA256)
	assert.NotEqual(t, a.ModTime, b.ModTime)
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	require.NoError(t, os.WriteFile(path, []byte("old\n"), 0o644))
	err := WriteFileAtomic(path, func(w io.Writer) error {
		io.WriteString(w, "half")
		return errors.New("interrupted")
	})
	require.Error(t, err)
	b, _ := os.ReadFile(path)
	assert.Equal(t, "old\n", string(b), "a failed write leaves the old file")
	require.NoError(t, WriteFileAtomic(path, func(w io.Writer) error { _, err := io.WriteString(w, "new\n"); return err }))
	b, _ = os.ReadFile(path)
	assert.Equal(t, "new\n", string(b))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary file left")
}
