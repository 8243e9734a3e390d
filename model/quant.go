package model

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The block formats of GGML's quantized types, and their one Go
// dequantizer each: the reference the cores are tested against. Every
// dequantizer computes in float32 in the order gguf-py's
// gguf.quants.dequantize does (and GGML's dequantize_row_* does), so its
// values are bit for bit gguf-py's. Products are wrapped in float32() so
// that the Go compiler cannot fuse them into an FMA with the next
// addition, which would round once instead of twice.

// Block-quantized tensor types, numbered as GGML numbers them.
const (
	TypeQ4_0   TensorType = 2
	TypeQ4_1   TensorType = 3
	TypeQ5_0   TensorType = 6
	TypeQ5_1   TensorType = 7
	TypeQ2_K   TensorType = 10
	TypeQ3_K   TensorType = 11
	TypeQ4_K   TensorType = 12
	TypeQ5_K   TensorType = 13
	TypeQ6_K   TensorType = 14
	TypeIQ4_NL TensorType = 20
	TypeIQ4_XS TensorType = 23
)

// QuantTypes lists every block-quantized type lmscore reads, Q8_0 included.
var QuantTypes = []TensorType{TypeQ4_0, TypeQ4_1, TypeQ5_0, TypeQ5_1, TypeQ8_0, TypeQ2_K, TypeQ3_K,
	TypeQ4_K, TypeQ5_K, TypeQ6_K, TypeIQ4_NL, TypeIQ4_XS}

// QK is the number of values in a K-quant (and IQ4_XS) super-block.
const QK = 256

// IQ4NLValues is the non-linear codebook of IQ4_NL and IQ4_XS
// (kvalues_iq4nl in ggml-common.h).
var IQ4NLValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

type blockFormat struct {
	name   string
	values int   // values per block
	bytes  int   // bytes per block
	scales []int // byte offsets of the block's fp16 scales (d, dmin or m)
	decode func(b []byte, out []float32)
}

var blockFormats = map[TensorType]blockFormat{
	TypeQ4_0:   {"Q4_0", 32, 18, []int{0}, decodeQ4_0},
	TypeQ4_1:   {"Q4_1", 32, 20, []int{0, 2}, decodeQ4_1},
	TypeQ5_0:   {"Q5_0", 32, 22, []int{0}, decodeQ5_0},
	TypeQ5_1:   {"Q5_1", 32, 24, []int{0, 2}, decodeQ5_1},
	TypeQ8_0:   {"Q8_0", 32, 34, []int{0}, decodeQ8_0Block},
	TypeQ2_K:   {"Q2_K", QK, 84, []int{80, 82}, decodeQ2_K},
	TypeQ3_K:   {"Q3_K", QK, 110, []int{108}, decodeQ3_K},
	TypeQ4_K:   {"Q4_K", QK, 144, []int{0, 2}, decodeQ4_K},
	TypeQ5_K:   {"Q5_K", QK, 176, []int{0, 2}, decodeQ5_K},
	TypeQ6_K:   {"Q6_K", QK, 210, []int{208}, decodeQ6_K},
	TypeIQ4_NL: {"IQ4_NL", 32, 18, []int{0}, decodeIQ4_NL},
	TypeIQ4_XS: {"IQ4_XS", QK, 136, []int{0}, decodeIQ4_XS},
}

// IsBlockQuant reports whether t is one of the block-quantized types.
func (t TensorType) IsBlockQuant() bool { _, ok := blockFormats[t]; return ok }

// BlockSize is the number of values in one block of t: 1 for F32, F16 and
// BF16, 32 or 256 for the quantized types, 0 for a type lmscore lacks.
func (t TensorType) BlockSize() int {
	switch t {
	case TypeF32, TypeF16, TypeBF16:
		return 1
	}
	return blockFormats[t].values
}

// BlockBytes is the size of one block of t, 0 for a type lmscore lacks.
func (t TensorType) BlockBytes() int {
	switch t {
	case TypeF32:
		return 4
	case TypeF16, TypeBF16:
		return 2
	}
	return blockFormats[t].bytes
}

// Dequantize decodes whole blocks of type t (len(b) a multiple of its
// block size) to float32, as gguf-py's dequantize does, bit for bit.
func Dequantize(t TensorType, b []byte) ([]float32, error) {
	f, ok := blockFormats[t]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnsupportedType, t)
	}
	if len(b)%f.bytes != 0 {
		return nil, fmt.Errorf("%s data of %d bytes is not whole blocks of %d", f.name, len(b), f.bytes)
	}
	n := len(b) / f.bytes
	out := make([]float32, n*f.values)
	for i := 0; i < n; i++ {
		f.decode(b[i*f.bytes:(i+1)*f.bytes], out[i*f.values:(i+1)*f.values])
	}
	return out, nil
}

// CheckBlocks reports the first block of t whose fp16 scales are NaN or
// infinite: such a block dequantizes to NaN or infinity, which no trained
// model holds and which would poison every score.
func CheckBlocks(t TensorType, b []byte) error {
	f, ok := blockFormats[t]
	if !ok {
		return nil
	}
	for i := 0; i+f.bytes <= len(b); i += f.bytes {
		for _, off := range f.scales {
			h := binary.LittleEndian.Uint16(b[i+off:])
			if h&0x7c00 == 0x7c00 {
				return fmt.Errorf("block %d of %s has a non-finite scale (fp16 0x%04x at byte %d)", i/f.bytes, f.name, h, off)
			}
		}
	}
	return nil
}

func f16at(b []byte, off int) float32 { return F16ToF32(binary.LittleEndian.Uint16(b[off:])) }

func decodeQ8_0Block(b []byte, out []float32) {
	d := f16at(b, 0)
	for j := range 32 {
		out[j] = float32(int8(b[2+j])) * d
	}
}

// Q4_0: d, then 16 bytes; value j < 16 is the low nibble of byte j, value
// j+16 its high nibble; value = d * (q - 8).
func decodeQ4_0(b []byte, out []float32) {
	d := f16at(b, 0)
	for j := range 16 {
		out[j] = d * float32(int(b[2+j]&0xf)-8)
		out[j+16] = d * float32(int(b[2+j]>>4)-8)
	}
}

// Q4_1: d, m, 16 bytes of nibbles as Q4_0; value = d*q + m.
func decodeQ4_1(b []byte, out []float32) {
	d, m := f16at(b, 0), f16at(b, 2)
	for j := range 16 {
		out[j] = float32(d*float32(b[4+j]&0xf)) + m
		out[j+16] = float32(d*float32(b[4+j]>>4)) + m
	}
}

// q5 is value j's 5-bit quant: the nibble as Q4_0 plus bit j of qh.
func q5(qh uint32, qs []byte, j int) int {
	lo := qs[j%16] & 0xf
	if j >= 16 {
		lo = qs[j-16] >> 4
	}
	return int(lo) | int((qh>>j)&1)<<4
}

// Q5_0: d, qh (uint32: bit j is value j's fifth bit), 16 bytes of nibbles;
// value = d * (q - 16).
func decodeQ5_0(b []byte, out []float32) {
	d := f16at(b, 0)
	qh := binary.LittleEndian.Uint32(b[2:])
	for j := range 32 {
		out[j] = d * float32(q5(qh, b[6:], j)-16)
	}
}

// Q5_1: d, m, qh, 16 bytes of nibbles; value = d*q + m.
func decodeQ5_1(b []byte, out []float32) {
	d, m := f16at(b, 0), f16at(b, 2)
	qh := binary.LittleEndian.Uint32(b[4:])
	for j := range 32 {
		out[j] = float32(d*float32(q5(qh, b[8:], j))) + m
	}
}

// Q2_K: 16 scale bytes (low nibble scale, high nibble min, per 16 values),
// 64 bytes of 2-bit quants, d, dmin. Value i: group g = i/32 of 32 reads
// bits 2*(g%4) of byte (g/4)*32 + i%32; value = d*sc*q - dmin*m.
func decodeQ2_K(b []byte, out []float32) {
	scales, qs := b[0:16], b[16:80]
	d, dmin := f16at(b, 80), f16at(b, 82)
	for i := range QK {
		g, l := i/32, i%32
		q := (qs[(g/4)*32+l] >> (2 * (g % 4))) & 3
		sc := scales[i/16]
		dl := d * float32(sc&0xf)
		ml := dmin * float32(sc>>4)
		out[i] = float32(dl*float32(q)) - ml
	}
}

// Q3_K: 32 bytes of high bits (hmask), 64 bytes of 2-bit quants, 12 bytes
// of 6-bit scales, d. Value i: group g = i/32 reads bits 2*(g%4) of byte
// (g/4)*32 + i%32 and bit g of hmask[i%32]; q = low - (high ? 0 : 4);
// value = d * (scale - 32) * q.
func decodeQ3_K(b []byte, out []float32) {
	hmask, qs, sc := b[0:32], b[32:96], b[96:108]
	d := f16at(b, 108)
	var scales [16]float32
	for s := range 16 {
		lo := sc[s%8] & 0xf
		if s >= 8 {
			lo = sc[s-8] >> 4
		}
		hi := (sc[8+s%4] >> (2 * (s / 4))) & 3
		scales[s] = d * float32(int8(lo|hi<<4)-32)
	}
	for i := range QK {
		g, l := i/32, i%32
		q := int((qs[(g/4)*32+l] >> (2 * (g % 4))) & 3)
		if (hmask[l]>>g)&1 == 0 {
			q -= 4
		}
		out[i] = scales[i/16] * float32(q)
	}
}

// kScaleMin unpacks sub-block j's 6-bit scale and min of Q4_K and Q5_K
// (get_scale_min_k4 in ggml-quants.c).
func kScaleMin(s []byte, j int) (sc, m byte) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&0xf | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

// Q4_K: d, dmin, 12 bytes of scales and mins for 8 sub-blocks of 32, 128
// bytes of nibbles: sub-block g reads the low (g even) or high nibble of
// bytes (g/2)*32..+32; value = d*sc*q - dmin*m.
func decodeQ4_K(b []byte, out []float32) {
	d, dmin := f16at(b, 0), f16at(b, 2)
	qs := b[16:144]
	for g := range 8 {
		sc, m := kScaleMin(b[4:16], g)
		dl := d * float32(sc)
		ml := dmin * float32(m)
		shift := 4 * (g % 2)
		for l := range 32 {
			q := (qs[(g/2)*32+l] >> shift) & 0xf
			out[g*32+l] = float32(dl*float32(q)) - ml
		}
	}
}

// Q5_K: Q4_K's layout with 32 bytes of fifth bits (bit g of qh[l] for
// value g*32+l) before the nibbles.
func decodeQ5_K(b []byte, out []float32) {
	d, dmin := f16at(b, 0), f16at(b, 2)
	qh, qs := b[16:48], b[48:176]
	for g := range 8 {
		sc, m := kScaleMin(b[4:16], g)
		dl := d * float32(sc)
		ml := dmin * float32(m)
		shift := 4 * (g % 2)
		for l := range 32 {
			q := (qs[(g/2)*32+l]>>shift)&0xf | ((qh[l]>>g)&1)<<4
			out[g*32+l] = float32(dl*float32(q)) - ml
		}
	}
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8
// scales (per 16 values), d. In half h (128 values), group g = i/32 of 32
// takes the low (g < 2) or high nibble of ql[h*64 + (g%2)*32 + l] and bits
// 2g of qh[h*32 + l]; value = d * scale * (q - 32).
func decodeQ6_K(b []byte, out []float32) {
	ql, qh, scales := b[0:128], b[128:192], b[192:208]
	d := f16at(b, 208)
	for i := range QK {
		h, r := i/128, i%128
		g, l := r/32, r%32
		lo := (ql[h*64+(g%2)*32+l] >> (4 * (g / 2))) & 0xf
		hi := (qh[h*32+l] >> (2 * g)) & 3
		q := int(lo|hi<<4) - 32
		out[i] = float32(d*float32(int8(scales[i/16]))) * float32(q)
	}
}

// IQ4_NL: d, 16 bytes of nibbles as Q4_0 indexing IQ4NLValues.
func decodeIQ4_NL(b []byte, out []float32) {
	d := f16at(b, 0)
	for j := range 16 {
		out[j] = d * float32(IQ4NLValues[b[2+j]&0xf])
		out[j+16] = d * float32(IQ4NLValues[b[2+j]>>4])
	}
}

// IQ4_XS: d, scales_h (uint16, 2 bits per sub-block), scales_l (4 bytes,
// a nibble per sub-block), 128 bytes: sub-block g of 32 is IQ4_NL's nibble
// layout over bytes g*16..+16; value = d * (scale - 32) * kvalue.
func decodeIQ4_XS(b []byte, out []float32) {
	d := f16at(b, 0)
	sh := binary.LittleEndian.Uint16(b[2:])
	sl, qs := b[4:8], b[8:136]
	for g := range 8 {
		s := (sl[g/2]>>(4*(g%2)))&0xf | byte((sh>>(2*g))&3)<<4
		dl := d * float32(int8(s)-32)
		for l := range 16 {
			q := qs[g*16+l]
			out[g*32+l] = dl * float32(IQ4NLValues[q&0xf])
			out[g*32+l+16] = dl * float32(IQ4NLValues[q>>4])
		}
	}
}

// ------------------------------------------------------------ quantizers

// Quantize encodes float32 values (a multiple of the block size) as one of
// the legacy types Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 by rounding to nearest,
// bit for bit as gguf-py's quantize (GGML's quantize_row_*_ref) does. The
// K-quants and IQ4 have no such simple quantizer (llama-quantize searches
// scales); lmscore reads them but does not write them.
func Quantize(t TensorType, x []float32) ([]byte, error) {
	var enc func(x []float32, out []byte)
	switch t {
	case TypeQ8_0:
		return EncodeQ8_0(x)
	case TypeQ4_0:
		enc = encodeQ4_0
	case TypeQ4_1:
		enc = encodeQ4_1
	case TypeQ5_0:
		enc = encodeQ5_0
	case TypeQ5_1:
		enc = encodeQ5_1
	default:
		return nil, fmt.Errorf("%w %s: lmscore quantizes to Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 only", ErrUnsupportedType, t)
	}
	f := blockFormats[t]
	if len(x)%f.values != 0 {
		return nil, fmt.Errorf("%s needs a multiple of %d values, got %d", f.name, f.values, len(x))
	}
	n := len(x) / f.values
	out := make([]byte, n*f.bytes)
	for i := 0; i < n; i++ {
		enc(x[i*f.values:(i+1)*f.values], out[i*f.bytes:(i+1)*f.bytes])
	}
	return out, nil
}

// CanQuantize reports whether Quantize writes t.
func CanQuantize(t TensorType) bool {
	switch t {
	case TypeQ4_0, TypeQ4_1, TypeQ5_0, TypeQ5_1, TypeQ8_0:
		return true
	}
	return false
}

// signedMax is the value of largest magnitude, the first one on ties
// (numpy's argmax of abs).
func signedMax(x []float32) float32 {
	var m, am float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > am {
			m, am = v, a
		}
	}
	return m
}

func minMax(x []float32) (lo, hi float32) {
	lo, hi = x[0], x[0]
	for _, v := range x[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// quantTrunc is numpy's trunc(v).astype(uint8).clip(0, top) for the
// non-negative v the quantizers produce.
func quantTrunc(v float32, top int) byte {
	q := int(math.Trunc(float64(v)))
	return byte(max(0, min(q, top)))
}

func packNibbles(q []byte, out []byte) {
	for j := range 16 {
		out[j] = q[j]&0xf | q[j+16]<<4
	}
}

func packHighBits(q []byte) uint32 {
	var qh uint32
	for j, v := range q {
		qh |= uint32(v>>4&1) << j
	}
	return qh
}

func encodeQ4_0(x []float32, out []byte) {
	d := signedMax(x) / -8
	id := inverse(d)
	var q [32]byte
	for j, v := range x {
		q[j] = quantTrunc(float32(v*id)+8.5, 15)
	}
	binary.LittleEndian.PutUint16(out, F32ToF16(d))
	packNibbles(q[:], out[2:])
}

func encodeQ4_1(x []float32, out []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 15
	id := inverse(d)
	var q [32]byte
	for j, v := range x {
		q[j] = quantTrunc(float32((v-lo)*id)+0.5, 15)
	}
	binary.LittleEndian.PutUint16(out, F32ToF16(d))
	binary.LittleEndian.PutUint16(out[2:], F32ToF16(lo))
	packNibbles(q[:], out[4:])
}

func encodeQ5_0(x []float32, out []byte) {
	d := signedMax(x) / -16
	id := inverse(d)
	var q [32]byte
	for j, v := range x {
		q[j] = quantTrunc(float32(v*id)+16.5, 31)
	}
	binary.LittleEndian.PutUint16(out, F32ToF16(d))
	binary.LittleEndian.PutUint32(out[2:], packHighBits(q[:]))
	packNibbles(q[:], out[6:])
}

func encodeQ5_1(x []float32, out []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 31
	id := inverse(d)
	var q [32]byte
	for j, v := range x {
		q[j] = quantTrunc(float32((v-lo)*id)+0.5, 31)
	}
	binary.LittleEndian.PutUint16(out, F32ToF16(d))
	binary.LittleEndian.PutUint16(out[2:], F32ToF16(lo))
	binary.LittleEndian.PutUint32(out[4:], packHighBits(q[:]))
	packNibbles(q[:], out[8:])
}

// SupportedTypesText names the tensor types lmscore reads, for messages.
const SupportedTypesText = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS"

// checkData verifies that t's rows are whole blocks, that its data is
// exactly its shape's size and that no block has a non-finite scale, so
// that nothing malformed reaches a core.
func (t *Tensor) checkData() error {
	row, err := t.Type.RowBytes(t.Shape[0])
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if int64(len(t.Data)) != row*t.Shape[1] {
		return fmt.Errorf("tensor %q: %d bytes of data, %s shape %v takes %d", t.Name, len(t.Data), t.Type, t.Shape, row*t.Shape[1])
	}
	if err := CheckBlocks(t.Type, t.Data); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return nil
}
