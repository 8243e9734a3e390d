// Package demo is `lmscore demo`: a few-shot multiple-choice workload scored
// with and without the prefix cache, the speedup, and the check that every
// score matched bit for bit. It lives outside cmd/ so that the command stays
// a flag parser, and outside bench/ so that the binary does not carry the
// benchmark drivers.
package demo

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
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/workload"
)

// Config is one demo run.
type Config struct {
	// Work is the folder the demo model and request file are written to.
	Work string
	// Stories260K is a folder holding llama2.c's stories260K.bin and
	// tok512.bin; empty: a small random model instead.
	Stories260K string
}

// Model writes the demo model into cfg.Work and returns its path and a
// description: stories260K converted to GGUF when cfg names its folder,
// else a small random llama model.
func Model(cfg Config) (path, what string, err error) {
	if err := os.MkdirAll(cfg.Work, 0o755); err != nil {
		return "", "", err
	}
	if cfg.Stories260K != "" {
		path = filepath.Join(cfg.Work, "stories260K.gguf")
		bin := filepath.Join(cfg.Stories260K, "stories260K.bin")
		tok := filepath.Join(cfg.Stories260K, "tok512.bin")
		if err := convert.Llama2C(bin, tok, path); err != nil {
			return "", "", err
		}
		return path, "stories260K (a real trained model, from " + cfg.Stories260K + ")", nil
	}
	path = filepath.Join(cfg.Work, "random-llama.gguf")
	mc := model.Config{Arch: model.ArchLlama, NVocab: 512, NEmbd: 128, NLayer: 4, NHead: 8, NHeadKV: 4,
		NFF: 384, NCtxTrain: 1024, RopeType: model.RopeNorm, RopeFreqBase: 10000, NormEps: 1e-5}
	w, err := model.RandomWeights(mc, 1, model.TypeF32)
	if err != nil {
		return "", "", err
	}
	tokKV, err := model.FixtureTokenizer(mc.NVocab)
	if err != nil {
		return "", "", err
	}
	if err := model.WriteGGUF(path, mc, w, tokKV...); err != nil {
		return "", "", err
	}
	return path, "a random 4-layer llama model (no stories260K folder given)", nil
}

// Run scores the demo workload with and without the prefix cache and
// reports the speedup and whether every score matched bit for bit.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	path, what, err := Model(cfg)
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
	lines, err := workload.Generate("metaicl16", workload.Options{Seed: 1, Vocab: m.Info().NVocab, FirstID: 259,
		Newline: 13, Scale: 0.006, Demos: 6})
	if err != nil {
		return err
	}
	reqs := workload.Requests(lines)
	if err := workload.WriteFile(filepath.Join(cfg.Work, "requests.jsonl"), lines); err != nil {
		return err
	}
	fmt.Fprintf(out, "requests: %d (%s/requests.jsonl): 20 tasks, 6 shared demonstrations each, 2-3 choices per question\n\n", len(reqs), cfg.Work)

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
		if !workload.SameScores(off[i].TokenLogProbs, on[i].TokenLogProbs) {
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
