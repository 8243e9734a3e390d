package gguf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type badCase struct {
	name string
	file []byte
	want string
}

// badFiles lists malformed files and the problem each must be reported
// with; they also seed the fuzz corpus.
func badFiles(t testing.TB) []badCase {
	valid := writeBytes(t, sampleWriter(t, 0))
	patched := func(off int, b ...byte) []byte {
		c := append([]byte(nil), valid...)
		copy(c[off:], b)
		return c
	}
	kv := func(key string, typ ValueType, value func(r *raw)) []byte {
		r := new(raw).header(0, 1)
		r.str(key).u32(uint32(typ))
		value(r)
		return r.Bytes()
	}
	return []badCase{
		{"empty", nil, "truncated file: the magic needs 4 bytes, only 0 remain"},
		{"wrong magic", patched(0, 'G', 'G', 'M', 'L'), `not a GGUF file: magic "GGML", want "GGUF"`},
		{"binary magic", patched(0, 0x7f, 'E', 'L', 0xff), `not a GGUF file: magic "7f 45 4c ff"`},
		{"version 1", patched(4, 1, 0, 0, 0), "unsupported GGUF version 1 (want 3, or 2)"},
		{"version 4", patched(4, 4, 0, 0, 0), "unsupported GGUF version 4"},
		{"big-endian", patched(4, 0, 0, 0, 3), "looks like a big-endian GGUF file"},
		{"absurd tensor count", patched(8, 0, 0, 0, 0, 0, 0, 0, 0x10), "truncated or corrupt file: the tensor count: count 1152921504606846976, at 32 or more bytes each, cannot fit in"},
		{"absurd metadata count", patched(16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "the metadata count: count 18446744073709551615, at 13 or more bytes each"},
		{"absurd key length", new(raw).header(0, 1).u64(1 << 62).u64(0).u64(0).Bytes(), "truncated file: metadata key 0: string of 4611686018427387904 bytes, only 16 remain"},
		{"absurd string value", kv("k", TypeString, func(r *raw) { r.u64(1 << 40) }), `the value of key "k": string of 1099511627776 bytes`},
		{"absurd array count", kv("k", TypeArray, func(r *raw) { r.u32(uint32(TypeUint64)).u64(1 << 59) }), `the value of key "k": count 576460752303423488, at 8 or more bytes each`},
		{"absurd string array", kv("k", TypeArray, func(r *raw) { r.u32(uint32(TypeString)).u64(1 << 33) }), `count 8589934592, at 8 or more bytes each`},
		{"truncated array", kv("k", TypeArray, func(r *raw) { r.u32(uint32(TypeUint32)).u64(3).u32(1) }), `count 3, at 4 or more bytes each, cannot fit in the 4 bytes that remain`},
		{"unknown value type", kv("k", ValueType(13), func(r *raw) {}), `key "k" has unknown value type 13`},
		{"unknown element type", kv("k", TypeArray, func(r *raw) { r.u32(99).u64(0) }), `unknown array element type 99`},
		{"nested too deep", kv("k", TypeArray, func(r *raw) {
			for i := 0; i < 20; i++ {
				r.u32(uint32(TypeArray)).u64(1)
			}
			r.u32(uint32(TypeUint8)).u64(0)
		}), "arrays nested more than 8 deep"},
		{"invalid bool", kv("k", TypeBool, func(r *raw) { r.WriteByte(2) }), `the value of key "k": invalid bool byte 2`},
		{"invalid bool in array", kv("k", TypeArray, func(r *raw) { r.u32(uint32(TypeBool)).u64(2).WriteString("\x01\x07") }), `element 1: invalid bool byte 7`},
		{"duplicate key", new(raw).header(0, 2).str("k").u32(uint32(TypeUint8)).u8(0).str("k").u32(uint32(TypeUint8)).u8(0).Bytes(), `duplicate metadata key "k"`},
		{"alignment not uint32", kv(KeyAlignment, TypeUint64, func(r *raw) { r.u64(32) }), "general.alignment is uint64, want uint32"},
		{"alignment zero", kv(KeyAlignment, TypeUint32, func(r *raw) { r.u32(0) }), "general.alignment is 0, want a power of two"},
		{"alignment not power of two", kv(KeyAlignment, TypeUint32, func(r *raw) { r.u32(48) }), "general.alignment is 48, want a power of two"},
		{"zero dimensions", new(raw).header(1, 0).tensorInfo("t", TensorF32, 0).data(0).Bytes(), `tensor "t" has 0 dimensions (want 1 to 4)`},
		{"five dimensions", new(raw).header(1, 0).tensorInfo("t", TensorF32, 0, 1, 1, 1, 1, 1).data(4).Bytes(), `tensor "t" has 5 dimensions`},
		{"dimension beyond int64", new(raw).header(1, 0).tensorInfo("t", TensorF32, 0, 1<<63).Bytes(), `tensor "t": dimension 0 is 9223372036854775808, beyond int64`},
		{"unknown tensor type", new(raw).header(1, 0).tensorInfo("t", TensorType(4), 0, 8).data(32).Bytes(), `tensor "t" has unknown type 4`},
		{"partial block", new(raw).header(1, 0).tensorInfo("t", TensorQ8_0, 0, 33, 1).data(68).Bytes(), `tensor "t" (Q8_0): first dimension 33 is not a multiple of the Q8_0 block size 32`},
		{"shape overflow", new(raw).header(1, 0).tensorInfo("t", TensorF32, 0, 1<<40, 1<<40).data(0).Bytes(), `tensor "t" (F32): shape [1099511627776 1099511627776] is too large`},
		{"misaligned offset", new(raw).header(1, 0).tensorInfo("t", TensorF32, 4, 1).data(8).Bytes(), `tensor "t": offset 4 is not a multiple of the alignment 32`},
		{"offset beyond int64", new(raw).header(1, 0).tensorInfo("t", TensorF32, 1<<63, 1).data(8).Bytes(), `offset 9223372036854775808 is beyond the end of the file`},
		{"tensor past end", new(raw).header(1, 0).tensorInfo("t", TensorF32, 0, 100).data(399).Bytes(), `truncated file: tensor "t" (400 bytes at data offset 0) runs past the end of the data section (399 bytes)`},
		{"tensor far past end", new(raw).header(1, 0).tensorInfo("t", TensorF32, 1<<40, 1).data(4).Bytes(), `runs past the end of the data section`},
		{"no data section", new(raw).header(1, 0).tensorInfo("t", TensorF32, 0, 1).Bytes(), "truncated file: the data section should start at byte"},
		{"overlap", new(raw).header(2, 0).tensorInfo("a", TensorF32, 0, 16).tensorInfo("b", TensorF32, 32, 4).data(96).Bytes(), `tensors "a" and "b" overlap (data offsets 0+64 and 32)`},
		{"duplicate tensor", new(raw).header(2, 0).tensorInfo("a", TensorF32, 0, 1).tensorInfo("a", TensorF32, 32, 1).data(64).Bytes(), `duplicate tensor name "a"`},
	}
}

// Every malformed file must give a *FormatError that names the file and
// the problem, from all three entry points alike.
func TestBadFiles(t *testing.T) {
	for _, c := range badFiles(t) {
		t.Run(c.name, func(t *testing.T) {
			checkBad(t, c.file, c.want)
		})
	}
}

func checkBad(t *testing.T, file []byte, want string) {
	t.Helper()
	_, err := ParseBytes(file, "bad.gguf")
	assertFormatError(t, "ParseBytes", err, "gguf: bad.gguf: ", want)
	_, err = Parse(bytes.NewReader(file), int64(len(file)), "bad.gguf")
	assertFormatError(t, "Parse", err, "gguf: bad.gguf: ", want)
	path := filepath.Join(t.TempDir(), "bad.gguf")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	assertFormatError(t, "Open", err, "gguf: "+path+": ", want)
}

func assertFormatError(t *testing.T, via string, err error, prefix, want string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("%s: got %v, want a *FormatError", via, err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, want) {
		t.Fatalf("%s: got %q\nwant it to start with %q and contain %q", via, msg, prefix, want)
	}
}

// Cutting a valid file anywhere before the end of its last tensor must be
// reported as a truncation.
func TestEveryTruncationIsReported(t *testing.T) {
	valid := writeBytes(t, sampleWriter(t, 0))
	f, _ := ParseBytes(valid, "x")
	last := f.Tensors[len(f.Tensors)-1]
	end := f.DataOffset + last.Offset + last.Size
	for n := int64(0); n < end; n++ {
		_, err := ParseBytes(valid[:n], "cut.gguf")
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("cut at %d of %d: got %v", n, end, err)
		}
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope.gguf"))
	if err == nil || !strings.Contains(err.Error(), "nope.gguf") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
	_, err = Open(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: got %v", err)
	}
}

func TestWriterRejects(t *testing.T) {
	cases := []struct {
		name  string
		build func(w *Writer)
		want  string
	}{
		{"go int", func(w *Writer) { w.Set("k", 5) }, `key "k": a Go int has no fixed GGUF width`},
		{"go map", func(w *Writer) { w.Set("k", map[string]int{}) }, `key "k": a Go map[string]int has no GGUF value type`},
		{"empty key", func(w *Writer) { w.Set("", "x") }, "empty metadata key"},
		{"zero value", func(w *Writer) { w.Set("k", Value{}) }, `key "k": the zero Value holds nothing`},
		{"mixed nesting", func(w *Writer) { s, _ := ValueOf("x"); w.Set("k", []Value{s}) }, "element 0 of an array of arrays is a string"},
		{"alignment type", func(w *Writer) { w.Set(KeyAlignment, int32(32)) }, "general.alignment must be a uint32 power of two, got int32 32"},
		{"alignment value", func(w *Writer) { w.Set(KeyAlignment, uint32(24)) }, "general.alignment must be a uint32 power of two, got uint32 24"},
		{"long name", func(w *Writer) { w.AddTensor(strings.Repeat("n", 64), TensorF32, []int64{1}, make([]byte, 4)) }, "want 1 to 63 bytes"},
		{"duplicate tensor", func(w *Writer) {
			w.AddTensor("a", TensorF32, []int64{1}, make([]byte, 4))
			w.AddTensor("a", TensorF32, []int64{1}, make([]byte, 4))
		}, `duplicate tensor "a"`},
		{"data size", func(w *Writer) { w.AddTensor("a", TensorF16, []int64{3}, make([]byte, 4)) }, `tensor "a": 4 bytes of data, a F16 tensor of shape [3] takes 6`},
		{"partial block", func(w *Writer) { w.AddTensor("a", TensorQ8_0, []int64{16}, nil) }, "first dimension 16 is not a multiple of the Q8_0 block size 32"},
		{"lazy data size", func(w *Writer) {
			w.AddTensorFunc("a", TensorF32, []int64{2}, func() ([]byte, error) { return make([]byte, 4), nil })
		}, `tensor "a": 4 bytes of data, a F32 tensor of shape [2] takes 8`},
		{"lazy error", func(w *Writer) {
			w.AddTensorFunc("a", TensorF32, []int64{2}, func() ([]byte, error) { return nil, errors.New("disk on fire") })
		}, `tensor "a": disk on fire`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWriter()
			c.build(w)
			_, err := w.WriteTo(new(bytes.Buffer))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			path := filepath.Join(t.TempDir(), "out.gguf")
			if err := w.WriteFile(path); err == nil {
				t.Fatal("WriteFile succeeded")
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
				t.Fatalf("WriteFile left %d files behind", len(entries))
			}
		})
	}
}

func TestWriterReplaceAndDelete(t *testing.T) {
	w := NewWriter()
	w.Set("a", uint32(1))
	w.Set("b", uint32(2))
	w.Set("c", uint32(3))
	w.Set("a", "one")
	w.Delete("b")
	w.Delete("missing")
	f, err := ParseBytes(writeBytes(t, w), "r.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.KV) != 2 || f.KV[0].Key != "a" || f.KV[1].Key != "c" {
		t.Fatalf("keys %v", f.KV)
	}
	if s, _ := f.String("a"); s != "one" {
		t.Fatalf("a = %q", s)
	}
}
