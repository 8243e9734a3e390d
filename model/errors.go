package model

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is: a file or config this package refuses because
// lmscore does not implement it, as opposed to one that is malformed. The
// errors that wrap them keep their own text, which names the architecture or
// type and what is supported.
var (
	ErrUnsupportedArch = errors.New("unsupported architecture")
	ErrUnsupportedType = errors.New("unsupported tensor type")
	// ErrVocabOnly: the file has hyperparameters and a tokenizer but no
	// weights (convert --vocab-only). It cannot be scored with, but it
	// can plan and tokenize.
	ErrVocabOnly = errors.New("vocabulary-only file")
)

// kindError is an error with its own message that matches a sentinel.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// unsupported formats a message that errors.Is matches to kind.
func unsupported(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
