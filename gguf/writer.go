package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// MaxTensorName is the longest tensor name llama.cpp accepts
// (GGML_MAX_NAME - 1); the writer refuses longer ones.
const MaxTensorName = 63

// Writer builds a GGUF file: metadata in the order it is set, tensors in
// the order they are added, laid out as the gguf Python package and
// llama.cpp lay them out (each tensor's data padded to the alignment), so
// that the same content always gives the same bytes.
//
// Set and AddTensor do not return errors; the first problem is kept and
// returned by WriteTo and WriteFile (as bufio.Writer does), which keeps
// the long lists of keys a model file needs readable.
type Writer struct {
	kvs     []KV
	keys    map[string]int
	tensors []pendingTensor
	names   map[string]bool
	err     error
}

type pendingTensor struct {
	TensorInfo
	data []byte
	load func() ([]byte, error) // when data is nil
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{keys: map[string]int{}, names: map[string]bool{}}
}

// NewWriterFrom returns a Writer holding f's metadata and tensors in f's
// order; the tensor data is read from f when written, so f must stay open.
// Writing it out unchanged reproduces a file this package wrote.
func NewWriterFrom(f *File) *Writer {
	w := NewWriter()
	for _, kv := range f.KV {
		w.Set(kv.Key, kv.Value)
	}
	for _, t := range f.Tensors {
		name := t.Name
		w.AddTensorFunc(name, t.Type, t.Dims, func() ([]byte, error) { return f.TensorData(name) })
	}
	return w
}

func (w *Writer) setErr(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("gguf: "+format, args...)
	}
}

// Err is the first error recorded by Set or AddTensor.
func (w *Writer) Err() error { return w.err }

// Set adds or replaces a metadata value; v is a Value or a Go value that
// ValueOf accepts (sized integers, floats, bool, string, slices of them).
// A replaced key keeps its place.
func (w *Writer) Set(key string, v any) {
	val, err := ValueOf(v)
	if err != nil {
		w.setErr("key %q: %v", key, err)
		return
	}
	if key == "" {
		w.setErr("empty metadata key")
		return
	}
	if val.v == nil {
		w.setErr("key %q: the zero Value holds nothing", key)
		return
	}
	if key == KeyAlignment {
		a, ok := val.v.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			w.setErr("%s must be a uint32 power of two, got %s %v", KeyAlignment, val.TypeName(), val.v)
			return
		}
	}
	if i, ok := w.keys[key]; ok {
		w.kvs[i].Value = val
		return
	}
	w.keys[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: val})
}

// Delete removes a metadata key if present.
func (w *Writer) Delete(key string) {
	i, ok := w.keys[key]
	if !ok {
		return
	}
	w.kvs = append(w.kvs[:i], w.kvs[i+1:]...)
	delete(w.keys, key)
	for j := i; j < len(w.kvs); j++ {
		w.keys[w.kvs[j].Key] = j
	}
}

// AddTensor adds a tensor of type t and shape dims (innermost first) whose
// data is already in memory; len(data) must be its exact size.
func (w *Writer) AddTensor(name string, t TensorType, dims []int64, data []byte) {
	info, ok := w.info(name, t, dims)
	if !ok {
		return
	}
	if int64(len(data)) != info.Size {
		w.setErr("tensor %q: %d bytes of data, a %s tensor of shape %v takes %d", name, len(data), t, dims, info.Size)
		return
	}
	w.tensors = append(w.tensors, pendingTensor{TensorInfo: info, data: data})
}

// AddTensorFunc adds a tensor whose data load produces when the file is
// written, so that converting a large model holds one tensor at a time.
func (w *Writer) AddTensorFunc(name string, t TensorType, dims []int64, load func() ([]byte, error)) {
	info, ok := w.info(name, t, dims)
	if !ok {
		return
	}
	w.tensors = append(w.tensors, pendingTensor{TensorInfo: info, load: load})
}

func (w *Writer) info(name string, t TensorType, dims []int64) (TensorInfo, bool) {
	if name == "" || len(name) > MaxTensorName {
		w.setErr("tensor name %q: want 1 to %d bytes", name, MaxTensorName)
		return TensorInfo{}, false
	}
	if w.names[name] {
		w.setErr("duplicate tensor %q", name)
		return TensorInfo{}, false
	}
	size, err := TensorBytes(t, dims)
	if err != nil {
		w.setErr("tensor %q: %v", name, err)
		return TensorInfo{}, false
	}
	w.names[name] = true
	return TensorInfo{Name: name, Type: t, Dims: append([]int64(nil), dims...), Size: size}, true
}

func (w *Writer) alignment() int64 {
	if i, ok := w.keys[KeyAlignment]; ok {
		return int64(w.kvs[i].Value.v.(uint32))
	}
	return DefaultAlignment
}

// WriteTo writes the file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	align := w.alignment()
	e := &encoder{w: bufio.NewWriterSize(out, 1<<20)}
	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.typ))
		e.value(kv.Value)
	}
	var off int64
	for _, t := range w.tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(uint64(d))
		}
		e.u32(uint32(t.Type))
		e.u64(uint64(off))
		off += pad(t.Size, align)
	}
	e.zeros(pad(e.n, align) - e.n)
	for _, t := range w.tensors {
		data := t.data
		if data == nil && t.load != nil {
			var err error
			if data, err = t.load(); err != nil {
				return e.n, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
			}
		}
		if int64(len(data)) != t.Size {
			return e.n, fmt.Errorf("gguf: tensor %q: %d bytes of data, a %s tensor of shape %v takes %d", t.Name, len(data), t.Type, t.Dims, t.Size)
		}
		e.raw(data)
		e.zeros(pad(t.Size, align) - t.Size)
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.n, e.err
}

// WriteFile writes the file to path through a temporary file in the same
// directory, so that a failed write never leaves a truncated model behind.
func (w *Writer) WriteFile(path string) error {
	if w.err != nil {
		return w.err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	_, err = w.WriteTo(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	return nil
}

type encoder struct {
	w   *bufio.Writer
	n   int64
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	m, err := e.w.Write(b)
	e.n += int64(m)
	e.err = err
}

func (e *encoder) zeros(n int64) {
	var z [64]byte
	for n > 0 {
		k := min(n, int64(len(z)))
		e.raw(z[:k])
		n -= k
	}
}

func (e *encoder) u8(x uint8)   { e.buf[0] = x; e.raw(e.buf[:1]) }
func (e *encoder) u16(x uint16) { binary.LittleEndian.PutUint16(e.buf[:], x); e.raw(e.buf[:2]) }
func (e *encoder) u32(x uint32) { binary.LittleEndian.PutUint32(e.buf[:], x); e.raw(e.buf[:4]) }
func (e *encoder) u64(x uint64) { binary.LittleEndian.PutUint64(e.buf[:], x); e.raw(e.buf[:8]) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *encoder) bool(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) value(v Value) {
	switch x := v.v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float32:
		e.u32(math.Float32bits(x))
	case float64:
		e.u64(math.Float64bits(x))
	case bool:
		e.bool(x)
	case string:
		e.str(x)
	default:
		e.array(v)
	}
}

func (e *encoder) array(v Value) {
	e.u32(uint32(v.elem))
	e.u64(uint64(v.Len()))
	switch a := v.v.(type) {
	case []uint8:
		e.raw(a)
	case []int8:
		for _, x := range a {
			e.u8(uint8(x))
		}
	case []uint16:
		for _, x := range a {
			e.u16(x)
		}
	case []int16:
		for _, x := range a {
			e.u16(uint16(x))
		}
	case []uint32:
		for _, x := range a {
			e.u32(x)
		}
	case []int32:
		for _, x := range a {
			e.u32(uint32(x))
		}
	case []uint64:
		for _, x := range a {
			e.u64(x)
		}
	case []int64:
		for _, x := range a {
			e.u64(uint64(x))
		}
	case []float32:
		for _, x := range a {
			e.u32(math.Float32bits(x))
		}
	case []float64:
		for _, x := range a {
			e.u64(math.Float64bits(x))
		}
	case []bool:
		for _, x := range a {
			e.bool(x)
		}
	case []string:
		for _, x := range a {
			e.str(x)
		}
	case []Value:
		for _, x := range a {
			e.array(x)
		}
	}
}
