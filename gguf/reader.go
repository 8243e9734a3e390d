// Package gguf reads and writes GGUF files, llama.cpp's model format
// (version 3; version 2 has the same layout and is read too). The reader is
// hardened for untrusted input: every count, size and offset is checked
// against the file's size before anything is allocated, so a malformed file
// gives a *FormatError naming the file and the problem, never a panic or a
// huge allocation. Tensor data is not copied: Open memory-maps the file.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode/utf8"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the version this package writes.
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the data alignment.
const KeyAlignment = "general.alignment"

// maxNesting bounds arrays of arrays so that a hostile file cannot recurse
// deeply; llama.cpp itself accepts no nesting at all.
const maxNesting = 8

// TensorInfo describes one tensor. Dims are innermost first (GGML's ne).
type TensorInfo struct {
	Name   string
	Type   TensorType
	Dims   []int64
	Offset int64 // from the start of the data section
	Size   int64 // bytes
}

// NumElements is the product of the dimensions.
func (t *TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is a parsed GGUF file. Its metadata is held in memory; its tensor
// data stays in the file (memory-mapped by Open) until asked for.
type File struct {
	Name       string // as given to Open or Parse; used in errors
	Version    uint32
	Alignment  int64
	KV         []KV // in file order
	Tensors    []TensorInfo
	DataOffset int64 // where the data section starts
	Size       int64 // bytes in the file

	keys    map[string]int
	tensors map[string]int
	data    []byte      // the whole file, when mapped or in memory
	r       io.ReaderAt // otherwise
	close   func() error
}

// Close releases the mapping; tensor data obtained from the file must not be
// used afterwards.
func (f *File) Close() error {
	if f == nil || f.close == nil {
		return nil
	}
	c := f.close
	f.close = nil
	f.data = nil
	return c()
}

// Parse reads a GGUF file of size bytes from r. name identifies it in
// errors. size must be r's true size: every count is checked against it, so
// it bounds what Parse allocates. TensorData then reads from r, which must
// stay usable.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	return parse(&readerSource{r: r, size: size}, size, name, nil, r)
}

// ParseBytes parses a GGUF file held in memory. TensorData returns slices
// of b, so b must not change while the File is in use.
func ParseBytes(b []byte, name string) (*File, error) {
	return parse(sliceSource(b), int64(len(b)), name, b, nil)
}

// Open memory-maps and parses the GGUF file at path.
func Open(path string) (*File, error) {
	b, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := parse(sliceSource(b), int64(len(b)), path, b, nil)
	if err != nil {
		unmap()
		return nil, err
	}
	f.close = unmap
	return f, nil
}

// TensorInfo returns the named tensor's description.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensors[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// TensorData returns the raw little-endian bytes of the named tensor. For a
// file from Open or ParseBytes they alias the file: read-only, valid until
// Close.
func (f *File) TensorData(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: %s: tensor %q: %w", f.Name, name, ErrTensorNotFound)
	}
	start := f.DataOffset + t.Offset
	if f.data != nil {
		return f.data[start : start+t.Size : start+t.Size], nil
	}
	if f.r == nil {
		return nil, fmt.Errorf("gguf: %s: tensor %q: the file is closed", f.Name, name)
	}
	buf := make([]byte, t.Size)
	if t.Size == 0 {
		return buf, nil
	}
	// ReaderAt may report io.EOF along with a full read that ends the file.
	if got, err := f.r.ReadAt(buf, start); int64(got) < t.Size {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("gguf: %s: reading tensor %q: %w", f.Name, name, err)
	}
	return buf, nil
}

// ---------------------------------------------------------------- parsing

// source hands out n bytes at off; the decoder has checked the bounds.
type source interface {
	at(off, n int64) ([]byte, error)
}

type sliceSource []byte

func (s sliceSource) at(off, n int64) ([]byte, error) { return s[off : off+n], nil }

// readerSource reads through a window so that the many small fields of the
// header cost few ReadAt calls.
type readerSource struct {
	r      io.ReaderAt
	size   int64
	win    []byte
	winOff int64
}

const windowSize = 64 << 10

func (s *readerSource) at(off, n int64) ([]byte, error) {
	if off >= s.winOff && off+n <= s.winOff+int64(len(s.win)) {
		return s.win[off-s.winOff : off-s.winOff+n], nil
	}
	m := max(n, windowSize)
	m = min(m, s.size-off)
	if int64(cap(s.win)) < m {
		s.win = make([]byte, m)
	}
	s.win = s.win[:m]
	// ReaderAt may report io.EOF with a full read that ends at the end.
	if got, err := s.r.ReadAt(s.win, off); int64(got) < m {
		s.win = s.win[:0]
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	s.winOff = off
	return s.win[:n], nil
}

type decoder struct {
	src  source
	size int64
	off  int64
	name string
	what string // the field being read, for errors
}

func (d *decoder) fail(off int64, format string, args ...any) error {
	return &FormatError{File: d.name, Offset: off, Problem: fmt.Sprintf(format, args...)}
}

func (d *decoder) take(n int64) ([]byte, error) {
	if n < 0 || n > d.size-d.off {
		return nil, d.fail(d.off, "truncated file: %s needs %d bytes, only %d remain", d.what, n, d.size-d.off)
	}
	b, err := d.src.at(d.off, n)
	if err != nil {
		return nil, d.fail(d.off, "reading %s: %v", d.what, err)
	}
	d.off += n
	return b, nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads an element count and rejects one that the rest of the file
// cannot hold at minSize bytes per element.
func (d *decoder) count(minSize int64) (int64, error) {
	at := d.off
	n, err := d.u64()
	if err != nil {
		return 0, err
	}
	remain := d.size - d.off
	if minSize > 0 && n > uint64(remain/minSize) {
		return 0, d.fail(at, "truncated or corrupt file: %s: count %d, at %d or more bytes each, cannot fit in the %d bytes that remain", d.what, n, minSize, remain)
	}
	return int64(n), nil
}

func (d *decoder) str() (string, error) {
	at := d.off
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(d.size-d.off) {
		return "", d.fail(at, "truncated file: %s: string of %d bytes, only %d remain", d.what, n, d.size-d.off)
	}
	b, err := d.take(int64(n))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (d *decoder) value(t ValueType, depth int) (Value, error) {
	switch t {
	case TypeString:
		s, err := d.str()
		return Value{typ: t, v: s}, err
	case TypeArray:
		return d.array(depth)
	}
	at := d.off
	b, err := d.take(int64(t.scalarSize()))
	if err != nil {
		return Value{}, err
	}
	v, err := scalar(t, b)
	if err != nil {
		return Value{}, d.fail(at, "%s: %v", d.what, err)
	}
	return Value{typ: t, v: v}, nil
}

func scalar(t ValueType, b []byte) (any, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return b[0], nil
	case TypeInt8:
		return int8(b[0]), nil
	case TypeUint16:
		return le.Uint16(b), nil
	case TypeInt16:
		return int16(le.Uint16(b)), nil
	case TypeUint32:
		return le.Uint32(b), nil
	case TypeInt32:
		return int32(le.Uint32(b)), nil
	case TypeUint64:
		return le.Uint64(b), nil
	case TypeInt64:
		return int64(le.Uint64(b)), nil
	case TypeFloat32:
		return math.Float32frombits(le.Uint32(b)), nil
	case TypeFloat64:
		return math.Float64frombits(le.Uint64(b)), nil
	case TypeBool:
		// Any other byte would not survive a rewrite unchanged.
		if b[0] > 1 {
			return nil, fmt.Errorf("invalid bool byte %d (want 0 or 1)", b[0])
		}
		return b[0] == 1, nil
	}
	return nil, fmt.Errorf("invalid value type %d", uint32(t))
}

func (d *decoder) array(depth int) (Value, error) {
	at := d.off
	et, err := d.u32()
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	if !elem.valid() {
		return Value{}, d.fail(at, "%s: unknown array element type %d", d.what, et)
	}
	if elem == TypeArray && depth >= maxNesting {
		return Value{}, d.fail(at, "%s: arrays nested more than %d deep", d.what, maxNesting)
	}
	n, err := d.count(elem.minSize())
	if err != nil {
		return Value{}, err
	}
	if sz := elem.scalarSize(); sz > 0 {
		at := d.off
		b, err := d.take(n * int64(sz))
		if err != nil {
			return Value{}, err
		}
		v, err := scalarArray(elem, b, int(n))
		if err != nil {
			return Value{}, d.fail(at, "%s: %v", d.what, err)
		}
		return Value{typ: TypeArray, elem: elem, v: v}, nil
	}
	if elem == TypeString {
		a := make([]string, n)
		for i := range a {
			if a[i], err = d.str(); err != nil {
				return Value{}, err
			}
		}
		return Value{typ: TypeArray, elem: elem, v: a}, nil
	}
	a := make([]Value, n)
	for i := range a {
		if a[i], err = d.array(depth + 1); err != nil {
			return Value{}, err
		}
	}
	return Value{typ: TypeArray, elem: elem, v: a}, nil
}

func scalarArray(t ValueType, b []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return append([]uint8(nil), b...), nil
	case TypeInt8:
		a := make([]int8, n)
		for i := range a {
			a[i] = int8(b[i])
		}
		return a, nil
	case TypeUint16:
		a := make([]uint16, n)
		for i := range a {
			a[i] = le.Uint16(b[2*i:])
		}
		return a, nil
	case TypeInt16:
		a := make([]int16, n)
		for i := range a {
			a[i] = int16(le.Uint16(b[2*i:]))
		}
		return a, nil
	case TypeUint32:
		a := make([]uint32, n)
		for i := range a {
			a[i] = le.Uint32(b[4*i:])
		}
		return a, nil
	case TypeInt32:
		a := make([]int32, n)
		for i := range a {
			a[i] = int32(le.Uint32(b[4*i:]))
		}
		return a, nil
	case TypeUint64:
		a := make([]uint64, n)
		for i := range a {
			a[i] = le.Uint64(b[8*i:])
		}
		return a, nil
	case TypeInt64:
		a := make([]int64, n)
		for i := range a {
			a[i] = int64(le.Uint64(b[8*i:]))
		}
		return a, nil
	case TypeFloat32:
		a := make([]float32, n)
		for i := range a {
			a[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return a, nil
	case TypeFloat64:
		a := make([]float64, n)
		for i := range a {
			a[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return a, nil
	case TypeBool:
		a := make([]bool, n)
		for i := range a {
			if b[i] > 1 {
				return nil, fmt.Errorf("element %d: invalid bool byte %d (want 0 or 1)", i, b[i])
			}
			a[i] = b[i] == 1
		}
		return a, nil
	}
	return nil, fmt.Errorf("invalid array element type %d", uint32(t))
}

// Smallest encodings, used to reject impossible counts: a key-value pair is
// at least a key length, a type and a one-byte value; a tensor info at
// least a name length, a dimension count, one dimension, a type and an
// offset.
const (
	minKVSize         = 8 + 4 + 1
	minTensorInfoSize = 8 + 4 + 8 + 4 + 8
)

func parse(src source, size int64, name string, data []byte, r io.ReaderAt) (*File, error) {
	d := &decoder{src: src, size: size, name: name}
	f := &File{Name: name, Size: size, data: data, r: r, keys: map[string]int{}, tensors: map[string]int{}}

	d.what = "the magic"
	magic, err := d.take(4)
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, d.fail(0, "not a GGUF file: magic %q, want %q", printable(magic), Magic)
	}
	d.what = "the version"
	if f.Version, err = d.u32(); err != nil {
		return nil, err
	}
	switch {
	case f.Version == 2 || f.Version == 3:
	case f.Version&0xffff == 0 && (f.Version>>24 == 2 || f.Version>>24 == 3):
		return nil, d.fail(4, "version %#x looks like a big-endian GGUF file; only little-endian is supported", f.Version)
	default:
		return nil, d.fail(4, "unsupported GGUF version %d (want 3, or 2)", f.Version)
	}
	d.what = "the tensor count"
	nTensors, err := d.count(minTensorInfoSize)
	if err != nil {
		return nil, err
	}
	d.what = "the metadata count"
	nKV, err := d.count(minKVSize)
	if err != nil {
		return nil, err
	}

	f.KV = make([]KV, 0, nKV)
	for i := int64(0); i < nKV; i++ {
		at := d.off
		d.what = fmt.Sprintf("metadata key %d", i)
		key, err := d.str()
		if err != nil {
			return nil, err
		}
		if _, dup := f.keys[key]; dup {
			return nil, d.fail(at, "duplicate metadata key %q", key)
		}
		d.what = fmt.Sprintf("the type of key %q", key)
		tat := d.off
		t, err := d.u32()
		if err != nil {
			return nil, err
		}
		if !ValueType(t).valid() {
			return nil, d.fail(tat, "key %q has unknown value type %d", key, t)
		}
		d.what = fmt.Sprintf("the value of key %q", key)
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return nil, err
		}
		f.keys[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}

	f.Alignment = DefaultAlignment
	if v, ok := f.Get(KeyAlignment); ok {
		a, isU32 := v.v.(uint32)
		if !isU32 {
			return nil, d.fail(-1, "%s is %s, want uint32", KeyAlignment, v.TypeName())
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, d.fail(-1, "%s is %d, want a power of two", KeyAlignment, a)
		}
		f.Alignment = int64(a)
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := int64(0); i < nTensors; i++ {
		at := d.off
		d.what = fmt.Sprintf("the name of tensor %d", i)
		tname, err := d.str()
		if err != nil {
			return nil, err
		}
		if _, dup := f.tensors[tname]; dup {
			return nil, d.fail(at, "duplicate tensor name %q", tname)
		}
		d.what = fmt.Sprintf("the dimensions of tensor %q", tname)
		nat := d.off
		nDims, err := d.u32()
		if err != nil {
			return nil, err
		}
		if nDims == 0 || nDims > MaxDims {
			return nil, d.fail(nat, "tensor %q has %d dimensions (want 1 to %d)", tname, nDims, MaxDims)
		}
		dims := make([]int64, nDims)
		for j := range dims {
			dat := d.off
			n, err := d.u64()
			if err != nil {
				return nil, err
			}
			if n > math.MaxInt64 {
				return nil, d.fail(dat, "tensor %q: dimension %d is %d, beyond int64", tname, j, n)
			}
			dims[j] = int64(n)
		}
		d.what = fmt.Sprintf("the type of tensor %q", tname)
		tat := d.off
		tt, err := d.u32()
		if err != nil {
			return nil, err
		}
		typ := TensorType(tt)
		if !typ.Known() {
			return nil, d.fail(tat, "tensor %q has unknown type %d", tname, tt)
		}
		nbytes, err := TensorBytes(typ, dims)
		if err != nil {
			return nil, d.fail(nat, "tensor %q (%s): %v", tname, typ, err)
		}
		d.what = fmt.Sprintf("the offset of tensor %q", tname)
		oat := d.off
		off, err := d.u64()
		if err != nil {
			return nil, err
		}
		if off%uint64(f.Alignment) != 0 {
			return nil, d.fail(oat, "tensor %q: offset %d is not a multiple of the alignment %d", tname, off, f.Alignment)
		}
		if off > math.MaxInt64 {
			return nil, d.fail(oat, "tensor %q: offset %d is beyond the end of the file", tname, off)
		}
		f.tensors[tname] = len(f.Tensors)
		f.Tensors = append(f.Tensors, TensorInfo{Name: tname, Type: typ, Dims: dims, Offset: int64(off), Size: nbytes})
	}

	f.DataOffset = pad(d.off, f.Alignment)
	if len(f.Tensors) > 0 && f.DataOffset > size {
		return nil, d.fail(d.off, "truncated file: the data section should start at byte %d, the file has %d bytes", f.DataOffset, size)
	}
	if err := f.checkTensorExtents(); err != nil {
		return nil, err
	}
	return f, nil
}

// checkTensorExtents makes sure every tensor lies inside the file and no
// two overlap, so TensorData can slice without further checks.
func (f *File) checkTensorExtents() error {
	avail := f.Size - f.DataOffset
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	for _, t := range f.Tensors {
		if t.Offset > avail || t.Size > avail-t.Offset {
			return &FormatError{File: f.Name, Offset: -1, Problem: fmt.Sprintf(
				"truncated file: tensor %q (%d bytes at data offset %d) runs past the end of the data section (%d bytes)",
				t.Name, t.Size, t.Offset, avail)}
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if cur.Offset < prev.Offset+prev.Size {
			return &FormatError{File: f.Name, Offset: -1, Problem: fmt.Sprintf(
				"tensors %q and %q overlap (data offsets %d+%d and %d)", prev.Name, cur.Name, prev.Offset, prev.Size, cur.Offset)}
		}
	}
	return nil
}

// printable shows a magic that may be binary.
func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("% x", b)
}
