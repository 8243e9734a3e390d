package lmscore

import (
	"context"
	"errors"
	"io"
	"time"
)

// DefaultStreamWindow is how many requests ScoreStream plans together.
const DefaultStreamWindow = 100_000

// ScoreStream scores requests as next yields them (io.EOF ends the stream),
// planning window requests at a time (0 means DefaultStreamWindow) so that
// memory stays bounded on inputs of any size. Each window is one prefix
// trie; windows share the KV block pool, so a prefix cached by one window is
// reused by the next. Results reach so.OnResult as they complete, with Index
// counting from the start of the stream. The returned statistics add up the
// windows (peaks are the largest window's).
func (m *Model) ScoreStream(ctx context.Context, next func() (Request, error), window int, so ScoreOptions) (Stats, error) {
	if window <= 0 {
		window = DefaultStreamWindow
	}
	start := time.Now()
	var total Stats
	base := 0
	onResult := so.OnResult
	for done := false; !done; {
		var reqs []Request
		for len(reqs) < window {
			r, err := next()
			if errors.Is(err, io.EOF) {
				done = true
				break
			}
			if err != nil {
				return total, err
			}
			reqs = append(reqs, r)
		}
		if len(reqs) == 0 {
			break
		}
		offset := base
		var cbErr error // the caller's own error, returned as it is
		so.OnResult = func(r Result) error {
			r.Index += offset
			if onResult != nil {
				cbErr = onResult(r)
				return cbErr
			}
			return nil
		}
		_, st, err := m.Score(ctx, reqs, so)
		total.Add(st)
		total.Wall = time.Since(start)
		if err != nil {
			// A request of this window: its index in the stream. A
			// RequestError the callback returned is the caller's, and
			// keeps the index the caller gave it.
			var re *RequestError
			if cbErr == nil && errors.As(err, &re) {
				re.Index += offset
			}
			return total, err
		}
		base += len(reqs)
	}
	total.Wall = time.Since(start)
	total.SetRates()
	return total, nil
}

// Add counts o's work into s: its tokens, steps, copies and evictions are
// summed and its peaks taken where larger. Wall and the rates are the
// caller's to set (a sum of runs that overlap in time is not their wall).
func (s *Stats) Add(o Stats) {
	s.Requests += o.Requests
	s.TotalTokens += o.TotalTokens
	s.UniqueTokens += o.UniqueTokens
	s.ComputedTokens += o.ComputedTokens
	s.ReusedTokens += o.ReusedTokens
	s.RecomputedTokens += o.RecomputedTokens
	s.CopiedBlocks += o.CopiedBlocks
	s.Evictions += o.Evictions
	s.Steps += o.Steps
	s.PeakKVBlocks = max(s.PeakKVBlocks, o.PeakKVBlocks)
	s.PeakKVBytes = max(s.PeakKVBytes, o.PeakKVBytes)
}

// SetRates sets the tokens per second from the token counts and Wall.
func (s *Stats) SetRates() {
	if secs := s.Wall.Seconds(); secs > 0 {
		s.TokensPerSecond = float64(s.TotalTokens) / secs
		s.ComputedPerSecond = float64(s.ComputedTokens) / secs
	}
}
