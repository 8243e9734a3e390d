package gguf

import (
	"errors"
	"fmt"
)

// FormatError reports a malformed or unsupported GGUF file.
type FormatError struct {
	File    string // the name given to Open or Parse
	Offset  int64  // byte offset of the problem, -1 when it has none
	Problem string
}

func (e *FormatError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("gguf: %s: %s (at byte %d)", e.File, e.Problem, e.Offset)
	}
	return fmt.Sprintf("gguf: %s: %s", e.File, e.Problem)
}

// ErrKeyNotFound is wrapped by the metadata getters when a key is absent, so
// that callers can tell an optional key from a malformed one.
var ErrKeyNotFound = errors.New("key not found")

// ErrTensorNotFound is wrapped by TensorData when no tensor has the name.
var ErrTensorNotFound = errors.New("tensor not found")
