package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/testshared"
)

// lmscoreRun runs the command line as main does and returns the exit status
// and what it wrote; stdin is empty.
func lmscoreRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runMain(context.Background(), args, streams{strings.NewReader(""), &out, &errOut})
	return code, out.String(), errOut.String()
}

func TestHelpAndVersionExitZeroOnStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}, {"help", "score"}, {"score", "--help"}, {"convert", "-h"}, {"version"}, {"--version"}} {
		code, stdout, stderr := lmscoreRun(t, args...)
		if code != 0 || stdout == "" || stderr != "" {
			t.Errorf("lmscore %s: exit %d, stdout %q, stderr %q; want exit 0 and the text on stdout", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	_, top, _ := lmscoreRun(t, "--help")
	for name, c := range commands {
		if !strings.Contains(top, "  "+name+" ") || !strings.Contains(top, c.summary) {
			t.Errorf("lmscore --help lacks %s and its summary:\n%s", name, top)
		}
	}
	for _, args := range [][]string{{}, {"bogus"}, {"help", "bogus"}, {"score", "--bogus"}} {
		code, stdout, stderr := lmscoreRun(t, args...)
		if code != 2 || stdout != "" || stderr == "" {
			t.Errorf("lmscore %s: exit %d, stdout %q, stderr %q; want exit 2 and a message on stderr", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	if _, _, stderr := lmscoreRun(t, "score", "--bogus"); !strings.Contains(stderr, "lmscore score: flag provided but not defined: -bogus\nRun 'lmscore score --help' for usage.\n") {
		t.Errorf("bad flag: %q", stderr)
	}
}

// Every command's help comes from the one formatter: usage line,
// description, example and every flag its FlagSet defines, with no bare
// "Usage of" and no backquote turned into a value name.
func TestEveryCommandHelpListsEveryFlag(t *testing.T) {
	for name, c := range commands {
		code, help, _ := lmscoreRun(t, name, "--help")
		if code != 0 {
			t.Errorf("%s --help: exit %d", name, code)
		}
		if _, same, _ := lmscoreRun(t, "help", name); same != help {
			t.Errorf("lmscore help %s differs from lmscore %s --help", name, name)
		}
		for _, want := range []string{"lmscore " + name + ": " + c.summary + "\n", "\nusage: lmscore " + name, "\nexample:\n  ", "\nflags:\n"} {
			if !strings.Contains(help, want) {
				t.Errorf("%s --help lacks %q:\n%s", name, want, help)
			}
		}
		if ex := help[strings.Index(help, "\nexample:"):strings.Index(help, "\nflags:")]; !strings.Contains(ex, "lmscore "+name+" ") {
			t.Errorf("%s --help: the example does not run lmscore %s:\n%s", name, name, ex)
		}
		if strings.Contains(help, "Usage of") {
			t.Errorf("%s --help is Go's bare usage:\n%s", name, help)
		}
		fs, _ := c.newFlagSet()
		n := 0
		fs.VisitAll(func(f *flag.Flag) {
			n++
			if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Name) + `( |$)`).MatchString(help) {
				t.Errorf("%s --help does not list -%s:\n%s", name, f.Name, help)
			}
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s -%s: a backquote in the help becomes its value name: %q", name, f.Name, f.Usage)
			}
		})
		if n == 0 {
			t.Errorf("%s defines no flags", name)
		}
	}
}

func TestVersion(t *testing.T) {
	_, out, _ := lmscoreRun(t, "version")
	for _, want := range []string{"lmscore ", "\ncommit   ", "\ngo       go", "\ncpu      ", "\ncuda     "} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	if _, err := lmscore.FindCUDALibrary(""); errors.Is(err, lmscore.ErrNoCgo) != strings.Contains(out, "cpu      not built (no cgo)") {
		t.Errorf("the cpu line disagrees with the build:\n%s", out)
	}
	b := buildInfoFrom(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}}, true)
	if b.Version != "devel" || b.Commit != "0123abcd" || !b.Modified {
		t.Errorf("from vcs settings: %+v", b)
	}
	b = buildInfoFrom(&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, true)
	if b.Version != "v1.2.3" || b.Commit != "unknown" || b.Modified {
		t.Errorf("without vcs settings: %+v", b)
	}
	if b := buildInfoFrom(nil, false); b.Commit != "unknown" || b.Version != "devel" {
		t.Errorf("without build info: %+v", b)
	}
}

func TestModelFlagAliases(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	mf := addModelFlags(fs)
	if err := fs.Parse([]string{"-m", "a.gguf", "-t", "3", "-c", "128"}); err != nil {
		t.Fatal(err)
	}
	o, _ := mf.options()
	if mf.Path != "a.gguf" || o.Threads != 3 || o.MaxLength != 128 {
		t.Errorf("-m -t -c: path %q, threads %d, max length %d", mf.Path, o.Threads, o.MaxLength)
	}
	for _, name := range []string{"plan", "tokenize", "inspect"} {
		fs, _ := commands[name].newFlagSet()
		if f := fs.Lookup("m"); f == nil || f.Value != fs.Lookup("model").Value {
			t.Errorf("%s: -m is not -model", name)
		}
	}
}

func TestServeHostPort(t *testing.T) {
	for args, want := range map[string]string{
		"":                             "127.0.0.1:8080",
		"--addr 0.0.0.0:9":             "0.0.0.0:9",
		"--port 9000":                  "127.0.0.1:9000",
		"--host ::1":                   "[::1]:8080",
		"--host localhost --port 0":    "localhost:0",
		"--addr 127.0.0.1:1 --port 2":  "usage: give --addr host:port or --host and --port, not both",
		"--host h --addr 127.0.0.1:1":  "usage: give --addr host:port or --host and --port, not both",
		"--addr nocolon":               `usage: --addr "nocolon"`,
		"--model m.gguf --port 1 here": "usage: --model is required and no arguments follow the flags",
	} {
		fs, _ := commands["serve"].newFlagSet()
		if err := fs.Parse(strings.Fields(args)); err != nil {
			t.Fatal(err)
		}
		got, err := listenAddr(fs, fs.Lookup("addr").Value.String(), fs.Lookup("host").Value.String(), fs.Lookup("port").Value.String())
		if err != nil {
			if !errors.Is(err, errUsage) {
				t.Errorf("%s: %v is not a usage error", args, err)
			}
			got = err.Error()
		}
		if strings.Contains(args, "here") {
			got = runServe(context.Background(), strings.Fields(args)).Error()
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%q: got %q, want %q", args, got, want)
		}
	}
}

func TestErrorsNameTheCommandOnce(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&lmscore.BudgetError{Msg: "a KV budget of 2 bytes holds no block"}, "lmscore score: a KV budget of 2 bytes holds no block"},
		{fmt.Errorf("in.jsonl:2: %w", &lmscore.BudgetError{Msg: "too small"}), "lmscore score: in.jsonl:2: too small"},
		{fmt.Errorf("%w: --model is required", errUsage), "lmscore score: --model is required"},
		{errors.New("lmscore score: lmscore: twice"), "lmscore score: twice"},
		{errors.New("score: named"), "lmscore score: named"},
	} {
		if got := formatError("score", tc.err); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.err, got, tc.want)
		}
	}
	// The finding itself, through the command.
	model := testshared.Stories260KGGUF(t)
	code, _, stderr := lmscoreRun(t, "score", "-m", model, "--kv-memory", "2")
	if code != 1 || !strings.HasPrefix(stderr, "lmscore score: a KV budget of 2 bytes") || strings.Count(stderr, "lmscore") != 1 {
		t.Errorf("exit %d, stderr %q: want one \"lmscore score: \" and the budget", code, stderr)
	}
}

func TestInspectTakesModel(t *testing.T) {
	model := testshared.Stories260KGGUF(t)
	code, out, stderr := lmscoreRun(t, "inspect", "--model", model)
	var s struct {
		Architecture string `json:"architecture"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Architecture != "llama" || stderr != "" {
		t.Errorf("inspect --model: exit %d, %q, stderr %q", code, out, stderr)
	}
	code, old, stderr := lmscoreRun(t, "inspect", model)
	if code != 0 || old != out || !strings.Contains(stderr, "deprecated: use --model") {
		t.Errorf("inspect M.gguf: exit %d, stderr %q, same output %v", code, stderr, old == out)
	}
	for _, args := range [][]string{{"inspect"}, {"inspect", "-m", model, model}, {"inspect", "a", "b"}} {
		if code, _, _ := lmscoreRun(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// requests writes a two-task multiple-choice file for stories260K.
func requests(t *testing.T) string {
	const lily = "Once upon a time, there was a little girl named Lily. She loved to play outside in the"
	const tom = "Tom was very hungry, so he asked his mom for"
	var b strings.Builder
	for _, l := range []map[string]any{
		{"task": "lily", "group": "q1", "label": 0, "context": lily, "continuation": " park."},
		{"task": "lily", "group": "q1", "context": lily, "continuation": " spoon."},
		{"task": "lily", "group": "q2", "label": 0, "context": lily, "continuation": " spoon."}, // wrong: park wins
		{"task": "lily", "group": "q2", "context": lily, "continuation": " park."},
		{"task": "tom", "group": "q1", "label": 0, "context": tom, "continuation": " some food."},
		{"task": "tom", "group": "q1", "context": tom, "continuation": " a big rock."},
	} {
		line, _ := json.Marshal(l)
		b.Write(append(line, '\n'))
	}
	return writeFile(t, "req.jsonl", b.String())
}

// Missing output folders are made; the table and the standard errors come
// at the end; --progress log writes plain lines.
func TestScoreOutputsTableAndProgressLog(t *testing.T) {
	model := testshared.Stories260KGGUF(t)
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "a", "b", "res.jsonl"), filepath.Join(dir, "c", "summary.json")
	code, stdout, stderr := lmscoreRun(t, "score", "-m", model, "--in", requests(t), "--out", out, "--summary", sum, "--progress", "log")
	if code != 0 || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("results: %v", err)
	}
	for _, want := range []string{
		"lmscore: done: ",
		"| Tasks | Metric        |  Value | ± Stderr | n |\n",
		"| lily  | acc           | 0.5000 | ± 0.5000 | 2 |\n",
		"| tom   | acc           | 1.0000 |      N/A | 1 |\n",
		"| all   | acc           | 0.6667 | ± 0.3333 | 3 |\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("--progress log drew a bar:\n%q", stderr)
	}
	raw, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		MultipleChoice struct {
			AccStderr *float64 `json:"acc_stderr"`
			Tasks     []struct {
				Task      string   `json:"task"`
				Groups    int      `json:"groups"`
				AccStderr *float64 `json:"acc_stderr"`
			} `json:"tasks"`
		} `json:"multiple_choice"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	mc := s.MultipleChoice
	if mc.AccStderr == nil || len(mc.Tasks) != 2 || mc.Tasks[0].Task != "lily" || mc.Tasks[0].AccStderr == nil || mc.Tasks[1].AccStderr != nil {
		t.Errorf("summary: %s", raw)
	}
	if code, _, stderr := lmscoreRun(t, "score", "-m", model, "--progress", "fancy"); code != 2 || !strings.Contains(stderr, "--progress") {
		t.Errorf("--progress fancy: exit %d, %q", code, stderr)
	}
}

// On a terminal (any character device: /dev/null stands in for one) score
// says it is reading stdin; from a file or a pipe it does not.
func TestScoreStdinNotice(t *testing.T) {
	model := testshared.Stories260KGGUF(t)
	tty, err := os.Open(os.DevNull)
	if err != nil {
		t.Skip(err)
	}
	defer tty.Close()
	const notice = "lmscore: reading requests from stdin (a terminal)"
	var errOut bytes.Buffer
	code := runMain(context.Background(), []string{"score", "-m", model}, streams{tty, &bytes.Buffer{}, &errOut})
	if code != 1 || !strings.HasPrefix(errOut.String(), notice) || !strings.Contains(errOut.String(), "stdin: no requests to score") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	runMain(context.Background(), []string{"score", "-m", model}, streams{strings.NewReader(""), &bytes.Buffer{}, &errOut})
	if strings.Contains(errOut.String(), notice) {
		t.Errorf("a notice for a pipe: %q", errOut.String())
	}
}

// convert makes the output folder, names no temporary file and reports what
// it wrote; an HF import shows progress.
func TestConvertReportsAndMakesFolders(t *testing.T) {
	dir := t.TempDir()
	bin := testshared.Path(t, "models", "stories260K", "stories260K.bin")
	out := filepath.Join(dir, "new", "deeper", "s.gguf")
	code, stdout, stderr := lmscoreRun(t, "convert", "llama2c", "--model", bin, "--tokenizer", filepath.Join(filepath.Dir(bin), "tok512.bin"), "--out", out)
	if code != 0 || stdout != "" || !regexp.MustCompile(`^lmscore convert: wrote .*s\.gguf: llama, 260\.0k parameters, 47 tensors \(F32 ×47\), 1\.01 MiB in \S+\n$`).MatchString(stderr) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	hf := filepath.Join("..", "..", "internal", "hfcheck", "testdata", "llama")
	out = filepath.Join(dir, "hf", "l.gguf")
	code, _, stderr = lmscoreRun(t, "convert", "hf", "--dir", hf, "--out", out, "--type", "f16", "--progress", "log")
	if code != 0 || !strings.Contains(stderr, "lmscore convert: done: 21/21 tensors in ") ||
		!regexp.MustCompile(`wrote .*l\.gguf: llama, \S+ parameters, 21 tensors \(F16 ×\d+, F32 ×\d+\)`).MatchString(stderr) {
		t.Errorf("hf: exit %d, stderr %q", code, stderr)
	}
	blocker := writeFile(t, "file", "")
	code, _, stderr = lmscoreRun(t, "convert", "hf", "--dir", hf, "--out", filepath.Join(blocker, "x.gguf"))
	if code != 1 || strings.Contains(stderr, ".tmp") {
		t.Errorf("an output under a file: exit %d, stderr %q (no temporary name)", code, stderr)
	}
	for _, args := range []string{"convert", "convert xyz --out a", "convert hf --dir d --out o --model m", "convert llama2c --model m --tokenizer t --out o --dir d", "convert hf llama2c --dir d --out o"} {
		if code, _, _ := lmscoreRun(t, strings.Fields(args)...); code != 2 {
			t.Errorf("%s: exit %d, want 2", args, code)
		}
	}
}
