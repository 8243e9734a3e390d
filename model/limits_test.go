package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lmscore/lmscore/gguf"
)

// editedGGUF writes a small model, then a copy with key set to v.
func editedGGUF(t *testing.T, arch Arch, key string, v any) string {
	t.Helper()
	cfg := testConfig(arch)
	cfg.NLayer = 3
	w, err := RandomWeights(cfg, 11, TypeF16)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.gguf")
	if err := WriteGGUF(src, cfg, w); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gw := gguf.NewWriterFrom(f)
	gw.Set(arch.String()+"."+key, v)
	dst := filepath.Join(dir, "edited.gguf")
	if err := gw.WriteFile(dst); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dst); st.Size() > 1<<20 {
		t.Fatalf("test file is %d bytes, want under 1 MB", st.Size())
	}
	return dst
}

// Hyperparameters that size allocations are checked against the tensors
// before anything is sized by them: a small file that claims a million
// layers fails at once, naming the key and what the tensors say.
func TestHyperparametersCheckedAgainstTensors(t *testing.T) {
	for _, tc := range []struct {
		arch Arch
		key  string
		v    any
		want []string
	}{
		{ArchLlama, "block_count", uint32(1_000_000), []string{"llama.block_count is 1000000", "3 layers"}},
		{ArchLlama, "block_count", uint32(1<<31 - 1), []string{"llama.block_count is 2147483647", "3 layers"}},
		{ArchLlama, "block_count", uint32(2), []string{"unexpected tensors for llama with 2 layers", "blk.2."}},
		{ArchGPT2, "block_count", uint32(1_000_000), []string{"gpt2.block_count is 1000000", "3 layers"}},
		{ArchGPT2, "embedding_length", uint32(1 << 30), []string{"(n_head + 2·n_head_kv) × head_dim", "exceeds 2147483647"}},
		// With RoPE, the rotary width already disagrees (ConfigFromGGUF says so).
		{ArchLlama, "embedding_length", uint32(1 << 30), []string{"llama.rope.dimension_count is 16", "the head width is 268435456"}},
		{ArchLlama, "attention.head_count_kv", uint32(4), []string{`tensor "blk.0.attn_k.weight" has shape [64 32], want [64 64]`}},
		{ArchLlama, "attention.head_count", uint32(8), []string{"llama.rope.dimension_count is 16", "the head width is 8"}},
		{ArchQwen2, "attention.head_count_kv", uint32(1), []string{`tensor "blk.0.attn_k.weight" has shape [64 32], want [64 16]`}},
		{ArchLlama, "feed_forward_length", uint32(1 << 30), []string{"llama.feed_forward_length is 1073741824", "blk.0.ffn_up.weight", "80"}},
		{ArchGPT2, "feed_forward_length", uint32(1 << 30), []string{"gpt2.feed_forward_length is 1073741824", "blk.0.ffn_up.weight", "80"}},
		{ArchLlama, "context_length", uint32(1<<31 - 1), []string{"llama.context_length is 2147483647", "16777216"}},
	} {
		t.Run(tc.arch.String()+"/"+tc.key, func(t *testing.T) {
			path := editedGGUF(t, tc.arch, tc.key, tc.v)
			start := time.Now()
			m, err := Load(path)
			elapsed := time.Since(start)
			if err == nil {
				m.Close()
				t.Fatalf("loaded with %s = %v", tc.key, tc.v)
			}
			t.Logf("%v: %v", elapsed, err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if elapsed > 100*time.Millisecond {
				t.Errorf("took %v, want < 100 ms", elapsed)
			}
		})
	}
}
