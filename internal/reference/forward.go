package reference

import (
	"fmt"
	"math"

	"github.com/lmscore/lmscore/model"
)

// LogProbs runs tokens as one sequence from position 0 and returns, for
// each position i, the natural-log probabilities of the whole vocabulary
// for the token after tokens[0..i].
func (r *Model) LogProbs(tokens []int32) ([][]float64, error) {
	return r.LogProbsRounded(tokens, Rounding{})
}

// Rounding selects values a forward pass rounds to bf16 on their way, to
// emulate in float64 what a reduced-precision engine stores: the CUDA core's
// bf16 mode rounds every GEMM input and the KV pool. Its weights are rounded
// at load; emulate that by converting the model's weights (model.Weights
// Convert) before New.
type Rounding struct {
	Activations bool // inputs of the layers' GEMMs (normed states, attention output, MLP activation) and a gated MLP's gate and up outputs
	KV          bool // q, k and v after RoPE
	LMHeadInput bool // the final normed state going into the LM head
}

// roundBF16 rounds v in place to bf16 when on.
func roundBF16(on bool, v []float64) []float64 {
	if on {
		for i := range v {
			v[i] = float64(model.BF16ToF32(model.F32ToBF16(float32(v[i]))))
		}
	}
	return v
}

// LogProbsRounded is LogProbs with values rounded to bf16 where rd says.
func (r *Model) LogProbsRounded(tokens []int32, rd Rounding) ([][]float64, error) {
	cfg := r.cfg
	if len(tokens) > cfg.NCtxTrain {
		return nil, fmt.Errorf("reference: %d tokens exceed n_ctx_train %d", len(tokens), cfg.NCtxTrain)
	}
	xs, err := r.embed(tokens)
	if err != nil {
		return nil, err
	}
	for l := range r.layers {
		r.layer(&r.layers[l], xs, rd)
	}
	out := make([][]float64, len(tokens))
	for i, x := range xs {
		logits := r.out.apply(roundBF16(rd.LMHeadInput, r.norm(x, r.outNorm, r.outNB)), nil)
		softcap(logits, cfg.FinalSoftcap)
		out[i] = LogSoftmax(logits)
	}
	return out, nil
}

// embed returns the layers' input for each token: its embedding, times
// the model's embedding scale, plus its learned position where the model
// has them.
func (r *Model) embed(tokens []int32) ([][]float64, error) {
	cfg := r.cfg
	e := cfg.NEmbd
	scale := float64(cfg.EmbdScale())
	xs := make([][]float64, len(tokens))
	for i, id := range tokens {
		if id < 0 || int(id) >= cfg.NVocab {
			return nil, fmt.Errorf("reference: token %d at %d outside the vocabulary", id, i)
		}
		x := append([]float64(nil), r.tok.w[int(id)*e:(int(id)+1)*e]...)
		for j := range x {
			x[j] *= scale
		}
		if r.pos.w != nil {
			for j := range x {
				x[j] += r.pos.w[i*e+j]
			}
		}
		xs[i] = x
	}
	return xs, nil
}

// layer runs one layer over the whole sequence xs in place: sequential,
// x + attn(norm(x)) then h + ffn(norm(h)), or parallel, x + attn(norm(x)) +
// ffn(ffn_norm(x)); each sublayer's output post-normed where the layer has
// the norm.
func (r *Model) layer(ly *layer, xs [][]float64, rd Rounding) {
	attn := r.attention(ly, xs, rd)
	for i, x := range xs {
		o := ly.wo.apply(roundBF16(rd.Activations, attn[i]), ly.bo)
		if ly.attnPostNorm != nil {
			o = r.norm(o, ly.attnPostNorm, nil)
		}
		// Parallel: the FFN reads the layer's input, before the attention's add.
		if !r.cfg.ParallelResidual() {
			for j := range x {
				x[j] += o[j]
			}
		}
		f := r.ffn(ly, roundBF16(rd.Activations, r.norm(x, ly.ffnNorm, ly.ffnNormB)), rd)
		if ly.ffnPostNorm != nil {
			f = r.norm(f, ly.ffnPostNorm, nil)
		}
		for j := range x {
			if r.cfg.ParallelResidual() {
				x[j] += o[j]
			}
			x[j] += f[j]
		}
	}
}

// attention returns every token's attention output (n_head·head_dim):
// scores q·k·scale, soft-capped where the model caps them, over the
// positions the token sees (all before it, or its sliding window).
func (r *Model) attention(ly *layer, xs [][]float64, rd Rounding) [][]float64 {
	cfg := r.cfg
	d := cfg.HeadDim()
	group := cfg.NHead / cfg.NHeadKV
	n := len(xs)
	qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n)
	for i, x := range xs {
		h := roundBF16(rd.Activations, r.norm(x, ly.attnNorm, ly.attnNormB))
		qs[i], ks[i], vs[i] = ly.wq.apply(h, ly.bq), ly.wk.apply(h, ly.bk), ly.wv.apply(h, ly.bv)
		r.qkNorm(qs[i], ly.qNorm)
		r.qkNorm(ks[i], ly.kNorm)
		if cfg.RopeType != model.RopeNone {
			r.rope(qs[i], i, ly.sliding)
			r.rope(ks[i], i, ly.sliding)
		}
		roundBF16(rd.KV, qs[i])
		roundBF16(rd.KV, ks[i])
		roundBF16(rd.KV, vs[i])
	}
	scale := 1 / math.Sqrt(float64(d))
	if cfg.AttnScale != 0 {
		scale = float64(cfg.AttnScale)
	}
	out := make([][]float64, n)
	for i := range xs {
		first := 0
		if ly.sliding {
			first = max(0, i-cfg.NSWA+1) // p - n_swa < q <= p
		}
		attn := make([]float64, cfg.NHead*d)
		for h := 0; h < cfg.NHead; h++ {
			kh := h / group
			q := qs[i][h*d : (h+1)*d]
			scores := make([]float64, i+1-first)
			for j := range scores {
				var s float64
				for c := 0; c < d; c++ {
					s += q[c] * ks[first+j][kh*d+c]
				}
				scores[j] = s * scale
			}
			softcap(scores, cfg.AttnSoftcap)
			maxS := math.Inf(-1)
			for _, s := range scores {
				maxS = math.Max(maxS, s)
			}
			var sum float64
			for j := range scores {
				scores[j] = math.Exp(scores[j] - maxS)
				sum += scores[j]
			}
			o := attn[h*d : (h+1)*d]
			for j, p := range scores {
				for c := 0; c < d; c++ {
					o[c] += p / sum * vs[first+j][kh*d+c]
				}
			}
		}
		out[i] = attn
	}
	return out
}

// ffn is the layer's FFN of the normed input h, the down projection's bias
// included: the one place it is computed, so that another FFN (experts)
// can take its place.
func (r *Model) ffn(ly *layer, h []float64, rd Rounding) []float64 {
	if ly.experts != nil {
		return r.expertFFN(ly.experts, h, rd)
	}
	var act []float64
	switch r.cfg.FFNType() {
	case model.FFNSwiGLU, model.FFNGeGLU:
		// The CUDA core's gate/up GEMM stores its output in bf16 (kernels/kernels.h).
		g, u := roundBF16(rd.Activations, ly.gate.apply(h, nil)), roundBF16(rd.Activations, ly.up.apply(h, ly.upB))
		f := silu
		if r.cfg.FFNType() == model.FFNGeGLU {
			f = GELUTanh
		}
		act = make([]float64, len(g))
		for j := range g {
			act[j] = f(g[j]) * u[j]
		}
	case model.FFNGELU, model.FFNGELUErf:
		f := r.GELU
		if r.cfg.FFNType() == model.FFNGELUErf {
			f = GELUErf
		}
		act = ly.up.apply(h, ly.upB)
		for j := range act {
			act[j] = f(act[j])
		}
	}
	return ly.down.apply(roundBF16(rd.Activations, act), ly.downB)
}
