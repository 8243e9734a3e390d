// Package resultio writes score results as JSONL in input order while they
// complete out of order, so that nothing already scored is lost when a run
// stops early.
package resultio

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/lmscore/lmscore"
)

// Line is one output line.
type Line struct {
	ID            string    `json:"id"`
	LogProb       float64   `json:"logprob"`
	NTokens       int       `json:"n_tokens"`
	NBytes        int       `json:"n_bytes"`
	IsGreedy      bool      `json:"is_greedy"`
	Truncated     bool      `json:"truncated"`
	TokenLogProbs []float32 `json:"token_logprobs,omitempty"`
}

// Writer emits results in input order: result k is written as soon as
// results 0..k are all in. Flush writes whatever is still held back, in
// order, skipping the gaps, for a run that ends early.
type Writer struct {
	mu            sync.Mutex
	w             *bufio.Writer
	tokenLogProbs bool
	next          int                    // the lowest index not yet written
	held          map[int]lmscore.Result // completed, waiting for a lower index
	skip          map[int]bool           // indices that will never come (invalid lines)
	written       int
	err           error
}

// NewWriter writes to w; tokenLogProbs adds each token's log-probability.
func NewWriter(w io.Writer, tokenLogProbs bool) *Writer {
	return &Writer{w: bufio.NewWriter(w), tokenLogProbs: tokenLogProbs,
		held: map[int]lmscore.Result{}, skip: map[int]bool{}}
}

// Skip marks an index that has no result (a line reported as invalid).
func (w *Writer) Skip(index int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.skip[index] = true
	w.drain()
}

// Add takes a completed result whose Index is its position in the input.
func (w *Writer) Add(r lmscore.Result) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held[r.Index] = r
	w.drain()
	return w.err
}

func (w *Writer) drain() {
	for {
		if w.skip[w.next] {
			delete(w.skip, w.next)
			w.next++
			continue
		}
		r, ok := w.held[w.next]
		if !ok {
			return
		}
		delete(w.held, w.next)
		w.write(r)
		w.next++
	}
}

func (w *Writer) write(r lmscore.Result) {
	if w.err != nil {
		return
	}
	b, err := Encode(r, w.tokenLogProbs)
	if err == nil {
		_, err = w.w.Write(b)
	}
	if err != nil {
		w.err = fmt.Errorf("writing the result of request %q (#%d): %w", r.ID, r.Index, err)
		return
	}
	w.written++
}

// Encode is r's output line, newline included: the one spelling of a result
// that the writer, the journal and the final file share, so that a result
// read back from a journal is written byte for byte as it was computed.
// NaN and +Inf are an error (lmscore.ErrNonFinite: Score reports them
// first); -Inf, a token of probability zero, is written as the most
// negative float32, which JSON can hold and which orders the same.
func Encode(r lmscore.Result, tokenLogProbs bool) ([]byte, error) {
	line := Line{ID: r.ID, NTokens: r.NTokens, NBytes: r.NBytes, IsGreedy: r.IsGreedy, Truncated: r.Truncated}
	var err error
	if line.LogProb, err = finite64(r.LogProb); err != nil {
		return nil, err
	}
	if tokenLogProbs {
		line.TokenLogProbs = make([]float32, len(r.TokenLogProbs))
		for i, lp := range r.TokenLogProbs {
			v, err := finite64(float64(lp))
			if err != nil {
				return nil, fmt.Errorf("token %d: %w", i, err)
			}
			line.TokenLogProbs[i] = float32(v)
		}
	}
	b, err := json.Marshal(line)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// finite64 maps -Inf to the most negative float32 (representable in the
// float32 token log-probabilities too) and refuses NaN and +Inf.
func finite64(x float64) (float64, error) {
	switch {
	case math.IsInf(x, -1):
		return -math.MaxFloat32, nil
	case math.IsNaN(x) || math.IsInf(x, 1):
		return 0, fmt.Errorf("%w: %v", lmscore.ErrNonFinite, x)
	}
	return x, nil
}

// Flush writes every held result in order, including those after a gap,
// and flushes the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drain()
	for len(w.held) > 0 {
		w.next++
		w.drain()
	}
	if err := w.w.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// Written is the number of lines written so far.
func (w *Writer) Written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}
