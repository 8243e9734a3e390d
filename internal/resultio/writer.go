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
	line := Line{ID: r.ID, LogProb: finite64(r.LogProb), NTokens: r.NTokens, NBytes: r.NBytes,
		IsGreedy: r.IsGreedy, Truncated: r.Truncated}
	if w.tokenLogProbs {
		line.TokenLogProbs = make([]float32, len(r.TokenLogProbs))
		for i, lp := range r.TokenLogProbs {
			line.TokenLogProbs[i] = float32(finite64(float64(lp)))
		}
	}
	b, err := json.Marshal(line)
	if err == nil {
		b = append(b, '\n')
		_, err = w.w.Write(b)
	}
	if err != nil {
		w.err = fmt.Errorf("writing the result of request %q (#%d): %w", r.ID, r.Index, err)
		return
	}
	w.written++
}

// finite64 maps what JSON cannot hold to the most negative float: -inf (a
// zero-probability token, possible with quantized weights) and NaN (a
// broken model) both mean "as unlikely as can be written".
func finite64(x float64) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		if x > 0 {
			return math.MaxFloat64
		}
		return -math.MaxFloat32 // representable in the float32 token log-probs too
	}
	return x
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
