// Command bf16budget prints what bf16 storage alone costs a model, per
// choice of what stays fp32: the floor under the CUDA core's bf16 error
// against the exact (float64) pass, computed on the CPU.
//
//	go run ./bench/cmd/bf16budget --model M.gguf [--sequences 40]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lmscore/lmscore/bench"
	"github.com/lmscore/lmscore/model"
)

func main() {
	path := flag.String("model", "", "GGUF model (small: the pass is float64 and unbatched)")
	n := flag.Int("sequences", 40, "random sequences of 30-59 tokens")
	seed := flag.Uint64("seed", 77, "sequence seed")
	flag.Parse()
	if err := run(*path, *n, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "bf16budget:", err)
		os.Exit(1)
	}
}

func run(path string, n int, seed uint64) error {
	if path == "" {
		return fmt.Errorf("--model is required")
	}
	m, err := model.Load(path)
	if err != nil {
		return err
	}
	defer m.Close()
	vs, err := bench.BF16Budget(m, n, seed)
	if err != nil {
		return err
	}
	fmt.Printf("%-48s %10s %10s\n", "what is bf16", "mean |Δ|", "max |Δ|")
	for _, v := range vs {
		fmt.Printf("%-48s %10.4f %10.4f\n", v.Name, v.MeanAbsDiff, v.MaxAbsDiff)
	}
	return nil
}
