package lmscore

import (
	"errors"
	"fmt"
	"math"
)

// ErrNonFinite is wrapped (inside a *RequestError naming the request) by
// the error of Score and ScoreStream when a log-probability comes out NaN or
// +Inf: the model's numbers are unusable (broken weights or a backend
// fault), and no path may pass them on as a score. -Inf is not an error: it
// is a token of probability zero under float32 arithmetic, a true (if
// extreme) score; JSON writers spell it as -math.MaxFloat32, as the server
// does.
var ErrNonFinite = errors.New("lmscore: non-finite log-probability")

// NonFiniteError is the ErrNonFinite failure: which token of the
// continuation (0-based) and its value. Top is true when the value was one
// of the top-N candidates rather than the continuation token itself.
type NonFiniteError struct {
	Token   int
	LogProb float32
	Top     bool
}

func (e *NonFiniteError) Error() string {
	where := ""
	if e.Top {
		where = " among its top candidates"
	}
	return fmt.Sprintf("%v: continuation token %d has a log-probability of %v%s (the model's weights or the backend are at fault)",
		ErrNonFinite, e.Token, e.LogProb, where)
}

func (e *NonFiniteError) Is(target error) bool { return target == ErrNonFinite }

// checkFinite returns a *NonFiniteError for the first NaN or +Inf of r.
func checkFinite(r *Result) error {
	bad := func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 1) }
	for j, lp := range r.TokenLogProbs {
		if bad(lp) {
			return &NonFiniteError{Token: j, LogProb: lp}
		}
	}
	for j, top := range r.TopLogProbs {
		for _, c := range top {
			if bad(c.LogProb) {
				return &NonFiniteError{Token: j, LogProb: c.LogProb, Top: true}
			}
		}
	}
	return nil
}
