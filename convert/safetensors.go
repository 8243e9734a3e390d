package convert

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// A safetensors file: an 8-byte little-endian header length N, N bytes of
// JSON mapping each tensor name to {dtype, shape, data_offsets: [begin,
// end]} relative to the data that follows, and "__metadata__" to strings.

// maxSafetensorsHeader bounds the JSON header (the format's own limit is
// 100 MB) so that a corrupt length cannot make us allocate gigabytes.
const maxSafetensorsHeader = 100 << 20

type stTensor struct {
	name       string
	dtype      string
	shape      []int64
	begin, end int64 // absolute file offsets
	file       *stFile
}

type stFile struct {
	path string
	f    *os.File
	size int64
}

var stDtypeSize = map[string]int64{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
	"U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}

// openSafetensors reads a file's header and checks every tensor's extent.
func openSafetensors(path string) (*stFile, []*stTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("convert: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("convert: %w", err)
	}
	sf := &stFile{path: path, f: f, size: st.Size()}
	tensors, err := sf.readHeader()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return sf, tensors, nil
}

func (sf *stFile) fail(format string, args ...any) error {
	return fmt.Errorf("convert: %s: %s", sf.path, fmt.Sprintf(format, args...))
}

func (sf *stFile) readHeader() ([]*stTensor, error) {
	var lenBuf [8]byte
	if _, err := sf.f.ReadAt(lenBuf[:], 0); err != nil {
		return nil, sf.fail("too short for a safetensors file (%d bytes)", sf.size)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxSafetensorsHeader || n > uint64(sf.size-8) {
		return nil, sf.fail("header length %d is impossible in a file of %d bytes (not a safetensors file?)", n, sf.size)
	}
	hdr := make([]byte, n)
	if _, err := sf.f.ReadAt(hdr, 8); err != nil {
		return nil, sf.fail("reading the header: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, sf.fail("header is not a JSON object: %v", err)
	}
	dataStart := int64(8 + n)
	dataLen := sf.size - dataStart
	var out []*stTensor
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			Dtype       string  `json:"dtype"`
			Shape       []int64 `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, sf.fail("tensor %q: %v", name, err)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] < 0 || e.DataOffsets[1] < e.DataOffsets[0] || e.DataOffsets[1] > dataLen {
			return nil, sf.fail("tensor %q: data offsets %v outside the %d data bytes", name, e.DataOffsets, dataLen)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && count > math.MaxInt64/d) {
				return nil, sf.fail("tensor %q: bad shape %v", name, e.Shape)
			}
			count *= d
		}
		size, ok := stDtypeSize[e.Dtype]
		if !ok {
			return nil, sf.fail("tensor %q: unknown dtype %q", name, e.Dtype)
		}
		if count > math.MaxInt64/size || count*size != e.DataOffsets[1]-e.DataOffsets[0] {
			return nil, sf.fail("tensor %q: %d bytes for %s of shape %v", name, e.DataOffsets[1]-e.DataOffsets[0], e.Dtype, e.Shape)
		}
		out = append(out, &stTensor{name: name, dtype: e.Dtype, shape: e.Shape,
			begin: dataStart + e.DataOffsets[0], end: dataStart + e.DataOffsets[1], file: sf})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].begin < out[j].begin })
	return out, nil
}

// read returns the tensor's raw bytes.
func (t *stTensor) read() ([]byte, error) {
	b := make([]byte, t.end-t.begin)
	if len(b) == 0 {
		return b, nil
	}
	if n, err := t.file.f.ReadAt(b, t.begin); n < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("convert: %s: reading tensor %q: %w", t.file.path, t.name, err)
	}
	return b, nil
}
