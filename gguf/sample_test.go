package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// sampleWriter builds a file that uses every value type, empty and nested
// arrays, and tensors of several types and ranks.
func sampleWriter(t testing.TB, align uint32) *Writer {
	t.Helper()
	w := NewWriter()
	w.Set("general.architecture", "llama")
	if align != 0 {
		w.Set(KeyAlignment, align)
	}
	w.Set("t.u8", uint8(200))
	w.Set("t.i8", int8(-100))
	w.Set("t.u16", uint16(60000))
	w.Set("t.i16", int16(-30000))
	w.Set("t.u32", uint32(4000000000))
	w.Set("t.i32", int32(-2000000000))
	w.Set("t.u64", uint64(1)<<63+5)
	w.Set("t.i64", int64(-1)<<62)
	w.Set("t.f32", float32(3.25))
	w.Set("t.f64", math.Pi)
	w.Set("t.bool", true)
	w.Set("t.false", false)
	w.Set("t.str", "héllo ▁world")
	w.Set("t.empty", "")
	w.Set("t.a.u8", []uint8{1, 2, 255})
	w.Set("t.a.i8", []int8{-1, 0, 1})
	w.Set("t.a.u16", []uint16{1, 65535})
	w.Set("t.a.i16", []int16{-32768, 7})
	w.Set("t.a.u32", []uint32{0, 1, 1 << 31})
	w.Set("t.a.i32", []int32{-5, 5, math.MaxInt32})
	w.Set("t.a.u64", []uint64{math.MaxUint64, 3})
	w.Set("t.a.i64", []int64{math.MinInt64, 9})
	w.Set("t.a.f32", []float32{0.5, -1.5, float32(math.Inf(1))})
	w.Set("t.a.f64", []float64{1e300, math.Copysign(0, -1)})
	w.Set("t.a.bool", []bool{true, false, true})
	w.Set("t.a.str", []string{"a", "", "<0x0A>", "▁the"})
	w.Set("t.a.empty", []string{})
	inner1, _ := ValueOf([]int32{1, 2})
	inner2, _ := ValueOf([]string{"x"})
	w.Set("t.a.nested", []Value{inner1, inner2})
	w.AddTensor("f32.vec", TensorF32, []int64{5}, seqBytes(20))
	w.AddTensor("f16.mat", TensorF16, []int64{3, 2}, seqBytes(12))
	w.AddTensor("bf16.mat", TensorBF16, []int64{4, 3, 2}, seqBytes(48))
	w.AddTensor("q8_0.mat", TensorQ8_0, []int64{64, 2}, seqBytes(34*4))
	w.AddTensor("q4_k.mat", TensorType(12), []int64{256, 1, 1, 1}, seqBytes(144))
	w.AddTensor("empty", TensorF32, []int64{0, 4}, nil)
	return w
}

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func writeBytes(t testing.TB, w *Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// raw assembles a file field by field, for files the Writer refuses to make.
type raw struct{ bytes.Buffer }

func (r *raw) u8(x uint8) *raw   { r.WriteByte(x); return r }
func (r *raw) u32(x uint32) *raw { binary.Write(&r.Buffer, binary.LittleEndian, x); return r }
func (r *raw) u64(x uint64) *raw { binary.Write(&r.Buffer, binary.LittleEndian, x); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }
func (r *raw) header(nTensors, nKV uint64) *raw {
	r.WriteString(Magic)
	return r.u32(3).u64(nTensors).u64(nKV)
}

// tensorInfo appends one tensor info.
func (r *raw) tensorInfo(name string, typ TensorType, off uint64, dims ...uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(uint32(typ)).u64(off)
}

// data pads to the default alignment and appends n bytes of tensor data.
func (r *raw) data(n int) *raw {
	for r.Len()%DefaultAlignment != 0 {
		r.WriteByte(0)
	}
	r.Write(make([]byte, n))
	return r
}
