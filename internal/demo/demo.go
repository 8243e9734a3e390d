package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/convert"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// Stories260KDir is where the shared tiny model sits, relative to the
// repository root (the demo runs from there).
const Stories260KDir = "../shared/models/stories260K"

// DemoModel writes the demo model into dir and returns its path: stories260K
// converted from ../shared when present, else a small random llama model.
func DemoModel(dir string) (path, what string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	bin := filepath.Join(Stories260KDir, "stories260K.bin")
	tok := filepath.Join(Stories260KDir, "tok512.bin")
	if _, err := os.Stat(bin); err == nil {
		path = filepath.Join(dir, "stories260K.gguf")
		if err := convert.Llama2C(bin, tok, path); err != nil {
			return "", "", err
		}
		return path, "stories260K (a real trained model, from " + Stories260KDir + ")", nil
	}
	path = filepath.Join(dir, "random-llama.gguf")
	m, err := testmodel.New(testmodel.Options{Seed: 1, NLayer: 4, NEmbd: 128, NHead: 8, NVocab: 512, NCtx: 1024})
	if err != nil {
		return "", "", err
	}
	tokKV, err := model.FixtureTokenizer(512)
	if err != nil {
		return "", "", err
	}
	if err := model.WriteGGUF(path, m.Config, &m.Weights, tokKV...); err != nil {
		return "", "", err
	}
	return path, "a random 4-layer llama model (" + Stories260KDir + " is absent)", nil
}

// Demo scores a few-shot multiple-choice workload with and without the
// prefix cache and reports the speedup and whether every score matched bit
// for bit.
func Demo(ctx context.Context, dir string, out io.Writer) error {
	path, what, err := DemoModel(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "model: %s\n", what)
	m, err := lmscore.Open(path, lmscore.Options{KVMemory: 256 << 20})
	if err != nil {
		return err
	}
	defer m.Close()
	// 6 demonstrations keep every context inside stories260K's 512-token window.
	lines, err := Generate("metaicl16", WorkloadOptions{Seed: 1, Vocab: m.Info().NVocab, FirstID: 259,
		Newline: 13, Scale: 0.006, Demos: 6})
	if err != nil {
		return err
	}
	reqs := Requests(lines)
	if err := writeFile(filepath.Join(dir, "requests.jsonl"), lines); err != nil {
		return err
	}
	fmt.Fprintf(out, "requests: %d (%s/requests.jsonl): 20 tasks, 6 shared demonstrations each, 2-3 choices per question\n\n", len(reqs), dir)

	// Warm up once so that neither run pays for first-touch page faults.
	if _, _, err := m.Score(ctx, reqs[:min(len(reqs), 8)], lmscore.ScoreOptions{NoCache: true}); err != nil {
		return err
	}
	off, offStats, err := m.Score(ctx, reqs, lmscore.ScoreOptions{NoCache: true})
	if err != nil {
		return err
	}
	on, onStats, err := m.Score(ctx, reqs, lmscore.ScoreOptions{})
	if err != nil {
		return err
	}
	mismatches := 0
	for i := range off {
		if !sameBits(off[i].TokenLogProbs, on[i].TokenLogProbs) {
			mismatches++
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tno cache\tprefix cache\t")
	fmt.Fprintf(tw, "total tokens\t%d\t%d\t\n", offStats.TotalTokens, onStats.TotalTokens)
	fmt.Fprintf(tw, "computed tokens\t%d\t%d\t\n", offStats.ComputedTokens, onStats.ComputedTokens)
	fmt.Fprintf(tw, "steps\t%d\t%d\t\n", offStats.Steps, onStats.Steps)
	fmt.Fprintf(tw, "wall time\t%s\t%s\t\n", offStats.Wall.Round(time.Millisecond), onStats.Wall.Round(time.Millisecond))
	fmt.Fprintf(tw, "tokens/s (total/wall)\t%.0f\t%.0f\t\n", offStats.TokensPerSecond, onStats.TokensPerSecond)
	tw.Flush()
	fmt.Fprintf(out, "\nspeedup: %.1fx (total/unique tokens: %.1fx)\n",
		offStats.Wall.Seconds()/onStats.Wall.Seconds(), float64(onStats.TotalTokens)/float64(onStats.UniqueTokens))
	if mismatches > 0 {
		return fmt.Errorf("equality check FAILED: %d of %d requests scored differently with the cache", mismatches, len(off))
	}
	fmt.Fprintf(out, "equality check: all %d requests bitwise identical with and without the cache\n", len(off))
	return nil
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}

// Requests turns workload lines into token-form requests.
func Requests(lines []Line) []lmscore.Request {
	reqs := make([]lmscore.Request, len(lines))
	for i, l := range lines {
		reqs[i] = lmscore.Request{ID: l.ID, ContextTokens: l.ContextTokens, ContinuationTokens: l.ContinuationTokens}
	}
	return reqs
}

func writeFile(path string, lines []Line) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteJSONL(f, lines); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
