package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

// Peer names, as the drivers write them and the report orders them.
const (
	PeerHFNoCache      = "hf-nocache"      // (a) transformers, lm-eval-harness style
	PeerHFCatwalk      = "hf-catwalk"      // (b) transformers, per-context past_key_values
	PeerLMScoreNoCache = "lmscore-nocache" // (c)
	PeerLMScore        = "lmscore"         // (d)
	PeerLlamaCpp       = "llamacpp"        // (e) llama.cpp, llama-perplexity multiple-choice style
)

// PeerOrder is the report's row order within a workload.
var PeerOrder = []string{PeerLMScore, PeerLMScoreNoCache, PeerHFNoCache, PeerHFCatwalk, PeerLlamaCpp}

// PeerRun is one engine's measurement of one workload with one model: one
// line of the JSONL that the drivers (benchgpu for lmscore, the Python
// scripts under bench/peers for the others) write.
type PeerRun struct {
	Model    string `json:"model"`
	Workload string `json:"workload"`
	Peer     string `json:"peer"`

	// RunsSeconds are the timed runs, warm-up excluded; a run shorter than
	// the driver's short-run limit is repeated so that the median of at
	// least three is reported.
	RunsSeconds   []float64 `json:"runs_s,omitempty"`
	WarmupSeconds float64   `json:"warmup_s,omitempty"`
	WarmupNote    string    `json:"warmup_note,omitempty"`

	TotalTokens int64 `json:"total_tokens"`
	// ComputedTokens ran through the model, padding included.
	ComputedTokens int64 `json:"computed_tokens"`

	PeakGPUBytes int64  `json:"peak_gpu_bytes,omitempty"`
	PeakGPUHow   string `json:"peak_gpu_how,omitempty"`
	// What lmscore knows of its share of PeakGPUBytes (the ABI reports no
	// device memory): its weights as stored, and the most KV its block
	// pool has held live so far in the process (the pool grows to the
	// highest block a step names and never shrinks). The rest is the CUDA
	// context, the step workspace (activations, the dequantized weight of
	// the GEMM in flight, cuBLAS) and the pool's growth beyond live blocks.
	WeightBytes int64 `json:"weight_bytes,omitempty"`
	KVBytes     int64 `json:"kv_bytes,omitempty"`
	// LoadSeconds is the model's load onto the device (lmscore.Open).
	LoadSeconds float64 `json:"load_s,omitempty"`

	Note    string `json:"note,omitempty"`
	Error   string `json:"error,omitempty"`   // it failed: the message
	Skipped string `json:"skipped,omitempty"` // it did not run: why

	// Per request, in the workload's line order: each continuation token's
	// natural-log probability, and whether every one was the argmax.
	TokenLogProbs [][]float64 `json:"token_logprobs,omitempty"`
	IsGreedy      []bool      `json:"is_greedy,omitempty"`

	Extra map[string]any `json:"extra,omitempty"`
}

// Wall is the median timed run in seconds (0 when it did not run).
func (r *PeerRun) Wall() float64 {
	if len(r.RunsSeconds) == 0 {
		return 0
	}
	s := append([]float64{}, r.RunsSeconds...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// OK reports whether the run produced timings and scores.
func (r *PeerRun) OK() bool {
	return r.Error == "" && r.Skipped == "" && len(r.RunsSeconds) > 0
}

// AppendPeerRun writes run as one JSON line.
func AppendPeerRun(w io.Writer, run PeerRun) error {
	b, err := json.Marshal(run)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadPeerRuns reads the JSONL files the drivers wrote. A missing file is an
// error: the caller names only files that a driver was started for.
func ReadPeerRuns(paths ...string) ([]PeerRun, error) {
	var runs []PeerRun
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
		for n := 1; sc.Scan(); n++ {
			if len(sc.Bytes()) == 0 {
				continue
			}
			var r PeerRun
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %v", path, n, err)
			}
			if r.Model == "" || r.Workload == "" || r.Peer == "" {
				f.Close()
				return nil, fmt.Errorf("%s:%d: a run needs model, workload and peer", path, n)
			}
			runs = append(runs, r)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return runs, nil
}
