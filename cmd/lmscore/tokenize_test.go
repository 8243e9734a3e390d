package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/tokenizer"
)

// tinyVocabGGUF writes a small SentencePiece vocabulary as a GGUF file.
func tinyVocabGGUF(t *testing.T, addBOS bool) string {
	t.Helper()
	w := gguf.NewWriter()
	w.Set("general.architecture", "llama")
	w.Set(tokenizer.KeyModel, "llama")
	w.Set(tokenizer.KeyTokens, []string{"<unk>", "<s>", "</s>", "\u2581", "a", "b", "\u2581a", "\u2581b", "<0x0A>"})
	w.Set(tokenizer.KeyScores, []float32{0, 0, 0, -1, -1, -1, -2, -2, 0})
	w.Set(tokenizer.KeyTokenType, []int32{2, 3, 3, 1, 1, 1, 1, 1, 6})
	w.Set(tokenizer.KeyBOS, uint32(1))
	w.Set(tokenizer.KeyEOS, uint32(2))
	w.Set(tokenizer.KeyAddBOS, addBOS)
	path := filepath.Join(t.TempDir(), "vocab.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func openTok(t *testing.T, path string) *tokenizer.Tokenizer {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenizeLines(t *testing.T) {
	tok := openTok(t, tinyVocabGGUF(t, true))
	// The last line has no newline; "\r\n" endings are accepted.
	in := "\"a b\"\n\"\"\r\n\"b\\na\"\n\"<s>a\""
	// "\n" has no token but a byte one; "<s>" is text here, and its three
	// characters, which have neither, are one unknown token (SentencePiece
	// folds a run of them).
	want := [][]int32{{1, 6, 7}, {1}, {1, 7, 8, 4}, {1, 3, 0, 4}}
	var out bytes.Buffer
	if err := tokenizeLines(context.Background(), tok, strings.NewReader(in), &out, true, false); err != nil {
		t.Fatal(err)
	}
	got := parseIDLines(t, out.String())
	if len(got) != len(want) {
		t.Fatalf("%d output lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("line %d: %v, want %v", i+1, got[i], want[i])
		}
	}

	// --no-bos, and --special reads "<s>" as BOS.
	out.Reset()
	if err := tokenizeLines(context.Background(), tok, strings.NewReader("\"a\"\n\"<s>a\"\n"), &out, false, true); err != nil {
		t.Fatal(err)
	}
	if got := parseIDLines(t, out.String()); !slices.Equal(got[0], []int32{6}) || !slices.Equal(got[1], []int32{1, 6}) {
		t.Errorf("no BOS, special: %v, want [[6] [1 6]]", got)
	}
}

func TestTokenizeLinesBadInput(t *testing.T) {
	tok := openTok(t, tinyVocabGGUF(t, false))
	var out bytes.Buffer
	err := tokenizeLines(context.Background(), tok, strings.NewReader("\"a\"\nnot json\n\"b\"\n"), &out, false, false)
	if err == nil || !strings.Contains(err.Error(), "stdin line 2") {
		t.Fatalf("error %v, want one naming stdin line 2", err)
	}
	// The line before the bad one was answered.
	if got := parseIDLines(t, out.String()); len(got) != 1 || !slices.Equal(got[0], []int32{6}) {
		t.Errorf("output before the error: %q", out.String())
	}
	for _, bad := range []string{"\n", "42\n", "[\"a\"]\n"} {
		if err := tokenizeLines(context.Background(), tok, strings.NewReader(bad), &out, false, false); err == nil {
			t.Errorf("input %q: no error", bad)
		}
	}
}

func TestRunTokenizeUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--model"}, {"--model", "m.gguf", "extra"}} {
		if err := runTokenize(context.Background(), args); !errors.Is(err, errUsage) {
			t.Errorf("args %q: error %v, want a usage error", args, err)
		}
	}
	if err := runTokenize(context.Background(), []string{"--model", filepath.Join(t.TempDir(), "missing.gguf")}); err == nil || errors.Is(err, errUsage) {
		t.Errorf("missing file: error %v, want a file error", err)
	}
}

func parseIDLines(t *testing.T, s string) [][]int32 {
	t.Helper()
	var rows [][]int32
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		var ids []int32
		if err := json.Unmarshal([]byte(line), &ids); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		rows = append(rows, ids)
	}
	return rows
}
