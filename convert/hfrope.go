package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/lmscore/lmscore/model"
)

// hfRopeTypes are the RoPE types lmscore converts, for error messages.
const hfRopeTypes = `"default", "linear", "llama3" (Llama 3.1, 3.2, 3.3) and "longrope" (Phi-3)`

// hfRopes is a config.json's RoPE in either style: transformers 5's
// rope_parameters (one, or one per layer type for Gemma 3), or
// transformers 4's rope_scaling beside rope_theta (rotary_emb_base for
// GPT-NeoX, rope_local_base_freq for Gemma 3's local layers). global is
// never nil; local is nil where sliding layers share it.
type hfRopes struct {
	global, local *hfRope
	gKey, lKey    string // the config keys they came from, for errors
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

func parseRope(key string, raw json.RawMessage) (*hfRope, error) {
	r := &hfRope{}
	if err := json.Unmarshal(raw, r); err != nil {
		var compact bytes.Buffer
		if json.Compact(&compact, raw) != nil {
			compact.Write(raw)
		}
		return nil, fmt.Errorf("%s %s is not an object of RoPE parameters: %v", key, compact.String(), err)
	}
	return r, nil
}

func (c *hfConfig) ropes() (hfRopes, error) {
	out := hfRopes{global: &hfRope{}, gKey: "rope_parameters"}
	if !isNull(c.RopeParameters) {
		var byType map[string]json.RawMessage
		if err := json.Unmarshal(c.RopeParameters, &byType); err != nil {
			return out, fmt.Errorf("rope_parameters is not an object: %v", err)
		}
		full, hasFull := byType["full_attention"]
		sliding, hasSliding := byType["sliding_attention"]
		if !hasFull && !hasSliding {
			r, err := parseRope("rope_parameters", c.RopeParameters)
			if err != nil {
				return out, err
			}
			out.global = r
		} else {
			out.gKey, out.lKey = "rope_parameters.full_attention", "rope_parameters.sliding_attention"
			var err error
			if hasFull && !isNull(full) {
				if out.global, err = parseRope(out.gKey, full); err != nil {
					return out, err
				}
			}
			out.local = &hfRope{}
			if hasSliding && !isNull(sliding) {
				if out.local, err = parseRope(out.lKey, sliding); err != nil {
					return out, err
				}
			}
		}
	} else if !isNull(c.RopeScaling) {
		r, err := parseRope("rope_scaling", c.RopeScaling)
		if err != nil {
			return out, err
		}
		out.global, out.gKey = r, "rope_scaling"
	} else {
		out.gKey = "rope_scaling"
	}
	if out.global.RopeTheta == nil {
		out.global.RopeTheta = c.RopeTheta
		if out.global.RopeTheta == nil {
			out.global.RopeTheta = c.RotaryEmbBase
		}
	}
	if out.local == nil && c.RopeLocalBaseFreq != nil {
		out.local = &hfRope{RopeTheta: c.RopeLocalBaseFreq}
		out.lKey = "rope_local_base_freq"
	}
	return out, nil
}

// typ is the RoPE type and the key that names it.
func (r *hfRope) typ(key string) (string, string) {
	if r.RopeType == "" && r.Type != "" {
		return r.Type, key + ".type"
	}
	return r.RopeType, key + ".rope_type"
}

// applyRope sets cfg's RoPE fields from config.json: base, partial
// rotary, linear scaling and LongRoPE's attention factor; cfg's sizes and
// NSWA are set. The tensors llama3 and LongRoPE need come from
// ropeTensors.
func (c *hfConfig) applyRope(cfg *model.Config, cl hfClass) error {
	rs, err := c.ropes()
	if err != nil {
		return err
	}
	g := rs.global
	base := 10000.0
	if cl.arch == model.ArchGemma3 {
		base = 1e6 // Gemma3TextConfig's default_theta for global layers
	}
	if g.RopeTheta != nil {
		base = *g.RopeTheta
	}
	cfg.RopeFreqBase = float32(base)

	// Partial rotary: rope_parameters first, then the top-level keys.
	frac := 1.0
	if cl.arch == model.ArchGPTNeoX {
		frac = 0.25 // GPTNeoXConfig's default rotary_pct
	}
	for _, p := range []*float64{c.RotaryPct, c.PartialRotaryFactor, g.PartialRotaryFactor} {
		if p != nil {
			frac = *p
		}
	}
	if !(frac > 0 && frac <= 1) {
		return fmt.Errorf("partial_rotary_factor (rotary_pct) is %v, want (0, 1]", frac)
	}
	if hd := cfg.HeadDim(); cfg.NHead > 0 {
		// int(), as transformers and llama.cpp's converter round it.
		if n := int(float64(hd) * frac); n != hd {
			cfg.NRot = n
		}
	}

	typ, typKey := g.typ(rs.gKey)
	switch typ {
	case "", "default", "llama3":
		// llama3's factors are rope_freqs.weight (ropeTensors).
		if typ == "llama3" && cl.arch != model.ArchLlama {
			return fmt.Errorf("%s \"llama3\" is supported for LlamaForCausalLM only (llama.cpp applies rope_freqs.weight to llama alone)", typKey)
		}
	case "linear":
		if g.Factor == nil || !(*g.Factor > 0) {
			return fmt.Errorf("%s is linear but its factor is missing or not positive", rs.gKey)
		}
		if *g.Factor != 1 {
			cfg.RopeFreqScale = float32(1 / *g.Factor)
		}
	case "longrope", "su":
		if cl.arch != model.ArchPhi3 {
			return fmt.Errorf("%s %q is supported for Phi3ForCausalLM only (llama.cpp stores LongRoPE for phi3 alone)", typKey, typ)
		}
		lr, err := c.longRope(rs, cfg)
		if err != nil {
			return err
		}
		cfg.NCtxOrig = lr.orig
		if lr.attn != 1 {
			cfg.RopeAttnFactor = float32(lr.attn)
		}
	default:
		return fmt.Errorf("%s %q is not supported (lmscore converts %s)", typKey, typ, hfRopeTypes)
	}
	if rs.local != nil {
		if cl.arch != model.ArchGemma3 {
			return fmt.Errorf("%s: only Gemma 3 has a RoPE of its own for sliding layers", rs.lKey)
		}
		if t, k := rs.local.typ(rs.lKey); t != "" && t != "default" {
			// llama.cpp's gemma3 leaves sliding layers unscaled, and no
			// GGUF key says otherwise.
			return fmt.Errorf("%s %q is not supported: Gemma 3's sliding layers take plain RoPE", k, t)
		}
	}
	if cfg.NSWA > 0 {
		local := base
		if cl.arch == model.ArchGemma3 {
			local = 10000 // Gemma3TextConfig's default_theta for local layers
		}
		if rs.local != nil && rs.local.RopeTheta != nil {
			local = *rs.local.RopeTheta
		}
		if float32(local) != cfg.RopeFreqBase {
			cfg.RopeFreqBaseSWA = float32(local)
		}
		if cl.arch != model.ArchGemma3 {
			cfg.RopeFreqScaleSWA = cfg.RopeFreqScale // one RoPE for every layer
		}
	}
	return nil
}

// longRopeParams are Phi-3's LongRoPE numbers, as transformers'
// _compute_longrope_parameters takes them.
type longRopeParams struct {
	long, short []float32
	orig        int
	attn        float64
}

func (c *hfConfig) longRope(rs hfRopes, cfg *model.Config) (longRopeParams, error) {
	g := rs.global
	var p longRopeParams
	// transformers prefers the top-level original_max_position_embeddings
	// (Phi-3 keeps it there); Phi3Config's default is 4096.
	orig := 4096.0
	switch {
	case c.OriginalMaxPositionEmbeddings != nil:
		orig = *c.OriginalMaxPositionEmbeddings
	case g.OriginalMaxPositionEmbeddings != nil:
		orig = *g.OriginalMaxPositionEmbeddings
	}
	if !(orig >= 1) || orig > math.MaxInt32 || orig != math.Trunc(orig) {
		return p, fmt.Errorf("original_max_position_embeddings is %v", orig)
	}
	p.orig = int(orig)
	factor := float64(cfg.NCtxTrain) / orig
	if g.Factor != nil {
		factor = *g.Factor
	}
	switch {
	case g.AttentionFactor != nil:
		p.attn = *g.AttentionFactor
	case factor <= 1:
		p.attn = 1
	default:
		p.attn = math.Sqrt(1 + math.Log(factor)/math.Log(orig))
	}
	if !(p.attn > 0) || math.IsInf(p.attn, 0) {
		return p, fmt.Errorf("%s: LongRoPE attention factor %v", rs.gKey, p.attn)
	}
	want := cfg.RotDim() / 2
	for _, f := range []struct {
		name string
		v    []float64
		dst  *[]float32
	}{{"long_factor", g.LongFactor, &p.long}, {"short_factor", g.ShortFactor, &p.short}} {
		if len(f.v) != want {
			return p, fmt.Errorf("%s.%s has %d values, want n_rot/2 = %d", rs.gKey, f.name, len(f.v), want)
		}
		for i, x := range f.v {
			if !(x > 0) || math.IsInf(x, 0) {
				return p, fmt.Errorf("%s.%s[%d] is %v, want a positive number", rs.gKey, f.name, i, x)
			}
			*f.dst = append(*f.dst, float32(x))
		}
	}
	return p, nil
}

// ropeTensors are the RoPE tensors llama.cpp's converter makes from
// config.json: rope_freqs.weight for llama3 scaling, Phi-3's
// rope_factors_long/short.weight for LongRoPE; none for plain RoPE.
func (c *hfConfig) ropeTensors(cfg model.Config) (map[string]*model.Tensor, error) {
	rs, err := c.ropes()
	if err != nil {
		return nil, err
	}
	g := rs.global
	out := map[string]*model.Tensor{}
	switch typ, _ := g.typ(rs.gKey); typ {
	case "llama3":
		orig := g.OriginalMaxPositionEmbeddings
		if orig == nil {
			// llama.cpp's converter also looks outside rope_scaling.
			orig = c.OriginalMaxPositionEmbeddings
		}
		var p model.Llama3Rope
		for _, f := range []struct {
			name string
			v    *float64
			dst  *float64
		}{{"factor", g.Factor, &p.Factor}, {"low_freq_factor", g.LowFreqFactor, &p.LowFreqFactor},
			{"high_freq_factor", g.HighFreqFactor, &p.HighFreqFactor},
			{"original_max_position_embeddings", orig, &p.OriginalContext}} {
			if f.v == nil {
				return nil, fmt.Errorf("%s is llama3 but has no %q", rs.gKey, f.name)
			}
			*f.dst = *f.v
		}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", rs.gKey, err)
		}
		t, err := p.RopeFreqsTensor(cfg)
		if err != nil {
			return nil, err
		}
		out[t.Name] = t
	case "longrope", "su":
		lr, err := c.longRope(rs, &cfg)
		if err != nil {
			return nil, err
		}
		n := [2]int64{int64(len(lr.long)), 1}
		for name, x := range map[string][]float32{model.NameRopeFactorsLong: lr.long, model.NameRopeFactorsShort: lr.short} {
			t, err := model.NewTensor(name, model.TypeF32, n, x)
			if err != nil {
				return nil, err
			}
			out[name] = t
		}
	}
	return out, nil
}
