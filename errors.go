package lmscore

import "fmt"

// RequestError names the request that could not be scored.
type RequestError struct {
	Index int    // position in the input
	ID    string // the request's ID, if any
	Err   error
}

func (e *RequestError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("request %q (#%d): %v", e.ID, e.Index, e.Err)
	}
	return fmt.Sprintf("request #%d: %v", e.Index, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// BudgetError reports a KV memory budget too small for the work.
type BudgetError struct {
	Need, Have int64 // bytes
	Msg        string
}

func (e *BudgetError) Error() string { return "lmscore: " + e.Msg }
