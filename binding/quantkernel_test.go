//go:build cgo

package binding

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/model"
)

// The CPU core's dequantization kernels (Kernels::dequant and the panel
// transpose, csrc/cpu/kernels_dequant.inc), on every instruction set this
// machine has, against model's Go decoders, which are bit for bit gguf-py's
// (model/quant_test.go). The requirement is bitwise equality: a quantized
// model's scores are those of its dequantized weights only if every
// instruction set decodes every block to the same fp32 bits.

var cpuISAs = []string{"scalar", "avx2", "avx512"}

// forEachISA runs f under each instruction set, skipping those this CPU
// lacks.
func forEachISA(t *testing.T, f func(t *testing.T)) {
	for _, isa := range cpuISAs {
		t.Run(isa, func(t *testing.T) {
			t.Setenv("LMSCORE_CPU_ISA", isa)
			if _, err := cDequant(model.TypeQ8_0, make([]byte, model.TypeQ8_0.BlockBytes()), 1); err != nil {
				if isUnsupported(err) {
					t.Skipf("%s: %v", isa, err)
				}
				t.Fatal(err)
			}
			f(t)
		})
	}
}

// scaleOffsets: the byte offsets of each type's fp16 scales (d, and dmin
// or m) in a block, from GGML's block layouts. testQuantBlocks checks them
// against model.CheckBlocks, which rejects a non-finite scale.
var scaleOffsets = map[model.TensorType][]int{
	model.TypeQ4_0: {0}, model.TypeQ4_1: {0, 2}, model.TypeQ5_0: {0}, model.TypeQ5_1: {0, 2},
	model.TypeQ8_0: {0}, model.TypeQ2_K: {80, 82}, model.TypeQ3_K: {108}, model.TypeQ4_K: {0, 2},
	model.TypeQ5_K: {0, 2}, model.TypeQ6_K: {208}, model.TypeIQ4_NL: {0}, model.TypeIQ4_XS: {0},
}

// edgeF16 are scales the decoders must get right: zeros of both signs, the
// smallest and largest subnormals, the smallest normal, one, the largest
// finite values, and negatives.
var edgeF16 = []uint16{0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff, 0x0400, 0x8400, 0x3c00, 0xbc00, 0x7bff,
	0xfbff, 0x1234, 0xa5a5}

// testQuantBlocks makes n blocks of typ: random bytes (every quant value
// and sub-block scale occurs), an all-zero and an all-ones block, and fp16
// scales drawn from edgeF16 every other time and random finite otherwise.
func testQuantBlocks(t *testing.T, typ model.TensorType, n int, rng *rand.Rand) []byte {
	t.Helper()
	size := typ.BlockBytes()
	b := make([]byte, n*size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for blk := 0; blk < n; blk++ {
		block := b[blk*size : (blk+1)*size]
		switch blk {
		case 0:
			clear(block)
		case 1:
			for i := range block {
				block[i] = 0xff
			}
		}
		for k, off := range scaleOffsets[typ] {
			h := uint16(rng.Uint32()) &^ 0x4000 // exponent never all ones: finite
			if (blk+k)%2 == 0 {
				h = edgeF16[(blk/2+k)%len(edgeF16)]
			}
			binary.LittleEndian.PutUint16(block[off:], h)
		}
	}
	if err := model.CheckBlocks(typ, b); err != nil {
		t.Fatalf("%s: scaleOffsets misses a scale: %v", typ, err)
	}
	return b
}

func requireSameBits(t *testing.T, what string, want, got []float32) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("%s: value %d is %g (0x%08x), want %g (0x%08x)", what, i, got[i], math.Float32bits(got[i]),
				want[i], math.Float32bits(want[i]))
		}
	}
}

// TestDequantKernelsBitwise: every quantized type, 37 blocks of edge and
// random scales, decoded from every starting block (so runs of 1..37
// blocks, at every alignment), equals the Go reference bitwise on every
// instruction set; so do F16 and BF16 over all 65536 bit patterns (NaNs
// keep half.hpp's bits), in runs whose lengths are not multiples of the
// vector width.
func TestDequantKernelsBitwise(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		for _, typ := range model.QuantTypes {
			rng := rand.New(rand.NewPCG(uint64(typ), 15))
			const n = 37
			blocks := testQuantBlocks(t, typ, n, rng)
			want, err := model.Dequantize(typ, blocks)
			if err != nil {
				t.Fatal(err)
			}
			bs, size := typ.BlockSize(), typ.BlockBytes()
			for first := 0; first < n; first++ {
				got, err := cDequant(typ, blocks[first*size:], n-first)
				if err != nil {
					t.Fatal(err)
				}
				requireSameBits(t, fmt.Sprintf("%s from block %d", typ, first), want[first*bs:], got)
			}
		}
		all := make([]byte, 2*65536)
		for h := range 65536 {
			binary.LittleEndian.PutUint16(all[2*h:], uint16(h))
		}
		for _, c := range []struct {
			typ    model.TensorType
			decode func(uint16) float32
		}{{model.TypeF16, model.F16ToF32}, {model.TypeBF16, model.BF16ToF32}} {
			want := make([]float32, 65536)
			for h := range want {
				want[h] = c.decode(uint16(h))
			}
			for _, span := range [][2]int{{0, 65536}, {1, 65536}, {3, 40}, {17, 17 + 1}, {100, 100 + 31}} {
				got, err := cDequant(c.typ, all[2*span[0]:], span[1]-span[0])
				if err != nil {
					t.Fatal(err)
				}
				requireSameBits(t, fmt.Sprintf("%s values %d..%d", c.typ, span[0], span[1]), want[span[0]:span[1]], got)
			}
		}
	})
}

// panelMatrix is a quantized matrix of k columns whose rows are parts one
// after the other, and the Go reference's values of every row.
type panelMatrix struct {
	name  string
	k     int64
	parts []quantPart
	rows  [][]float32
}

func newPanelMatrix(t *testing.T, name string, k int64, types []model.TensorType, counts []int64,
	rng *rand.Rand) panelMatrix {
	t.Helper()
	m := panelMatrix{name: name, k: k}
	for i, typ := range types {
		n := counts[i] * k / int64(typ.BlockSize())
		var data []byte
		switch typ {
		case model.TypeF16, model.TypeBF16:
			data = make([]byte, 2*n)
			for j := range n {
				// Finite values only: weights reach the panel path only
				// after the model's checks.
				binary.LittleEndian.PutUint16(data[2*j:], uint16(rng.Uint32())&^0x4000)
			}
		default:
			data = testQuantBlocks(t, typ, int(n), rng)
		}
		rowBytes := int(k) / typ.BlockSize() * typ.BlockBytes()
		for r := range counts[i] {
			row := data[int(r)*rowBytes : int(r+1)*rowBytes]
			var vals []float32
			switch typ {
			case model.TypeF16:
				vals = model.DecodeF16(row)
			case model.TypeBF16:
				vals = make([]float32, len(row)/2)
				for j := range vals {
					vals[j] = model.BF16ToF32(binary.LittleEndian.Uint16(row[2*j:]))
				}
			default:
				var err error
				if vals, err = model.Dequantize(typ, row); err != nil {
					t.Fatal(err)
				}
			}
			m.rows = append(m.rows, vals)
		}
		m.parts = append(m.parts, quantPart{typ: typ, rows: counts[i], data: data})
	}
	return m
}

// want is panel p for k in [k0, k0+kc) as gemm lays it out: [k][32], zero
// past the last row.
func (m panelMatrix) want(p, k0 int64, kc int) []float32 {
	out := make([]float32, kc*32)
	for j := range 32 {
		row := p*32 + int64(j)
		if row >= int64(len(m.rows)) {
			continue
		}
		for i := range kc {
			out[i*32+j] = m.rows[row][k0+int64(i)]
		}
	}
	return out
}

// TestDequantPanelBitwise: PackedMatrix::dequant_panel (the panel decoders
// where a whole panel is of a type that has one, else the row decoders and
// the transpose into panel layout) against the Go reference on every
// instruction set, for every panel of matrices of 45 rows (a full panel and
// a partial one) or more, K ranges starting and ending mid-row in whole
// blocks (chunks of the 256-value decode buffer and remainders), one type
// per matrix or several in one panel as a fused q/k/v mixes them, F16 and
// BF16 rows included.
func TestDequantPanelBitwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 15))
	var mats []panelMatrix
	for _, typ := range model.QuantTypes {
		k := int64(typ.BlockSize()) * 3
		if typ.BlockSize() == 32 {
			k = 32 * 37
		}
		mats = append(mats, newPanelMatrix(t, typ.String(), k, []model.TensorType{typ}, []int64{45}, rng))
	}
	mats = append(mats,
		newPanelMatrix(t, "Q4_K+Q6_K+Q5_K+Q8_0", 768,
			[]model.TensorType{model.TypeQ4_K, model.TypeQ6_K, model.TypeQ5_K, model.TypeQ8_0}, []int64{13, 7, 20, 5}, rng),
		newPanelMatrix(t, "IQ4_NL+F16+Q4_1+BF16+Q5_0", 32*11,
			[]model.TensorType{model.TypeIQ4_NL, model.TypeF16, model.TypeQ4_1, model.TypeBF16, model.TypeQ5_0},
			[]int64{3, 30, 1, 2, 9}, rng),
		// Types changing at panel edges: whole panels of one type take the
		// kernels' panel decoders (Q4_K, Q6_K, Q8_0), the partial last one
		// the row decoders and the transpose.
		newPanelMatrix(t, "Q4_K|Q6_K|Q8_0 at panel edges", 512,
			[]model.TensorType{model.TypeQ4_K, model.TypeQ6_K, model.TypeQ8_0}, []int64{32, 64, 41}, rng))
	forEachISA(t, func(t *testing.T) {
		for _, m := range mats {
			align := int64(32)
			for _, p := range m.parts {
				align = max(align, int64(p.typ.BlockSize()))
			}
			nb := m.k / align
			// Every range of whole alignment units up to 3, then the whole
			// row and a few random ranges.
			var ranges [][2]int64
			for a := int64(0); a < nb; a++ {
				for b := a + 1; b <= nb && b <= a+3; b++ {
					ranges = append(ranges, [2]int64{a, b})
				}
			}
			ranges = append(ranges, [2]int64{0, nb})
			for range 4 {
				a := rng.Int64N(nb)
				ranges = append(ranges, [2]int64{a, a + 1 + rng.Int64N(nb-a)})
			}
			for p := int64(0); p*32 < int64(len(m.rows)); p++ {
				for _, r := range ranges {
					k0, kc := r[0]*align, int((r[1]-r[0])*align)
					got, err := cDequantPanel(m.parts, m.k, p, k0, kc)
					if err != nil {
						t.Fatal(err)
					}
					requireSameBits(t, fmt.Sprintf("%s panel %d, k %d+%d", m.name, p, k0, kc), m.want(p, k0, kc), got)
				}
			}
		}
	})
}

// BenchmarkDequant: the decoders' own rate, one thread, each instruction
// set: every panel of a 1024 x 4096 matrix of one type dequantized in
// gemm's K blocks (into a panel buffer that stays in cache, as gemm's
// does), as GB/s of the blocks read and of the fp32 panels written.
//
//	go test ./binding -run '^$' -bench Dequant -benchtime 5x
func BenchmarkDequant(b *testing.B) {
	const rows, k = 1024, 4096
	for _, isa := range cpuISAs {
		for _, typ := range append([]model.TensorType{model.TypeF16, model.TypeBF16}, model.QuantTypes...) {
			b.Run(fmt.Sprintf("%s/%s", isa, typ), func(b *testing.B) {
				b.Setenv("LMSCORE_CPU_ISA", isa)
				rng := rand.New(rand.NewPCG(1, uint64(typ)))
				var data []byte
				if typ.IsBlockQuant() {
					var err error
					if data, err = model.RandomBlocks(typ, rows*k/typ.BlockSize(), 0.1, rng); err != nil {
						b.Fatal(err)
					}
				} else {
					data = make([]byte, 2*rows*k)
					for i := 0; i < len(data); i += 2 {
						binary.LittleEndian.PutUint16(data[i:], uint16(rng.Uint32())&^0x4000)
					}
				}
				// A quantized matrix always has a block type in it; F16 and
				// BF16 come here only beside one, so add a row of Q8_0.
				parts := []quantPart{{typ: typ, rows: rows, data: data}}
				if !typ.IsBlockQuant() {
					q, _ := model.RandomBlocks(model.TypeQ8_0, k/32, 0.1, rng)
					parts = append(parts, quantPart{typ: model.TypeQ8_0, rows: 1, data: q})
				}
				const reps = 4 // dequantizations per call: the call also copies the matrix in, untimed
				if _, err := cDequantMatrixSeconds(parts, k, 1); err != nil {
					if isUnsupported(err) {
						b.Skipf("%s: %v", isa, err)
					}
					b.Fatal(err)
				}
				b.ResetTimer()
				var sec float64
				for i := 0; i < b.N; i++ {
					s, err := cDequantMatrixSeconds(parts, k, reps)
					if err != nil {
						b.Fatal(err)
					}
					sec += s
				}
				n := float64(b.N * reps)
				b.ReportMetric(float64(len(data))*n/sec/1e9, "in-GB/s")
				b.ReportMetric(float64(rows*k*4)*n/sec/1e9, "out-GB/s")
			})
		}
	}
}
