package server

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lmscore/lmscore"
)

// fakeModel stands in for *lmscore.Model in handler tests. It is a real
// (if silly) language model: a byte-level vocabulary (ids 3+b for byte b,
// 0-2 the special tokens) and a next-token distribution that is a hash of
// the whole prefix, so every log-probability depends on every earlier token
// and a wrong slice or order shows. It emulates the prefix cache the way the
// real pool works: chained hashes of full blocks, kept across calls, LRU
// eviction beyond a capacity; the Stats it returns count from that.
type fakeModel struct {
	mu sync.Mutex // Score calls are serialized, as the real model's are

	nCtx      int
	blockSize int
	capacity  int // blocks

	cache map[uint64]int64 // block hash -> last use
	clock int64
	used  atomic.Int64

	noTokenizer bool
	delay       time.Duration                          // per Score call, to hold requests in flight
	fail        func([]lmscore.Request) error          // injected faults
	calls       atomic.Int64                           // Score calls
	sizes       []int                                  // requests per call
	onCall      func(n int, opts lmscore.ScoreOptions) // observes calls
	corrupt     func(results []lmscore.Result)         // edits results before they are returned
	noAddBOS    bool                                   // the vocabulary's add_bos_token is false
}

const (
	fakeUnk    = 0
	fakeBOS    = 1
	fakeEOS    = 2
	fakeNVocab = 3 + 256
)

func newFakeModel() *fakeModel {
	return &fakeModel{nCtx: 4096, blockSize: 16, capacity: 1 << 20, cache: map[uint64]int64{}}
}

func (f *fakeModel) Info() lmscore.ModelInfo {
	return lmscore.ModelInfo{Name: "fake", Arch: "fake", NVocab: fakeNVocab, NCtx: f.nCtx, BOS: fakeBOS, AddBOS: !f.noAddBOS, Backend: "cpu"}
}

// TokenizeSpecial is *lmscore.Model's: with parseSpecial, the texts of
// <unk>, <s> and </s> are those tokens; every other byte is one token.
func (f *fakeModel) TokenizeSpecial(text string, addBOS, parseSpecial bool) ([]int32, error) {
	if f.noTokenizer {
		return nil, errors.New("fake: the model file carries no tokenizer")
	}
	var out []int32
	if addBOS && !f.noAddBOS {
		out = append(out, fakeBOS)
	}
next:
	for len(text) > 0 {
		if parseSpecial {
			for _, id := range []int32{fakeUnk, fakeBOS, fakeEOS} {
				if sp := string(f.TokenBytes(id)); strings.HasPrefix(text, sp) {
					out, text = append(out, id), text[len(sp):]
					continue next
				}
			}
		}
		out, text = append(out, 3+int32(text[0])), text[1:]
	}
	return out, nil
}

func (f *fakeModel) Tokenize(text string, addBOS bool) ([]int32, error) {
	if f.noTokenizer {
		return nil, errors.New("fake: the model file carries no tokenizer")
	}
	return f.tokens(text, addBOS), nil
}

// tokens is Tokenize for tests, which know the fake has a tokenizer.
func (f *fakeModel) tokens(text string, addBOS bool) []int32 {
	var out []int32
	if addBOS {
		out = append(out, fakeBOS)
	}
	for i := 0; i < len(text); i++ {
		out = append(out, 3+int32(text[i]))
	}
	return out
}

func (f *fakeModel) TokenBytes(id int32) []byte {
	switch id {
	case fakeUnk:
		return []byte("<unk>")
	case fakeBOS:
		return []byte("<s>")
	case fakeEOS:
		return []byte("</s>")
	}
	return []byte{byte(id - 3)}
}

func (f *fakeModel) CacheStats() lmscore.CacheStats {
	f.mu.Lock()
	cached := len(f.cache)
	f.mu.Unlock()
	return lmscore.CacheStats{BlocksTotal: f.capacity, BlocksUsed: int(f.used.Load()), BlocksCachedFree: cached, BlockBytes: 1024}
}

// fakeLogProbs is the next-token distribution after prefix: log-softmax of
// hashed logits, computed in float64 and rounded to float32 once, so that a
// token's log-probability and its entry in the top-N are the same number.
func fakeLogProbs(prefix []int32) []float32 {
	var seed uint64
	for _, t := range prefix {
		seed = fakeChain(seed, t)
	}
	return fakeDist(seed)
}

// fakeChain extends the hash of a prefix by one token (splitmix64 steps).
func fakeChain(seed uint64, t int32) uint64 {
	x := seed ^ (uint64(uint32(t))+0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	x ^= x >> 29
	return x
}

func fakeDist(seed uint64) []float32 {
	logits := make([]float64, fakeNVocab)
	maxLogit := math.Inf(-1)
	for v := range logits {
		x := seed ^ (uint64(v)+1)*0x9e3779b97f4a7c15
		x ^= x >> 31
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 29
		logits[v] = float64(x%8000)/1000 - 4
		maxLogit = max(maxLogit, logits[v])
	}
	sum := 0.0
	for _, l := range logits {
		sum += math.Exp(l - maxLogit)
	}
	lse := maxLogit + math.Log(sum)
	out := make([]float32, fakeNVocab)
	for v, l := range logits {
		out[v] = float32(l - lse)
	}
	return out
}

func topOf(lp []float32, n int) []lmscore.TokenLogProb {
	// Selection of the n best, ties to the lower id, as a stable sort
	// would give; n is small.
	out := make([]lmscore.TokenLogProb, 0, n+1)
	for id, v := range lp {
		i := len(out)
		for i > 0 && v > out[i-1].LogProb {
			i--
		}
		if i < n {
			out = slices.Insert(out, i, lmscore.TokenLogProb{Token: int32(id), LogProb: v})
			if len(out) > n {
				out = out[:n]
			}
		}
	}
	return out
}

func (f *fakeModel) Score(ctx context.Context, reqs []lmscore.Request, opts lmscore.ScoreOptions) ([]lmscore.Result, lmscore.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Add(1)
	f.sizes = append(f.sizes, len(reqs))
	if f.onCall != nil {
		f.onCall(len(reqs), opts)
	}
	start := time.Now()
	if f.fail != nil {
		if err := f.fail(reqs); err != nil {
			return nil, lmscore.Stats{}, err
		}
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, lmscore.Stats{}, ctx.Err()
		}
	}
	st := lmscore.Stats{Requests: len(reqs)}
	results := make([]lmscore.Result, len(reqs))
	f.used.Store(int64(len(reqs))) // blocks held while the call runs
	defer f.used.Store(0)
	for i, r := range reqs {
		if len(r.ContinuationTokens) == 0 {
			return nil, lmscore.Stats{}, errors.New("fake: empty continuation")
		}
		ctxToks := r.ContextTokens
		if len(ctxToks) == 0 {
			ctxToks = []int32{fakeBOS}
		}
		seq := append(append([]int32{}, ctxToks...), r.ContinuationTokens...)
		if len(seq) > f.nCtx+1 {
			return nil, lmscore.Stats{}, errors.New("fake: over the context window")
		}
		inputs := seq[:len(seq)-1]
		var seed uint64
		for _, t := range ctxToks {
			seed = fakeChain(seed, t)
		}
		st.TotalTokens += int64(len(inputs))
		computed, reused := f.runBlocks(inputs, &st)
		st.ComputedTokens += computed
		st.ReusedTokens += reused
		res := lmscore.Result{Index: i, ID: r.ID, IsGreedy: true, NTokens: len(r.ContinuationTokens)}
		for _, tgt := range r.ContinuationTokens {
			lp := fakeDist(seed)
			seed = fakeChain(seed, tgt)
			res.TokenLogProbs = append(res.TokenLogProbs, lp[tgt])
			res.LogProb += float64(lp[tgt])
			if opts.TopN > 0 {
				top := topOf(lp, opts.TopN)
				res.TopLogProbs = append(res.TopLogProbs, top)
				res.IsGreedy = res.IsGreedy && lp[tgt] >= top[0].LogProb
			}
		}
		results[i] = res
		st.Steps++
		if opts.OnProgress != nil {
			opts.OnProgress(lmscore.Progress{DoneRequests: i + 1, Requests: len(reqs), Elapsed: time.Since(start)})
		}
	}
	st.Wall = time.Since(start)
	if f.corrupt != nil {
		f.corrupt(results)
	}
	return results, st, nil
}

// runBlocks counts the inputs' tokens as computed or reused: a full block
// whose chained hash is cached is reused (as long as every block before it
// was), everything else is computed and its full blocks cached.
func (f *fakeModel) runBlocks(inputs []int32, st *lmscore.Stats) (computed, reused int64) {
	var parent uint64
	hit := true
	for b := 0; b+f.blockSize <= len(inputs); b += f.blockSize {
		h := fnv.New64a()
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], parent)
		h.Write(buf[:])
		for _, t := range inputs[b : b+f.blockSize] {
			binary.LittleEndian.PutUint32(buf[:4], uint32(t))
			h.Write(buf[:4])
		}
		parent = h.Sum64()
		f.clock++
		if _, ok := f.cache[parent]; ok && hit {
			reused += int64(f.blockSize)
		} else {
			hit = false
			computed += int64(f.blockSize)
		}
		f.cache[parent] = f.clock
		for len(f.cache) > f.capacity {
			f.evictOldest()
			st.Evictions++
		}
	}
	computed += int64(len(inputs) % f.blockSize)
	return computed, reused
}

func (f *fakeModel) evictOldest() {
	var oldest uint64
	best := int64(math.MaxInt64)
	for h, t := range f.cache {
		if t < best {
			oldest, best = h, t
		}
	}
	delete(f.cache, oldest)
}
