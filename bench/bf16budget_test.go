package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

func TestBF16BudgetOrdersTheVariants(t *testing.T) {
	m := testmodel.Must(testmodel.Options{Arch: model.ArchLlama, Seed: 3, NVocab: 128, NCtx: 64})
	vs, err := BF16Budget(m, 6, 1)
	require.NoError(t, err)
	byName := map[string]BF16Variant{}
	for _, v := range vs {
		byName[v.Name] = v
		assert.Greater(t, v.MeanAbsDiff, 1e-5, "%s: bf16 rounding must show", v.Name)
		assert.Less(t, v.MeanAbsDiff, 0.5, v.Name)
		assert.GreaterOrEqual(t, v.MaxAbsDiff, v.MeanAbsDiff, v.Name)
	}
	spec := byName["as specified: weights, GEMM inputs, KV in bf16"]
	// Keeping more in fp32 cannot cost more on average than rounding everything.
	assert.Less(t, byName["weights alone in bf16"].MeanAbsDiff, spec.MeanAbsDiff)
	assert.Less(t, byName["LM head and KV pool in fp32"].MeanAbsDiff, spec.MeanAbsDiff)
}
