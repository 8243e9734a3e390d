package model

import (
	"math"
	"testing"
)

func TestF16RoundTripsEveryHalf(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			if g := F32ToF16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if g := F32ToF16(f); g != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, g)
		}
	}
}

// Between two neighbouring halves, the midpoint goes to the even one and
// anything nearer one side goes to that side.
func TestF16RoundsToNearestEven(t *testing.T) {
	for h := 0; h < 0x7bff; h++ { // positive finite, excluding the largest
		a, b := float64(F16ToF32(uint16(h))), float64(F16ToF32(uint16(h+1)))
		mid := (a + b) / 2
		even := uint16(h)
		if h&1 == 1 {
			even = uint16(h + 1)
		}
		if g := F32ToF16(float32(mid)); g != even {
			t.Fatalf("midpoint of %#04x and %#04x -> %#04x, want %#04x", h, h+1, g, even)
		}
		if g := F32ToF16(-float32(mid)); g != even|0x8000 {
			t.Fatalf("negative midpoint of %#04x -> %#04x", h, g)
		}
		below := math.Nextafter32(float32(mid), 0)
		above := math.Nextafter32(float32(mid), float32(math.Inf(1)))
		if g := F32ToF16(below); g != uint16(h) {
			t.Fatalf("just below the midpoint of %#04x -> %#04x", h, g)
		}
		if g := F32ToF16(above); g != uint16(h+1) {
			t.Fatalf("just above the midpoint of %#04x -> %#04x", h, g)
		}
	}
	if g := F32ToF16(65520); g != 0x7c00 { // halfway past the largest half rounds to infinity
		t.Errorf("65520 -> %#04x", g)
	}
	if g := F32ToF16(1e-9); g != 0 {
		t.Errorf("1e-9 -> %#04x", g)
	}
}

func TestBF16(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // halfway, even stays
		{0x3f818000, 0x3f82}, // halfway, odd rounds up
		{0x3f808001, 0x3f81},
		{0x7f7fffff, 0x7f80}, // max float rounds to inf
		{0x7fc00001, 0x7fc0}, // quiet NaN
		{0x7f800001, 0x7fc0}, // signalling NaN is quieted (GGML's | 64)
		{0x80000000, 0x8000},
	}
	for _, c := range cases {
		if g := F32ToBF16(math.Float32frombits(c.in)); g != c.want {
			t.Errorf("%#08x -> %#04x, want %#04x", c.in, g, c.want)
		}
	}
	for h := 0; h < 1<<16; h++ {
		f := BF16ToF32(uint16(h))
		if !math.IsNaN(float64(f)) && F32ToBF16(f) != uint16(h) {
			t.Fatalf("bf16 %#04x does not round-trip", h)
		}
	}
}

func TestQ8_0(t *testing.T) {
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.7)) * float32(i+1) / 10
	}
	x[40] = 0 // second block keeps a zero
	b, err := EncodeQ8_0(x)
	if err != nil || len(b) != 68 {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	y := DecodeQ8_0(b)
	for blk := 0; blk < 2; blk++ {
		var amax float64
		for _, v := range x[blk*32 : blk*32+32] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		d := float64(F16ToF32(F32ToF16(float32(amax / 127))))
		for j := 0; j < 32; j++ {
			i := blk*32 + j
			// Half a step of rounding plus the fp16 rounding of d times 127.
			if err := math.Abs(float64(y[i]) - float64(x[i])); err > d/2+amax*1e-3 {
				t.Errorf("x[%d] = %v decoded as %v (d %v)", i, x[i], y[i], d)
			}
		}
	}
	// The element of largest magnitude maps to ±127.
	big := 0
	for j := range 32 {
		if math.Abs(float64(x[32+j])) > math.Abs(float64(x[32+big])) {
			big = j
		}
	}
	if q := int8(b[34+2+big]); q != 127 && q != -127 {
		t.Errorf("largest element quantized to %d", q)
	}
	zeros, _ := EncodeQ8_0(make([]float32, 32))
	for _, v := range DecodeQ8_0(zeros) {
		if v != 0 {
			t.Fatal("zero block does not decode to zeros")
		}
	}
	if _, err := EncodeQ8_0(make([]float32, 31)); err == nil {
		t.Error("31 values accepted")
	}
}

// Halves go away from zero, as C's roundf does in llama.cpp.
func TestQ8_0RoundsHalvesAwayFromZero(t *testing.T) {
	x := make([]float32, 32)
	x[0] = 127 // d = 1 exactly, so q = round(x)
	x[1] = 2.5
	x[2] = -2.5
	x[3] = 0.5
	b, _ := EncodeQ8_0(x)
	if q := []int8{int8(b[2]), int8(b[3]), int8(b[4]), int8(b[5])}; q[0] != 127 || q[1] != 3 || q[2] != -3 || q[3] != 1 {
		t.Errorf("q = %v, want [127 3 -3 1]", q)
	}
}

func TestTensorConvert(t *testing.T) {
	x := []float32{1, -2, 0.5, 3.25, 100, -0.125}
	for _, typ := range []TensorType{TypeF32, TypeF16, TypeBF16} {
		src, err := NewTensor("t", TypeF32, [2]int64{3, 2}, x)
		if err != nil {
			t.Fatal(err)
		}
		c, err := src.Convert(typ)
		if err != nil {
			t.Fatal(err)
		}
		y, err := c.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if x[i] != y[i] { // all exactly representable in every type
				t.Errorf("%s: %v -> %v", typ, x[i], y[i])
			}
		}
	}
	if _, err := NewTensor("q", TypeQ8_0, [2]int64{3, 2}, x); err == nil {
		t.Error("Q8_0 with 3-wide rows accepted")
	}
	if _, err := NewTensor("s", TypeF32, [2]int64{4, 2}, x); err == nil {
		t.Error("wrong value count accepted")
	}
	bad := &Tensor{Name: "b", Type: TypeF16, Shape: [2]int64{3, 2}, Data: make([]byte, 5)}
	if _, err := bad.Float32s(); err == nil {
		t.Error("short data accepted")
	}
}
