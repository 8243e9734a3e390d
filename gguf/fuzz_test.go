package gguf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes the reader panic or allocate
// without bound, that the ReaderAt and in-memory paths agree, and that any
// file it accepts rewrites to a file that parses to the same content.
//
// Run it with:
//
//	go test ./gguf -run '^$' -fuzz FuzzParse -fuzztime 10m -parallel 1
//
// The committed seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(writeBytes(f, sampleWriter(f, 0)))
	f.Add(writeBytes(f, sampleWriter(f, 64)))
	f.Add(writeBytes(f, NewWriter()))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := ParseBytes(data, "fuzz.gguf")
		viaReader, err2 := Parse(bytes.NewReader(data), int64(len(data)), "fuzz.gguf")
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("ParseBytes and Parse disagree: %v / %v", err, err2)
		}
		if err != nil {
			return
		}
		for _, ti := range parsed.Tensors {
			a, err := parsed.TensorData(ti.Name)
			if err != nil || int64(len(a)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes, %v", ti.Name, len(a), err)
			}
			b, err := viaReader.TensorData(ti.Name)
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("tensor %q differs between paths: %v", ti.Name, err)
			}
		}
		for _, kv := range parsed.KV {
			// The getters must not panic whatever the type.
			parsed.String(kv.Key)
			parsed.Int(kv.Key)
			parsed.Float(kv.Key)
			parsed.Bool(kv.Key)
			parsed.Strings(kv.Key)
			parsed.Float32s(kv.Key)
			parsed.Int32s(kv.Key)
		}
		w := NewWriterFrom(parsed)
		var out bytes.Buffer
		if _, err := w.WriteTo(&out); err != nil {
			return // e.g. a tensor name too long for llama.cpp: the writer may refuse what the reader takes
		}
		again, err := ParseBytes(out.Bytes(), "rewrite.gguf")
		if err != nil {
			t.Fatalf("rewrite does not parse: %v", err)
		}
		if !reflect.DeepEqual(normalizeKV(again.KV), normalizeKV(parsed.KV)) {
			t.Fatal("rewrite changed the metadata")
		}
		if len(again.Tensors) != len(parsed.Tensors) {
			t.Fatal("rewrite changed the tensor count")
		}
		for i, ti := range parsed.Tensors {
			a, _ := parsed.TensorData(ti.Name)
			b, _ := again.TensorData(ti.Name)
			if again.Tensors[i].Name != ti.Name || !bytes.Equal(a, b) {
				t.Fatalf("rewrite changed tensor %q", ti.Name)
			}
		}
		// A rewrite of our own output is a fixed point.
		var out2 bytes.Buffer
		if _, err := NewWriterFrom(again).WriteTo(&out2); err != nil || !bytes.Equal(out.Bytes(), out2.Bytes()) {
			t.Fatalf("second rewrite differs (%v)", err)
		}
	})
}

// normalizeKV compares metadata by encoding, since a NaN value is never
// DeepEqual to itself.
func normalizeKV(kvs []KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		var b bytes.Buffer
		w := NewWriter()
		w.Set(kv.Key, kv.Value)
		w.WriteTo(&b)
		out[i] = b.String()
	}
	return out
}

// TestWriteFuzzSeeds regenerates the committed seed corpus from the sample
// and bad files of the tests: GGUF_WRITE_FUZZ_SEEDS=1 go test ./gguf -run TestWriteFuzzSeeds
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("GGUF_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set GGUF_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzParse")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{}
	small := NewWriter()
	small.Set("general.architecture", "gpt2")
	small.Set("a", []uint32{1, 2})
	small.Set("s", []string{"x", "yz"})
	small.Set("n", []Value{mustValue([]int8{-1}), mustValue([]bool{true})})
	small.Set("f", float32(1))
	small.AddTensor("w", TensorF16, []int64{2, 2}, seqBytes(8))
	small.AddTensor("q", TensorQ8_0, []int64{32}, seqBytes(34))
	seeds["valid-small"] = writeBytes(t, small)
	aligned := NewWriter()
	aligned.Set(KeyAlignment, uint32(8))
	aligned.AddTensor("a", TensorBF16, []int64{3}, seqBytes(6))
	aligned.AddTensor("b", TensorF32, []int64{1, 1, 1, 2}, seqBytes(8))
	seeds["valid-align8"] = writeBytes(t, aligned)
	seeds["valid-vocab-only"] = writeBytes(t, NewWriter())
	for _, c := range badFiles(t) {
		seeds["bad-"+strings.ReplaceAll(c.name, " ", "-")] = c.file
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustValue(x any) Value {
	v, err := ValueOf(x)
	if err != nil {
		panic(err)
	}
	return v
}
