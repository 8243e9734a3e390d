package lmscore

import (
	"math"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/binding"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// cudaLib returns the CUDA library or skips: CI and machines without a GPU
// have none (make test-cuda on the GPU machine sets LMSCORE_CUDA_LIB).
func cudaLib(t *testing.T) string {
	t.Helper()
	path, err := binding.FindCUDALib("")
	if err != nil {
		t.Skipf("no CUDA library (%v): this test runs on the GPU machine through make test-cuda", err)
	}
	return path
}

// mcGroups splits results into groups of choices as randomRequests made
// them: consecutive requests with the same context.
func mcGroups(reqs []Request) [][]int {
	var groups [][]int
	for i := range reqs {
		if i == 0 || !slices.Equal(reqs[i].ContextTokens, reqs[i-1].ContextTokens) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], i)
	}
	return groups
}

type deltas struct{ max, mean float64 }

func compare(want, got []Result) deltas {
	var d deltas
	n := 0
	for i := range want {
		for j := range want[i].TokenLogProbs {
			x := math.Abs(float64(want[i].TokenLogProbs[j]) - float64(got[i].TokenLogProbs[j]))
			d.max = math.Max(d.max, x)
			d.mean += x
			n++
		}
	}
	d.mean /= float64(max(n, 1))
	return d
}

// predictionsAgree checks the argmax choice of every group whose reference
// margin between the two best choices exceeds minMargin.
func predictionsAgree(t *testing.T, groups [][]int, want, got []Result, minMargin float64, what string) {
	t.Helper()
	checked := 0
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		best, second, bestGot := -1, -1, -1
		for _, i := range g {
			if best < 0 || want[i].LogProb > want[best].LogProb {
				best, second = i, best
			} else if second < 0 || want[i].LogProb > want[second].LogProb {
				second = i
			}
			if bestGot < 0 || got[i].LogProb > got[bestGot].LogProb {
				bestGot = i
			}
		}
		if want[best].LogProb-want[second].LogProb > minMargin {
			checked++
			assert.Equal(t, best, bestGot, "%s: group of %v", what, g)
		}
	}
	t.Logf("%s: %d of %d groups had a margin over %.2f and were compared", what, checked, len(groups), minMargin)
}

func TestCUDAAgainstCPU(t *testing.T) {
	lib := cudaLib(t)
	type named struct {
		name    string
		weights *model.Model
		vocab   int
	}
	var models []named
	for _, arch := range []model.Arch{model.ArchLlama, model.ArchQwen2, model.ArchGPT2, model.ArchQwen3} {
		models = append(models, named{arch.String(), testmodel.Must(testmodel.Options{Arch: arch, Seed: 21,
			NLayer: 2, NEmbd: 128, NHead: 4, NVocab: 300, NCtx: 256}), 300})
	}
	// Llama 3.1's RoPE scaling (rope_freqs.weight) with a tied output as
	// Llama 3.2: head_dim 32 has pairs in all three bands at an original
	// context of 32, which the 200-token requests go far past.
	llama31 := testmodel.Must(testmodel.Options{Seed: 31, NLayer: 2, NEmbd: 128, NHead: 4, NVocab: 300, NCtx: 256, TiedOutput: true})
	rf, err := model.Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 32}.RopeFreqsTensor(llama31.Config)
	require.NoError(t, err)
	llama31.Weights.RopeFreqs = rf
	models = append(models, named{"llama31", llama31, 300})
	// The three kinds of mixture of experts (moe_test.go's), at this test's
	// sizes: Mixtral (renormalized top 2 of 4), Qwen2-MoE (raw top 2 and the
	// gated shared expert), Qwen3-MoE (q/k head norms, top 3 of 6).
	moeOpts := testmodel.Options{Seed: 23, NLayer: 2, NEmbd: 128, NHead: 4, NVocab: 300, NCtx: 256}
	for _, m := range []struct {
		name string
		arch model.Arch
		ex   testmodel.Experts
	}{
		{"mixtral", model.ArchLlama, testmodel.Experts{N: 4, Used: 2, NFFExp: 72, Norm: true}},
		{"qwen2moe", model.ArchQwen2MoE, testmodel.Experts{N: 4, Used: 2, NFFExp: 40, Shared: 88}},
		{"qwen3moe", model.ArchQwen3MoE, testmodel.Experts{N: 6, Used: 3, NFFExp: 56, Norm: true}},
	} {
		models = append(models, named{m.name, testmodel.MustMoE(m.arch, moeOpts, m.ex), 300})
	}
	if path := os.Getenv("LMSCORE_STORIES_GGUF"); path != "" {
		w, err := model.Load(path)
		require.NoError(t, err)
		defer w.Close()
		models = append(models, named{"stories260K", w, 512})
	}
	for _, nm := range models {
		t.Run(nm.name, func(t *testing.T) {
			cpu := openTest(t, nm.weights, Options{Threads: 4, NoCache: true})
			type requestSet struct {
				name string
				reqs []Request
			}
			sets := []requestSet{{"random tokens", randomRequests(77, nm.vocab, 200)}}
			if nm.name == "stories260K" {
				sets = append(sets, requestSet{"story text", tokenized(t, cpu, storyRequests())})
			}
			for _, set := range sets {
				reqs := set.reqs
				groups := mcGroups(reqs)
				want := scoreAll(t, cpu, reqs, ScoreOptions{})
				floor := bf16Floor(t, nm.weights, reqs)
				bound := bf16Bound(floor)
				t.Logf("%s, %s: bf16 storage alone costs mean |Δ| %.4f (float64 emulation); bf16 bound %.4f", nm.name, set.name, floor, bound)
				if set.name == "story text" || nm.name == "llama" || nm.name == "qwen2" {
					// A trained model on its own kind of text, and the random
					// llama and qwen2: the bound as written. This also
					// keeps a bug that inflated the emulation from loosening it.
					require.Equal(t, 0.02, bound, "bf16 storage alone leaves room for the issue's bound")
				}
				for _, prec := range []string{"fp32", "bf16"} {
					for _, bs := range []int{1, 16, 64} {
						gpu := openTest(t, nm.weights, Options{Backend: "cuda", CUDALibrary: lib, Precision: prec, BlockSize: bs})
						cached := scoreAll(t, gpu, reqs, ScoreOptions{})
						uncached := scoreAll(t, gpu, reqs, ScoreOptions{NoCache: true})
						dc, du := compare(want, cached), compare(want, uncached)
						cu := compare(uncached, cached)
						t.Logf("%s, %s, %s bs=%d: vs CPU cached max %.2e mean %.2e; uncached max %.2e mean %.2e; cached vs uncached max %.2e",
							nm.name, set.name, prec, bs, dc.max, dc.mean, du.max, du.mean, cu.max)
						if prec == "fp32" {
							assert.LessOrEqual(t, dc.max, 1e-3, "fp32 vs CPU")
							assert.LessOrEqual(t, du.max, 1e-3, "fp32 vs CPU, uncached")
						} else {
							assert.LessOrEqual(t, dc.mean, bound, "bf16 vs CPU, mean (floor %.4f)", floor)
							// Near the emulated cost of bf16 storage either way: well
							// under it would mean the emulation, and so the bound, is off.
							assert.InDelta(t, floor, dc.mean, bf16Slack, "bf16 vs CPU, mean, against the float64 emulation")
							assert.LessOrEqual(t, du.mean, bound, "bf16 vs CPU, mean, uncached (floor %.4f)", floor)
							predictionsAgree(t, groups, want, cached, 0.1, nm.name+" "+set.name+" bf16")
						}
						assert.LessOrEqual(t, cu.max, 1e-3, "cached vs uncached on the GPU")
						predictionsAgree(t, groups, uncached, cached, 0, nm.name+" "+set.name+" "+prec+" cached vs uncached")
					}
				}
			}
		})
	}
}

// tokenized turns text requests into token form with m's tokenizer, so that
// the float64 passes see exactly the tokens the cores score.
func tokenized(t *testing.T, m *Model, reqs []Request) []Request {
	t.Helper()
	out := make([]Request, len(reqs))
	for i, r := range reqs {
		ctx, cont, err := m.TokenizePair(r.Context, r.Continuation)
		require.NoError(t, err)
		out[i] = Request{ContextTokens: ctx, ContinuationTokens: cont}
	}
	return out
}
