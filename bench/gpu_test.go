package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
	"github.com/lmscore/lmscore/workload"
)

// bruteMeta counts what MetaOf counts with sets of prefixes: no trie.
func bruteMeta(lines []workload.Line, maxLen int) (total, unique, outputs, attnKeys int64) {
	prefixes := map[string]bool{}
	outs := map[string]bool{}
	for _, l := range lines {
		whole := append(append([]int32{}, l.ContextTokens...), l.ContinuationTokens...)
		if maxLen > 0 && len(whole) > maxLen+1 {
			whole = whole[len(whole)-(maxLen+1):]
		}
		in := whole[:len(whole)-1]
		total += int64(len(in))
		for n := 1; n <= len(in); n++ {
			k := fmt.Sprint(in[:n])
			if !prefixes[k] {
				prefixes[k] = true
				unique++
				attnKeys += int64(n)
			}
		}
		first := len(in) - len(l.ContinuationTokens) + 1
		for p := first; p <= len(in); p++ {
			outs[fmt.Sprint(in[:p], whole[p])] = true
		}
	}
	return total, unique, int64(len(outs)), attnKeys
}

func TestMetaOfMatchesPrefixSetsAndThePlanner(t *testing.T) {
	suite, err := GPUSuite("tiny", 300)
	require.NoError(t, err)
	for _, w := range suite {
		lines, err := workload.Generate(w.Generator, w.Options)
		require.NoError(t, err)
		for _, maxLen := range []int{0, 700} { // 700 truncates metaicl16 and sysprompt
			meta, err := MetaOf("m", w.Name, lines, maxLen)
			require.NoError(t, err)
			total, unique, outputs, keys := bruteMeta(lines, maxLen)
			assert.Equal(t, total, meta.TotalTokens, "%s %d total", w.Name, maxLen)
			assert.Equal(t, unique, meta.UniqueTokens, "%s %d unique", w.Name, maxLen)
			assert.Equal(t, outputs, meta.Outputs, "%s %d outputs", w.Name, maxLen)
			assert.Equal(t, keys, meta.AttnKeys, "%s %d attention keys", w.Name, maxLen)

			sreqs := make([]scheduler.Request, len(lines))
			for i, l := range lines {
				sreqs[i] = scheduler.Request{Context: l.ContextTokens, Continuation: l.ContinuationTokens}
			}
			p, err := scheduler.NewPlanner(nil, sreqs, scheduler.Options{BlockSize: 16, MaxBatchTokens: 2048, MaxLen: maxLen})
			require.NoError(t, err)
			st := p.Stats()
			p.Close()
			assert.Equal(t, st.TotalTokens, meta.TotalTokens, w.Name)
			assert.Equal(t, st.UniqueTokens, meta.UniqueTokens, w.Name)
			assert.Equal(t, st.Outputs, meta.Outputs, w.Name)
			assert.Equal(t, st.TruncatedRequests, meta.Truncated, w.Name)
		}
	}
}

func TestMetaOfRejectsWhatDoesNotFit(t *testing.T) {
	_, err := MetaOf("m", "w", []workload.Line{{ID: "x", ContextTokens: []int32{1}, ContinuationTokens: []int32{2, 3, 4}}}, 2)
	assert.ErrorContains(t, err, "line 1 (x): continuation does not fit the window of 2")
	_, err = MetaOf("m", "w", []workload.Line{{ID: "y", ContextTokens: []int32{1}}}, 0)
	assert.ErrorContains(t, err, "line 1 (y): empty")
}

func TestShapeAndFloor(t *testing.T) {
	for _, arch := range []model.Arch{model.ArchLlama, model.ArchGPT2} {
		m, err := testmodel.New(testmodel.Options{Arch: arch, NLayer: 3, NEmbd: 32, NHead: 4, NVocab: 100, NCtx: 64, TiedOutput: true})
		require.NoError(t, err)
		s := ShapeOf("m", m)
		c := m.Config
		kv := int64(c.NHeadKV * c.HeadDim())
		var perLayer int64
		if arch == model.ArchLlama {
			// q, k, v, o, gate, up, down and two norms.
			perLayer = int64(c.NEmbd*c.NEmbd)*2 + 2*int64(c.NEmbd)*kv + 3*int64(c.NEmbd*c.NFF) + 2*int64(c.NEmbd)
		} else {
			// qkv + bias, o + bias, up + bias, down + bias, two LayerNorms with biases.
			perLayer = int64(c.NEmbd*3*c.NEmbd+3*c.NEmbd) + int64(c.NEmbd*c.NEmbd+c.NEmbd) +
				int64(c.NEmbd*c.NFF+c.NFF) + int64(c.NFF*c.NEmbd+c.NEmbd) + 4*int64(c.NEmbd)
		}
		finalNorm := int64(c.NEmbd)
		if arch == model.ArchGPT2 {
			finalNorm *= 2
		}
		assert.Equal(t, int64(c.NLayer)*perLayer+finalNorm, s.BodyParams, arch.String())
		embd := int64(c.NVocab * c.NEmbd)
		if arch == model.ArchGPT2 {
			embd += int64(c.NCtxTrain * c.NEmbd)
		}
		assert.Equal(t, s.BodyParams+embd, s.TotalParams, arch.String())
		m.Close()
	}

	// The figure: 25.5k unique tokens of the Llama-3.2-1B shape
	// (973 M parameters in the layers) at 793 TFLOP/s are 0.062 s.
	llama := ModelShape{NLayer: 16, NEmbd: 2048, NHead: 32, HeadDim: 64, NVocab: 128256, BodyParams: 973_146_112}
	floor := FloorFLOPs(llama, WorkloadMeta{}, 25_500) / 793e12
	assert.InDelta(t, 0.0626, floor, 0.0005)
	withHead := FloorFLOPs(llama, WorkloadMeta{Outputs: 10, AttnKeys: 1000}, 25_500)
	assert.Equal(t, FloorFLOPs(llama, WorkloadMeta{}, 25_500)+2*2048*128256*10+4*16*2048*1000, withHead)
}

func TestTimingRepeatsShortRunsOnly(t *testing.T) {
	tm := Timing{}.withDefaults()
	assert.True(t, tm.more(nil))
	assert.True(t, tm.more([]float64{0.1}))
	assert.True(t, tm.more([]float64{0.1, 0.2}))
	assert.False(t, tm.more([]float64{0.1, 0.2, 0.3}))
	assert.False(t, tm.more([]float64{3.5}), "a run of 3.5 s counts alone")
	tm.Deadline = time.Now().Add(time.Second)
	assert.False(t, tm.more([]float64{2}), "a repeat that would end past the deadline does not start")
	assert.True(t, tm.more([]float64{0.01}))
}

func TestLMScoreBenchOnCPU(t *testing.T) {
	w, err := testmodel.New(testmodel.Options{Seed: 3, NVocab: 300, NCtx: 2400})
	require.NoError(t, err)
	m, err := lmscore.OpenModel(w, "tiny", lmscore.Options{Threads: 2, KVMemory: 64 << 20})
	require.NoError(t, err)
	defer m.Close()
	suite, err := GPUSuite("tiny", 300)
	require.NoError(t, err)
	lines, err := workload.Generate(suite[0].Generator, suite[0].Options)
	require.NoError(t, err)
	calls := 0
	b := LMScoreBench{Model: m, ModelName: "tiny", Timing: Timing{Repeats: 3, Short: time.Hour},
		GPUMemory: func() (int64, string, error) { calls++; return 42, "fake", nil }}
	rows, err := b.Run(context.Background(), "metaicl16", lines)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	meta, err := MetaOf("tiny", "metaicl16", lines, 2400)
	require.NoError(t, err)
	for _, r := range rows {
		assert.True(t, r.OK(), r.Peer)
		assert.Len(t, r.RunsSeconds, 3, "short runs repeat to 3")
		assert.Equal(t, meta.TotalTokens, r.TotalTokens)
		assert.Len(t, r.TokenLogProbs, len(lines))
		assert.Equal(t, int64(42), r.PeakGPUBytes)
		for i, l := range lines {
			assert.Len(t, r.TokenLogProbs[i], len(l.ContinuationTokens))
		}
	}
	assert.Equal(t, PeerLMScore, rows[0].Peer)
	assert.Equal(t, meta.UniqueTokens, rows[0].ComputedTokens, "a cold cache computes every unique token once")
	assert.Equal(t, meta.TotalTokens, rows[1].ComputedTokens)
	assert.Equal(t, true, rows[0].Extra["bitwise_equal_to_nocache"], "on the CPU cache on and off agree bit for bit")
	assert.Equal(t, 2, calls)

	b.Timing.Deadline = time.Now().Add(-time.Second)
	rows, err = b.Run(context.Background(), "metaicl16", lines)
	require.NoError(t, err)
	assert.Contains(t, rows[0].Skipped, "time budget")
	assert.False(t, rows[1].OK())
}

func TestProcessGPUMemory(t *testing.T) {
	smi := func(list, used string) NvidiaSMI {
		return func(args ...string) (string, error) {
			if strings.HasPrefix(args[0], "--query-compute-apps") {
				return list, nil
			}
			return used, nil
		}
	}
	n, how, err := ProcessGPUMemory(smi("11, 100\n42, 2048\n", "9999\n"), 42, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(2048)<<20, n)
	assert.Contains(t, how, "this process")
	n, how, err = ProcessGPUMemory(smi("", "3000\n"), 42, 1000<<20)
	require.NoError(t, err)
	assert.Equal(t, int64(2000)<<20, n, "no process list: the card's use less the baseline")
	assert.Contains(t, how, "minus")
	_, _, err = ProcessGPUMemory(smi("", "N/A\n"), 42, 0)
	assert.ErrorContains(t, err, "unexpected output")
	_, err = CardUsedMemory(func(...string) (string, error) { return "", errors.New("no nvidia-smi") })
	assert.Error(t, err)
}

func grouped(group string, choice int, n int) workload.Line {
	cont := make([]int32, n)
	label := 0
	return workload.Line{ID: fmt.Sprint(group, choice), ContextTokens: []int32{1}, ContinuationTokens: cont, Group: group,
		Choice: &choice, Label: &label}
}

func TestReportComparesWithLMScore(t *testing.T) {
	lines := []workload.Line{grouped("q0", 0, 1), grouped("q0", 1, 2), grouped("q1", 0, 1), grouped("q1", 1, 1)}
	base := [][]float64{{-1}, {-2, -0.5}, {-3}, {-1}}     // picks: q0 -> 0 (-1 > -2.5), q1 -> 1
	peer := [][]float64{{-1.1}, {-2, -0.1}, {-3}, {-1.2}} // picks: q0 -> 1 (-2.1 > -1.1? no: -1.1 > -2.1) -> 0; q1 -> 1
	in := ReportInput{
		Card: "Card", Date: "2026-01-02", GEMM: GEMMRate{TFLOPS: 1e-3, Runs: []float64{1e-3}, Shape: "s"},
		Models: []ModelShape{{Name: "m", Arch: "llama", NLayer: 1, NEmbd: 4, NHead: 1, HeadDim: 4, NVocab: 10, BodyParams: 100, TotalParams: 140}},
		Meta:   []WorkloadMeta{{Model: "m", Workload: "w", Requests: 4, Groups: 2, TotalTokens: 100, UniqueTokens: 10, Outputs: 5, AttnKeys: 20}},
		Runs: []PeerRun{
			{Model: "m", Workload: "w", Peer: PeerLMScore, RunsSeconds: []float64{0.3, 0.1, 0.2}, TotalTokens: 100, ComputedTokens: 11, TokenLogProbs: base},
			{Model: "m", Workload: "w", Peer: PeerHFNoCache, RunsSeconds: []float64{4}, TotalTokens: 100, ComputedTokens: 120, TokenLogProbs: peer,
				PeakGPUBytes: 3 << 30, PeakGPUHow: "torch"},
			{Model: "m", Workload: "w", Peer: PeerHFCatwalk, Error: "CUDA out of memory"},
			{Model: "m", Workload: "w", Peer: PeerLlamaCpp, Skipped: "no time"},
		},
		Lines:    map[string][]workload.Line{"m/w": lines},
		Comments: []string{"a note"},
	}
	rep, err := BuildReport(in)
	require.NoError(t, err)
	require.Len(t, rep.Rows, 4)
	lm, hf, cw, lc := rep.Rows[0], rep.Rows[1], rep.Rows[2], rep.Rows[3]
	assert.Equal(t, PeerLMScore, lm.Peer)
	assert.InDelta(t, 0.2, lm.WallSeconds, 1e-12, "the median")
	assert.InDelta(t, 500, lm.TokensPerSecond, 1e-9)
	floor := FloorFLOPs(in.Models[0], in.Meta[0], 11) / 1e9
	assert.InDelta(t, floor, lm.FloorSeconds, 1e-12, "the floor uses lmscore's computed tokens")
	assert.InDelta(t, 0.2/floor, lm.WallOverFloor, 1e-9)

	assert.InDelta(t, 20, hf.LMScoreSpeedup, 1e-9)
	assert.InDelta(t, 0.4, hf.MaxAbsDiff, 1e-12)
	assert.InDelta(t, (0.1+0+0.4+0+0.2)/5, hf.MeanAbsDiff, 1e-12)
	assert.Equal(t, 5, hf.ComparedTokens)
	assert.Equal(t, "questions", hf.AgreementOf)
	assert.InDelta(t, 1.0, hf.Agreement, 1e-12)
	assert.Equal(t, "error: CUDA out of memory", cw.Status)
	assert.Equal(t, "not run: no time", lc.Status)

	// One question's pick flips: agreement halves.
	in.Runs[1].TokenLogProbs = [][]float64{{-5}, {-2, -0.5}, {-3}, {-1}}
	rep, err = BuildReport(in)
	require.NoError(t, err)
	assert.InDelta(t, 0.5, rep.Rows[1].Agreement, 1e-12)
	assert.True(t, math.Abs(rep.Rows[1].MaxAbsDiff-4) < 1e-12)

	var md strings.Builder
	require.NoError(t, rep.WriteMarkdown(&md))
	out := md.String()
	for _, want := range []string{"# lmscore against its peers: Card, 2026-01-02", "GEMM rate measured in the same run: 0.001 TFLOP/s (s, median of 1)",
		"| w | (d) lmscore | 0.200 (3) | 100 | 10 | 11 |",
		"| w | (a) HF, no cache (lm-eval-harness) | 4.000 (1) |", "| 20x |", "3.00 GiB", "50.0%",
		"error: CUDA out of memory", "not run: no time", "- a note", "peak GPU memory of hf-nocache: torch"} {
		assert.Contains(t, out, want)
	}

	// Scores of another length are not compared, and the row says why.
	in.Runs[1].TokenLogProbs = base[:2]
	rep, err = BuildReport(in)
	require.NoError(t, err)
	assert.Zero(t, rep.Rows[1].ComparedTokens)
	assert.Contains(t, rep.Rows[1].Note, "not compared")
}

func TestReportNeedsTheModelShape(t *testing.T) {
	_, err := BuildReport(ReportInput{Meta: []WorkloadMeta{{Model: "x", Workload: "w"}}})
	assert.ErrorContains(t, err, `names model "x"`)
}

func TestGPUSuiteSizes(t *testing.T) {
	_, err := GPUSuite("huge", 1000)
	assert.ErrorContains(t, err, `unknown size "huge"`)
	suite, err := GPUSuite("default", 128256)
	require.NoError(t, err)
	lines, err := workload.Generate(suite[0].Generator, suite[0].Options)
	require.NoError(t, err)
	meta, err := MetaOf("llama", "metaicl16", lines, 131072)
	require.NoError(t, err)
	// The first measurement: 4 tasks x 100 questions x 2-3 choices
	// (731k total and 25.5k unique tokens there; this seed draws fewer
	// 3-choice tasks, hence fewer total tokens).
	assert.Equal(t, 400, meta.Groups)
	assert.Equal(t, len(lines), meta.Requests)
	assert.True(t, meta.Requests >= 800 && meta.Requests <= 1200, "%d requests", meta.Requests)
	assert.InDelta(t, 700_000, float64(meta.TotalTokens), 150_000)
	assert.InDelta(t, 25_500, float64(meta.UniqueTokens), 3_000)
}

// The report's sizes stay readable at both ends: an 8B model on a card and
// the CPU check's 2-layer models, whose weights and KV are a few MiB.
func TestReportUnits(t *testing.T) {
	assert.Equal(t, "14.96 GiB", fmtBytes(16_060_522_496))
	assert.Equal(t, "0.13 GiB", fmtBytes(130<<20))
	assert.Equal(t, "2.5 MiB", fmtBytes(5<<19))
	assert.Equal(t, "-2.5 MiB", fmtGiBSigned(-(5 << 19)))
	assert.Equal(t, "", fmtGiB(0), "not measured")
	assert.Equal(t, "8.03 B", fmtParams(8_030_261_248))
	assert.Equal(t, "66.85 M", fmtParams(66_848_000))
	assert.Equal(t, "791", fmtTFLOPS(791.4))
	assert.Equal(t, "0.0924", fmtTFLOPS(0.09243))
}

// The GEMM rate's line names the spread of its runs, from which a reader
// sees how far every floor ratio could move: one run names none.
func TestReportNamesTheGEMMRunSpread(t *testing.T) {
	assert.Equal(t, "", runSpread([]float64{730}))
	assert.Equal(t, ", runs from 700 to 782; each floor ratio scales with this rate", runSpread([]float64{782, 700, 730, 741}))
	rep := &Report{Card: "Card", Date: "d", GEMM: GEMMRate{TFLOPS: 730, Runs: []float64{782, 700, 730}, Shape: "bf16 8192^3"}}
	var md strings.Builder
	require.NoError(t, rep.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "GEMM rate measured in the same run: 730 TFLOP/s (bf16 8192^3, median of 3, runs from 700 to 782;")
}
