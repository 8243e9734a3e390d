package server

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
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
