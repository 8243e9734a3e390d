package lmscore

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// quantTestModel is a llama whose rows are whole K-quant super-blocks
// (n_embd and n_ff multiples of 256), with one KV head of 16 so that the
// fused q/k/v matrix changes type in the middle of a 32-row panel when the
// three parts differ.
func quantTestModel(seed uint64) *model.Model {
	return testmodel.Must(testmodel.Options{Seed: seed, NEmbd: 256, NHead: 16, NHeadKV: 1, NFF: 512, NVocab: 300})
}

// mixQ4KM is a mix in the manner of llama-quantize's Q4_K_M (Q6_K for the
// output and for attn_v and ffn_down of the first layer, Q4_K elsewhere),
// plus a Q5_K attn_k so that one fused matrix holds three types.
func mixQ4KM(name string, _ [2]int64) model.TensorType {
	switch {
	case name == model.NameOutput, name == "blk.0.attn_v.weight", name == "blk.0.ffn_down.weight":
		return model.TypeQ6_K
	case strings.HasSuffix(name, "attn_k.weight"):
		return model.TypeQ5_K
	}
	return model.TypeQ4_K
}

// quantCase is one way of quantizing a model: a type for every matrix.
type quantCase struct {
	name   string
	typeOf func(string, [2]int64) model.TensorType
}

// quantCases are the quantizations the quantized-score tests run: the
// Q4_K_M-like mix, then each quantized type alone.
func quantCases() []quantCase {
	cases := []quantCase{{"Q4_K_M-like mix", mixQ4KM}}
	for _, typ := range model.QuantTypes {
		cases = append(cases, quantCase{typ.String(), func(string, [2]int64) model.TensorType { return typ }})
	}
	return cases
}

// requireScoresClose: per request, |Δ logprob| <= 1e-3 + 1e-5·|logprob|,
// the bound for a quantized model against its dequantized F32 copy.
func requireScoresClose(t *testing.T, want, got []Result, what string) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		bound := 1e-3 + 1e-5*math.Abs(want[i].LogProb)
		require.LessOrEqual(t, math.Abs(got[i].LogProb-want[i].LogProb), bound, "%s: request %d", what, i)
	}
}

// TestQuantizedScoresEqualDequantizedF32: for every quantized type, and a
// Q4_K_M-like mix, the CPU core's scores of the quantized weights equal
// those of the same weights dequantized to F32: within the bound,
// and in fact bit for bit, since the GEMM multiplies the same fp32 values
// in the same order. The prefix cache changes nothing either.
func TestQuantizedScoresEqualDequantizedF32(t *testing.T) {
	base := quantTestModel(5)
	reqs := randomRequests(17, base.Config.NVocab, 24)
	for _, c := range quantCases() {
		t.Run(c.name, func(t *testing.T) {
			qw, err := base.Weights.QuantizeWeights(9, c.typeOf)
			require.NoError(t, err)
			fw, err := qw.Convert(model.TypeF32)
			require.NoError(t, err)
			q := openTest(t, &model.Model{Config: base.Config, Weights: *qw}, Options{Threads: 2})
			f := openTest(t, &model.Model{Config: base.Config, Weights: *fw}, Options{Threads: 2})
			want := scoreAll(t, f, reqs, ScoreOptions{})
			got := scoreAll(t, q, reqs, ScoreOptions{})
			requireScoresClose(t, want, got, c.name)
			requireBitwise(t, want, got, c.name+" vs dequantized F32")
			requireBitwise(t, got, scoreAll(t, q, reqs, ScoreOptions{NoCache: true}), c.name+" cache off")
		})
	}
}

// TestQuantizedGGUFFile: a Q4_K_M-like file written and opened as a GGUF
// scores as its dequantized F32 file does.
func TestQuantizedGGUFFile(t *testing.T) {
	base := quantTestModel(6)
	qw, err := base.Weights.QuantizeWeights(3, mixQ4KM)
	require.NoError(t, err)
	fw, err := qw.Convert(model.TypeF32)
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name string, w *model.Weights) string {
		gw, err := model.NewGGUFWriter(base.Config, w)
		require.NoError(t, err)
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		require.NoError(t, err)
		_, err = gw.WriteTo(f)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		return path
	}
	open := func(path string) *Model {
		m, err := Open(path, Options{Threads: 2, KVMemory: 16 << 20})
		require.NoError(t, err)
		t.Cleanup(func() { m.Close() })
		return m
	}
	q, f := open(write("q.gguf", qw)), open(write("f.gguf", fw))
	reqs := randomRequests(4, base.Config.NVocab, 16)
	want, got := scoreAll(t, f, reqs, ScoreOptions{}), scoreAll(t, q, reqs, ScoreOptions{})
	requireScoresClose(t, want, got, "Q4_K_M-like file")
	requireBitwise(t, want, got, "Q4_K_M-like file")
}
