package gguf

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRoundTripIsByteIdentical(t *testing.T) {
	for _, align := range []uint32{0, 64, 1} {
		first := writeBytes(t, sampleWriter(t, align))
		f, err := ParseBytes(first, "sample.gguf")
		if err != nil {
			t.Fatalf("align %d: %v", align, err)
		}
		want := DefaultAlignment
		if align != 0 {
			want = int(align)
		}
		if f.Alignment != int64(want) || f.DataOffset%f.Alignment != 0 {
			t.Fatalf("align %d: Alignment %d, DataOffset %d", align, f.Alignment, f.DataOffset)
		}
		second := writeBytes(t, NewWriterFrom(f))
		if !bytes.Equal(first, second) {
			t.Fatalf("align %d: rewrite differs (%d vs %d bytes)", align, len(first), len(second))
		}
	}
}

func TestReadBackValuesAndTensors(t *testing.T) {
	w := sampleWriter(t, 0)
	b := writeBytes(t, w)
	f, err := ParseBytes(b, "sample.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || len(f.KV) != len(w.kvs) || len(f.Tensors) != len(w.tensors) {
		t.Fatalf("version %d, %d keys, %d tensors", f.Version, len(f.KV), len(f.Tensors))
	}
	for i, kv := range w.kvs {
		got := f.KV[i]
		if got.Key != kv.Key || got.Value.Type() != kv.Value.Type() || got.Value.ElemType() != kv.Value.ElemType() {
			t.Errorf("key %d: got %s %s, want %s %s", i, got.Key, got.Value.TypeName(), kv.Key, kv.Value.TypeName())
			continue
		}
		// -0.0 and +Inf compare fine with DeepEqual; NaN is not in the sample.
		if !reflect.DeepEqual(got.Value.Any(), kv.Value.Any()) {
			t.Errorf("key %s: got %v, want %v", kv.Key, got.Value.Any(), kv.Value.Any())
		}
	}
	for i, pt := range w.tensors {
		ti := f.Tensors[i]
		if ti.Name != pt.Name || ti.Type != pt.Type || !reflect.DeepEqual(ti.Dims, pt.Dims) || ti.Size != pt.Size {
			t.Errorf("tensor %d: got %+v, want %+v", i, ti, pt.TensorInfo)
		}
		if ti.Offset%f.Alignment != 0 {
			t.Errorf("tensor %s: offset %d not aligned", ti.Name, ti.Offset)
		}
		data, err := f.TensorData(ti.Name)
		if err != nil || !bytes.Equal(data, pt.data) {
			t.Errorf("tensor %s: data differs (err %v)", ti.Name, err)
		}
	}
	neg, _ := f.Get("t.a.f64")
	if x := neg.Any().([]float64)[1]; !math.Signbit(x) {
		t.Errorf("-0.0 lost its sign")
	}
}

// Open (memory-mapped), Parse (ReaderAt) and ParseBytes must agree.
func TestOpenAndParseAgree(t *testing.T) {
	b := writeBytes(t, sampleWriter(t, 0))
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := sampleWriter(t, 0).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(onDisk, b) {
		t.Fatalf("WriteFile wrote different bytes than WriteTo (err %v)", err)
	}
	mapped, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	viaReader, err := Parse(bytes.NewReader(b), int64(len(b)), "m.gguf")
	if err != nil {
		t.Fatal(err)
	}
	inMem, _ := ParseBytes(b, "m.gguf")
	for _, f := range []*File{mapped, viaReader} {
		if !reflect.DeepEqual(f.KV, inMem.KV) || !reflect.DeepEqual(f.Tensors, inMem.Tensors) || f.DataOffset != inMem.DataOffset {
			t.Fatalf("%s: parsed differently", f.Name)
		}
		for _, ti := range inMem.Tensors {
			x, err1 := f.TensorData(ti.Name)
			y, err2 := inMem.TensorData(ti.Name)
			if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
				t.Fatalf("tensor %s differs: %v %v", ti.Name, err1, err2)
			}
		}
	}
	if err := mapped.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mapped.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// The window of the ReaderAt path must handle strings longer than the window
// and fields that straddle its end.
func TestParseReaderWindow(t *testing.T) {
	w := NewWriter()
	long := string(bytes.Repeat([]byte("ab"), windowSize))
	w.Set("long", long)
	many := make([]string, 30000)
	for i := range many {
		many[i] = string(rune('a' + i%26))
	}
	w.Set("many", many)
	w.AddTensor("x", TensorF32, []int64{3}, seqBytes(12))
	b := writeBytes(t, w)
	f, err := Parse(bytes.NewReader(b), int64(len(b)), "w.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.String("long"); s != long {
		t.Fatal("long string corrupted")
	}
	if a, _ := f.Strings("many"); !reflect.DeepEqual(a, many) {
		t.Fatal("string array corrupted")
	}
}

func TestVocabOnlyFileHasNoTensors(t *testing.T) {
	w := NewWriter()
	w.Set("tokenizer.ggml.model", "gpt2")
	b := writeBytes(t, w)
	if len(b)%DefaultAlignment != 0 {
		t.Fatalf("header not padded: %d bytes", len(b))
	}
	f, err := ParseBytes(b, "v.gguf")
	if err != nil || len(f.Tensors) != 0 {
		t.Fatalf("err %v, %d tensors", err, len(f.Tensors))
	}
}

func TestTensorBytes(t *testing.T) {
	cases := []struct {
		typ  TensorType
		dims []int64
		want int64
	}{
		{TensorF32, []int64{5}, 20},
		{TensorF16, []int64{3, 7}, 42},
		{TensorBF16, []int64{2, 2, 2, 2}, 32},
		{TensorQ8_0, []int64{64, 3}, 34 * 2 * 3},
		{TensorType(12), []int64{512, 2}, 144 * 4},
	}
	for _, c := range cases {
		got, err := TensorBytes(c.typ, c.dims)
		if err != nil || got != c.want {
			t.Errorf("%s %v: got %d, %v; want %d", c.typ, c.dims, got, err, c.want)
		}
	}
	if typ, ok := ParseTensorType("q8_0"); !ok || typ != TensorQ8_0 {
		t.Errorf("ParseTensorType(q8_0) = %v, %v", typ, ok)
	}
}
