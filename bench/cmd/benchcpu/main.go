// Command benchcpu is `make bench-cpu`: lmscore with and without its prefix
// cache on MetaICL-shaped 16-shot and 0-shot workloads, on the CPU.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/lmscore/lmscore/bench"
)

func main() {
	scale := flag.Float64("scale", 0.005, "workload scale (1 = 20 tasks x 1000 questions)")
	repeats := flag.Int("repeats", 3, "timed runs per configuration (median reported)")
	threads := flag.Int("threads", 0, "CPU threads (0 = all cores)")
	flag.Parse()
	rows, err := bench.RunCPU(context.Background(), bench.CPUOptions{Scale: *scale, Repeats: *repeats,
		Threads: *threads, Model: bench.DefaultCPUModel}, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcpu:", err)
		os.Exit(1)
	}
	for _, r := range rows {
		if !r.BitwiseEqual {
			fmt.Fprintf(os.Stderr, "benchcpu: %s: cached and uncached scores differ\n", r.Workload)
			os.Exit(1)
		}
	}
}
