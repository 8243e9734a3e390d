// Package requestio reads request JSONL: one (context, continuation) pair
// per line, in token form
//
//	{"id": "q1", "context_tokens": [1, 450, 4996], "continuation_tokens": [29871, 29946]}
//
// or in text form, which needs a tokenizer (injected, so that this package
// needs none)
//
//	{"id": "q1", "context": "Question: 2+2=", "continuation": " 4"}
//
// with optional "task" (the benchmark a question belongs to, for per-task
// metrics), "group" (the question a choice belongs to), "label" (the index
// of the right choice) and "choice" (this request's index among its group's
// choices). A line may carry both forms: the tokens are used, the
// text is kept (acc_norm needs the continuation's length in bytes). A
// missing id becomes the 1-based line number. Blank lines are skipped. An
// unknown field is an error naming the nearest known one: a misspelt
// "contxt" would otherwise score an empty context without a word. Every
// error names the file and line.
package requestio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Request is one parsed line.
type Request struct {
	Line int    // 1-based line number in the input
	ID   string // as given, or the line number

	// Text form; HasText reports whether the line gave it (an empty
	// context is valid text).
	Context      string
	Continuation string
	HasText      bool

	// Token form, or the text form's tokens when a tokenizer was given. An
	// empty ContextTokens means the caller substitutes BOS.
	ContextTokens      []int32
	ContinuationTokens []int32

	Task   string
	Group  string
	Label  *int
	Choice *int
}

// TokenizeFunc tokenizes a text-form pair (lm-eval-harness's rules are its
// business) and returns the context and continuation tokens.
type TokenizeFunc func(context, continuation string) (ctx, cont []int32, err error)

// ErrNeedTokenizer is wrapped by the error for a text-form line read without
// a tokenizer.
var ErrNeedTokenizer = errors.New("text-form request needs a tokenizer (give a model)")

// LineError is a line that cannot be a request (bad JSON, a missing or
// mistyped field), as opposed to a failure to read the input at all.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// Reader reads requests one line at a time.
type Reader struct {
	r        *bufio.Reader
	name     string
	tokenize TokenizeFunc
	line     int
}

// NewReader reads from r; name (a file name) prefixes error messages;
// tokenize may be nil when every line is in token form.
func NewReader(r io.Reader, name string, tokenize TokenizeFunc) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 1<<20), name: name, tokenize: tokenize}
}

// line is the JSON shape. id, group, label and choice are raw so that a
// number id or a string label gets a clear message instead of a type error.
type line struct {
	ID                 json.RawMessage  `json:"id"`
	Context            *string          `json:"context"`
	Continuation       *string          `json:"continuation"`
	ContextTokens      []int64          `json:"context_tokens"`
	ContinuationTokens []int64          `json:"continuation_tokens"`
	Task               json.RawMessage  `json:"task"`
	Group              json.RawMessage  `json:"group"`
	Label              *json.RawMessage `json:"label"`
	Choice             *json.RawMessage `json:"choice"`
}

// Next returns the next request, or io.EOF after the last.
func (rd *Reader) Next() (Request, error) {
	for {
		raw, err := rd.r.ReadBytes('\n')
		if len(raw) == 0 && err != nil {
			if err == io.EOF {
				return Request{}, io.EOF
			}
			return Request{}, fmt.Errorf("%s: %w", rd.name, err)
		}
		rd.line++
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			if err == io.EOF {
				return Request{}, io.EOF
			}
			continue
		}
		req, perr := rd.parse(raw)
		if perr != nil {
			return Request{}, &LineError{File: rd.name, Line: rd.line, Err: perr}
		}
		return req, nil
	}
}

func (rd *Reader) parse(raw []byte) (Request, error) {
	var l line
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		if name, ok := unknownField(err); ok {
			return Request{}, unknownFieldError(name)
		}
		return Request{}, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return Request{}, errors.New("invalid JSON: more than one value on the line")
	}
	req := Request{Line: rd.line}
	var err error
	if req.ID, err = stringField("id", l.ID); err != nil {
		return Request{}, err
	}
	if req.ID == "" {
		req.ID = strconv.Itoa(rd.line)
	}
	if req.Task, err = stringField("task", l.Task); err != nil {
		return Request{}, err
	}
	if req.Group, err = stringField("group", l.Group); err != nil {
		return Request{}, err
	}
	if req.Label, err = intField("label", l.Label); err != nil {
		return Request{}, err
	}
	if req.Choice, err = intField("choice", l.Choice); err != nil {
		return Request{}, err
	}
	if l.Context != nil || l.Continuation != nil {
		if l.Continuation == nil {
			return Request{}, errors.New(`"context" without "continuation"`)
		}
		if *l.Continuation == "" {
			return Request{}, errors.New(`empty "continuation"`)
		}
		req.HasText = true
		if l.Context != nil {
			req.Context = *l.Context
		}
		req.Continuation = *l.Continuation
	}
	switch {
	case l.ContinuationTokens != nil:
		if len(l.ContinuationTokens) == 0 {
			return Request{}, errors.New(`empty "continuation_tokens"`)
		}
		if req.ContextTokens, err = tokens("context_tokens", l.ContextTokens); err != nil {
			return Request{}, err
		}
		if req.ContinuationTokens, err = tokens("continuation_tokens", l.ContinuationTokens); err != nil {
			return Request{}, err
		}
	case l.ContextTokens != nil:
		return Request{}, errors.New(`"context_tokens" without "continuation_tokens"`)
	case req.HasText:
		if rd.tokenize == nil {
			return Request{}, ErrNeedTokenizer
		}
		if req.ContextTokens, req.ContinuationTokens, err = rd.tokenize(req.Context, req.Continuation); err != nil {
			return Request{}, fmt.Errorf("tokenizing: %w", err)
		}
		if len(req.ContinuationTokens) == 0 {
			return Request{}, fmt.Errorf("continuation %q tokenizes to nothing", req.Continuation)
		}
	default:
		return Request{}, errors.New(`no "continuation" or "continuation_tokens"`)
	}
	return req, nil
}

// knownFields are the keys of a request line, in the order of the package
// comment.
var knownFields = []string{"id", "context", "continuation", "context_tokens", "continuation_tokens",
	"task", "group", "label", "choice"}

// unknownField extracts the key that encoding/json's DisallowUnknownFields
// refused; the error has no type of its own, only this message.
func unknownField(err error) (string, bool) {
	const prefix = "json: unknown field "
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	name, uerr := strconv.Unquote(msg[len(prefix):])
	return name, uerr == nil
}

func unknownFieldError(name string) error {
	best, bestDist := "", math.MaxInt
	for _, k := range knownFields {
		if d := editDistance(strings.ToLower(name), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	// A suggestion further than half the name away is noise: list them all.
	if bestDist <= max(2, len(name)/2) {
		return fmt.Errorf("unknown field %q; did you mean %q?", name, best)
	}
	return fmt.Errorf("unknown field %q; the fields are %s", name, strings.Join(knownFields, ", "))
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func stringField(name string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil // a numeric id reads as its digits
	}
	return "", fmt.Errorf("%q must be a string, not %s", name, raw)
}

func intField(name string, raw *json.RawMessage) (*int, error) {
	if raw == nil || string(*raw) == "null" {
		return nil, nil
	}
	var v int
	if err := json.Unmarshal(*raw, &v); err != nil {
		return nil, fmt.Errorf("%q must be an integer, not %s", name, *raw)
	}
	return &v, nil
}

func tokens(name string, in []int64) ([]int32, error) {
	out := make([]int32, len(in))
	for i, v := range in {
		if v < 0 || v > math.MaxInt32 {
			return nil, fmt.Errorf("%s[%d] = %d is not a token id", name, i, v)
		}
		out[i] = int32(v)
	}
	return out, nil
}

// ReadAll reads every request of r.
func ReadAll(r io.Reader, name string, tokenize TokenizeFunc) ([]Request, error) {
	rd := NewReader(r, name, tokenize)
	var out []Request
	for {
		req, err := rd.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, req)
	}
}
