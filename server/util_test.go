package server

import (
	"bytes"
	"io"
	"math"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
func negInf() float64                { return math.Inf(-1) }
func nan() float64                   { return math.NaN() }
