package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
)

// RandomBlocks makes n blocks of t, deterministic from rng, whose values
// are of magnitude about amp: random bytes for the quants and sub-block
// scales (so every quant value and scale occurs), fp16 d (and dmin or m)
// chosen for the type's range. For the K-quants and IQ4, which lmscore
// has no quantizer for, this stands in for llama-quantize's output.
func RandomBlocks(t TensorType, n int, amp float64, rng *rand.Rand) ([]byte, error) {
	f, ok := blockFormats[t]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnsupportedType, t)
	}
	// The largest |value| a block reaches per unit d: the quant range times
	// the largest sub-block scale; min fields get the type's typical offset.
	var dScale, mScale float64
	switch t {
	case TypeQ4_0:
		dScale = 8
	case TypeQ4_1:
		dScale, mScale = 15, 1
	case TypeQ5_0:
		dScale = 16
	case TypeQ5_1:
		dScale, mScale = 31, 1
	case TypeQ8_0:
		dScale = 127
	case TypeQ2_K:
		dScale, mScale = 3*15/2.0, 15
	case TypeQ3_K:
		dScale = 4 * 32
	case TypeQ4_K:
		dScale, mScale = 15*63/2.0, 63
	case TypeQ5_K:
		dScale, mScale = 31*63/2.0, 63
	case TypeQ6_K:
		dScale = 32 * 128
	case TypeIQ4_NL:
		dScale = 127
	case TypeIQ4_XS:
		dScale = 127 * 32
	}
	b := make([]byte, n*f.bytes)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for blk := 0; blk < n; blk++ {
		base := blk * f.bytes
		d := amp / dScale * (0.5 + rng.Float64())
		binary.LittleEndian.PutUint16(b[base+f.scales[0]:], F32ToF16(float32(d)))
		if len(f.scales) > 1 {
			m := amp / mScale * (0.5 + rng.Float64())
			if t == TypeQ4_1 || t == TypeQ5_1 {
				m = -amp * (0.5 + rng.Float64()) // m is the block's minimum
			}
			binary.LittleEndian.PutUint16(b[base+f.scales[1]:], F32ToF16(float32(m)))
		}
	}
	return b, nil
}

// QuantizeWeights re-encodes every matrix of w as typeOf(name, shape)
// chooses, F32 and every other type allowed (a mix such as llama-quantize's
// Q4_K_M). Legacy types are quantized from the values; the K-quants and IQ4
// get RandomBlocks of the matrix's magnitude (its largest |value|), seeded
// by seed: they are a model of their own, compared against their
// dequantized F32 copy rather than against w. A type whose blocks do not
// divide the rows falls back to F16, as llama.cpp's tools do.
func (w *Weights) QuantizeWeights(seed uint64, typeOf func(name string, shape [2]int64) TensorType) (*Weights, error) {
	rng := rand.New(rand.NewPCG(seed, 0x7175616e74)) // "quant"
	conv := func(t *Tensor) (*Tensor, error) {
		if t == nil || t.Shape[1] == 1 {
			return t, nil
		}
		typ := typeOf(t.Name, t.Shape)
		if bs := typ.BlockSize(); bs == 0 || t.Shape[0]%int64(bs) != 0 {
			typ = TypeF16
		}
		if !typ.IsBlockQuant() || CanQuantize(typ) {
			return t.Convert(typ)
		}
		x, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		var amp float64
		for _, v := range x {
			amp = max(amp, math.Abs(float64(v)))
		}
		n := int(t.Shape[0] * t.Shape[1] / int64(typ.BlockSize()))
		data, err := RandomBlocks(typ, n, amp, rng)
		if err != nil {
			return nil, err
		}
		return &Tensor{Name: t.Name, Type: typ, Shape: t.Shape, Data: data}, nil
	}
	return w.Map(conv)
}
