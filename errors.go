package lmscore

import (
	"errors"
	"fmt"

	"github.com/lmscore/lmscore/binding"
	"github.com/lmscore/lmscore/model"
)

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

// Sentinels for errors.Is. Every error that Open, OpenModel, OpenMeta,
// Score, ScoreStream and Close return from the native core or the model
// loader matches one of them; its message stays the underlying one.
var (
	// ErrNoCgo: the binary was built without cgo, so it has no native core.
	ErrNoCgo = errors.New("lmscore: built without cgo")
	// The native core's status codes (lmscore_status in lmscore.h).
	ErrInvalidArgument = errors.New("lmscore: invalid argument")
	ErrUnsupported     = errors.New("lmscore: unsupported")
	ErrOutOfMemory     = errors.New("lmscore: out of memory")
	ErrDevice          = errors.New("lmscore: device error")
	ErrInternal        = errors.New("lmscore: internal error")
	// A model file whose architecture or tensor type lmscore does not
	// implement; both also match ErrUnsupported.
	ErrUnsupportedArch = fmt.Errorf("%w architecture", ErrUnsupported)
	ErrUnsupportedType = fmt.Errorf("%w tensor type", ErrUnsupported)
)

// Error is a failure of the native core or the model loader, classified:
// Kind is one of the sentinels above, Err the failure as it was reported
// (a *binding.Error for the native core). errors.Is matches both.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string   { return e.Err.Error() }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// nativeKinds maps the native core's statuses to the sentinels.
var nativeKinds = map[binding.Status]error{
	binding.StatusInvalidArgument: ErrInvalidArgument,
	binding.StatusUnsupported:     ErrUnsupported,
	binding.StatusOutOfMemory:     ErrOutOfMemory,
	binding.StatusDevice:          ErrDevice,
	binding.StatusInternal:        ErrInternal,
}

// classify wraps an error of binding/ or model/ in an *Error naming its
// kind, so that callers need neither package to tell failures apart. Other
// errors (and nil) pass through unchanged.
func classify(err error) error {
	var be *binding.Error
	var kind error
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*Error)):
		return err // classified already
	case errors.Is(err, binding.ErrNoCgo):
		kind = ErrNoCgo
	case errors.Is(err, model.ErrUnsupportedArch):
		kind = ErrUnsupportedArch
	case errors.Is(err, model.ErrUnsupportedType):
		kind = ErrUnsupportedType
	case errors.As(err, &be):
		kind = nativeKinds[be.Status]
	}
	if kind == nil {
		return err
	}
	return &Error{Kind: kind, Err: err}
}
