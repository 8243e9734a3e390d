package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lmscore/lmscore/internal/testshared"
)

// TestServeSIGTERM runs the real binary: `lmscore serve` on ../shared's
// stories260K, a large request in flight, then SIGTERM. The request must
// get its full answer and the process must exit 0.
func TestServeSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: skipped with -short")
	}
	gguf := testshared.Stories260KGGUF(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "lmscore")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "serve", "--model", gguf, "--addr", "127.0.0.1:0", "--threads", "1", "--output-cache", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	listening := regexp.MustCompile(`listening on (http://\S+)`)
	url := ""
	for url == "" && lines.Scan() {
		if m := listening.FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatal("the server printed no listening line")
	}
	go io.Copy(io.Discard, stderr)

	// 64 distinct prompts of 500 tokens: long enough to be in flight when
	// the signal comes.
	var prompts [][]int32
	for i := range 64 {
		p := []int32{1}
		for k := range 499 {
			p = append(p, int32(3+(i*7919+k*104729)%509))
		}
		prompts = append(prompts, p)
	}
	body, _ := json.Marshal(map[string]any{"model": "stories260K", "prompt": prompts, "echo": true, "max_tokens": 0, "logprobs": 1})
	type answer struct {
		code    int
		choices int
		err     error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(string(body)))
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var out struct {
			Choices []json.RawMessage `json:"choices"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		done <- answer{code: resp.StatusCode, choices: len(out.Choices), err: err}
	}()

	// Wait until the request is in flight, as /metrics reports it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v := scrape(t, url, "lmscore_requests_in_flight"); v == 1 {
			break
		}
		select {
		case a := <-done:
			t.Skipf("the request finished (%d) before it could be caught in flight: this machine is too fast for the test", a.code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the request never showed as in flight")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil || a.code != http.StatusOK || a.choices != len(prompts) {
		t.Fatalf("the request in flight at SIGTERM: status %d, %d choices, error %v", a.code, a.choices, a.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("lmscore serve after SIGTERM: %v (want exit status 0)", err)
	}
}

// scrape reads one unlabelled sample from /metrics (-1 when absent).
func scrape(t *testing.T, url, name string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if strings.HasPrefix(sc.Text(), name+" ") {
			if _, err := fmt.Sscan(strings.TrimPrefix(sc.Text(), name+" "), &v); err == nil {
				return v
			}
		}
	}
	return -1
}
