// Package reference is a plain float64 forward pass of llama, qwen2, qwen3
// and gpt2: the yardstick the CPU core is tested against. It is written
// for clarity, one token and one head at a time, with none of the engine's
// paging, batching or blocking, so that agreement means something.
//
// Weights are decoded from their stored type (every type lmscore reads,
// through model.Tensor.Float32s, exactly as the engine dequantizes them)
// and widened to float64.
package reference

import (
	"fmt"
	"math"

	"github.com/lmscore/lmscore/model"
)

// matrix is n rows of k values (nn.Linear's layout).
type matrix struct {
	n, k int
	w    []float64
}

// apply returns W x (+ b when b is non-nil).
func (m matrix) apply(x, b []float64) []float64 {
	y := make([]float64, m.n)
	for i := range y {
		row := m.w[i*m.k : (i+1)*m.k]
		var s float64
		for j, v := range row {
			s += v * x[j]
		}
		if b != nil {
			s += b[i]
		}
		y[i] = s
	}
	return y
}

type layer struct {
	attnNorm, attnNormB []float64
	wq, wk, wv          matrix
	bq, bk, bv          []float64
	qNorm, kNorm        []float64 // qwen3: RMSNorm weights of every q and k head
	wo                  matrix
	bo                  []float64
	ffnNorm, ffnNormB   []float64
	gate, up, down      matrix
	upB, downB          []float64
}

// Model is a model decoded for the reference forward pass.
type Model struct {
	// GELU is gpt2's activation, by default the tanh approximation in
	// float64. A test may swap in another engine's variant (llama.cpp's
	// fp16 table, say) to account for a difference.
	GELU func(x float64) float64

	cfg            model.Config
	tok, pos       matrix
	outNorm, outNB []float64
	out            matrix
	layers         []layer
	ropeFreqs      []float64 // divides pair i's angle; nil: all 1
}

func decode(t *model.Tensor) ([]float64, error) {
	if t == nil {
		return nil, nil
	}
	x, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out, nil
}

func decodeMatrix(t *model.Tensor) (matrix, error) {
	if t == nil {
		return matrix{}, nil
	}
	w, err := decode(t)
	return matrix{n: int(t.Shape[1]), k: int(t.Shape[0]), w: w}, err
}

// New decodes m's weights.
func New(m *model.Model) (*Model, error) {
	cfg := m.Config
	if err := m.Weights.Check(cfg); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	r := &Model{cfg: cfg, GELU: GELUTanh}
	w := &m.Weights
	var err error
	mat := func(dst *matrix, t *model.Tensor) {
		if err == nil {
			*dst, err = decodeMatrix(t)
		}
	}
	vec := func(dst *[]float64, t *model.Tensor) {
		if err == nil {
			*dst, err = decode(t)
		}
	}
	mat(&r.tok, w.TokEmbd)
	mat(&r.pos, w.PosEmbd)
	vec(&r.outNorm, w.OutputNorm)
	vec(&r.outNB, w.OutputNormB)
	vec(&r.ropeFreqs, w.RopeFreqs)
	if w.Output != nil {
		mat(&r.out, w.Output)
	} else {
		r.out = r.tok
	}
	e := cfg.NEmbd
	qDim, kvDim := cfg.NHead*cfg.HeadDim(), cfg.NHeadKV*cfg.HeadDim()
	r.layers = make([]layer, cfg.NLayer)
	for l := range r.layers {
		lt := &w.Layers[l]
		ly := &r.layers[l]
		vec(&ly.attnNorm, lt[model.AttnNorm])
		vec(&ly.attnNormB, lt[model.AttnNormB])
		if lt[model.WQKV] != nil {
			// Fused rows: q, then k, then v.
			var qkv matrix
			var bqkv []float64
			mat(&qkv, lt[model.WQKV])
			vec(&bqkv, lt[model.BQKV])
			if err != nil {
				break
			}
			split := func(lo, hi int) matrix { return matrix{n: hi - lo, k: e, w: qkv.w[lo*e : hi*e]} }
			ly.wq, ly.wk, ly.wv = split(0, qDim), split(qDim, qDim+kvDim), split(qDim+kvDim, qDim+2*kvDim)
			if bqkv != nil {
				ly.bq, ly.bk, ly.bv = bqkv[:qDim], bqkv[qDim:qDim+kvDim], bqkv[qDim+kvDim:]
			}
		} else {
			mat(&ly.wq, lt[model.WQ])
			mat(&ly.wk, lt[model.WK])
			mat(&ly.wv, lt[model.WV])
			vec(&ly.bq, lt[model.BQ])
			vec(&ly.bk, lt[model.BK])
			vec(&ly.bv, lt[model.BV])
		}
		vec(&ly.qNorm, lt[model.AttnQNorm])
		vec(&ly.kNorm, lt[model.AttnKNorm])
		mat(&ly.wo, lt[model.WO])
		vec(&ly.bo, lt[model.BO])
		vec(&ly.ffnNorm, lt[model.FFNNorm])
		vec(&ly.ffnNormB, lt[model.FFNNormB])
		mat(&ly.gate, lt[model.FFNGate])
		mat(&ly.up, lt[model.FFNUp])
		vec(&ly.upB, lt[model.FFNUpB])
		mat(&ly.down, lt[model.FFNDown])
		vec(&ly.downB, lt[model.FFNDownB])
	}
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	return r, nil
}

func (r *Model) norm(x, w, b []float64) []float64 {
	n := float64(len(x))
	y := make([]float64, len(x))
	eps := float64(r.cfg.NormEps)
	if r.cfg.Arch == model.ArchGPT2 {
		var mean, variance float64
		for _, v := range x {
			mean += v
		}
		mean /= n
		for _, v := range x {
			variance += (v - mean) * (v - mean)
		}
		variance /= n
		s := 1 / math.Sqrt(variance+eps)
		for i, v := range x {
			y[i] = (v-mean)*s*w[i] + b[i]
		}
		return y
	}
	var ms float64
	for _, v := range x {
		ms += v * v
	}
	s := 1 / math.Sqrt(ms/n+eps)
	for i, v := range x {
		y[i] = v * s * w[i]
	}
	return y
}

// headNorm RMS-normalizes each head of x (heads of head_dim) in place
// with w, qwen3's q_norm or k_norm; nil w: nothing.
func (r *Model) headNorm(x, w []float64) {
	if w == nil {
		return
	}
	d := r.cfg.HeadDim()
	for h := 0; h < len(x)/d; h++ {
		v := x[h*d : (h+1)*d]
		var ms float64
		for _, xv := range v {
			ms += xv * xv
		}
		s := 1 / math.Sqrt(ms/float64(d)+float64(r.cfg.NormEps))
		for i := range v {
			v[i] *= s * w[i]
		}
	}
}

// rope rotates each head of x (n heads of d) for position pos: pair i by
// pos·base^(-2i/d)/ropeFreqs[i], as llama.cpp's ggml_rope_ext applies its
// freq_factors.
func (r *Model) rope(x []float64, pos int) {
	d := r.cfg.HeadDim()
	for h := 0; h < len(x)/d; h++ {
		v := x[h*d : (h+1)*d]
		for i := 0; i < d/2; i++ {
			theta := float64(pos) * math.Pow(float64(r.cfg.RopeFreqBase), -2*float64(i)/float64(d))
			if r.ropeFreqs != nil {
				theta /= r.ropeFreqs[i]
			}
			c, s := math.Cos(theta), math.Sin(theta)
			a, b := 2*i, 2*i+1 // NORM: consecutive pairs
			if r.cfg.RopeType == model.RopeNeox {
				a, b = i, i+d/2
			}
			x0, x1 := v[a], v[b]
			v[a] = x0*c - x1*s
			v[b] = x0*s + x1*c
		}
	}
}

func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

// GELUTanh is the tanh approximation of GELU that GPT-2 uses.
func GELUTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

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
	Activations bool // inputs of the layers' GEMMs: normed states, attention output, MLP activation
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
	e, d := cfg.NEmbd, cfg.HeadDim()
	group := cfg.NHead / cfg.NHeadKV
	xs := make([][]float64, len(tokens))
	for i, id := range tokens {
		if id < 0 || int(id) >= cfg.NVocab {
			return nil, fmt.Errorf("reference: token %d at %d outside the vocabulary", id, i)
		}
		x := append([]float64(nil), r.tok.w[int(id)*e:(int(id)+1)*e]...)
		if r.pos.w != nil {
			for j := range x {
				x[j] += r.pos.w[i*e+j]
			}
		}
		xs[i] = x
	}
	for _, ly := range r.layers {
		ks := make([][]float64, len(tokens))
		vs := make([][]float64, len(tokens))
		qs := make([][]float64, len(tokens))
		for i, x := range xs {
			h := roundBF16(rd.Activations, r.norm(x, ly.attnNorm, ly.attnNormB))
			qs[i], ks[i], vs[i] = ly.wq.apply(h, ly.bq), ly.wk.apply(h, ly.bk), ly.wv.apply(h, ly.bv)
			r.headNorm(qs[i], ly.qNorm)
			r.headNorm(ks[i], ly.kNorm)
			if cfg.RopeType != model.RopeNone {
				r.rope(qs[i], i)
				r.rope(ks[i], i)
			}
			roundBF16(rd.KV, qs[i])
			roundBF16(rd.KV, ks[i])
			roundBF16(rd.KV, vs[i])
		}
		scale := 1 / math.Sqrt(float64(d))
		for i, x := range xs {
			attn := make([]float64, cfg.NHead*d)
			for h := 0; h < cfg.NHead; h++ {
				kh := h / group
				q := qs[i][h*d : (h+1)*d]
				scores := make([]float64, i+1)
				maxS := math.Inf(-1)
				for j := 0; j <= i; j++ {
					var s float64
					for c := 0; c < d; c++ {
						s += q[c] * ks[j][kh*d+c]
					}
					scores[j] = s * scale
					maxS = math.Max(maxS, scores[j])
				}
				var sum float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - maxS)
					sum += scores[j]
				}
				out := attn[h*d : (h+1)*d]
				for j, p := range scores {
					for c := 0; c < d; c++ {
						out[c] += p / sum * vs[j][kh*d+c]
					}
				}
			}
			o := ly.wo.apply(roundBF16(rd.Activations, attn), ly.bo)
			for j := range x {
				x[j] += o[j]
			}
			h := roundBF16(rd.Activations, r.norm(x, ly.ffnNorm, ly.ffnNormB))
			var act []float64
			if ly.gate.w != nil {
				g, u := ly.gate.apply(h, nil), ly.up.apply(h, ly.upB)
				act = make([]float64, len(g))
				for j := range g {
					act[j] = silu(g[j]) * u[j]
				}
			} else {
				act = ly.up.apply(h, ly.upB)
				for j := range act {
					act[j] = r.GELU(act[j])
				}
			}
			down := ly.down.apply(roundBF16(rd.Activations, act), ly.downB)
			for j := range x {
				x[j] += down[j]
			}
		}
	}
	out := make([][]float64, len(tokens))
	for i, x := range xs {
		logits := r.out.apply(roundBF16(rd.LMHeadInput, r.norm(x, r.outNorm, r.outNB)), nil)
		out[i] = LogSoftmax(logits)
	}
	return out, nil
}

// LogSoftmax returns log(softmax(x)), max-subtracted.
func LogSoftmax(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(v - m)
	}
	ls := math.Log(sum)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v - m - ls
	}
	return out
}

// Argmax returns the index of the largest value (the first on ties).
func Argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
