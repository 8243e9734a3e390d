package lmscore

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
)

func TestScoreStreamMatchesScore(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 8, NVocab: 97, NCtx: 128})
	reqs := randomRequests(21, 97, 70)
	m := openTest(t, weights, Options{Threads: 2})
	want := scoreAll(t, m, reqs, ScoreOptions{NoCache: true})

	for _, window := range []int{1, 7, 1000} {
		i := 0
		next := func() (Request, error) {
			if i == len(reqs) {
				return Request{}, io.EOF
			}
			i++
			return reqs[i-1], nil
		}
		got := make([]Result, len(reqs))
		seen := 0
		st, err := m.ScoreStream(context.Background(), next, window, ScoreOptions{OnResult: func(r Result) error {
			got[r.Index] = r
			seen++
			return nil
		}})
		require.NoError(t, err)
		assert.Equal(t, len(reqs), seen, "window %d", window)
		assert.Equal(t, len(reqs), st.Requests)
		requireBitwise(t, want, got, "stream")
	}
}

func TestScoreStreamNamesTheBadRequestByStreamIndex(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 8, NVocab: 97, NCtx: 128})
	m := openTest(t, weights, Options{Threads: 1})
	reqs := randomRequests(22, 97, 10)
	reqs[8].ContinuationTokens = []int32{500}
	i := 0
	_, err := m.ScoreStream(context.Background(), func() (Request, error) {
		if i == len(reqs) {
			return Request{}, io.EOF
		}
		i++
		return reqs[i-1], nil
	}, 3, ScoreOptions{})
	var re *RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 8, re.Index)
}

// A RequestError that the caller's OnResult returns is the caller's: the
// stream hands it back untouched, not shifted by the window's offset.
func TestScoreStreamLeavesTheCallbacksRequestError(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 8, NVocab: 97, NCtx: 128})
	m := openTest(t, weights, Options{Threads: 1})
	reqs := randomRequests(23, 97, 10)
	i := 0
	mine := &RequestError{Index: 0, ID: "caller's"}
	_, err := m.ScoreStream(context.Background(), func() (Request, error) {
		if i == len(reqs) {
			return Request{}, io.EOF
		}
		i++
		return reqs[i-1], nil
	}, 3, ScoreOptions{OnResult: func(r Result) error {
		if r.Index >= 4 {
			return mine
		}
		return nil
	}})
	var re *RequestError
	require.ErrorAs(t, err, &re)
	assert.Same(t, mine, re)
	assert.Equal(t, 0, re.Index, "the caller's index, not shifted by the window")
}
