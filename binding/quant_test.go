//go:build cgo

package binding

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lmscore/lmscore/internal/reference"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// TestQuantizedAgainstReference: the CPU core's fused dequantizing GEMM
// against the float64 reference (which decodes the weights with model's Go
// dequantizers) for every quantized type, every architecture (gpt2's fused
// QKV and tied embedding read back from a quantized output matrix, llama
// with an untied quantized embedding), sequence lengths 17 and 37 and
// block size 16.
func TestQuantizedAgainstReference(t *testing.T) {
	for _, arch := range testmodel.Arches {
		base := testmodel.Must(testmodel.Options{Arch: arch, Seed: 40 + uint64(arch), NLayer: 1, NEmbd: 256, NHead: 4, NFF: 512,
			NVocab: 300, NCtx: 128})
		for _, typ := range model.QuantTypes {
			t.Run(fmt.Sprintf("%s/%s", arch, typ), func(t *testing.T) {
				w, err := base.Weights.QuantizeWeights(uint64(typ), func(string, [2]int64) model.TensorType { return typ })
				if err != nil {
					t.Fatal(err)
				}
				m := &model.Model{Config: base.Config, Weights: *w}
				ref, err := reference.New(m)
				if err != nil {
					t.Fatal(err)
				}
				e := openEngine(t, m, 2, 16, blocksFor(37, 16)+3, 64, 64)
				rng := rand.New(rand.NewPCG(uint64(arch), uint64(typ)))
				for _, n := range []int{17, 37} {
					tokens := randomTokens(rng, n, m.Config.NVocab)
					want, err := ref.LogProbs(tokens)
					if err != nil {
						t.Fatal(err)
					}
					checkAgainstReference(t, e, want, tokens, refTargets(rng, want, m.Config.NVocab), 16, rng)
				}
			})
		}
	}
}
