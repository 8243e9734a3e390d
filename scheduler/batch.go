package scheduler

// Batch is one step of work in exactly the form of the C ABI's lmscore_batch
// (csrc/include/lmscore.h): flat, pointer-free int32 arrays, so that binding/
// hands it to the native core in one cgo call without copying or translating.
// The field comments give each array's length.
type Batch struct {
	TokenIDs  []int32 // (n_tokens)
	Positions []int32 // (n_tokens) absolute position in its sequence
	Slots     []int32 // (n_tokens) block*blockSize + offset where its K/V is written; -1: already cached, not written

	SegTokenStart []int32 // (n_segments+1) CSR over tokens, from 0 to n_tokens
	BlockIndptr   []int32 // (n_segments+1) CSR over BlockIndices
	BlockIndices  []int32 // each segment's blocks from position 0 up to its last token, in order

	// The first CopyTokens[i] slots of block CopySrc[i] go to block
	// CopyDst[i], in each layer after the step's K/V writes and before its
	// attention, in order (lmscore.h, ABI 5).
	CopySrc    []int32
	CopyDst    []int32
	CopyTokens []int32

	// Output rows: the log-probability of OutTarget[i] under the next-token
	// distribution computed at step token OutTokenIndex[i].
	OutTokenIndex []int32
	OutTarget     []int32
	TopN          int32 // also report the TopN most likely tokens per output row
}

// NumTokens is the number of tokens the step computes.
func (b *Batch) NumTokens() int { return len(b.TokenIDs) }

// NumSegments is the number of sequence segments in the step.
func (b *Batch) NumSegments() int { return max(len(b.SegTokenStart)-1, 0) }

// NumOutputs is the number of output rows the step scores.
func (b *Batch) NumOutputs() int { return len(b.OutTokenIndex) }

// Result holds one step's output rows, parallel to Batch.OutTokenIndex.
type Result struct {
	LogProb  []float32 // natural log
	IsGreedy []bool    // the target's logit equals the maximum logit
	// TopIDs and TopLogProbs are (n_outputs, TopN), row-major; empty when TopN == 0.
	TopIDs      []int32
	TopLogProbs []float32
}
