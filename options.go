package lmscore

import "time"

// Options configure a Model. The zero value is valid: the CPU backend with
// every default below.
type Options struct {
	// Backend is "cpu" (the default) or "cuda".
	Backend string
	// CUDALibrary is the path of liblmscore_cuda.so. Empty: the
	// LMSCORE_CUDA_LIB environment variable, then the file next to the
	// executable.
	CUDALibrary string
	// Precision is the CUDA arithmetic: "bf16" (the default) or "fp32"
	// (the check mode). The CPU always computes in fp32.
	Precision string
	// Device is the CUDA device ordinal.
	Device int
	// Threads is the CPU worker count; 0 means all cores, and more than
	// the cores available (runtime.NumCPU) is capped to them (see
	// Model.Warnings).
	Threads int
	// TensorParallel splits the model over that many ranks (0 or 1: whole):
	// each holds 1/TensorParallel of every layer's heads, KV heads and FFN
	// (lmscore.h, lmscore_tp_group), and the ranks sum their partial rows
	// after the attention and FFN outputs. On the CPU the ranks share the
	// Threads; on CUDA rank r is device Device+r, which the CUDA core does
	// not support yet (its error says so). KVMemory is the ranks' total.
	TensorParallel int

	// BlockSize is the KV block size in tokens (default 16).
	BlockSize int
	// MaxBatchTokens caps the tokens of one step (default 2048 on the CPU,
	// 8192 on CUDA).
	MaxBatchTokens int
	// KVMemory is the KV cache budget in bytes (default 1 GiB on the CPU,
	// 8 GiB on CUDA). KVBlocks, when set, overrides it. It is a ceiling:
	// the pool's memory grows with the blocks steps reach, which is the
	// most blocks a call holds at once unless RetainCache is set.
	KVMemory int64
	KVBlocks int
	// RetainCache grows the KV pool up to its budget to keep prefixes
	// cached between Score calls: a new block is mapped before a cached
	// one is reused. Off, a call reuses cached blocks first, so the pool's
	// memory stays at the live high-water mark and a later call finds only
	// what that much memory held. Servers want it (lmscore serve sets it):
	// an lm-eval client sends one question's choices in different calls.
	RetainCache bool
	// NoCache computes every request on its own, sharing nothing: the
	// baseline that caching must match bit for bit on the CPU.
	NoCache bool
	// MaxLength is the context window; longer pairs are left-truncated.
	// 0 means the model's training context length.
	MaxLength int
}

// ScoreOptions tune one Score call.
type ScoreOptions struct {
	// TopN also reports the TopN most likely tokens at every scored position.
	TopN int
	// NoCache computes this call without sharing or the prefix cache, as
	// Options.NoCache does for every call.
	NoCache bool
	// OnResult, when set, receives each result as soon as all of its tokens
	// are scored, before Score returns (results of large inputs stream out).
	// An error from it stops the run and is returned by Score.
	OnResult func(Result) error
	// OnProgress, when set, is called after every step.
	OnProgress func(Progress)
}

// Progress reports how far a Score call has come.
type Progress struct {
	// DoneTokens counts the tokens run so far (recomputed and logit-only
	// ones included); UniqueTokens is the size of the prefix trie. With a
	// warm cache the run ends below UniqueTokens, with a tight budget above.
	DoneTokens   int64
	UniqueTokens int64
	DoneRequests int
	Requests     int
	Elapsed      time.Duration
}

// TokenLogProb is one candidate token at a scored position.
type TokenLogProb struct {
	Token   int32
	LogProb float32
}

// Stats describe one Score call.
type Stats struct {
	Requests int `json:"requests"`
	// TotalTokens counts the input tokens of every request, as a cacheless
	// engine would compute them; UniqueTokens those of the prefix trie.
	TotalTokens  int64 `json:"total_tokens"`
	UniqueTokens int64 `json:"unique_tokens"`
	// ComputedTokens ran through the model; ReusedTokens came from KV blocks
	// computed by an earlier call or shared within this one; RecomputedTokens
	// were computed again after their blocks were evicted.
	ComputedTokens   int64 `json:"computed_tokens"`
	ReusedTokens     int64 `json:"reused_tokens"`
	RecomputedTokens int64 `json:"recomputed_tokens"`
	CopiedBlocks     int64 `json:"copied_blocks"`
	Evictions        int64 `json:"evictions"`
	Steps            int   `json:"steps"`
	PeakKVBlocks     int   `json:"peak_kv_blocks"`
	PeakKVBytes      int64 `json:"peak_kv_bytes"`

	Wall time.Duration `json:"wall_ns"`
	// TokensPerSecond is TotalTokens / Wall: the rate a cacheless engine
	// would need to match this run.
	TokensPerSecond float64 `json:"tokens_per_second"`
	// ComputedPerSecond is ComputedTokens / Wall.
	ComputedPerSecond float64 `json:"computed_tokens_per_second"`
}

// ModelInfo describes an open model.
type ModelInfo struct {
	Name    string // the file's base name without .gguf
	Arch    string
	NVocab  int
	NCtx    int // the context window requests are truncated to
	BOS     int32
	AddBOS  bool
	Backend string
}

// CacheStats describe the KV block pool that persists across Score calls.
type CacheStats struct {
	BlocksTotal      int // usable blocks in the pool
	BlocksUsed       int // referenced by a running call
	BlocksCachedFree int // free but still holding a cached prefix
	// BlocksTouched counts the blocks handed out since the last reset: the
	// K/V memory the backend has mapped is this many blocks (see
	// Options.RetainCache).
	BlocksTouched int
	BlockBytes    int64 // bytes one block takes on the backend
}
