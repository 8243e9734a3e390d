package reference

import (
	"math"
	"slices"
	"testing"

	"github.com/lmscore/lmscore/model"
)

// Each feature of the forward pass must change its result: a feature that
// silently did nothing would pass the CPU-vs-reference tests (both sides
// would agree on ignoring it) but fail here.

// featureConfig is a small random model of arch, 2 layers, head_dim 8.
func featureConfig(arch model.Arch, rope model.RopeType) model.Config {
	return model.Config{Arch: arch, NVocab: 61, NEmbd: 32, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 40,
		NCtxTrain: 64, RopeType: rope, RopeFreqBase: 10000, NormEps: 1e-5}
}

func newReference(t *testing.T, cfg model.Config, edit func(w *model.Weights)) *Model {
	t.Helper()
	w, err := model.RandomWeights(cfg, 11, model.TypeF32)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(w)
	}
	r, err := New(&model.Model{Config: cfg, Weights: *w})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func logProbs(t *testing.T, r *Model, n int) [][]float64 {
	t.Helper()
	out, err := r.LogProbs(tokens(n, r.cfg.NVocab))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// maxRowDiff is the largest |a - b| over the rows [from, to).
func maxRowDiff(a, b [][]float64, from, to int) float64 {
	var d float64
	for i := from; i < to; i++ {
		for j := range a[i] {
			d = math.Max(d, math.Abs(a[i][j]-b[i][j]))
		}
	}
	return d
}

// requireChanges fails unless the two runs differ by more than 1e-6 (far
// above float64 rounding, far below what each feature does here).
func requireChanges(t *testing.T, what string, a, b [][]float64) {
	t.Helper()
	if d := maxRowDiff(a, b, 0, len(a)); d < 1e-6 {
		t.Errorf("%s: log-probabilities moved by only %.3g", what, d)
	}
}

// scaleTensor multiplies a tensor's values by by.
func scaleTensor(t *testing.T, src *model.Tensor, by float32) *model.Tensor {
	x, err := src.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		x[i] *= by
	}
	out, err := model.NewTensor(src.Name, model.TypeF32, src.Shape, x)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSoftcapsChangeTheResult(t *testing.T) {
	cfg := featureConfig(model.ArchGemma2, model.RopeNeox)
	plain := logProbs(t, newReference(t, cfg, nil), 20)
	capped := cfg
	capped.AttnSoftcap = 0.5
	requireChanges(t, "attention soft-cap", plain, logProbs(t, newReference(t, capped, nil), 20))
	capped = cfg
	capped.FinalSoftcap = 2
	got := logProbs(t, newReference(t, capped, nil), 20)
	requireChanges(t, "final soft-cap", plain, got)
	// Capped logits lie in (-c, c): no log-probability under -2c - log V.
	floor := -2*float64(capped.FinalSoftcap) - math.Log(float64(cfg.NVocab))
	for i, row := range got {
		if m := slices.Min(row); m < floor {
			t.Fatalf("position %d: log-probability %v under the cap's floor %v", i, m, floor)
		}
	}
}

func TestAttnScaleChangesTheResult(t *testing.T) {
	cfg := featureConfig(model.ArchGemma2, model.RopeNeox)
	scaled := cfg
	scaled.AttnScale = 1 // instead of 1/sqrt(8)
	requireChanges(t, "attention scale", logProbs(t, newReference(t, cfg, nil), 20), logProbs(t, newReference(t, scaled, nil), 20))
}

// A sliding window leaves the positions inside it exactly as they were and
// changes every later one; a window as long as the sequence is none.
func TestSlidingWindow(t *testing.T) {
	cfg := featureConfig(model.ArchLlama, model.RopeNorm)
	full := logProbs(t, newReference(t, cfg, nil), 25)
	win := cfg
	win.NSWA = 4
	got := logProbs(t, newReference(t, win, nil), 25)
	if d := maxRowDiff(full, got, 0, 4); d != 0 {
		t.Errorf("positions inside the window moved by %.3g", d)
	}
	if d := maxRowDiff(full, got, 4, 25); d < 1e-6 {
		t.Errorf("positions past the window moved by only %.3g", d)
	}
	long := cfg
	long.NSWA = 25
	if d := maxRowDiff(full, logProbs(t, newReference(t, long, nil), 25), 0, 25); d != 0 {
		t.Errorf("a window as long as the sequence moved log-probabilities by %.3g", d)
	}
	// Only the flagged layers slide.
	some := win
	some.SWALayers = []bool{false, true}
	requireChanges(t, "sliding layer pattern", got, logProbs(t, newReference(t, some, nil), 25))
}

func TestParallelResidualChangesTheResult(t *testing.T) {
	cfg := featureConfig(model.ArchGPTNeoX, model.RopeNeox)
	seq := cfg
	seq.SequentialResidual = true
	requireChanges(t, "parallel residual", logProbs(t, newReference(t, cfg, nil), 20), logProbs(t, newReference(t, seq, nil), 20))
}

// Post-norms sit on the sublayer outputs: scaling their weights changes
// the result (a post-norm that were skipped would make it no-op).
func TestPostNormsChangeTheResult(t *testing.T) {
	for _, arch := range []model.Arch{model.ArchGemma2, model.ArchOLMo2} {
		cfg := featureConfig(arch, model.RopeNeox)
		plain := logProbs(t, newReference(t, cfg, nil), 20)
		for _, role := range []model.LayerRole{model.AttnPostNorm, model.FFNPostNorm} {
			scaled := newReference(t, cfg, func(w *model.Weights) {
				for l := range w.Layers {
					w.Layers[l][role] = scaleTensor(t, w.Layers[l][role], 3)
				}
			})
			requireChanges(t, arch.String()+" "+role.String(), plain, logProbs(t, scaled, 20))
		}
	}
}

// OLMo 2 has no pre-norms: its layers read the residual stream as it is,
// which a norm of unit weights would not leave alone.
func TestAbsentPreNormIsIdentity(t *testing.T) {
	cfg := featureConfig(model.ArchOLMo2, model.RopeNeox)
	r := newReference(t, cfg, nil)
	x := []float64{3, -1, 0.5, 2}
	if got := r.norm(x, nil, nil); !slices.Equal(got, x) {
		t.Errorf("absent norm: %v, want %v", got, x)
	}
	ones := []float64{1, 1, 1, 1}
	if got := r.norm(x, ones, nil); slices.Equal(got, x) {
		t.Errorf("a norm of unit weights left %v alone; the identity check above means nothing", x)
	}
	withNorm := *r
	withNorm.layers = slices.Clone(r.layers)
	for l := range withNorm.layers {
		withNorm.layers[l].attnNorm = slices.Repeat([]float64{1}, cfg.NEmbd)
	}
	requireChanges(t, "olmo2 without pre-norms vs with", logProbs(t, r, 20), logProbs(t, &withNorm, 20))
}

// QK_NORM_FULL normalizes q over all its heads at once; per-head norms
// (Qwen3, Gemma 3) each head alone. The two must differ on a q whose heads
// have different scales, and the full norm must leave the whole q of RMS 1
// (unit weights).
func TestQKNormFull(t *testing.T) {
	full := newReference(t, featureConfig(model.ArchOLMo2, model.RopeNeox), nil)
	perHead := *full
	perHead.cfg.Arch = model.ArchQwen3
	d := full.cfg.HeadDim()
	q := make([]float64, full.cfg.NHead*d)
	for i := range q {
		q[i] = float64(1+i/d) * math.Sin(float64(i)+0.5)
	}
	w := slices.Repeat([]float64{1}, len(q))
	a, b := slices.Clone(q), slices.Clone(q)
	full.qkNorm(a, w)
	perHead.qkNorm(b, w)
	var ms float64
	for _, v := range a {
		ms += v * v
	}
	if rms := math.Sqrt(ms / float64(len(a))); math.Abs(rms-1) > 1e-4 {
		t.Errorf("full q/k norm: RMS %v, want 1", rms)
	}
	if slices.Equal(a, b) {
		t.Error("full and per-head q/k norms agree on heads of different scales")
	}
}

// GeGLU and the exact GELU are their own activations: the same layer run
// as SwiGLU or with the tanh GELU gives another output.
func TestFFNActivations(t *testing.T) {
	h := make([]float64, 32)
	for i := range h {
		h[i] = 2 * math.Sin(float64(3*i)+1)
	}
	for _, c := range []struct {
		arch, other model.Arch
	}{{model.ArchGemma2, model.ArchLlama}, {model.ArchGPTNeoX, model.ArchGPT2}} {
		r := newReference(t, featureConfig(c.arch, model.RopeNeox), nil)
		o := *r
		o.cfg.Arch = c.other
		a, b := r.ffn(&r.layers[0], h, Rounding{}), o.ffn(&o.layers[0], h, Rounding{})
		var d float64
		for i := range a {
			d = math.Max(d, math.Abs(a[i]-b[i]))
		}
		if d < 1e-6 {
			t.Errorf("%s's FFN as %s moved by only %.3g", c.arch, c.other, d)
		}
	}
	// The exact GELU against values of x·Φ(x).
	for _, c := range []struct{ x, want float64 }{{1, 0.8413447460685429}, {-0.5, -0.15426876936299344}, {2, 1.9544997361036416}} {
		if got := GELUErf(c.x); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("GELUErf(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

// Phi-3's fused gate_up is split with the gate rows first.
func TestFusedGateUpSplit(t *testing.T) {
	cfg := featureConfig(model.ArchPhi3, model.RopeNeox)
	w, err := model.RandomWeights(cfg, 11, model.TypeF32)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(&model.Model{Config: cfg, Weights: *w})
	if err != nil {
		t.Fatal(err)
	}
	fused, err := decode(w.Layers[0][model.FFNUp])
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.NFF * cfg.NEmbd
	ly := r.layers[0]
	if !slices.Equal(ly.gate.w, fused[:n]) || !slices.Equal(ly.up.w, fused[n:]) || ly.gate.n != cfg.NFF || ly.up.n != cfg.NFF {
		t.Error("the fused gate_up is not split into the gate's rows, then the up's")
	}
}

// embd_scale multiplies the token embeddings (Gemma: sqrt(n_embd)); a
// family without it embeds the rows as they are.
func TestEmbdScale(t *testing.T) {
	r := newReference(t, featureConfig(model.ArchGemma2, model.RopeNeox), nil)
	plain := *r
	plain.cfg.Arch = model.ArchLlama
	toks := tokens(5, r.cfg.NVocab)
	a, err := r.embed(toks)
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.embed(toks)
	if err != nil {
		t.Fatal(err)
	}
	s := float64(r.cfg.EmbdScale())
	if s != float64(float32(math.Sqrt(32))) {
		t.Fatalf("gemma2's embedding scale is %v, want sqrt(32) in float32", s)
	}
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j]*s {
				t.Fatalf("token %d value %d: %v, want %v × %v", i, j, a[i][j], b[i][j], s)
			}
		}
	}
}

// ropeInput is a head-sized test vector per head, none of it zero.
func ropeInput(r *Model) []float64 {
	x := make([]float64, r.cfg.NHead*r.cfg.HeadDim())
	for i := range x {
		x[i] = math.Cos(float64(i)*0.7) + 1.5
	}
	return x
}

func maxAbsDiff(a, b []float64) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// Partial rotary turns the first n_rot values of each head and leaves the
// rest alone, for both pair layouts; a model with it differs from one
// rotating whole heads.
func TestPartialRotary(t *testing.T) {
	for arch, rope := range map[model.Arch]model.RopeType{model.ArchLlama: model.RopeNorm, model.ArchQwen2: model.RopeNeox} {
		cfg := featureConfig(arch, rope)
		cfg.NRot = 4 // of head_dim 8
		r := newReference(t, cfg, nil)
		x := ropeInput(r)
		y := slices.Clone(x)
		r.rope(y, 5, false)
		d := cfg.HeadDim()
		for h := 0; h < cfg.NHead; h++ {
			if !slices.Equal(x[h*d+cfg.NRot:(h+1)*d], y[h*d+cfg.NRot:(h+1)*d]) {
				t.Errorf("%s head %d: values past n_rot moved", rope, h)
			}
			if slices.Equal(x[h*d:h*d+cfg.NRot], y[h*d:h*d+cfg.NRot]) {
				t.Errorf("%s head %d: the first n_rot values did not turn", rope, h)
			}
		}
		whole := cfg
		whole.NRot = 0
		requireChanges(t, "partial rotary "+rope.String(), logProbs(t, r, 20), logProbs(t, newReference(t, whole, nil), 20))
	}
}

// Linear RoPE scaling turns position p as the unscaled RoPE turns p·scale;
// the attention factor multiplies the rotated values.
func TestRopeScaleAndAttnFactor(t *testing.T) {
	cfg := featureConfig(model.ArchQwen2, model.RopeNeox)
	plain := newReference(t, cfg, nil)
	scaledCfg := cfg
	scaledCfg.RopeFreqScale = 0.25
	scaled := newReference(t, scaledCfg, nil)
	x := ropeInput(plain)
	a, b := slices.Clone(x), slices.Clone(x)
	scaled.rope(a, 12, false)
	plain.rope(b, 3, false)
	if d := maxAbsDiff(a, b); d > 1e-12 {
		t.Errorf("RoPE with scale 1/4 at position 12 is %.3g from RoPE at position 3", d)
	}
	requireChanges(t, "RoPE frequency scale", logProbs(t, plain, 20), logProbs(t, scaled, 20))

	factorCfg := cfg
	factorCfg.RopeAttnFactor = 1.25
	factor := newReference(t, factorCfg, nil)
	a, b = slices.Clone(x), slices.Clone(x)
	factor.rope(a, 7, false)
	plain.rope(b, 7, false)
	for i := range b {
		b[i] *= 1.25
	}
	if d := maxAbsDiff(a, b); d > 1e-12 {
		t.Errorf("RoPE with attention factor 1.25 is %.3g from 1.25 × RoPE", d)
	}
}

// Sliding layers turn by their own base and scale: RoPE of a sliding layer
// is the full-attention RoPE of a model whose base and scale are those.
func TestSlidingLayerRope(t *testing.T) {
	cfg := featureConfig(model.ArchGemma3, model.RopeNeox)
	cfg.NSWA, cfg.SWALayers = 4, []bool{true, false}
	cfg.RopeFreqBase, cfg.RopeFreqScale = 1e6, 0.125
	cfg.RopeFreqBaseSWA, cfg.RopeFreqScaleSWA = 1000, 0.5
	r := newReference(t, cfg, nil)
	as := cfg
	as.RopeFreqBase, as.RopeFreqScale = 1000, 0.5
	want := newReference(t, as, nil)
	x := ropeInput(r)
	a, b, c := slices.Clone(x), slices.Clone(x), slices.Clone(x)
	r.rope(a, 9, true)
	want.rope(b, 9, false)
	r.rope(c, 9, false)
	if d := maxAbsDiff(a, b); d > 1e-12 {
		t.Errorf("a sliding layer's RoPE is %.3g from RoPE with its base and scale", d)
	}
	if maxAbsDiff(a, c) < 1e-3 {
		t.Error("sliding and full-attention layers turn alike")
	}
	// Unset, the sliding layers' scale is 1 (not the global one) and their
	// base the global one.
	unset := cfg
	unset.RopeFreqBaseSWA, unset.RopeFreqScaleSWA = 0, 0
	u := newReference(t, unset, nil)
	one := cfg
	one.RopeFreqScale = 0
	o := newReference(t, one, nil)
	a, b = slices.Clone(x), slices.Clone(x)
	u.rope(a, 9, true)
	o.rope(b, 9, false)
	if d := maxAbsDiff(a, b); d > 1e-12 {
		t.Errorf("unset sliding RoPE is %.3g from the global base at scale 1", d)
	}
	requireChanges(t, "sliding layers' RoPE", logProbs(t, r, 20), logProbs(t, u, 20))
}
