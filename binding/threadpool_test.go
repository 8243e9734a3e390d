package binding

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestThreadPoolStartFailure builds testdata/threadpool_fail.cpp against the
// CPU core's thread pool and runs it: a worker thread that cannot start must
// become an OUT_OF_MEMORY error, with the started threads joined, and not
// std::terminate.
func TestThreadPoolStartFailure(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses RLIMIT_AS and /proc")
	}
	cxx, err := exec.LookPath("c++")
	if err != nil {
		t.Skip("no C++ compiler")
	}
	bin := filepath.Join(t.TempDir(), "threadpool_fail")
	build := exec.Command(cxx, "-std=c++17", "-O1", "-pthread", "-DLMSCORE_TEST_CORES=16",
		"-o", bin, filepath.Join("testdata", "threadpool_fail.cpp"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("thread start failure: %v (want a clean OUT_OF_MEMORY error)", err)
	}
	_ = os.Remove(bin)
}
