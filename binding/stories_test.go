//go:build cgo

package binding

import (
	"math"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/internal/testshared"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/scheduler"
	"github.com/lmscore/lmscore/tokenizer"
)

func openStories(t *testing.T) (*model.Model, *tokenizer.Tokenizer) {
	t.Helper()
	out := testshared.Stories260KGGUF(t)
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tk, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		t.Fatal(err)
	}
	return m, tk
}

// TestStories260KGreedy: greedy decoding from BOS alone, one token per
// step through the KV cache, gives the story its README quotes; scoring
// that story after BOS marks every token greedy.
func TestStories260KGreedy(t *testing.T) {
	m, tk := openStories(t)
	const story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."
	const bs = 16
	e := openEngine(t, m, 2, bs, 8, 256, 256)
	blocks := []int32{3, 1, 6, 0, 7, 2, 5, 4} // scattered on purpose

	seq := []int32{tk.BOS()}
	var r scheduler.Result
	for len(seq) < 100 {
		p := len(seq) - 1
		b := &scheduler.Batch{
			TokenIDs: []int32{seq[p]}, Positions: []int32{int32(p)},
			Slots:         []int32{blocks[p/bs]*bs + int32(p%bs)},
			SegTokenStart: []int32{0, 1}, BlockIndptr: []int32{0, int32(p/bs + 1)},
			BlockIndices:  blocks[:p/bs+1],
			OutTokenIndex: []int32{0}, OutTarget: []int32{0}, TopN: 1,
		}
		if err := e.step.Run(e.kv, b, &r); err != nil {
			t.Fatal(err)
		}
		seq = append(seq, r.TopIDs[0])
	}
	text := string(tk.Decode(seq[1:]))
	t.Logf("greedy from BOS: %q", text)
	if !strings.HasPrefix(strings.TrimLeft(text, " "), story) {
		t.Fatalf("greedy story from BOS:\n%q\nwant it to start with\n%q", text, story)
	}

	// The story scored after BOS in one step: every token the argmax.
	toks := append([]int32{tk.BOS()}, tk.Encode(story)...)
	bb := newBuilder(bs)
	bb.segment(toks[:len(toks)-1], 0, len(toks)-1, blocks, toks[1:])
	res := e.run(t, bb.batch())
	for i, g := range res.IsGreedy {
		if !g {
			t.Errorf("story token %d (%q) is not greedy: logprob %.4f", i+1, tk.Decode(toks[i+1:i+2]), res.LogProb[i])
		}
	}
}

// TestStories260KLogLikelihoods: the four log-likelihoods the README lists,
// within 0.01.
func TestStories260KLogLikelihoods(t *testing.T) {
	m, tk := openStories(t)
	cases := []struct {
		context, continuation string
		want                  float64
	}{
		{"Once upon a time, there was a little girl named Lily. She loved to play outside in the", " park.", -1.66},
		{"Once upon a time, there was a little girl named Lily. She loved to play outside in the", " spoon.", -11.69},
		{"Tom was very hungry, so he asked his mom for", " some food.", -5.83},
		{"Tom was very hungry, so he asked his mom for", " a big rock.", -8.81},
	}
	const bs = 16
	e := openEngine(t, m, 2, bs, 64, 512, 512)
	alloc := newBlockAlloc(64, nil)
	// All four in one step, each its own segment, as the harness tokenizes
	// them: the continuation is what encoding context+continuation adds.
	bb := newBuilder(bs)
	var first, n []int
	for _, c := range cases {
		ctx := append([]int32{tk.BOS()}, tk.Encode(c.context)...)
		whole := append([]int32{tk.BOS()}, tk.Encode(c.context+c.continuation)...)
		cont := whole[len(ctx):]
		if len(cont) == 0 {
			t.Fatalf("%q: empty continuation", c.continuation)
		}
		// Outputs at every position from the last context token on.
		inputs := whole[:len(whole)-1]
		blocks := alloc.take(blocksFor(len(inputs), bs))
		targets := make([]int32, len(inputs))
		copy(targets[len(ctx)-1:], cont)
		f := bb.segment(inputs, 0, len(inputs), blocks, targets)
		first = append(first, f+len(ctx)-1)
		n = append(n, len(cont))
	}
	res := e.run(t, bb.batch())
	for i, c := range cases {
		var sum float64
		for j := 0; j < n[i]; j++ {
			sum += float64(res.LogProb[first[i]+j])
		}
		t.Logf("%q + %q: %.4f (README %.2f)", c.context, c.continuation, sum, c.want)
		if math.Abs(sum-c.want) > 0.01 {
			t.Errorf("%q + %q: log-likelihood %.4f, want %.2f ± 0.01", c.context, c.continuation, sum, c.want)
		}
	}
}
