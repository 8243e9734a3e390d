// Package resultio writes score results as JSONL in input order while they
// complete out of order, so that nothing already scored is lost when a run
// stops early.
package resultio

import (
	"bufio"
	"encoding/json"
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
	line := Line{ID: r.ID, LogProb: r.LogProb, NTokens: r.NTokens, NBytes: r.NBytes,
		IsGreedy: r.IsGreedy, Truncated: r.Truncated}
	if w.tokenLogProbs {
		line.TokenLogProbs = r.TokenLogProbs
	}
	if math.IsInf(line.LogProb, 0) || math.IsNaN(line.LogProb) {
		// JSON has no infinities; a -inf sum (a zero-probability token in a
		// quantized model) is written as the most negative float64.
		line.LogProb = -math.MaxFloat64
	}
	b, err := json.Marshal(line)
	if err == nil {
		b = append(b, '\n')
		_, err = w.w.Write(b)
	}
	if err != nil {
		w.err = err
		return
	}
	w.written++
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
