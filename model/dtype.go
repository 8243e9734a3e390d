package model

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Q8Block is the number of values in one Q8_0 block; a block is an fp16
// scale d followed by 32 int8 q, value = d * q (llama.cpp's block_q8_0).
const (
	Q8Block      = 32
	q8BlockBytes = 2 + Q8Block
)

func (t TensorType) String() string {
	switch t {
	case TypeF32:
		return "F32"
	case TypeF16:
		return "F16"
	case TypeQ8_0:
		return "Q8_0"
	case TypeBF16:
		return "BF16"
	}
	if f, ok := blockFormats[t]; ok {
		return f.name
	}
	return fmt.Sprintf("ggml_type(%d)", uint32(t))
}

// Supported reports whether lmscore's cores can load tensors of type t.
func (t TensorType) Supported() bool {
	switch t {
	case TypeF32, TypeF16, TypeBF16:
		return true
	}
	return t.IsBlockQuant()
}

// RowBytes is the size of n values of type t; n must be a whole number of
// blocks for the quantized types.
func (t TensorType) RowBytes(n int64) (int64, error) {
	bs := int64(t.BlockSize())
	if bs == 0 {
		return 0, fmt.Errorf("%w %s", ErrUnsupportedType, t)
	}
	if n%bs != 0 {
		return 0, fmt.Errorf("a %s row holds whole blocks of %d values, not %d", t, bs, n)
	}
	return n / bs * int64(t.BlockBytes()), nil
}

// F16ToF32 widens an IEEE half-precision value exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf, nan
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: normalise it into a float32.
	e := uint32(113)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 narrows with round-to-nearest-even, as numpy's astype(float16)
// and GGML's GGML_FP32_TO_FP16 do; overflow gives infinity, NaN stays NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // a carry into the exponent is the correct result
	}
	return sign | uint16(half)
}

// BF16ToF32 widens a bfloat16 value exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 narrows with round-to-nearest-even and quiets NaNs, exactly as
// GGML's ggml_compute_fp32_to_bf16 and the gguf package do.
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((uint64(u) + uint64(0x7fff+(u>>16)&1)) >> 16)
}

// DecodeF16 converts little-endian fp16 bytes to float32.
func DecodeF16(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// EncodeF16 converts float32 values to little-endian fp16 bytes.
func EncodeF16(x []float32) []byte {
	b := make([]byte, 2*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint16(b[2*i:], F32ToF16(v))
	}
	return b
}

// DecodeBF16 converts little-endian bf16 bytes to float32.
func DecodeBF16(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// EncodeBF16 converts float32 values to little-endian bf16 bytes.
func EncodeBF16(x []float32) []byte {
	b := make([]byte, 2*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint16(b[2*i:], F32ToBF16(v))
	}
	return b
}

// DecodeF32 converts little-endian float32 bytes.
func DecodeF32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// EncodeF32 converts float32 values to little-endian bytes.
func EncodeF32(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// EncodeQ8_0 quantizes len(x) values (a multiple of 32) the way llama.cpp's
// quantize_row_q8_0_ref and the gguf package do, bit for bit: per block
// d = amax/127 and q = round(x * (1/d)) with halves away from zero, all in
// float32, then d stored as fp16.
func EncodeQ8_0(x []float32) ([]byte, error) {
	if len(x)%Q8Block != 0 {
		return nil, fmt.Errorf("Q8_0 needs a multiple of %d values, got %d", Q8Block, len(x))
	}
	out := make([]byte, len(x)/Q8Block*q8BlockBytes)
	for blk := 0; blk < len(x)/Q8Block; blk++ {
		xs := x[blk*Q8Block : (blk+1)*Q8Block]
		dst := out[blk*q8BlockBytes : (blk+1)*q8BlockBytes]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(dst, F32ToF16(d))
		for j, v := range xs {
			p := v * id
			dst[2+j] = byte(int8(math.Round(float64(p))))
		}
	}
	return out, nil
}

// DecodeQ8_0 dequantizes Q8_0 blocks: value = fp16 d * int8 q, in float32.
func DecodeQ8_0(b []byte) []float32 {
	n := len(b) / q8BlockBytes
	out := make([]float32, n*Q8Block)
	for blk := 0; blk < n; blk++ {
		src := b[blk*q8BlockBytes:]
		d := F16ToF32(binary.LittleEndian.Uint16(src))
		for j := 0; j < Q8Block; j++ {
			out[blk*Q8Block+j] = d * float32(int8(src[2+j]))
		}
	}
	return out
}

// Float32s decodes a tensor's data to float32, whatever its type.
func (t *Tensor) Float32s() ([]float32, error) {
	n := t.Shape[0] * t.Shape[1]
	want, err := t.Type.RowBytes(t.Shape[0])
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if int64(len(t.Data)) != want*t.Shape[1] {
		return nil, fmt.Errorf("tensor %q: %d bytes of data, %s shape %v takes %d", t.Name, len(t.Data), t.Type, t.Shape, want*t.Shape[1])
	}
	var out []float32
	switch t.Type {
	case TypeF32:
		out = DecodeF32(t.Data)
	case TypeF16:
		out = DecodeF16(t.Data)
	case TypeBF16:
		out = DecodeBF16(t.Data)
	default:
		out, err = Dequantize(t.Type, t.Data)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	return out[:n], nil
}

// NewTensor encodes float32 values (Shape[0]*Shape[1] of them, row-major)
// as a tensor of type typ.
func NewTensor(name string, typ TensorType, shape [2]int64, x []float32) (*Tensor, error) {
	if shape[0] <= 0 || shape[1] <= 0 || int64(len(x)) != shape[0]*shape[1] {
		return nil, fmt.Errorf("tensor %q: %d values for shape %v", name, len(x), shape)
	}
	var data []byte
	switch typ {
	case TypeF32:
		data = EncodeF32(x)
	case TypeF16:
		data = EncodeF16(x)
	case TypeBF16:
		data = EncodeBF16(x)
	case TypeQ4_0, TypeQ4_1, TypeQ5_0, TypeQ5_1, TypeQ8_0:
		if bs := int64(typ.BlockSize()); shape[0]%bs != 0 {
			return nil, fmt.Errorf("tensor %q: %s rows hold whole blocks of %d values, shape %v does not", name, typ, bs, shape)
		}
		data, _ = Quantize(typ, x)
	default:
		return nil, fmt.Errorf("tensor %q: %w %s", name, ErrUnsupportedType, typ)
	}
	return &Tensor{Name: name, Type: typ, Shape: shape, Data: data}, nil
}

// Convert re-encodes t as typ (through float32).
func (t *Tensor) Convert(typ TensorType) (*Tensor, error) {
	if t.Type == typ {
		return &Tensor{Name: t.Name, Type: t.Type, Shape: t.Shape, Data: append([]byte(nil), t.Data...)}, nil
	}
	x, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	return NewTensor(t.Name, typ, t.Shape, x)
}
