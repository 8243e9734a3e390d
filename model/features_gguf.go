package model

import (
	"fmt"
	"math"
	"slices"

	"github.com/lmscore/lmscore/gguf"
)

// The per-family options of a GGUF file, read (readFeatures) and written
// (featureKVs) in this one place. Keys are llama.cpp's (gguf-py
// constants.py, after "{arch}."); where a key is absent, the default is
// the one llama.cpp's load_hparams gives that family (archs.go).
const (
	keyRopeDim           = "rope.dimension_count"
	keyRopeBase          = "rope.freq_base"
	keyRopeBaseSWA       = "rope.freq_base_swa"
	keyRopeScalingType   = "rope.scaling.type"
	keyRopeScalingFactor = "rope.scaling.factor"
	keyRopeScaleLinear   = "rope.scale_linear" // the factor's older name, still read by llama.cpp
	keyRopeAttnFactor    = "rope.scaling.attn_factor"
	keyRopeOrigCtx       = "rope.scaling.original_context_length"
	keyValueLength       = "attention.value_length"
	keySlidingWindow     = "attention.sliding_window"
	keySlidingPattern    = "attention.sliding_window_pattern"
	keyAttnScale         = "attention.scale"
	keyAttnSoftcap       = "attn_logit_softcapping"
	keyFinalSoftcap      = "final_logit_softcapping"
	keyParallelResidual  = "use_parallel_residual"
	keyExpertCount       = "expert_count"
	keyExpertUsed        = "expert_used_count"
	keyExpertFF          = "expert_feed_forward_length"
	keyExpertSharedFF    = "expert_shared_feed_forward_length"
	keyExpertWeightsNorm = "expert_weights_norm"
	keyExpertGating      = "expert_gating_func"
)

// expertGatingSoftmax is llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX,
// the only router the cores have.
const expertGatingSoftmax = 1

// keyReader reads optional "{arch}." keys, keeping the first error.
type keyReader struct {
	f   *gguf.File
	p   string
	err error
}

func (k *keyReader) has(key string) bool { return k.f.Has(k.p + key) }

func (k *keyReader) fail(key, format string, args ...any) {
	if k.err == nil {
		k.err = fmt.Errorf("model: %s: %s%s %s", k.f.Name, k.p, key, fmt.Sprintf(format, args...))
	}
}

func (k *keyReader) int(key string, def int64) int64 {
	if k.err != nil || !k.has(key) {
		return def
	}
	n, err := k.f.Int(k.p + key)
	if err != nil {
		k.err = err
		return def
	}
	if n < 0 || n > math.MaxInt32 {
		k.fail(key, "is %d, want 0 to %d", n, math.MaxInt32)
		return def
	}
	return n
}

func (k *keyReader) float(key string, def float64) float64 {
	if k.err != nil || !k.has(key) {
		return def
	}
	x, err := k.f.Float(k.p + key)
	if err != nil {
		k.err = err
		return def
	}
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		k.fail(key, "is %v, want a finite number >= 0", x)
		return def
	}
	return x
}

func (k *keyReader) bool(key string, def bool) bool {
	if k.err != nil || !k.has(key) {
		return def
	}
	b, err := k.f.Bool(k.p + key)
	if err != nil {
		k.err = err
		return def
	}
	return b
}

func (k *keyReader) str(key, def string) string {
	if k.err != nil || !k.has(key) {
		return def
	}
	s, err := k.f.String(k.p + key)
	if err != nil {
		k.err = err
		return def
	}
	return s
}

// readFeatures fills c's options from f, after the sizes and head width.
func readFeatures(f *gguf.File, c *Config) error {
	fam := families[c.Arch]
	k := &keyReader{f: f, p: c.Arch.String() + "."}
	hd := 0
	if c.NHead > 0 && (c.NEmbdHead != 0 || c.NEmbd%c.NHead == 0) {
		hd = c.HeadDim() // else Validate names the bad head count
	}
	if hd > 0 {
		if v := k.int(keyValueLength, int64(hd)); v != int64(hd) {
			k.fail(keyValueLength, "is %d but the key width is %d; lmscore needs keys and values of one width", v, hd)
		}
	}
	switch {
	case c.RopeType == RopeNone && k.has(keyRopeDim):
		k.fail(keyRopeDim, "is given, but %s has no RoPE", c.Arch)
	case c.RopeType != RopeNone && hd > 0:
		if n := k.int(keyRopeDim, int64(hd)); n != int64(hd) {
			if fam.fullRot {
				k.fail(keyRopeDim, "is %d but the head width is %d; llama.cpp rotates whole heads for %s", n, hd, c.Arch)
			}
			c.NRot = int(n)
		}
	}
	readRopeScaling(k, c)
	readSlidingWindow(k, c, fam)
	readScales(k, c, fam, hd)
	if fam.parallel {
		c.SequentialResidual = !k.bool(keyParallelResidual, true)
	} else if k.bool(keyParallelResidual, false) {
		k.fail(keyParallelResidual, "is true, but %s has a sequential residual", c.Arch)
	}
	readExperts(k, c, fam)
	return k.err
}

// readRopeScaling reads linear RoPE scaling and the LongRoPE keys. YaRN
// and the other types need numbers the cores do not take, so they are
// refused by name.
func readRopeScaling(k *keyReader, c *Config) {
	factor := k.float(keyRopeScalingFactor, 0)
	if !k.has(keyRopeScalingFactor) {
		factor = k.float(keyRopeScaleLinear, 0)
	}
	// llama.cpp's default type is linear: a factor alone scales.
	switch typ := k.str(keyRopeScalingType, "linear"); typ {
	case "linear":
		if factor != 0 && factor != 1 {
			c.RopeFreqScale = float32(1 / factor)
		}
	case "none":
		if factor != 0 && factor != 1 {
			k.fail(keyRopeScalingFactor, "is %v, but %s%s is \"none\"", factor, k.p, keyRopeScalingType)
		}
	default:
		k.fail(keyRopeScalingType, "is %q; lmscore supports \"linear\" and \"none\" (and Phi-3's LongRoPE factors, rope_freqs.weight for Llama 3)", typ)
	}
	if a := k.float(keyRopeAttnFactor, 0); a != 1 {
		c.RopeAttnFactor = float32(a)
	}
	c.NCtxOrig = int(k.int(keyRopeOrigCtx, 0))
}

// familySWALayers is the family's sliding-layer pattern for n layers when
// the file gives none: llama.cpp's set_swa_pattern(period), under which
// layer l slides when l % period < period-1; nil: every layer.
func familySWALayers(fam family, n int) []bool {
	return periodSWALayers(fam.swa.period, n)
}

func periodSWALayers(period, n int) []bool {
	if period == 0 {
		return nil
	}
	out := make([]bool, n)
	for l := range out {
		out[l] = l%period < period-1
	}
	return out
}

// normSWALayers is nil for a pattern where every layer slides.
func normSWALayers(layers []bool) []bool {
	if layers == nil || !slices.Contains(layers, false) {
		return nil
	}
	return layers
}

func readSlidingWindow(k *keyReader, c *Config, fam family) {
	if !fam.swa.reads {
		if n := k.int(keySlidingWindow, 0); n > 0 {
			k.fail(keySlidingWindow, "is %d, but lmscore (as llama.cpp) has no sliding window for %s", n, c.Arch)
		}
		return
	}
	n := int(k.int(keySlidingWindow, int64(fam.swa.defaultWindow)))
	if n == 0 {
		return
	}
	layers := familySWALayers(fam, c.NLayer)
	if k.has(keySlidingPattern) && k.err == nil {
		v, _ := k.f.Get(k.p + keySlidingPattern)
		switch x := v.Any().(type) {
		case []bool:
			layers = x
		default:
			if flags, err := k.f.Int32s(k.p + keySlidingPattern); err == nil {
				layers = make([]bool, len(flags))
				for i, fl := range flags {
					layers[i] = fl != 0
				}
			} else if period := k.int(keySlidingPattern, 0); k.err == nil {
				// A period, as newer llama.cpp reads it with get_key_or_arr.
				layers = periodSWALayers(int(period), c.NLayer)
			}
		}
		if layers != nil && len(layers) != c.NLayer {
			k.fail(keySlidingPattern, "has %d layers, the model %d", len(layers), c.NLayer)
			return
		}
	}
	if layers != nil && !slices.Contains(layers, true) {
		return // no layer slides
	}
	c.NSWA, c.SWALayers = n, normSWALayers(slices.Clone(layers))
	base := k.float(keyRopeBaseSWA, float64(fam.ropeBaseSWA))
	if base != 0 && float32(base) != c.RopeFreqBase {
		c.RopeFreqBaseSWA = float32(base)
	}
	if !fam.swaUnscaled {
		c.RopeFreqScaleSWA = c.RopeFreqScale
	}
}

// readScales reads the attention scale and the soft-caps.
func readScales(k *keyReader, c *Config, fam family, hd int) {
	for _, s := range []struct {
		key string
		def *float32
		dst *float32
	}{{keyAttnSoftcap, fam.attnSoftcap, &c.AttnSoftcap}, {keyFinalSoftcap, fam.finalSoftcap, &c.FinalSoftcap}} {
		if s.def != nil {
			*s.dst = float32(k.float(s.key, float64(*s.def)))
		} else if x := k.float(s.key, 0); x != 0 {
			k.fail(s.key, "is %v, but %s has no soft-capping", x, c.Arch)
		}
	}
	if fam.scale27BLayers == 0 {
		if k.has(keyAttnScale) {
			k.fail(keyAttnScale, "is given, but llama.cpp scales %s's attention by head_dim^-½ only", c.Arch)
		}
		return
	}
	switch {
	case k.has(keyAttnScale):
		c.AttnScale = float32(k.float(keyAttnScale, 0))
	case c.NLayer == fam.scale27BLayers && c.NHead > 0:
		// llama.cpp's rule for the 27B Gemma (query_pre_attn_scalar is
		// n_embd/n_head there), with its integer division.
		c.AttnScale = float32(1 / math.Sqrt(float64(c.NEmbd/c.NHead)))
	}
	if hd > 0 && c.AttnScale == float32(1/math.Sqrt(float64(hd))) {
		c.AttnScale = 0 // the default, spelled out
	}
}

func readExperts(k *keyReader, c *Config, fam family) {
	c.NExpert = int(k.int(keyExpertCount, 0))
	if c.NExpert == 0 {
		if fam.moe && len(fam.dense) == 0 {
			k.fail(keyExpertCount, "is missing or 0, but %s is a mixture of experts", c.Arch)
		}
		return
	}
	if !k.has(keyExpertUsed) {
		k.fail(keyExpertUsed, "is missing (expert_count is %d)", c.NExpert)
		return
	}
	c.NExpertUsed = int(k.int(keyExpertUsed, 0))
	ff := int64(c.NFF)
	if fam.ffExpFromUsed && c.NExpertUsed > 0 {
		ff = int64(c.NFF / c.NExpertUsed)
	}
	c.NFFExp = int(k.int(keyExpertFF, ff))
	if fam.shared {
		c.NFFShexp = int(k.int(keyExpertSharedFF, int64(c.NFF)))
	} else {
		c.NFFShexp = int(k.int(keyExpertSharedFF, 0)) // Validate refuses a shared expert here
	}
	c.ExpertWeightsNorm = k.bool(keyExpertWeightsNorm, fam.expertNorm)
	if g := k.int(keyExpertGating, expertGatingSoftmax); g != expertGatingSoftmax {
		k.fail(keyExpertGating, "is %d; lmscore routes by softmax (%d) only", g, expertGatingSoftmax)
	}
}

// featureKVs are the keys readFeatures reads back as cfg, after the sizes,
// the epsilon and the RoPE dimension and base.
func featureKVs(cfg Config) []gguf.KV {
	fam := families[cfg.Arch]
	p := cfg.Arch.String() + "."
	var kvs []gguf.KV
	set := func(key string, x any) {
		v, err := gguf.ValueOf(x)
		if err != nil {
			panic(err) // only fixed-width types are passed below
		}
		kvs = append(kvs, gguf.KV{Key: p + key, Value: v})
	}
	if cfg.RopeFreqScale != 0 {
		set(keyRopeScalingType, "linear")
		set(keyRopeScalingFactor, float32(1/float64(cfg.RopeFreqScale)))
	}
	if cfg.RopeAttnFactor != 0 {
		set(keyRopeAttnFactor, cfg.RopeAttnFactor)
	}
	if cfg.NCtxOrig != 0 {
		set(keyRopeOrigCtx, uint32(cfg.NCtxOrig))
	}
	if cfg.NSWA > 0 || fam.swa.defaultWindow != 0 {
		// Written as 0 too where the family's default is a window.
		set(keySlidingWindow, uint32(cfg.NSWA))
	}
	if cfg.NSWA > 0 {
		layers := cfg.SWALayers
		if layers == nil {
			layers = make([]bool, cfg.NLayer)
			for i := range layers {
				layers[i] = true
			}
		}
		def := familySWALayers(fam, cfg.NLayer)
		if !slices.Equal(normSWALayers(slices.Clone(layers)), normSWALayers(def)) {
			set(keySlidingPattern, slices.Clone(layers))
		}
		if cfg.RopeFreqBaseSWA != 0 || fam.ropeBaseSWA != 0 {
			base := cfg.RopeFreqBaseSWA
			if base == 0 {
				base = cfg.RopeFreqBase
			}
			set(keyRopeBaseSWA, base)
		}
	}
	if fam.attnSoftcap != nil {
		set(keyAttnSoftcap, cfg.AttnSoftcap)
	}
	if fam.finalSoftcap != nil && (cfg.FinalSoftcap != 0 || *fam.finalSoftcap != 0) {
		set(keyFinalSoftcap, cfg.FinalSoftcap)
	}
	if fam.scale27BLayers != 0 && (cfg.AttnScale != 0 || cfg.NLayer == fam.scale27BLayers) {
		s := cfg.AttnScale
		if s == 0 {
			s = float32(1 / math.Sqrt(float64(cfg.HeadDim())))
		}
		set(keyAttnScale, s)
	}
	if fam.parallel {
		set(keyParallelResidual, !cfg.SequentialResidual)
	}
	if cfg.NExpert > 0 {
		set(keyExpertCount, uint32(cfg.NExpert))
		set(keyExpertUsed, uint32(cfg.NExpertUsed))
		set(keyExpertFF, uint32(cfg.NFFExp))
		if cfg.NFFShexp > 0 {
			set(keyExpertSharedFF, uint32(cfg.NFFShexp))
		}
		set(keyExpertWeightsNorm, cfg.ExpertWeightsNorm)
	}
	return kvs
}

// checkGGUFRepresentable refuses options that no GGUF key of the family
// carries, so that a written file always reads back as cfg.
func (c Config) checkGGUFRepresentable() error {
	fam := families[c.Arch]
	switch {
	case c.NSWA > 0 && !fam.swa.reads:
		return fmt.Errorf("%s files have no sliding window (attention.sliding_window %d)", c.Arch, c.NSWA)
	case c.AttnScale != 0 && fam.scale27BLayers == 0:
		return fmt.Errorf("%s files have no attention scale of their own (%v)", c.Arch, c.AttnScale)
	case c.AttnSoftcap != 0 && fam.attnSoftcap == nil, c.FinalSoftcap != 0 && fam.finalSoftcap == nil:
		return fmt.Errorf("%s files have no soft-capping", c.Arch)
	}
	if c.NSWA > 0 {
		want := c.RopeFreqScale
		if fam.swaUnscaled {
			want = 0
		}
		if c.RopeFreqScaleSWA != want {
			return fmt.Errorf("the RoPE scale of sliding layers (%v) must be %v for %s: no GGUF key carries another", c.RopeFreqScaleSWA, want, c.Arch)
		}
	}
	return nil
}
