//go:build cgo

package binding

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/convert"
	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
)

// familyFixtures are the Hugging Face folders of internal/hfcheck (made by
// transformers; reference.json holds its float64 next-token log-probs).
var familyFixtures = filepath.Join("..", "internal", "hfcheck", "testdata")

// TestLlamaCppFamilies: every fixture family, converted by lmscore's
// convert hf, loads in llama.cpp (llama-cpp-python), and llama.cpp's
// log-probabilities of every token at every position of the fixture's
// sequences agree with the CPU core's, once the CPU core is given the model
// as llama.cpp reads the file (llamaCppReading: what llama.cpp ignores or
// hard-codes). Where that reading differs from transformers', the test
// says what differs and reports how far both are from transformers'
// float64 reference; where it does not, llama.cpp itself must be within
// 1e-3 of that reference.
//
// Bounds: 1e-3 on log-probs, as TestLlamaCpp for F32 files, except where
// llama.cpp's CPU GELU reads its fp16 table (gpt2, gptneox, gemma2,
// gemma3; see TestLlamaCpp's gpt2 case), whose one-ulp steps move
// log-probs by a few thousandths on these sharp random models (6e-3 at
// most): 1e-2 there. GPT-NeoX adds one more difference of the same size
// that no reading can remove: llama.cpp's graph computes its FFN with the
// tanh approximation of GELU, transformers (and lmscore) with the exact one.
func TestLlamaCppFamilies(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: converts every fixture family and runs each in llama.cpp (about 40 s on two cores)")
	}
	py := pyref(t)
	names := familyFixtureNames(t)
	dir := t.TempDir()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(familyFixtures, name, "reference.json"))
			if err != nil {
				t.Fatal(err)
			}
			var ref struct {
				ReferenceDType string `json:"reference_dtype"`
				Sequences      []struct {
					Tokens            []int32   `json:"tokens"`
					NextTokenLogProbs []float64 `json:"next_token_logprobs"`
				} `json:"sequences"`
			}
			if err := json.Unmarshal(raw, &ref); err != nil {
				t.Fatal(err)
			}
			if ref.ReferenceDType == "" {
				ref.ReferenceDType = "torch.float32" // the early fixtures say nothing
			}
			path := filepath.Join(dir, name+".gguf")
			if err := convertFixture(filepath.Join(familyFixtures, name), filepath.Join(dir, name), path); err != nil {
				t.Fatal(err)
			}
			var seqs [][]int32
			var want [][]float64
			for _, s := range ref.Sequences {
				if len(s.Tokens) >= 2 {
					seqs = append(seqs, s.Tokens)
					want = append(want, s.NextTokenLogProbs)
				}
			}
			cpp, err := llamaCppSequences(py, path, seqs)
			if err != nil {
				t.Fatalf("llama.cpp does not run lmscore's %s file: %v", name, err)
			}

			asIs, err := model.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			defer asIs.Close()
			read, err := model.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			defer read.Close()
			changes := llamaCppReading(read, cpp.NCtx)

			lmsAsIs := cpuLogProbs(t, asIs, seqs)
			lmsRead := cpuLogProbs(t, read, seqs)
			V := asIs.Config.NVocab
			var dRead, dAsIs, dCppRef, dLmsRef, dCppRefInWindow float64
			for i, s := range seqs {
				if len(cpp.LogProbs[i]) != len(s) {
					t.Fatalf("llama.cpp returned %d rows for a sequence of %d", len(cpp.LogProbs[i]), len(s))
				}
				for p := range s {
					row := cpp.LogProbs[i][p]
					if len(row) != V {
						t.Fatalf("llama.cpp returned %d log-probs, the vocabulary has %d", len(row), V)
					}
					for v := 0; v < V; v++ {
						dRead = math.Max(dRead, math.Abs(lmsRead[i][p][v]-row[v]))
						dAsIs = math.Max(dAsIs, math.Abs(lmsAsIs[i][p][v]-row[v]))
					}
					if p+1 < len(s) {
						next := s[p+1]
						d := math.Abs(row[next] - want[i][p])
						dCppRef = math.Max(dCppRef, d)
						if asIs.Config.NSWA == 0 || p < asIs.Config.NSWA {
							dCppRefInWindow = math.Max(dCppRefInWindow, d)
						}
						dLmsRef = math.Max(dLmsRef, math.Abs(lmsAsIs[i][p][next]-want[i][p]))
					}
				}
			}
			reading := "as transformers reads the folder"
			if len(changes) > 0 {
				reading = strings.Join(changes, "; ")
			}
			t.Logf("%s (%s): llama.cpp n_ctx %d; llama.cpp's reading: %s", name, asIs.Config.Arch, cpp.NCtx, reading)
			t.Logf("%s: max |Δ logprob| over %d positions x %d tokens: CPU core given llama.cpp's reading vs llama.cpp %.2e, CPU core as lmscore loads it vs llama.cpp %.2e",
				name, totalLen(seqs), V, dRead, dAsIs)
			t.Logf("%s: next-token |Δ logprob| vs transformers %s: llama.cpp %.2e, CPU core %.2e",
				name, ref.ReferenceDType, dCppRef, dLmsRef)

			bound := 1e-3
			if asIs.Config.FFNType() != model.FFNSwiGLU {
				bound = 1e-2 // llama.cpp's fp16 GELU table, see above
			}
			if dRead > bound {
				t.Errorf("%s: the CPU core given llama.cpp's reading differs from llama.cpp by %.2e > %.0e", name, dRead, bound)
			}
			if read.Weights.RopeFactorsLong != nil && read.Weights.RopeFreqs == read.Weights.RopeFactorsLong {
				checkShortFactors(t, py, path, filepath.Join(dir, name+"-short.gguf"), cpp.NCtx, seqs, want, lmsAsIs, bound)
			}
			switch {
			case len(changes) == 0:
				if dCppRef > bound {
					t.Errorf("%s: llama.cpp differs from transformers by %.2e > %.0e though it reads the file as transformers does", name, dCppRef, bound)
				}
				if dAsIs != dRead {
					t.Errorf("%s: no reading changed, yet the two CPU runs differ (%.2e vs %.2e)", name, dAsIs, dRead)
				}
			case len(changes) == 1 && asIs.Config.NSWA > 0 && read.Config.NSWA == 0:
				// Mistral (or a windowed Phi-3): llama.cpp has no window,
				// so within the first window, where the window cuts
				// nothing, it must agree with transformers.
				t.Logf("%s: next-token |Δ| of llama.cpp vs transformers within the first %d positions (the window cuts nothing there): %.2e",
					name, asIs.Config.NSWA, dCppRefInWindow)
				if dCppRefInWindow > bound {
					t.Errorf("%s: llama.cpp differs from transformers by %.2e within the window", name, dCppRefInWindow)
				}
			}
		})
	}
}

// llamaCppReading changes m into the model llama.cpp runs from the same
// file, for each place where llama.cpp's reading of lmscore's GGUF differs
// from transformers' of the Hugging Face folder (which lmscore follows).
// It returns what it changed, each with its reason. nCtx is the context
// llama.cpp ran with (after its rounding up).
func llamaCppReading(m *model.Model, nCtx int) []string {
	c := &m.Config
	var changes []string
	switch c.Arch {
	case model.ArchLlama:
		if c.NSWA > 0 {
			// llama.cpp's llama graph has no sliding window; it does not
			// read llama.attention.sliding_window (its own Mistral
			// conversions carry none).
			changes = append(changes, fmt.Sprintf("no sliding window (the file's is %d): llama.cpp's llama graph has none", c.NSWA))
			c.NSWA, c.SWALayers = 0, nil
		}
	case model.ArchGemma2, model.ArchGemma3:
		// llama.cpp does not read attention.scale for Gemma: it hard-codes
		// 1/sqrt(head_dim), or 1/sqrt(n_embd/n_head) for the 27B models it
		// recognizes by layer count (46 and 62), which is what
		// query_pre_attn_scalar is in every released Gemma 2 and 3. A
		// fixture's query_pre_attn_scalar of another value is lost.
		hd := float64(c.HeadDim())
		if (c.Arch == model.ArchGemma2 && c.NLayer == 46) || (c.Arch == model.ArchGemma3 && c.NLayer == 62) {
			hd = float64(c.NEmbd / c.NHead)
		}
		scale := float32(1 / math.Sqrt(hd))
		if c.AttnScale != 0 && c.AttnScale != scale {
			changes = append(changes, fmt.Sprintf("attention scale %.4f for the file's %.4f (query_pre_attn_scalar %.4g): llama.cpp hard-codes it per model size",
				scale, c.AttnScale, 1/float64(c.AttnScale*c.AttnScale)))
			c.AttnScale = scale
		}
	case model.ArchPhi3:
		if c.NSWA > 0 {
			// llama.cpp reads phi3.attention.sliding_window and then turns
			// the window off (its Phi-3 graph runs without one).
			changes = append(changes, fmt.Sprintf("no sliding window (the file's is %d): llama.cpp disables Phi-3's", c.NSWA))
			c.NSWA, c.SWALayers = 0, nil
		}
		if m.Weights.RopeFactorsLong != nil && c.NCtxOrig > 0 && nCtx > c.NCtxOrig {
			// llama.cpp picks the long factors when its context exceeds
			// the original one; it rounds any context up to 256, so a
			// model whose original context is shorter always gets them.
			// lmscore applies the short ones (model.SelectRopeFactors),
			// as transformers does within the original context.
			changes = append(changes, fmt.Sprintf("LongRoPE long factors: llama.cpp's context %d exceeds the original %d", nCtx, c.NCtxOrig))
			m.Weights.RopeFreqs = m.Weights.RopeFactorsLong
		}
	}
	return changes
}

// checkShortFactors: llama.cpp applies Phi-3's short LongRoPE factors, the
// ones lmscore and transformers use within the original context, once its
// context does not exceed rope.scaling.original_context_length. llama.cpp
// rounds its context up to 256, past the fixture's 128, so the file is
// written again with an original context of llama.cpp's n_ctx (nothing
// else in llama.cpp's Phi-3 graph reads it: rope.scaling.type is linear,
// so no YaRN ramp, and the attention factor is rope.scaling.attn_factor's),
// and then llama.cpp must agree with transformers and with the CPU core.
func checkShortFactors(t *testing.T, py, path, out string, nCtx int, seqs [][]int32, want [][]float64, lms [][][]float64, bound float64) {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var extra []gguf.KV
	for _, kv := range f.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.") || kv.Key == "general.name" {
			extra = append(extra, kv)
		}
	}
	cfg := m.Config
	cfg.NCtxOrig = nCtx
	if err := model.WriteGGUF(out, cfg, &m.Weights, extra...); err != nil {
		t.Fatal(err)
	}
	cpp, err := llamaCppSequences(py, out, seqs)
	if err != nil {
		t.Fatalf("llama.cpp: %v", err)
	}
	var dRef, dLms float64
	for i, s := range seqs {
		for p := range s {
			for v, lp := range cpp.LogProbs[i][p] {
				dLms = math.Max(dLms, math.Abs(lms[i][p][v]-lp))
			}
			if p+1 < len(s) {
				dRef = math.Max(dRef, math.Abs(cpp.LogProbs[i][p][s[p+1]]-want[i][p]))
			}
		}
	}
	t.Logf("with original context %d (llama.cpp then takes the short factors): llama.cpp vs the CPU core as lmscore loads it %.2e, next-token vs transformers %.2e",
		nCtx, dLms, dRef)
	if dLms > bound || dRef > bound {
		t.Errorf("with the short factors llama.cpp differs from lmscore by %.2e and from transformers by %.2e (bound %.0e)", dLms, dRef, bound)
	}
}

// convertFixture converts the Hugging Face folder src to a GGUF at out,
// through a link named "fixture" under linkDir. convert hf names the model
// (general.name) after the folder, and llama.cpp's vocabulary loader keys
// token attributes on that name: for a name containing "phi3" it looks up
// "<|endoftext|>", which every released Phi-3 vocabulary has but the
// fixtures' 512 tokens do not, and the load fails (unordered_map::at).
func convertFixture(src, linkDir, out string) error {
	if err := os.MkdirAll(linkDir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	link := filepath.Join(linkDir, "fixture")
	if err := os.Symlink(abs, link); err != nil {
		return err
	}
	return convert.HF(link, out, convert.Options{Type: "f32"})
}

type llamaCppResult struct {
	NCtx     int           `json:"n_ctx"`
	LogProbs [][][]float64 `json:"logprobs"`
}

func llamaCppSequences(py, path string, seqs [][]int32) (*llamaCppResult, error) {
	in, err := json.Marshal(map[string]any{"sequences": seqs})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(py, filepath.Join("testdata", "llamacpp_sequences.py"), path)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		return nil, exitDetail(err)
	}
	var r llamaCppResult
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, err
	}
	if len(r.LogProbs) != len(seqs) {
		return nil, fmt.Errorf("%d sequences back for %d", len(r.LogProbs), len(seqs))
	}
	return &r, nil
}

// cpuLogProbs is the CPU core's log-probability of every token at every
// position of each sequence (top-n with n = n_vocab), each sequence run as
// one step from an empty cache.
func cpuLogProbs(t *testing.T, m *model.Model, seqs [][]int32) [][][]float64 {
	t.Helper()
	longest := 0
	for _, s := range seqs {
		longest = max(longest, len(s))
	}
	const bs = 16
	e := openEngine(t, m, 2, bs, blocksFor(longest, bs), longest, longest)
	blocks := make([]int32, blocksFor(longest, bs))
	for i := range blocks {
		blocks[i] = int32(i)
	}
	V := m.Config.NVocab
	out := make([][][]float64, len(seqs))
	for i, s := range seqs {
		bb := newBuilder(bs)
		bb.segment(s, 0, len(s), blocks, s)
		b := bb.batch()
		b.TopN = int32(V)
		var r scheduler.Result
		if err := e.step.Run(e.kv, b, &r); err != nil {
			t.Fatal(err)
		}
		out[i] = make([][]float64, len(s))
		for p := range s {
			row := make([]float64, V)
			for j := 0; j < V; j++ {
				row[r.TopIDs[p*V+j]] = float64(r.TopLogProbs[p*V+j])
			}
			out[i][p] = row
		}
	}
	return out
}

func familyFixtureNames(t *testing.T) []string {
	entries, err := os.ReadDir(familyFixtures)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(familyFixtures, e.Name(), "reference.json")); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no fixtures under %s", familyFixtures)
	}
	return names
}

func totalLen(seqs [][]int32) int {
	n := 0
	for _, s := range seqs {
		n += len(s)
	}
	return n
}
