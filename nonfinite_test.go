package lmscore

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
)

// TestNaNWeightsAreErrNonFinite: a model whose numbers are NaN fails Score
// and ScoreStream with ErrNonFinite naming the request and the token, and
// delivers no result carrying the NaN.
func TestNaNWeightsAreErrNonFinite(t *testing.T) {
	weights := testmodel.Must(testmodel.Options{Seed: 3, NVocab: 97, NCtx: 128})
	norm := weights.Weights.OutputNorm.Data
	for i := 0; i+4 <= len(norm); i += 4 {
		binary.LittleEndian.PutUint32(norm[i:], math.Float32bits(float32(math.NaN())))
	}
	m := openTest(t, weights, Options{Threads: 1})
	reqs := randomRequests(5, 97, 7)
	delivered := 0
	_, _, err := m.Score(context.Background(), reqs, ScoreOptions{OnResult: func(Result) error { delivered++; return nil }})
	require.ErrorIs(t, err, ErrNonFinite)
	var re *RequestError
	require.ErrorAs(t, err, &re)
	var nf *NonFiniteError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, 0, nf.Token)
	assert.True(t, math.IsNaN(float64(nf.LogProb)))
	assert.Contains(t, err.Error(), "continuation token 0 has a log-probability of NaN")
	assert.Equal(t, reqs[re.Index].ID, re.ID)
	assert.Zero(t, delivered, "no NaN reaches OnResult")

	i := 0
	_, err = m.ScoreStream(context.Background(), func() (Request, error) {
		if i == len(reqs) {
			return Request{}, io.EOF
		}
		i++
		return reqs[i-1], nil
	}, 3, ScoreOptions{})
	require.ErrorIs(t, err, ErrNonFinite)
	require.ErrorAs(t, err, &re)
	assert.Equal(t, reqs[re.Index].ID, re.ID, "the stream's index counts from its start")
}

func TestCheckFinite(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		r    Result
		want *NonFiniteError
	}{
		{Result{TokenLogProbs: []float32{-1, float32(math.Inf(-1))}}, nil}, // probability zero is a score
		{Result{TokenLogProbs: []float32{-1, inf}}, &NonFiniteError{Token: 1, LogProb: inf}},
		{Result{TokenLogProbs: []float32{-1, -2}, TopLogProbs: [][]TokenLogProb{{{3, -1}}, {{4, inf}}}},
			&NonFiniteError{Token: 1, LogProb: inf, Top: true}},
	} {
		err := checkFinite(&tc.r)
		if tc.want == nil {
			assert.NoError(t, err)
			continue
		}
		var nf *NonFiniteError
		require.True(t, errors.As(err, &nf), "%v", err)
		assert.Equal(t, *tc.want, *nf)
		assert.ErrorIs(t, err, ErrNonFinite)
	}
}
