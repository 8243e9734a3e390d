// Command benchcpu is `make bench-cpu`: lmscore with and without its prefix
// cache on MetaICL-shaped 16-shot and 0-shot workloads, on the CPU, with
// the model's weights in F32, Q8_0 and Q4_K side by side.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/lmscore/lmscore/bench"
)

func main() {
	scale := flag.Float64("scale", 0.005, "workload scale (1 = 20 tasks x 1000 questions)")
	repeats := flag.Int("repeats", 3, "timed runs per configuration (median reported)")
	threads := flag.Int("threads", 0, "CPU threads (0 = all cores)")
	types := flag.String("types", "f32,q8_0,q4_k", "weight types, comma-separated ("+strings.Join(bench.CPUTypes, ", ")+
		"); with f32 among them each row gets its ratio to F32")
	flag.Parse()
	rows, err := bench.RunCPU(context.Background(), bench.CPUOptions{Scale: *scale, Repeats: *repeats,
		Threads: *threads, Model: bench.DefaultCPUModel, Types: strings.Split(*types, ",")}, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcpu:", err)
		os.Exit(1)
	}
	for _, r := range rows {
		if !r.BitwiseEqual {
			fmt.Fprintf(os.Stderr, "benchcpu: %s %s: cached and uncached scores differ\n", r.Workload, r.Type)
			os.Exit(1)
		}
	}
}
