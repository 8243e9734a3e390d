package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// helpText runs a command with --help and returns what it printed on
// stdout, where --help writes (as git's and GNU tools' do).
func helpText(t *testing.T, run func(context.Context, []string) error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	runErr := run(context.Background(), []string{"--help"})
	os.Stdout = stdout
	w.Close()
	text := <-out
	if !errors.Is(runErr, flag.ErrHelp) {
		t.Fatalf("--help: error %v, want flag.ErrHelp", runErr)
	}
	return text
}

// helpFlags parses flag.PrintDefaults output: each flag's name and the
// lines that describe it (type, default and help).
func helpFlags(text string) map[string]string {
	flags := map[string]string{}
	name := ""
	head := regexp.MustCompile(`^  -(\S+)(.*)$`)
	for _, line := range strings.Split(text, "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			name = m[1]
			flags[name] = m[2]
		} else if name != "" && strings.HasPrefix(line, "    ") {
			flags[name] += "\n" + strings.TrimSpace(line)
		} else {
			name = ""
		}
	}
	return flags
}

// TestServeAndScoreShareModelFlags: `serve --help` and `score --help` list
// the same model flags, with the same types, defaults and help.
func TestServeAndScoreShareModelFlags(t *testing.T) {
	score, serve := helpFlags(helpText(t, runScore)), helpFlags(helpText(t, runServe))
	if _, ok := score["in"]; !ok {
		t.Fatalf("no --in in score --help: the help was not parsed: %v", score)
	}
	if _, ok := serve["addr"]; !ok {
		t.Fatalf("no --addr in serve --help: the help was not parsed: %v", serve)
	}
	fs := flag.NewFlagSet("model", flag.ContinueOnError)
	addModelFlags(fs)
	var model []string // sorted, as VisitAll visits
	fs.VisitAll(func(f *flag.Flag) { model = append(model, f.Name) })
	isModel := func(name string) bool {
		i := sort.SearchStrings(model, name)
		return i < len(model) && model[i] == name
	}
	for _, want := range []string{"backend", "block-size", "cuda-lib", "kv-blocks", "kv-memory", "max-length", "model", "no-cache"} {
		if !isModel(want) {
			t.Errorf("the model flags lack --%s", want)
		}
	}
	for _, name := range model {
		sc, okScore := score[name]
		sv, okServe := serve[name]
		switch {
		case !okScore || !okServe:
			t.Errorf("--%s: in score --help %v, in serve --help %v", name, okScore, okServe)
		case sc != sv:
			t.Errorf("--%s differs:\nscore: %s\nserve: %s", name, sc, sv)
		}
	}
	// Flags the commands share beyond these would be model flags declared twice.
	for name := range score {
		if _, ok := serve[name]; ok && !isModel(name) {
			t.Errorf("--%s is declared by both score and serve outside addModelFlags", name)
		}
	}
}
