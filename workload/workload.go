// Package workload generates lmscore's benchmark workloads: seeded,
// token-level request sets shaped like real evaluation suites, written as
// the request JSONL that `lmscore score` reads. It is a library of its own,
// outside bench/, so that the benchmarks and `lmscore demo` share one
// generator without the command depending on the benchmark drivers.
package workload

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"

	"github.com/lmscore/lmscore"
)

// Line is one request line of the JSONL format.
type Line struct {
	ID                 string  `json:"id"`
	ContextTokens      []int32 `json:"context_tokens"`
	ContinuationTokens []int32 `json:"continuation_tokens"`
	Group              string  `json:"group,omitempty"`
	Label              *int    `json:"label,omitempty"`
	Choice             *int    `json:"choice,omitempty"`
}

// Options shape a generated workload.
type Options struct {
	Seed  uint64
	Vocab int // token ids are drawn from [FirstID, Vocab)
	// FirstID skips special and byte tokens at the start of the vocabulary.
	FirstID int
	// Newline is the token that joins demonstrations.
	Newline int32
	// Scale multiplies the number of tasks, questions or requests (1 = the
	// full size given in the workload's description); fractions shrink it.
	Scale float64
	// Long makes metaicl16's demonstrations 20-120 tokens and left-truncates
	// each context to Window tokens, as a harness does near the window.
	Long   bool
	Window int
	// Demos overrides metaicl16's 16 demonstrations (0 keeps the default),
	// for models whose window is shorter than gpt2-large's.
	Demos int
	// Tasks overrides metaicl's 20 tasks (0 keeps the default), so that a
	// run can keep the per-task shape (1000 questions under one set of
	// demonstrations) at a size a short benchmark affords; Scale then sets
	// the questions per task alone.
	Tasks int
}

// Generators lists the generators by name.
var Generators = map[string]func(Options) []Line{
	"metaicl16": func(o Options) []Line { return metaICL(o, cmp.Or(o.Demos, 16)) },
	"metaicl0":  func(o Options) []Line { return metaICL(o, 0) },
	"hellaswag": hellaSwag,
	"sysprompt": sysPrompt,
}

// Names returns the generators' names, sorted.
func Names() []string {
	names := make([]string, 0, len(Generators))
	for n := range Generators {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Generate builds the named workload.
func Generate(name string, o Options) ([]Line, error) {
	gen, ok := Generators[name]
	if !ok {
		return nil, fmt.Errorf("unknown workload %q (have %v)", name, Names())
	}
	if o.Vocab <= o.FirstID+1 {
		return nil, fmt.Errorf("workload %s: vocabulary %d too small (first id %d)", name, o.Vocab, o.FirstID)
	}
	if o.Scale <= 0 {
		o.Scale = 1
	}
	if o.Window <= 0 {
		o.Window = 1024
	}
	return gen(o), nil
}

// WriteJSONL writes lines as request JSONL.
func WriteJSONL(w io.Writer, lines []Line) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range lines {
		if err := enc.Encode(&lines[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Requests turns workload lines into token-form requests.
func Requests(lines []Line) []lmscore.Request {
	reqs := make([]lmscore.Request, len(lines))
	for i, l := range lines {
		reqs[i] = lmscore.Request{ID: l.ID, ContextTokens: l.ContextTokens, ContinuationTokens: l.ContinuationTokens}
	}
	return reqs
}

// WriteFile writes lines as request JSONL to the file path.
func WriteFile(path string, lines []Line) error {
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

type gen struct {
	rng *rand.Rand
	o   Options
}

func newGen(o Options, stream uint64) *gen {
	return &gen{rng: rand.New(rand.NewPCG(o.Seed, stream)), o: o}
}

func (g *gen) between(lo, hi int) int { return lo + g.rng.IntN(hi-lo+1) }

func (g *gen) tokens(n int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(g.o.FirstID + g.rng.IntN(g.o.Vocab-g.o.FirstID))
	}
	return t
}

func scaled(n int, s float64) int { return max(1, int(float64(n)*s+0.5)) }

func intPtr(v int) *int { return &v }

// metaICL: 20 tasks; per task nDemos demonstrations (20-60 tokens, or 20-120
// with Long) joined by newlines, then 1000 test inputs of 20-80 tokens with
// 2-3 options of 1-5 tokens. Scale shrinks the questions per task first and
// the tasks only below one question per task.
func metaICL(o Options, nDemos int) []Line {
	g := newGen(o, 1)
	tasks, questions := 20, scaled(1000, o.Scale)
	switch {
	case o.Tasks > 0:
		tasks = o.Tasks
	case o.Scale < 0.001:
		tasks, questions = scaled(20, o.Scale*1000), 1
	}
	demoMax := 60
	if o.Long {
		demoMax = 120
	}
	var lines []Line
	for task := 0; task < tasks; task++ {
		var demos []int32
		for d := 0; d < nDemos; d++ {
			demos = append(demos, g.tokens(g.between(20, demoMax))...)
			demos = append(demos, o.Newline)
		}
		nOptions := g.between(2, 3)
		options := make([][]int32, nOptions)
		for i := range options {
			options[i] = g.tokens(g.between(1, 5))
		}
		for q := 0; q < questions; q++ {
			ctx := append(append([]int32{}, demos...), g.tokens(g.between(20, 80))...)
			ctx = append(ctx, o.Newline)
			if o.Long && len(ctx) > o.Window {
				ctx = ctx[len(ctx)-o.Window:]
			}
			group := "t" + strconv.Itoa(task) + "q" + strconv.Itoa(q)
			label := g.rng.IntN(nOptions)
			for c, opt := range options {
				lines = append(lines, Line{
					ID:                 group + "c" + strconv.Itoa(c),
					ContextTokens:      ctx,
					ContinuationTokens: opt,
					Group:              group,
					Label:              intPtr(label),
					Choice:             intPtr(c),
				})
			}
		}
	}
	return lines
}

// hellaSwag: 10,000 contexts of 40-120 tokens, each with 4 endings of 10-40.
func hellaSwag(o Options) []Line {
	g := newGen(o, 2)
	var lines []Line
	for q := 0; q < scaled(10000, o.Scale); q++ {
		ctx := g.tokens(g.between(40, 120))
		group := "h" + strconv.Itoa(q)
		label := g.rng.IntN(4)
		for c := 0; c < 4; c++ {
			lines = append(lines, Line{
				ID:                 group + "e" + strconv.Itoa(c),
				ContextTokens:      ctx,
				ContinuationTokens: g.tokens(g.between(10, 40)),
				Group:              group,
				Label:              intPtr(label),
				Choice:             intPtr(c),
			})
		}
	}
	return lines
}

// sysPrompt: a 2,000-token shared prefix, then 5,000 requests of 100-300
// tokens, the last 1-20 of which are the scored continuation.
func sysPrompt(o Options) []Line {
	g := newGen(o, 3)
	prefix := g.tokens(2000)
	var lines []Line
	for r := 0; r < scaled(5000, o.Scale); r++ {
		body := g.tokens(g.between(100, 300))
		cut := len(body) - g.between(1, 20)
		lines = append(lines, Line{
			ID:                 "s" + strconv.Itoa(r),
			ContextTokens:      append(append([]int32{}, prefix...), body[:cut]...),
			ContinuationTokens: body[cut:],
		})
	}
	return lines
}

// SameScores reports whether two runs' log-probabilities are bitwise equal
// (NaN matching NaN): the equality check the demo and the benchmarks print,
// since scores must not depend on caching, order or budget.
func SameScores(a, b []float32) bool {
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
