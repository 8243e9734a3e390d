package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

func bytesReader(b []byte) io.Reader   { return bytes.NewReader(b) }
func stringsReader(s string) io.Reader { return strings.NewReader(s) }
func negInf() float64                  { return math.Inf(-1) }
func nan() float64                     { return math.NaN() }

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// recorder is a minimal http.ResponseWriter for calling a handler directly.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, code: http.StatusOK} }

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(code int)        { r.code = code }
