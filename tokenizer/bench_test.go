package tokenizer

import (
	"html"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// englishText is English prose for throughput benchmarks: the Go language
// specification and memory model that ship with every Go toolchain
// (GOROOT/doc), stripped of their HTML. About 270 KB of technical English
// with some code; no third-party data enters the repository.
// LMSCORE_BENCH_TEXT names another text file instead (for a test binary
// run where no Go toolchain is installed).
func englishText(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("LMSCORE_BENCH_TEXT"); p != "" {
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return string(raw)
	}
	var sb strings.Builder
	tag := regexp.MustCompile(`<[^>]*>`)
	for _, name := range []string{"go_spec.html", "go_mem.html"} {
		raw, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "doc", name))
		if err != nil {
			b.Skipf("benchmark text: %v (the Go toolchain's doc folder is absent)", err)
		}
		sb.WriteString(html.UnescapeString(tag.ReplaceAllString(string(raw), "")))
	}
	return sb.String()
}

// BenchmarkGPT2Encode measures GPT-2 byte-level BPE on English text, one
// goroutine (one core). Run: go test -run XXX -bench GPT2Encode ./tokenizer/
func BenchmarkGPT2Encode(b *testing.B) {
	tok := srcGPT2.get(b)
	text := englishText(b)
	lines := strings.SplitAfter(text, "\n")
	tok.Encode(text) // warm the word cache, as any real workload would
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		for _, l := range lines {
			n += len(tok.Encode(l))
		}
	}
	b.ReportMetric(float64(n)/float64(b.N)/float64(len(text)), "tokens/byte")
}

// BenchmarkGPT2EncodeNoCache is the same without the word cache: every
// piece goes through BPE, the cost of text never seen before.
func BenchmarkGPT2EncodeNoCache(b *testing.B) {
	tok := srcGPT2.get(b)
	text := englishText(b)
	lines := strings.SplitAfter(text, "\n")
	tok.bpe.noCache = true
	defer func() { tok.bpe.noCache = false }()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, l := range lines {
			tok.Encode(l)
		}
	}
}

// BenchmarkGPT2EncodeParallel encodes from all cores at once through one
// Tokenizer: each goroutine's scratch space has its own word cache, so they share no lock.
func BenchmarkGPT2EncodeParallel(b *testing.B) {
	tok := srcGPT2.get(b)
	text := englishText(b)
	lines := strings.SplitAfter(text, "\n")
	tok.Encode(text)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for _, l := range lines {
				tok.Encode(l)
			}
		}
	})
}

// BenchmarkLlama2Encode measures SentencePiece BPE (Llama-2) on the same text.
func BenchmarkLlama2Encode(b *testing.B) {
	tok := srcLlama2.get(b)
	text := englishText(b)
	lines := strings.SplitAfter(text, "\n")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, l := range lines {
			tok.Encode(l)
		}
	}
}
