package model

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/gguf"
)

// transformersLlama3InvFreq is transformers' _compute_llama3_parameters
// written out plainly in float64: the scaled inverse frequency of each pair.
func transformersLlama3InvFreq(base float64, dim int, factor, low, high, oldCtx float64) []float64 {
	out := make([]float64, dim/2)
	lowWavelen, highWavelen := oldCtx/low, oldCtx/high
	for i := range out {
		invFreq := 1 / math.Pow(base, float64(2*i)/float64(dim))
		wavelen := 2 * math.Pi / invFreq
		llama := invFreq
		if wavelen > lowWavelen {
			llama = invFreq / factor
		}
		smooth := (oldCtx/wavelen - low) / (high - low)
		smoothed := (1-smooth)*llama/factor + smooth*llama
		if !(wavelen < highWavelen) && !(wavelen > lowWavelen) {
			llama = smoothed
		}
		out[i] = llama
	}
	return out
}

// FreqFactors as the cores use them (frequency base^(-2i/d) divided by the
// factor) equal transformers' llama3 inverse frequencies. The factors are
// float32, so the two agree to a float32 rounding: relative 2^-24 ≈ 6e-8,
// checked at 2e-7. The small case has all three bands (factor 1, factor 8
// and the smooth band between) at head_dim 16; the large one is Llama 3.1
// 8B's real parameters.
func TestLlama3FreqFactorsMatchTransformers(t *testing.T) {
	cases := []struct {
		name    string
		p       Llama3Rope
		base    float32
		headDim int
	}{
		{"tiny", Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 32}, 10000, 16},
		{"llama3.1-8b", Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}, 500000, 128},
		{"llama3.2-1b", Llama3Rope{Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}, 500000, 64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ff := c.p.FreqFactors(c.headDim, c.base)
			want := transformersLlama3InvFreq(float64(c.base), c.headDim, c.p.Factor, c.p.LowFreqFactor, c.p.HighFreqFactor, c.p.OriginalContext)
			if len(ff) != c.headDim/2 {
				t.Fatalf("%d factors, want %d", len(ff), c.headDim/2)
			}
			var ones, full, smooth int
			for i, f := range ff {
				got := math.Pow(float64(c.base), -2*float64(i)/float64(c.headDim)) / float64(f)
				if rel := math.Abs(got-want[i]) / want[i]; rel > 2e-7 {
					t.Errorf("pair %d: frequency %.9g (factor %g), transformers %.9g (relative %.2g)", i, got, f, want[i], rel)
				}
				switch {
				case f == 1:
					ones++
				case f == float32(c.p.Factor):
					full++
				default:
					smooth++
					if !(f > 1 && f < float32(c.p.Factor)) {
						t.Errorf("pair %d: smooth-band factor %g outside (1, %g)", i, f, c.p.Factor)
					}
				}
			}
			if ones == 0 || full == 0 || smooth == 0 {
				t.Errorf("bands: %d pairs at 1, %d at %g, %d between; want all three", ones, full, c.p.Factor, smooth)
			}
			for i := 1; i < len(ff); i++ {
				if ff[i] < ff[i-1] {
					t.Errorf("factors fall at pair %d: %g then %g", i, ff[i-1], ff[i])
				}
			}
		})
	}
}

func TestLlama3RopeValidate(t *testing.T) {
	ok := Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(p *Llama3Rope)
		want string
	}{
		{func(p *Llama3Rope) { p.Factor = 0 }, "factor is 0"},
		{func(p *Llama3Rope) { p.OriginalContext = math.Inf(1) }, "original_max_position_embeddings"},
		{func(p *Llama3Rope) { p.LowFreqFactor = 4 }, "not below high_freq_factor"},
		{func(p *Llama3Rope) { p.HighFreqFactor = math.NaN() }, "high_freq_factor is NaN"},
	} {
		p := ok
		c.edit(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", p, err, c.want)
		}
	}
}

// rope_freqs.weight survives write → load → write, byte for byte, written
// first as llama.cpp's converter writes it; with a tied output (Llama 3.2
// has no output.weight) too.
func TestRopeFreqsRoundTrip(t *testing.T) {
	for _, tied := range []bool{false, true} {
		cfg := testConfig(ArchLlama)
		w, err := RandomWeights(cfg, 11, TypeF16)
		if err != nil {
			t.Fatal(err)
		}
		if w.RopeFreqs != nil {
			t.Fatal("RandomWeights made rope_freqs")
		}
		if tied {
			w.Output = nil
		}
		p := Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 32}
		if w.RopeFreqs, err = p.RopeFreqsTensor(cfg); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "llama31.gguf")
		if err := WriteGGUF(path, cfg, w, fakeTokenizer(cfg.NVocab)...); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if m.File.Tensors[0].Name != NameRopeFreqs {
			t.Errorf("first tensor %q, want %q", m.File.Tensors[0].Name, NameRopeFreqs)
		}
		if got := m.Weights.RopeFreqs; got == nil || got.Type != TypeF32 || got.Shape != [2]int64{8, 1} ||
			!bytes.Equal(got.Data, EncodeF32(p.FreqFactors(16, 10000))) {
			t.Fatalf("rope_freqs loaded as %+v", got)
		}
		if (m.Weights.Output == nil) != tied {
			t.Errorf("tied %v but output %v", tied, m.Weights.Output != nil)
		}
		checkSameWeights(t, cfg, w, &m.Weights)
		conv, err := m.Weights.Convert(TypeBF16)
		if err != nil {
			t.Fatal(err)
		}
		if conv.RopeFreqs == nil || conv.RopeFreqs.Type != TypeF32 {
			t.Errorf("Convert dropped or re-typed rope_freqs: %+v", conv.RopeFreqs)
		}
		gw, err := NewGGUFWriter(m.Config, &m.Weights)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range m.File.KV {
			gw.Set(kv.Key, kv.Value)
		}
		var again bytes.Buffer
		if _, err := gw.WriteTo(&again); err != nil {
			t.Fatal(err)
		}
		m.Close()
		first, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again.Bytes()) {
			t.Errorf("tied %v: rewrite differs", tied)
		}
	}
}

// rope_freqs.weight is refused where llama.cpp would not use it (qwen2) and
// when it is not n_rot/2 F32 values.
func TestRopeFreqsLoadErrors(t *testing.T) {
	f32 := func(n int) []byte { return EncodeF32(make([]float32, n)) }
	cases := []struct {
		name string
		arch Arch
		add  func(gw *gguf.Writer)
		want string
	}{
		{"qwen2", ArchQwen2, func(gw *gguf.Writer) { gw.AddTensor(NameRopeFreqs, gguf.TensorF32, []int64{8}, f32(8)) },
			`unexpected tensor "rope_freqs.weight": qwen2 has no such tensor`},
		{"shape", ArchLlama, func(gw *gguf.Writer) { gw.AddTensor(NameRopeFreqs, gguf.TensorF32, []int64{16}, f32(16)) },
			`tensor "rope_freqs.weight" has shape [16], want [8] (n_rot/2)`},
		{"type", ArchLlama, func(gw *gguf.Writer) {
			gw.AddTensor(NameRopeFreqs, gguf.TensorF16, []int64{8}, make([]byte, 16))
		}, `tensor "rope_freqs.weight" has type F16, want F32`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeRaw(t, c.arch, func(gw *gguf.Writer, cfg Config, w *Weights) *gguf.Writer {
				return rebuild(cfg, w, nil, nil, c.add)
			})
			m, err := Load(path)
			if err == nil {
				m.Close()
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want %q", err, c.want)
			}
		})
	}
	cfg := testConfig(ArchLlama)
	w, _ := RandomWeights(cfg, 1, TypeF32)
	w.RopeFreqs = &Tensor{Name: NameRopeFreqs, Type: TypeF16, Shape: [2]int64{8, 1}, Data: make([]byte, 16)}
	if err := w.Check(cfg); err == nil || !strings.Contains(err.Error(), "want F32") {
		t.Errorf("Check accepted an F16 rope_freqs: %v", err)
	}
}
