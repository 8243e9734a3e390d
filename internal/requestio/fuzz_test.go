package requestio

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadLine: any bytes give requests or line errors, never a panic, and
// every request the reader accepts is well formed: a continuation, token ids
// in int32, the line number counting from 1.
func FuzzReadLine(f *testing.F) {
	for _, s := range []string{
		`{"id": "a", "context_tokens": [1, 2], "continuation_tokens": [3]}`,
		`{"context": "Hi", "continuation": " there", "group": 12, "label": 0, "choice": 1}`,
		`{"contxt": "a", "continuation": "b"}`,
		`{"continuation_tokens": [4294967296]}`,
		"{\"continuation_tokens\": [1]}\r\n\n{\"id\": [1]}",
		`{"label": "x", "continuation_tokens": [1]} {}`,
	} {
		f.Add([]byte(s))
	}
	tokenize := func(ctx, cont string) ([]int32, []int32, error) {
		if len(cont) > 64 {
			return nil, nil, errors.New("too long")
		}
		out := make([]int32, len(cont))
		for i := range cont {
			out[i] = int32(cont[i])
		}
		return []int32{int32(len(ctx))}, out, nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data), "f", tokenize)
		last := 0
		for n := 0; ; n++ {
			req, err := rd.Next()
			if err == io.EOF {
				return
			}
			if n > len(data)+1 {
				t.Fatalf("more results than bytes: the reader does not advance")
			}
			if err != nil {
				var le *LineError
				if !errors.As(err, &le) || le.Line <= last {
					t.Fatalf("not a line error past line %d: %v", last, err)
				}
				last = le.Line
				continue
			}
			if req.Line <= last || len(req.ContinuationTokens) == 0 || req.ID == "" {
				t.Fatalf("ill-formed request after line %d: %+v", last, req)
			}
			for _, id := range append(append([]int32(nil), req.ContextTokens...), req.ContinuationTokens...) {
				if id < 0 {
					t.Fatalf("negative token id: %+v", req)
				}
			}
			last = req.Line
		}
	})
}
