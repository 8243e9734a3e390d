package resultio

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
)

func ids(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var line Line
		require.NoError(t, json.Unmarshal([]byte(l), &line))
		got = append(got, line.ID)
	}
	return got
}

func TestWriterKeepsInputOrder(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, false)
	for _, i := range []int{2, 0, 3, 1} {
		require.NoError(t, w.Add(lmscore.Result{Index: i, ID: string(rune('a' + i))}))
	}
	require.NoError(t, w.Flush())
	assert.Equal(t, []string{"a", "b", "c", "d"}, ids(t, buf.String()))
	assert.Equal(t, 4, w.Written())
}

func TestWriterSkipsInvalidLinesAndFlushesPastGaps(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, true)
	w.Skip(1)
	require.NoError(t, w.Add(lmscore.Result{Index: 2, ID: "c", TokenLogProbs: []float32{-1}}))
	require.NoError(t, w.Add(lmscore.Result{Index: 0, ID: "a"}))
	require.NoError(t, w.Add(lmscore.Result{Index: 5, ID: "f"})) // 3 and 4 never come: a cancelled run
	require.NoError(t, w.Flush())
	assert.Equal(t, []string{"a", "c", "f"}, ids(t, buf.String()))
	assert.Contains(t, buf.String(), `"token_logprobs":[-1]`)
}

func TestWriterWritesNonFiniteLogProbs(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, true)
	inf := float32(math.Inf(-1))
	require.NoError(t, w.Add(lmscore.Result{Index: 0, ID: "z", LogProb: math.Inf(-1), TokenLogProbs: []float32{-1, inf}}))
	require.NoError(t, w.Flush())
	var line Line
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line))
	assert.Equal(t, -math.MaxFloat32, line.LogProb)
	assert.Equal(t, []float32{-1, -math.MaxFloat32}, line.TokenLogProbs)
}
