package scheduler

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Data-driven plan tests: testdata/*.txt hold cases of the form
//
//	# comments
//	<command> [key=value | flag]...
//	<input lines>
//	----
//	<expected output, no blank lines>
//	(blank line)
//
// Commands:
//
//	pool blocks=N block-size=B [retain]
//	                               a new, empty pool (and simulator); retain
//	                               sets BlockPool.Retain
//	plan [max-batch-tokens=N] [max-outputs=N] [max-len=N] [window=N] [namespace=S] [no-cache]
//	    input: one request per line, "id: context tokens | continuation tokens"
//	    output: every step (copies, segments, outputs, requests done), the
//	    blocks evicted while planning, in order, and the statistics. The plan
//	    is also executed by the simulator; a failure is the output.
//	pool-state                     the free blocks, next to be handed out first
//	                               (c: holds a cached prefix)
//
// Segment lines read "seg <first>-<last pos> tok <tokens> table <block ids>
// write <block>[<from>:<to>]..."; "cached" marks positions run only for
// their logits (slot -1). Outputs read "out @<pos> <target> -> <id>.<k>...".
//
// go test ./scheduler -run TestDataDriven -rewrite regenerates the expected
// outputs; review the diff before committing it.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs of testdata/*.txt")

func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runDataFile(t, file) })
	}
}

type ddCase struct {
	pre      []string // comments and blank lines before the command
	command  string
	line     int
	input    []string
	expected []string
}

func parseDataFile(t *testing.T, file string) []ddCase {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	var cases []ddCase
	var pre []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			continue
		}
		c := ddCase{pre: pre, command: l, line: i + 1}
		pre = nil
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			c.input = append(c.input, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: command without ---- separator", file, c.line)
		}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			c.expected = append(c.expected, lines[i])
		}
		i-- // let the loop see the blank line
		cases = append(cases, c)
	}
	return cases
}

func runDataFile(t *testing.T, file string) {
	cases := parseDataFile(t, file)
	var d ddState
	var out strings.Builder
	for _, c := range cases {
		got := d.run(t, file, c)
		if *rewrite {
			for _, l := range c.pre {
				out.WriteString(l + "\n")
			}
			out.WriteString(c.command + "\n")
			for _, l := range c.input {
				out.WriteString(l + "\n")
			}
			out.WriteString("----\n")
			for _, l := range got {
				out.WriteString(l + "\n")
			}
			continue
		}
		if strings.Join(got, "\n") != strings.Join(c.expected, "\n") {
			t.Errorf("%s:%d: %s\n--- got:\n%s\n--- want:\n%s", file, c.line, c.command, strings.Join(got, "\n"), strings.Join(c.expected, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type ddState struct {
	pool    *BlockPool
	sim     *simulator
	evicted []int32
}

func (d *ddState) run(t *testing.T, file string, c ddCase) []string {
	fields := strings.Fields(c.command)
	args := map[string]string{}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		args[k] = v
	}
	num := func(key string, def int) int {
		v, ok := args[key]
		if !ok {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s:%d: %s=%q: %v", file, c.line, key, v, err)
		}
		return n
	}
	switch fields[0] {
	case "pool":
		pool, err := NewBlockPool(num("blocks", 0), num("block-size", 0))
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		_, pool.Retain = args["retain"]
		d.pool, d.sim = pool, newSimulator(pool)
		pool.OnEvict = func(b int32) { d.evicted = append(d.evicted, b) }
		return []string{fmt.Sprintf("%d blocks of %d tokens (%d usable)", pool.NumBlocks(), pool.BlockSize(), pool.Usable())}
	case "pool-state":
		var parts []string
		for _, b := range d.pool.FreeOrder() {
			s := strconv.Itoa(int(b))
			if !d.pool.Hash(b).IsZero() {
				s += "c"
			}
			parts = append(parts, s)
		}
		return []string{fmt.Sprintf("free: %s", strings.Join(parts, " ")), fmt.Sprintf("used: %d", d.pool.NumUsed())}
	case "plan":
		if d.pool == nil {
			t.Fatalf("%s:%d: plan before pool", file, c.line)
		}
		reqs, err := parseRequests(c.input)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, c.line, err)
		}
		opts := Options{
			MaxBatchTokens: num("max-batch-tokens", 64),
			MaxOutputs:     num("max-outputs", 0),
			MaxLen:         num("max-len", 0),
			Window:         num("window", 0),
			Namespace:      "test",
		}
		if ns, ok := args["namespace"]; ok {
			opts.Namespace = ns
		}
		_, opts.NoCache = args["no-cache"]
		d.evicted = nil
		res, err := d.sim.run(d.pool, reqs, opts, true)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		out := renderSteps(res.steps, reqs, d.pool.BlockSize())
		if len(d.evicted) > 0 {
			out = append(out, fmt.Sprintf("evicted: %v", d.evicted))
		}
		s := res.stats
		out = append(out,
			fmt.Sprintf("tokens: total=%d unique=%d computed=%d cached=%d recomputed=%d logits-only=%d",
				s.TotalTokens, s.UniqueTokens, s.PlannedComputedTokens, s.CachedTokens, s.RecomputedTokens, s.LogitOnlyTokens),
			fmt.Sprintf("blocks: copied=%d reused=%d (hit=%d in-place=%d) peak=%d evictions=%d need=%d/%d",
				s.CopiedBlocks, s.ReusedBlocks, s.CacheHitBlocks, s.InPlaceBlocks, s.PeakLiveBlocks, s.Evictions, s.KVBlocksMin, s.KVBlocksNoRecompute))
		return out
	}
	t.Fatalf("%s:%d: unknown command %q", file, c.line, fields[0])
	return nil
}

// parseRequests reads "id: ctx tokens | cont tokens" lines.
func parseRequests(lines []string) ([]Request, error) {
	var reqs []Request
	for _, l := range lines {
		id, rest, ok := strings.Cut(l, ":")
		ctx, cont, ok2 := strings.Cut(rest, "|")
		if !ok || !ok2 {
			return nil, fmt.Errorf("request line %q: want \"id: context | continuation\"", l)
		}
		r := Request{ID: strings.TrimSpace(id)}
		for _, part := range []struct {
			s   string
			dst *[]int32
		}{{ctx, &r.Context}, {cont, &r.Continuation}} {
			for _, f := range strings.Fields(part.s) {
				n, err := strconv.Atoi(f)
				if err != nil {
					return nil, fmt.Errorf("request line %q: %v", l, err)
				}
				*part.dst = append(*part.dst, int32(n))
			}
		}
		reqs = append(reqs, r)
	}
	return reqs, nil
}

func renderSteps(steps []*Step, reqs []Request, bs int) []string {
	var out []string
	for _, st := range steps {
		b := &st.Batch
		out = append(out, fmt.Sprintf("step %d: %d tokens, %d segments, %d outputs", st.Index, b.NumTokens(), b.NumSegments(), b.NumOutputs()))
		for i := range b.CopySrc {
			out = append(out, fmt.Sprintf("  copy %d[0:%d] -> %d", b.CopySrc[i], b.CopyTokens[i], b.CopyDst[i]))
		}
		for s := 0; s < b.NumSegments(); s++ {
			lo, hi := b.SegTokenStart[s], b.SegTokenStart[s+1]
			out = append(out, fmt.Sprintf("  seg %d-%d tok %s table %s write %s",
				b.Positions[lo], b.Positions[hi-1], joinInts(b.TokenIDs[lo:hi]),
				joinInts(b.BlockIndices[b.BlockIndptr[s]:b.BlockIndptr[s+1]]),
				slotRanges(b.Slots[lo:hi], bs)))
		}
		for i := range b.OutTokenIndex {
			var to []string
			for k := st.RouteStart[i]; k < st.RouteStart[i+1]; k++ {
				to = append(to, fmt.Sprintf("%s.%d", reqs[st.RouteRequest[k]].ID, st.RouteToken[k]))
			}
			out = append(out, fmt.Sprintf("  out @%d %d -> %s", b.Positions[b.OutTokenIndex[i]], b.OutTarget[i], strings.Join(to, " ")))
		}
		if len(st.Done) > 0 {
			var ids []string
			for _, r := range st.Done {
				ids = append(ids, reqs[r].ID)
			}
			out = append(out, "  done "+strings.Join(ids, " "))
		}
	}
	return out
}

func joinInts(a []int32) string {
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = strconv.Itoa(int(v))
	}
	return strings.Join(s, " ")
}

// slotRanges renders slots as block[from:to] runs; -1 runs as "cached".
func slotRanges(slots []int32, bs int) string {
	var parts []string
	for i := 0; i < len(slots); {
		j := i + 1
		if slots[i] < 0 {
			for j < len(slots) && slots[j] < 0 {
				j++
			}
			parts = append(parts, fmt.Sprintf("cached(%d)", j-i))
			i = j
			continue
		}
		blk := int(slots[i]) / bs
		for j < len(slots) && slots[j] == slots[j-1]+1 && int(slots[j])/bs == blk {
			j++
		}
		off := int(slots[i]) % bs
		parts = append(parts, fmt.Sprintf("%d[%d:%d]", blk, off, off+j-i))
		i = j
	}
	return strings.Join(parts, " ")
}
