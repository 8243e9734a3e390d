package requestio

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestReadForms(t *testing.T) {
	in := `{"id": "a", "context_tokens": [1, 2], "continuation_tokens": [3]}

{"context_tokens": [], "continuation_tokens": [4, 5], "group": "q1", "label": 1, "choice": 0}
{"id": 7, "context": "Hi", "continuation": " there", "group": 12}
{"context": "", "continuation": "x", "context_tokens": [9], "continuation_tokens": [8]}
`
	tok := func(ctx, cont string) ([]int32, []int32, error) {
		return []int32{int32(len(ctx))}, []int32{int32(len(cont))}, nil
	}
	reqs, err := ReadAll(strings.NewReader(in), "r.jsonl", tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	a, b, c, d := reqs[0], reqs[1], reqs[2], reqs[3]
	if a.ID != "a" || a.Line != 1 || !slices.Equal(a.ContextTokens, []int32{1, 2}) || !slices.Equal(a.ContinuationTokens, []int32{3}) || a.HasText {
		t.Errorf("token form: %+v", a)
	}
	if b.ID != "3" || b.Line != 3 || len(b.ContextTokens) != 0 || b.Group != "q1" || b.Label == nil || *b.Label != 1 || b.Choice == nil || *b.Choice != 0 {
		t.Errorf("missing id must be the line number, optional fields parsed: %+v", b)
	}
	if c.ID != "7" || c.Group != "12" || !c.HasText || c.Context != "Hi" || !slices.Equal(c.ContinuationTokens, []int32{6}) {
		t.Errorf("text form through the tokenizer: %+v", c)
	}
	if !d.HasText || d.Continuation != "x" || !slices.Equal(d.ContinuationTokens, []int32{8}) {
		t.Errorf("both forms: tokens used, text kept: %+v", d)
	}
}

func TestReadErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"context_tokens": [1], "continuation_tokens": []}`, `empty "continuation_tokens"`},
		{`{"context_tokens": [1]}`, `"context_tokens" without "continuation_tokens"`},
		{`{"id": "x"}`, `no "continuation" or "continuation_tokens"`},
		{`{"context": "a", "continuation": ""}`, `empty "continuation"`},
		{`{"context": "a"}`, `"context" without "continuation"`},
		{`{"context_tokens": [1], "continuation_tokens": [2.5]}`, `invalid JSON`},
		{`{"context_tokens": [-1], "continuation_tokens": [2]}`, `context_tokens[0] = -1 is not a token id`},
		{`{"context_tokens": [1], "continuation_tokens": [4294967296]}`, `continuation_tokens[0] = 4294967296 is not a token id`},
		{`{"id": [1], "continuation_tokens": [2]}`, `"id" must be a string`},
		{`{"label": "b", "continuation_tokens": [2]}`, `"label" must be an integer`},
		{`{"continuation_tokens": [2]} {}`, `more than one value`},
		{`{"continuation_tokens": [2]`, `invalid JSON`},
	} {
		in := "{\"continuation_tokens\": [1]}\n\n" + tc.line + "\n"
		_, err := ReadAll(strings.NewReader(in), "in.jsonl", nil)
		if err == nil || !strings.HasPrefix(err.Error(), "in.jsonl:3: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want in.jsonl:3: ...%s", tc.line, err, tc.want)
		}
	}
}

func TestTextNeedsTokenizer(t *testing.T) {
	_, err := ReadAll(strings.NewReader(`{"context": "a", "continuation": "b"}`), "t.jsonl", nil)
	if !errors.Is(err, ErrNeedTokenizer) || !strings.HasPrefix(err.Error(), "t.jsonl:1: ") {
		t.Fatalf("got %v", err)
	}
	failing := func(string, string) ([]int32, []int32, error) { return nil, nil, fmt.Errorf("boom") }
	_, err = ReadAll(strings.NewReader(`{"context": "a", "continuation": "b"}`), "t.jsonl", failing)
	if err == nil || !strings.Contains(err.Error(), "tokenizing: boom") {
		t.Fatalf("tokenizer error not passed on: %v", err)
	}
}

func TestNoTrailingNewlineAndCRLF(t *testing.T) {
	reqs, err := ReadAll(strings.NewReader("{\"continuation_tokens\": [1]}\r\n{\"continuation_tokens\": [2]}"), "x", nil)
	if err != nil || len(reqs) != 2 || reqs[1].ContinuationTokens[0] != 2 || reqs[1].ID != "2" {
		t.Fatalf("got %+v, %v", reqs, err)
	}
}

// failingReader fails after its content, as a broken pipe or disk would.
type failingReader struct{ data string }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestLineErrorType: a bad line is a *LineError (a caller may skip it); a
// failure to read is not.
func TestLineErrorType(t *testing.T) {
	rd := NewReader(strings.NewReader("{\"continuation_tokens\": []}\n{\"continuation_tokens\": [1]}\n"), "f", nil)
	_, err := rd.Next()
	var le *LineError
	if !errors.As(err, &le) || le.Line != 1 || le.File != "f" {
		t.Fatalf("bad line: got %#v", err)
	}
	if req, err := rd.Next(); err != nil || req.Line != 2 {
		t.Fatalf("the reader must go on after a bad line: %+v %v", req, err)
	}
	rd = NewReader(&failingReader{data: "{\"continuation_tokens\": [1]}\n"}, "f", nil)
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Next(); err == nil || errors.As(err, &le) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("read failure: got %v", err)
	}
}

func TestReadTask(t *testing.T) {
	reqs, err := ReadAll(strings.NewReader(`{"task": "arc_easy", "group": "q1", "context_tokens": [1], "continuation_tokens": [2]}
{"context_tokens": [1], "continuation_tokens": [2]}
`), "r.jsonl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if reqs[0].Task != "arc_easy" || reqs[1].Task != "" {
		t.Errorf("task: %q, %q", reqs[0].Task, reqs[1].Task)
	}
	_, err = ReadAll(strings.NewReader(`{"task": [1], "context_tokens": [1], "continuation_tokens": [2]}`), "r.jsonl", nil)
	if err == nil || !strings.Contains(err.Error(), `r.jsonl:1: "task" must be a string`) {
		t.Errorf("bad task: %v", err)
	}
}

// TestUnknownFieldNamesTheNearest: a misspelt field is an error, not an
// empty context scored without a word.
func TestUnknownFieldNamesTheNearest(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"contxt": "a", "continuation": "b"}`, `in.jsonl:1: unknown field "contxt"; did you mean "context"?`},
		{`{"context": "a", "continuaton": "b"}`, `unknown field "continuaton"; did you mean "continuation"?`},
		{`{"continuation_tokens": [1], "context_token": [2]}`, `unknown field "context_token"; did you mean "context_tokens"?`},
		{`{"continuation_tokens": [1], "lable": 1}`, `did you mean "label"?`},
		{`{"continuation_tokens": [1], "xyzzy_metadata": 1}`, `unknown field "xyzzy_metadata"; the fields are id, context, continuation`},
	} {
		_, err := ReadAll(strings.NewReader(tc.line+"\n"), "in.jsonl", nil)
		var le *LineError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &le) {
			t.Errorf("%s: got %v, want a line error with %s", tc.line, err, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"contxt", "context", 1}, {"kitten", "sitting", 3}, {"label", "lable", 2}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
