package model

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// quantRefPython finds the venv `make quantref` builds (gguf-py from PyPI),
// or $LMSCORE_QUANTREF.
func quantRefPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("LMSCORE_QUANTREF")
	if py == "" {
		py, _ = filepath.Abs("../.cache/quantref/venv/bin/python")
	}
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no gguf-py reference environment (%s): run `make quantref` or set LMSCORE_QUANTREF", py)
	}
	return py
}

// edgeScales are fp16 scale values the dequantizers must get right: zero
// of both signs, the smallest and largest subnormals, one, the largest
// finite values, and negatives.
var edgeScales = []uint16{0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x1234, 0xa5a5}

// testBlocks makes n blocks of t: random bytes everywhere (so every quant
// value and sub-block scale occurs), the fp16 scales drawn from edgeScales
// or random finite values, plus all-zero and all-one-bits quant blocks.
func testBlocks(t TensorType, n int, rng *rand.Rand) []byte {
	f := blockFormats[t]
	b := make([]byte, n*f.bytes)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for blk := 0; blk < n; blk++ {
		base := blk * f.bytes
		switch blk {
		case 0:
			clear(b[base : base+f.bytes])
		case 1:
			for i := base; i < base+f.bytes; i++ {
				b[i] = 0xff
			}
		}
		for k, off := range f.scales {
			var h uint16
			if (blk+k)%3 == 0 {
				h = edgeScales[(blk/3+k)%len(edgeScales)]
			} else {
				h = uint16(rng.Uint32()) & 0xfbff // exponent never all ones: finite
			}
			binary.LittleEndian.PutUint16(b[base+off:], h)
		}
	}
	return b
}

func writeFloats(t *testing.T, path string, x []float32) {
	t.Helper()
	if err := os.WriteFile(path, EncodeF32(x), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestQuantDequantizeMatchesGGUFPy: every type's Go dequantizer gives
// gguf-py's float32 values bit for bit, and the legacy quantizers gguf-py's
// bytes, on random blocks with edge-value scales.
func TestQuantDequantizeMatchesGGUFPy(t *testing.T) {
	py := quantRefPython(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 11))
	type job struct {
		op, name string
		in       []byte
		inVals   []float32
		out      string
	}
	var jobs []job
	var args []string
	for _, typ := range QuantTypes {
		f := blockFormats[typ]
		blocks := testBlocks(typ, 600, rng)
		in := filepath.Join(dir, f.name+".blk")
		if err := os.WriteFile(in, blocks, 0o644); err != nil {
			t.Fatal(err)
		}
		j := job{op: "dequant", name: f.name, in: blocks, out: filepath.Join(dir, f.name+".deq")}
		jobs = append(jobs, j)
		args = append(args, strings.Join([]string{"dequant", f.name, in, j.out}, ":"))
		if CanQuantize(typ) {
			x := quantInputs(40*f.values, rng)
			inq := filepath.Join(dir, f.name+".f32")
			writeFloats(t, inq, x)
			j := job{op: "quant", name: f.name, inVals: x, out: filepath.Join(dir, f.name+".q")}
			jobs = append(jobs, j)
			args = append(args, strings.Join([]string{"quant", f.name, inq, j.out}, ":"))
		}
	}
	cmd := exec.Command(py, append([]string{"../tools/quantref/quantref.py"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("quantref.py: %v\n%s", err, out)
	}
	for _, j := range jobs {
		want, err := os.ReadFile(j.out)
		if err != nil {
			t.Fatal(err)
		}
		typ := typeByName(j.name)
		switch j.op {
		case "dequant":
			got, err := Dequantize(typ, j.in)
			if err != nil {
				t.Fatal(err)
			}
			wantF := DecodeF32(want)
			if len(got) != len(wantF) {
				t.Fatalf("%s: %d values, gguf-py %d", j.name, len(got), len(wantF))
			}
			bad := 0
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(wantF[i]) {
					if bad < 5 {
						t.Errorf("%s dequant: value %d (block %d) = %g (%08x), gguf-py %g (%08x)", j.name, i, i/blockFormats[typ].values,
							got[i], math.Float32bits(got[i]), wantF[i], math.Float32bits(wantF[i]))
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%s dequant: %d of %d values differ", j.name, bad, len(got))
			}
		case "quant":
			got, err := Quantize(typ, j.inVals)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				f := blockFormats[typ]
				for blk := 0; blk < len(got)/f.bytes; blk++ {
					g, w := got[blk*f.bytes:(blk+1)*f.bytes], want[blk*f.bytes:(blk+1)*f.bytes]
					if string(g) != string(w) {
						t.Errorf("%s quant: block %d = %x, gguf-py %x", j.name, blk, g, w)
						break
					}
				}
			}
		}
	}
}

// quantInputs are float32 values for the quantizer tests: mostly normal
// values, with some blocks all zero, all equal, with a negative extreme,
// or holding subnormals and values that round halfway.
func quantInputs(n int, rng *rand.Rand) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for blk := 0; blk*32 < n; blk++ {
		s := x[blk*32 : (blk+1)*32]
		switch blk % 8 {
		case 0:
			clear(s)
		case 1:
			for i := range s {
				s[i] = 0.75
			}
		case 2:
			s[5] = -9
		case 3:
			for i := range s {
				s[i] *= 1e-40
			}
		case 4:
			for i := range s {
				s[i] = float32(int(s[i]*4)) / 2 // halves: rounding ties
			}
		}
	}
	return x
}

func typeByName(name string) TensorType {
	for _, typ := range QuantTypes {
		if typ.String() == name {
			return typ
		}
	}
	return TensorType(math.MaxUint32)
}

// TestQuantRoundTripLegacy: Quantize then Dequantize is within half a step
// of the input (a check of the quantizers that needs no Python).
func TestQuantRoundTripLegacy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 32*50)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, typ := range []TensorType{TypeQ4_0, TypeQ4_1, TypeQ5_0, TypeQ5_1, TypeQ8_0} {
		b, err := Quantize(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		y, err := Dequantize(typ, b)
		if err != nil {
			t.Fatal(err)
		}
		levels := map[TensorType]float64{TypeQ4_0: 8, TypeQ4_1: 7.5, TypeQ5_0: 16, TypeQ5_1: 15.5, TypeQ8_0: 127}[typ]
		for blk := 0; blk < 50; blk++ {
			xs := x[blk*32 : (blk+1)*32]
			lo, hi := minMax(xs)
			step := float64(hi-lo) / 2 / levels
			for i, v := range xs {
				if d := math.Abs(float64(y[blk*32+i] - v)); d > step*1.01+1e-3 {
					t.Fatalf("%s: value %d: %g -> %g (step %g)", typ, blk*32+i, v, y[blk*32+i], step)
				}
			}
		}
	}
}

func TestQuantCheckBlocksAndSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, typ := range QuantTypes {
		f := blockFormats[typ]
		for _, off := range f.scales {
			for _, h := range []uint16{0x7c00, 0xfc00, 0x7e00} {
				b := testBlocks(typ, 3, rng)
				binary.LittleEndian.PutUint16(b[f.bytes+off:], h)
				tn := &Tensor{Name: "blk.0.ffn_up.weight", Type: typ, Shape: [2]int64{int64(f.values), 3}, Data: b}
				err := tn.checkData()
				if err == nil || !strings.Contains(err.Error(), "blk.0.ffn_up.weight") || !strings.Contains(err.Error(), "block 1") {
					t.Errorf("%s scale at %d = %04x: %v", typ, off, h, err)
				}
			}
		}
		b := testBlocks(typ, 3, rng)
		tn := &Tensor{Name: "output.weight", Type: typ, Shape: [2]int64{int64(f.values), 3}, Data: b[:len(b)-1]}
		if err := tn.checkData(); err == nil || !strings.Contains(err.Error(), "output.weight") {
			t.Errorf("%s truncated: %v", typ, err)
		}
		tn = &Tensor{Name: "output.weight", Type: typ, Shape: [2]int64{int64(f.values) + 16, 1}, Data: b}
		if err := tn.checkData(); err == nil || !strings.Contains(err.Error(), "whole blocks") {
			t.Errorf("%s ragged row: %v", typ, err)
		}
	}
	if _, err := Quantize(TypeQ4_K, make([]float32, 256)); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("Quantize Q4_K: %v", err)
	}
}
