package workload

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func opts(scale float64) Options {
	return Options{Seed: 7, Vocab: 1000, FirstID: 3, Newline: 13, Scale: scale}
}

func TestWorkloadsAreSeededAndShaped(t *testing.T) {
	for _, name := range Names() {
		a, err := Generate(name, opts(0.01))
		require.NoError(t, err)
		b, err := Generate(name, opts(0.01))
		require.NoError(t, err)
		var ba, bb bytes.Buffer
		require.NoError(t, WriteJSONL(&ba, a))
		require.NoError(t, WriteJSONL(&bb, b))
		assert.Equal(t, ba.String(), bb.String(), "%s: same seed, same bytes", name)
		require.NotEmpty(t, a, name)
		for _, l := range a {
			assert.NotEmpty(t, l.ContextTokens, name)
			assert.NotEmpty(t, l.ContinuationTokens, name)
			for _, tok := range append(append([]int32{}, l.ContextTokens...), l.ContinuationTokens...) {
				require.True(t, tok >= 3 && tok < 1000, "%s: token %d out of range", name, tok)
			}
		}
	}
}

func TestMetaICLShape(t *testing.T) {
	lines, err := Generate("metaicl16", opts(0.01)) // 20 tasks x 10 questions
	require.NoError(t, err)
	groups := map[string]int{}
	for _, l := range lines {
		groups[l.Group]++
		// 16 demonstrations of 20-60 tokens plus newlines, then 20-80 + newline.
		assert.GreaterOrEqual(t, len(l.ContextTokens), 16*21+21)
		assert.LessOrEqual(t, len(l.ContextTokens), 16*61+81)
		assert.LessOrEqual(t, len(l.ContinuationTokens), 5)
		assert.Less(t, *l.Label, 3)
	}
	assert.Len(t, groups, 200)
	for g, n := range groups {
		assert.True(t, n == 2 || n == 3, "group %s has %d options", g, n)
	}
	// Questions of one task share the demonstrations: the first 16*20 tokens.
	assert.Equal(t, lines[0].ContextTokens[:320], lines[len(lines)/40].ContextTokens[:320])
}

func TestLongMetaICLIsTruncatedToWindow(t *testing.T) {
	o := opts(0.005)
	o.Long, o.Window = true, 1024
	lines, err := Generate("metaicl16", o)
	require.NoError(t, err)
	for _, l := range lines {
		assert.LessOrEqual(t, len(l.ContextTokens), 1024)
	}
}

func TestUnknownWorkload(t *testing.T) {
	_, err := Generate("nope", opts(1))
	assert.ErrorContains(t, err, `unknown workload "nope"`)
}

func TestMetaICLTasksOverride(t *testing.T) {
	o := opts(0.1) // 100 questions per task
	o.Tasks = 4
	lines, err := Generate("metaicl16", o)
	require.NoError(t, err)
	tasks, questions := map[string]bool{}, map[string]bool{}
	for _, l := range lines {
		questions[l.Group] = true
		tasks[l.Group[:strings.Index(l.Group, "q")]] = true
	}
	assert.Len(t, tasks, 4)
	assert.Len(t, questions, 400)
}
