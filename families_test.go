package lmscore

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/model"
)

// float32Eps is the fp32 machine epsilon, 2^-23.
const float32Eps = 1.0 / (1 << 23)

// familyTol bounds |Δ log-probability| between the fp32 CPU core and the
// float64 reference, per token: 1024 fp32 epsilons (1.2e-4), the 1e-4 that
// TestAgainstReference (binding/forward_test.go) holds every family to,
// rounded up to a power of two of the dtype's epsilon. The errors measured
// here are two orders of magnitude under it (the test logs them); it
// leaves room for fp32 soft-capping, which rounds c·tanh(s/c) to a few
// epsilons of c rather than of s.
const familyTol = 1024 * float32Eps

// familyCase is a small random model of one family with its features on.
type familyCase struct {
	name string
	cfg  model.Config
	// edit, where set, adjusts the random weights (rope_freqs).
	edit func(t *testing.T, cfg model.Config, w *model.Weights)
}

// baseConfig is a 3-layer model whose widths are not multiples of the
// vector or panel sizes, with a context long enough for sequences well past
// any sliding window here.
func baseConfig(arch model.Arch, rope model.RopeType) model.Config {
	return model.Config{Arch: arch, NVocab: 131, NEmbd: 48, NLayer: 3, NHead: 4, NHeadKV: 2, NFF: 88,
		NCtxTrain: 256, RopeType: rope, RopeFreqBase: 10000, NormEps: 1e-5}
}

func familyCases() []familyCase {
	gemma2 := baseConfig(model.ArchGemma2, model.RopeNeox)
	// Small caps, so that they bend the random model's scores and logits
	// (Gemma 2's own 50 and 30 would barely touch them).
	gemma2.AttnSoftcap, gemma2.FinalSoftcap = 1.5, 4
	gemma2.AttnScale = 1 / float32(math.Sqrt(20)) // query_pre_attn_scalar 20, not head_dim 12
	gemma2.NSWA, gemma2.SWALayers = 5, []bool{true, false, true}

	gemma3 := baseConfig(model.ArchGemma3, model.RopeNeox)
	gemma3.NEmbdHead = 16 // n_head·head_dim 64 ≠ n_embd 48, as Gemma 3's
	gemma3.NSWA, gemma3.SWALayers = 6, []bool{true, true, false}
	gemma3.RopeFreqBase, gemma3.RopeFreqScale = 1e6, 0.125 // the global layers' linear scaling
	gemma3.RopeFreqBaseSWA, gemma3.RopeFreqScaleSWA = 10000, 0.5

	phi3 := baseConfig(model.ArchPhi3, model.RopeNeox)
	phi3.NRot, phi3.RopeAttnFactor = 8, 1.19 // of head_dim 12; LongRoPE's attention factor

	neox := baseConfig(model.ArchGPTNeoX, model.RopeNeox)
	neox.NRot = 4 // rotary_pct 1/3
	neoxSeq := neox
	neoxSeq.SequentialResidual = true

	olmo2 := baseConfig(model.ArchOLMo2, model.RopeNeox)
	olmo2.NormEps = 1e-6

	mistral := baseConfig(model.ArchLlama, model.RopeNorm)
	mistral.NSWA, mistral.RopeFreqScale = 7, 0.5 // every layer slides; linear RoPE scaling

	return []familyCase{
		{"gemma2", gemma2, nil},
		{"gemma3", gemma3, nil},
		{"phi3", phi3, withRopeFreqs},
		{"gptneox", neox, nil},
		{"gptneox-sequential", neoxSeq, nil},
		{"olmo2", olmo2, nil},
		{"mistral", mistral, nil},
	}
}

// withRopeFreqs gives the model LongRoPE-style frequency factors, one per
// rotated pair (n_rot/2 of them), far from 1.
func withRopeFreqs(t *testing.T, cfg model.Config, w *model.Weights) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := make([]float32, cfg.RotDim()/2)
	for i := range f {
		f[i] = float32(1 + 7*rng.Float64())
	}
	var err error
	w.RopeFreqs, err = model.NewTensor(model.NameRopeFreqs, model.TypeF32, [2]int64{int64(len(f)), 1}, f)
	require.NoError(t, err)
}

func (c familyCase) model(t *testing.T, seed uint64) *model.Model {
	t.Helper()
	w, err := model.RandomWeights(c.cfg, seed, model.TypeF32)
	require.NoError(t, err)
	if c.edit != nil {
		c.edit(t, c.cfg, w)
	}
	m := &model.Model{Config: c.cfg, Weights: *w}
	require.NoError(t, m.Weights.Check(m.Config))
	return m
}

// familyRequests draws sequences longer than every window here, sharing
// prefixes, each scored from its second token on (the context is the first
// token), so that every position but 0 of every sequence has a reference.
func familyRequests(rng *rand.Rand, vocab int) []Request {
	toks := func(n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(rng.IntN(vocab))
		}
		return out
	}
	var reqs []Request
	shared := toks(41)
	for _, n := range []int{17, 61, 100} {
		seq := append(append([]int32{}, shared...), toks(n)...)
		reqs = append(reqs, Request{ContextTokens: seq[:1], ContinuationTokens: seq[1:]})
	}
	alone := toks(37)
	return append(reqs, Request{ContextTokens: alone[:1], ContinuationTokens: alone[1:]})
}

// TestFamiliesAgainstReference: the CPU core against the float64
// reference on random models of every dense family with its features on
// (GeGLU, the exact GELU, q/k norms over the whole projection, absent
// pre-norms, post-norms, parallel and sequential residuals, embedding and
// attention scales, both soft-caps, sliding windows on all or some layers
// with their own RoPE, partial rotary, linear RoPE scaling, the attention
// factor, frequency factors, fused gate_up), sequences of 37 to 141 tokens
// past windows of 5 to 7, at block sizes 1, 7 and 16. The cache on and off,
// the block sizes, steps of 29 tokens and a tight KV budget must give
// bitwise the same scores, and the greedy
// flags and top tokens (read on the soft-capped logits) must be the
// reference's wherever its best two are not within the tolerance.
func TestFamiliesAgainstReference(t *testing.T) {
	for ci, c := range familyCases() {
		t.Run(c.name, func(t *testing.T) {
			m := c.model(t, uint64(100+ci))
			ref, err := reference.New(m)
			require.NoError(t, err)
			reqs := familyRequests(rand.New(rand.NewPCG(uint64(ci), 7)), c.cfg.NVocab)
			want := make([][][]float64, len(reqs))
			for i, r := range reqs {
				want[i], err = ref.LogProbs(append(append([]int32{}, r.ContextTokens...), r.ContinuationTokens...))
				require.NoError(t, err)
			}
			const topN = 3
			var base []Result
			// Steps split mid-sequence, tight budgets that evict and
			// recompute: a window must not make a score depend on them.
			for _, o := range []Options{{NoCache: true, BlockSize: 16}, {BlockSize: 16}, {BlockSize: 1}, {BlockSize: 7},
				{BlockSize: 16, MaxBatchTokens: 29}, {BlockSize: 4, KVBlocks: 40}} {
				o.Threads = 2
				got := scoreAll(t, openTest(t, m, o), reqs, ScoreOptions{TopN: topN})
				if base == nil {
					base = got
					checkFamilyResults(t, reqs, want, got, topN)
					continue
				}
				requireBitwise(t, base, got, fmt.Sprintf("%+v against no cache", o))
			}
		})
	}
}

// checkFamilyResults compares every scored token with the reference.
func checkFamilyResults(t *testing.T, reqs []Request, want [][][]float64, got []Result, topN int) {
	t.Helper()
	var worst float64
	n := 0
	for i, r := range reqs {
		greedy := true
		for j, tok := range r.ContinuationTokens {
			row := want[i][len(r.ContextTokens)+j-1]
			lp := float64(got[i].TokenLogProbs[j])
			d := math.Abs(lp - row[tok])
			worst = math.Max(worst, d)
			n++
			if d > familyTol || math.IsNaN(lp) {
				t.Errorf("request %d token %d (%d): logprob %.7f, reference %.7f (|Δ| %.2g > %.2g)", i, j, tok, lp, row[tok], d, familyTol)
			}
			greedy = greedy && row[tok] >= row[reference.Argmax(row)]-familyTol
			// The top tokens, but where two of the reference's are too
			// close for fp32 to order.
			order := topOrder(row, topN+1)
			for k := 0; k < topN; k++ {
				if row[order[k]]-row[order[k+1]] < 2*familyTol {
					break
				}
				if g := got[i].TopLogProbs[j][k]; g.Token != int32(order[k]) {
					t.Errorf("request %d token %d: top %d is token %d, reference %d", i, j, k, g.Token, order[k])
				}
			}
		}
		if got[i].IsGreedy && !greedy {
			t.Errorf("request %d: greedy, but the reference's argmax is more likely by over %.2g somewhere", i, familyTol)
		}
	}
	t.Logf("max |Δ logprob| = %.3g over %d tokens (tolerance %.2g)", worst, n, familyTol)
}

// topOrder returns the indices of the k largest values, larger first.
func topOrder(row []float64, k int) []int {
	var out []int
	used := make([]bool, len(row))
	for len(out) < k {
		best := -1
		for i, v := range row {
			if !used[i] && (best < 0 || v > row[best]) {
				best = i
			}
		}
		used[best] = true
		out = append(out, best)
	}
	return out
}

// TestSlidingWindowReceptiveField: with every layer sliding, a token's
// result can depend on the n_layer·(n_swa-1) positions before it and no
// others, whatever the cache holds. Two sequences that share only their
// last 60 tokens must score those tokens' second half bitwise the same;
// without the window they must not.
func TestSlidingWindowReceptiveField(t *testing.T) {
	c := familyCases()[6] // mistral: every layer slides
	require.Equal(t, "mistral", c.name)
	m := c.model(t, 9)
	rng := rand.New(rand.NewPCG(9, 9))
	reach := c.cfg.NLayer * (c.cfg.NSWA - 1) // how far back a token's result can see
	tail := make([]int32, 60)
	for i := range tail {
		tail[i] = int32(rng.IntN(c.cfg.NVocab))
	}
	seq := func(prefixLen int) Request {
		p := make([]int32, prefixLen)
		for i := range p {
			p[i] = int32(rng.IntN(c.cfg.NVocab))
		}
		s := append(p, tail...)
		return Request{ContextTokens: s[:len(s)-30], ContinuationTokens: s[len(s)-30:]}
	}
	a, b := seq(140), seq(140)
	sm := openTest(t, m, Options{Threads: 2, BlockSize: 16})
	got := scoreAll(t, sm, []Request{a, b}, ScoreOptions{})
	// The last 30 tokens sit 30 or more positions into the shared 60-token
	// tail, past the reach, so the differing prefixes must not show.
	require.Greater(t, 30, reach, "the shared tail must outreach the window through the layers")
	require.Equal(t, got[0].TokenLogProbs, got[1].TokenLogProbs, "tokens beyond the window's reach changed a score")
	// The same without a window does see the prefixes.
	full := c
	full.cfg.NSWA = 0
	got = scoreAll(t, openTest(t, full.model(t, 9), Options{Threads: 2, BlockSize: 16}), []Request{a, b}, ScoreOptions{})
	require.NotEqual(t, got[0].TokenLogProbs, got[1].TokenLogProbs, "without the window the prefix should matter")
}

// TestFamiliesEveryISA runs the families on the scalar and AVX2 kernels too
// (the default picks the widest the CPU has): the sliding-window tiles
// start at whole vectors, which are 1, 8 and 16 keys wide on the three.
func TestFamiliesEveryISA(t *testing.T) {
	for _, isa := range []string{"scalar", "avx2", "avx512"} {
		t.Run(isa, func(t *testing.T) {
			t.Setenv("LMSCORE_CPU_ISA", isa)
			for ci, c := range familyCases() {
				m := c.model(t, uint64(100+ci))
				sm, err := open(m, "test", Options{Threads: 2, BlockSize: 7, KVMemory: 16 << 20})
				if errors.Is(err, ErrUnsupported) {
					t.Skipf("%s: %v", isa, err)
				}
				require.NoError(t, err)
				t.Cleanup(func() { sm.Close() })
				ref, err := reference.New(m)
				require.NoError(t, err)
				reqs := familyRequests(rand.New(rand.NewPCG(uint64(ci), 7)), c.cfg.NVocab)
				want := make([][][]float64, len(reqs))
				for i, r := range reqs {
					want[i], err = ref.LogProbs(append(append([]int32{}, r.ContextTokens...), r.ContinuationTokens...))
					require.NoError(t, err)
				}
				t.Run(c.name, func(t *testing.T) {
					checkFamilyResults(t, reqs, want, scoreAll(t, sm, reqs, ScoreOptions{TopN: 2}), 2)
				})
			}
		})
	}
}
