package main

import (
	"flag"
	"fmt"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/internal/units"
)

// modelFlags are the flags of every command that opens a model (score and
// serve): registered in one place so that their names, defaults, short
// names and help agree.
type modelFlags struct {
	Path     string
	opts     lmscore.Options
	kvMemory string
}

// addModelFlags registers the model flags on fs.
func addModelFlags(fs *flag.FlagSet) *modelFlags {
	f := &modelFlags{}
	o := &f.opts
	fs.StringVar(&f.Path, "model", "", "GGUF model file (required)")
	fs.StringVar(&o.Backend, "backend", "cpu", "cpu or cuda")
	fs.StringVar(&o.CUDALibrary, "cuda-lib", "", "path of liblmscore_cuda.so (default $LMSCORE_CUDA_LIB, then next to the executable)")
	fs.StringVar(&o.Precision, "precision", "", "CUDA arithmetic: bf16 (default) or fp32")
	fs.IntVar(&o.Device, "device", 0, "CUDA device ordinal")
	fs.IntVar(&o.Threads, "threads", 0, "CPU worker threads (0 = all cores)")
	fs.IntVar(&o.TensorParallel, "tensor-parallel", 1, "split the model over N ranks (heads, KV heads and FFN); CPU core only so far")
	fs.IntVar(&o.BlockSize, "block-size", 16, "KV block size in tokens")
	fs.IntVar(&o.MaxBatchTokens, "max-batch-tokens", 0, "tokens per model step (default 2048 on the CPU, 8192 on CUDA)")
	fs.StringVar(&f.kvMemory, "kv-memory", "", "KV cache budget, the prefix cache's size, e.g. 2GiB (default 1GiB on the CPU, 8GiB on CUDA)")
	fs.IntVar(&o.KVBlocks, "kv-blocks", 0, "KV cache budget in blocks (overrides --kv-memory)")
	fs.BoolVar(&o.NoCache, "no-cache", false, "compute every request on its own (the baseline)")
	fs.IntVar(&o.MaxLength, "max-length", 0, "context window for left truncation (default: the model's)")
	// The short names of llama.cpp's tools.
	aliasFlag(fs, "m", "model")
	aliasFlag(fs, "t", "threads")
	aliasFlag(fs, "c", "max-length")
	aliasFlag(fs, "tp", "tensor-parallel") // vLLM's
	return f
}

// options returns the parsed flags as lmscore.Options; a bad --kv-memory is
// a usage error.
func (f *modelFlags) options() (lmscore.Options, error) {
	o := f.opts
	if f.kvMemory != "" {
		n, err := units.ParseBytes(f.kvMemory)
		if err != nil {
			return o, fmt.Errorf("%w: --kv-memory: %v", errUsage, err)
		}
		o.KVMemory = n
	}
	return o, nil
}
