package lmscore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testshared"
)

// A README example is a fenced sh block right after one of these markers:
//
//	<!-- example -->                 run verbatim from the repository root
//	<!-- example skip: REASON -->    shown, not run here (a GPU, the network)
const exampleMarker = "<!-- example"

type readmeExample struct {
	line int    // the block's first line in README.md
	code string // the block's text
	skip string // why it does not run here; "" when it runs
}

// readmeExamples extracts the marked blocks. A marker that is not followed
// by a fenced block, or an unknown marker, is an error: a typo must not
// silently drop an example from the test.
func readmeExamples(path string) ([]readmeExample, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var out []readmeExample
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, exampleMarker) {
			continue
		}
		body, ok := strings.CutSuffix(strings.TrimPrefix(l, exampleMarker), "-->")
		body = strings.TrimSpace(body)
		ex := readmeExample{line: i + 2}
		switch {
		case !ok:
			return nil, fmt.Errorf("README.md:%d: marker not closed on its line: %q", i+1, l)
		case body == "":
		case strings.HasPrefix(body, "skip:") && strings.TrimSpace(body[len("skip:"):]) != "":
			ex.skip = strings.TrimSpace(body[len("skip:"):])
		default:
			return nil, fmt.Errorf("README.md:%d: unknown marker %q (want <!-- example --> or <!-- example skip: why -->)", i+1, l)
		}
		if i+1 >= len(lines) || (lines[i+1] != "```sh" && lines[i+1] != "```bash") {
			return nil, fmt.Errorf("README.md:%d: the marker is not followed by a ```sh block", i+1)
		}
		end := i + 2
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("README.md:%d: the example's block is not closed", i+2)
		}
		ex.code = strings.Join(lines[i+2:end], "\n") + "\n"
		out = append(out, ex)
		i = end
	}
	return out, nil
}

// TestReadmeExamples runs the README's marked examples verbatim, each from
// the root of a fresh copy of the repository: its committed files (linked,
// not copied), no bin/ and no out/, so that no example leans on `make
// demo` or on another example having run. ../shared sits beside the copy
// as beside the repository; an example that names it skips where it is
// absent.
func TestReadmeExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the README's examples (about 10 s warm, a minute cold)")
	}
	for _, tool := range []string{"bash", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the examples need %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs(".")
	require.NoError(t, err)
	examples, err := readmeExamples(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	runnable := 0
	for _, ex := range examples {
		if ex.skip == "" {
			runnable++
		}
	}
	require.Positive(t, runnable, "README.md marks no runnable example")

	// One fixed folder per checkout rather than t.TempDir(): go build
	// caches by package directory, so the same path keeps `make build`
	// to seconds after the first run.
	sum := sha256.Sum256([]byte(root))
	base := filepath.Join(os.TempDir(), fmt.Sprintf("lmscore-readme-%x", sum[:6]))
	repo := filepath.Join(base, "repo")
	require.NoError(t, os.RemoveAll(base))
	require.NoError(t, os.MkdirAll(repo, 0o755))
	t.Cleanup(func() { os.RemoveAll(base) })
	ignored, err := ignoredTopLevel(filepath.Join(root, ".gitignore"))
	require.NoError(t, err)
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	for _, e := range entries {
		if name := e.Name(); !ignored[name] && name != ".git" {
			require.NoError(t, os.Symlink(filepath.Join(root, name), filepath.Join(repo, name)))
		}
	}
	shared := testshared.Dir()
	haveShared := false
	if _, err := os.Stat(shared); err == nil {
		haveShared = true
		require.NoError(t, os.Symlink(shared, filepath.Join(base, "shared")))
	}

	for _, ex := range examples {
		t.Run(fmt.Sprintf("line%d", ex.line), func(t *testing.T) {
			if ex.skip != "" {
				t.Skipf("README.md:%d: %s", ex.line, ex.skip)
			}
			if !haveShared && strings.Contains(ex.code, "../shared") {
				t.Skipf("README.md:%d names ../shared, absent here", ex.line)
			}
			for _, fresh := range []string{"bin", "out"} {
				require.NoError(t, os.RemoveAll(filepath.Join(repo, fresh)))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail")
			cmd.Dir = repo
			cmd.Stdin = strings.NewReader(ex.code)
			cmd.Env = append(os.Environ(), "PATH="+filepath.Join(repo, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("README.md:%d failed (%v) after %s:\n--- example\n%s--- output\n%s", ex.line, err, time.Since(start).Round(time.Millisecond), ex.code, out)
			}
			t.Logf("README.md:%d ran in %s", ex.line, time.Since(start).Round(time.Millisecond))
			assert.FileExists(t, filepath.Join(repo, "bin", "lmscore"), "every runnable example starts from make build or make demo")
		})
	}
}

// ignoredTopLevel reads the root-anchored names of .gitignore ("/out/"):
// what a fresh clone does not have.
func ignoredTopLevel(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "/") {
			names[strings.Trim(l, "/")] = true
		}
	}
	return names, sc.Err()
}

// TestReadmeExampleMarkers: the extractor finds blocks, reads skip
// reasons, and refuses a marker it cannot use.
func TestReadmeExampleMarkers(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "README.md")
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	got, err := readmeExamples(write("# x\n<!-- example -->\n```sh\necho a\necho b\n```\ntext\n```sh\nnot marked\n```\n<!-- example skip: needs a GPU -->\n```bash\nnvidia-smi\n```\n"))
	require.NoError(t, err)
	assert.Equal(t, []readmeExample{{line: 3, code: "echo a\necho b\n"}, {line: 12, code: "nvidia-smi\n", skip: "needs a GPU"}}, got)
	for _, bad := range []string{
		"<!-- example -->\ntext\n```sh\necho\n```\n",
		"<!-- example -->\n```sh\necho\n",
		"<!-- examples -->\n```sh\necho\n```\n",
		"<!-- example skip: -->\n```sh\necho\n```\n",
	} {
		_, err := readmeExamples(write(bad))
		assert.Error(t, err, "%q", bad)
	}
}
