// Package testshared gives tests in every package the same view of
// ../shared, the read-only material beside the repository: it finds the
// folder from this file's location, so a test's package depth does not
// matter, and it skips a test with a clear message where the folder is
// absent (a clone outside the workshop).
package testshared

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/lmscore/lmscore/convert"
)

// Dir is the repository's ../shared folder (it may not exist).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared")
}

// Path is a file under ../shared, or skips t when it is absent.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir()}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("../shared/%s is absent (only present in the workshop): %v", filepath.Join(elem...), err)
	}
	return p
}

var stories struct {
	once sync.Once
	path string
	err  error
}

// Stories260KGGUF converts ../shared's stories260K (llama2.c format) to GGUF
// once per test binary and returns the file, or skips t.
func Stories260KGGUF(t testing.TB) string {
	t.Helper()
	bin := Path(t, "models", "stories260K", "stories260K.bin")
	stories.once.Do(func() {
		dir, err := os.MkdirTemp("", "lmscore-stories")
		if err != nil {
			stories.err = err
			return
		}
		stories.path = filepath.Join(dir, "stories260K.gguf")
		stories.err = convert.Llama2C(bin, filepath.Join(filepath.Dir(bin), "tok512.bin"), stories.path)
	})
	if stories.err != nil {
		t.Fatalf("converting stories260K: %v", stories.err)
	}
	return stories.path
}
