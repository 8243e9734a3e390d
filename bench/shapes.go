package bench

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/lmscore/lmscore/model"
)

// Shape is one model shape of `make bench`: a real model's configuration,
// with random weights. bench/peers/hf_build.py holds the same configs as
// transformers configs, for the runs that need the Hugging Face folder
// (the transformers peers); TestShapesMatchHFBuild checks the two agree.
type Shape struct {
	Name   string
	Config model.Config
	// Tied: the output is the token embedding (no output.weight).
	Tied bool
	// Rope is Llama 3.1's RoPE scaling, written as rope_freqs.weight; nil: none.
	Rope *model.Llama3Rope
	// SizeOnly shapes are too large for the timed suite and its peers: the
	// size test (BENCH_SIZE_TEST) loads them and scores one workload.
	SizeOnly bool
}

// llama31Rope is rope_scaling of Llama-3.1-8B's and -70B's config.json.
var llama31Rope = &model.Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}

// ShapeNames lists the shapes Shapes knows, in the order the README gives them.
var ShapeNames = []string{"llama-3.2-1b", "gpt2-large", "llama-3.1-8b", "qwen3-8b", "gemma-2-9b", "llama-3.1-70b"}

// Shapes returns the named shape. tiny keeps the vocabulary, the window
// and every feature, and makes the model 2 layers deep: 64 wide for the
// two shapes `make bench` had first (as hf_build.py has made them), 256
// wide for the others, so that their rows are whole K-quant super-blocks
// and a tiny Q4_K_M model is quantized as the real one is.
func Shapes(name string, tiny bool) (Shape, error) {
	llama := func(vocab, embd, layers, heads, kv, ff int) model.Config {
		return model.Config{Arch: model.ArchLlama, NVocab: vocab, NEmbd: embd, NLayer: layers, NHead: heads, NHeadKV: kv,
			NFF: ff, NCtxTrain: 131072, RopeType: model.RopeNorm, RopeFreqBase: 500000, NormEps: 1e-5}
	}
	var s Shape
	switch name {
	case "llama-3.2-1b":
		// Plain RoPE, as hf_build.py has always built it (results committed
		// before lmscore converted llama3 scaling): the cost is the same.
		s = Shape{Config: llama(128256, 2048, 16, 32, 8, 8192), Tied: true}
		if tiny {
			s.Config.NEmbd, s.Config.NFF, s.Config.NLayer, s.Config.NHead, s.Config.NHeadKV = 64, 128, 2, 4, 2
		}
	case "gpt2-large":
		s = Shape{Config: model.Config{Arch: model.ArchGPT2, NVocab: 50257, NEmbd: 1280, NLayer: 36, NHead: 20, NHeadKV: 20,
			NFF: 4 * 1280, NCtxTrain: 2304, RopeType: model.RopeNone, NormEps: 1e-5}, Tied: true}
		if tiny {
			s.Config.NEmbd, s.Config.NFF, s.Config.NLayer, s.Config.NHead, s.Config.NHeadKV = 64, 256, 2, 4, 4
		}
	case "llama-3.1-8b":
		s = Shape{Config: llama(128256, 4096, 32, 32, 8, 14336), Rope: llama31Rope}
	case "llama-3.1-70b":
		s = Shape{Config: llama(128256, 8192, 80, 64, 8, 28672), Rope: llama31Rope, SizeOnly: true}
	case "qwen3-8b":
		s = Shape{Config: model.Config{Arch: model.ArchQwen3, NVocab: 151936, NEmbd: 4096, NLayer: 36, NHead: 32, NHeadKV: 8,
			NEmbdHead: 128, NFF: 12288, NCtxTrain: 40960, RopeType: model.RopeNeox, RopeFreqBase: 1000000, NormEps: 1e-6}}
	case "gemma-2-9b":
		// Sliding layers are the even ones (transformers' layer_types,
		// llama.cpp's swa pattern 2); query_pre_attn_scalar 256 is the head
		// width, so the attention scale is the default 1/16.
		swa := make([]bool, 42)
		for l := range swa {
			swa[l] = l%2 == 0
		}
		s = Shape{Config: model.Config{Arch: model.ArchGemma2, NVocab: 256000, NEmbd: 3584, NLayer: 42, NHead: 16, NHeadKV: 8,
			NEmbdHead: 256, NFF: 14336, NCtxTrain: 8192, RopeType: model.RopeNeox, RopeFreqBase: 10000, NormEps: 1e-6,
			AttnSoftcap: 50, FinalSoftcap: 30, NSWA: 4096, SWALayers: swa}, Tied: true}
	default:
		return Shape{}, fmt.Errorf("unknown shape %q (have %s)", name, strings.Join(ShapeNames, ", "))
	}
	s.Name = name
	if tiny && name != "llama-3.2-1b" && name != "gpt2-large" {
		c := &s.Config
		c.NEmbd, c.NLayer, c.NHead, c.NHeadKV, c.NFF = 256, 2, 4, 2, 512
		if c.NEmbdHead != 0 {
			// Gemma 2's heads are wider than n_embd/n_head; the tiny one's too.
			c.NEmbdHead = 64
			if s.Config.Arch == model.ArchGemma2 {
				c.NEmbdHead = 128
			}
		}
		if c.SWALayers != nil {
			c.SWALayers = c.SWALayers[:2]
		}
	}
	if c := &s.Config; c.NEmbdHead == c.NEmbd/c.NHead {
		c.NEmbdHead = 0 // the default, as a file read back has it
	}
	return s, s.Config.Validate()
}

// WeightTypes are the weight variants `make bench` runs (BENCH_TYPES).
var WeightTypes = []string{"bf16", "q4_k_m"}

// VariantName is the report's name of a shape with weights of typ: the
// shape's own name for bf16 (the weights the transformers peers read), the
// shape and the type otherwise.
func VariantName(shape, typ string) string {
	if typ == "bf16" {
		return shape
	}
	return shape + "-" + typ
}

var layerName = regexp.MustCompile(`^blk\.(\d+)\.(.+)$`)

// Q4KM is the type of each matrix in llama-quantize's Q4_K_M mix
// (llama_tensor_get_type): Q6_K for the output and, on llama.cpp's
// use_more_bits layers (the first and last eighth, and every third between:
// half of them), for attn_v and ffn_down; Q4_K elsewhere, the token
// embedding included. llama.cpp also raises a 70B's other attn_v to Q5_K;
// that is left out (0.1% of the file). Rows that are not whole super-blocks
// fall back to F16, as model.QuantizeWeights does.
func Q4KM(cfg model.Config) func(name string, shape [2]int64) model.TensorType {
	n := cfg.NLayer
	moreBits := func(i int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }
	return func(name string, shape [2]int64) model.TensorType {
		typ := model.TypeQ4_K
		if name == model.NameOutput {
			typ = model.TypeQ6_K
		} else if m := layerName.FindStringSubmatch(name); m != nil && (m[2] == "attn_v.weight" || m[2] == "ffn_down.weight") {
			if l, _ := strconv.Atoi(m[1]); moreBits(l) {
				typ = model.TypeQ6_K
			}
		}
		if shape[0]%int64(typ.BlockSize()) != 0 {
			return model.TypeF16
		}
		return typ
	}
}

// typeOf returns the tensor types of a weight variant.
func typeOf(cfg model.Config, typ string) (func(string, [2]int64) model.TensorType, error) {
	switch typ {
	case "bf16":
		return func(string, [2]int64) model.TensorType { return model.TypeBF16 }, nil
	case "q4_k_m":
		return Q4KM(cfg), nil
	}
	return nil, fmt.Errorf("unknown weight type %q (have %s)", typ, strings.Join(WeightTypes, ", "))
}

// Skeleton is the model of shape s with weights of typ, every tensor named,
// typed and shaped but without data: what ShapeOf and the file size need,
// and what RandomModel fills.
func Skeleton(s Shape, typ string) (*model.Model, error) {
	types, err := typeOf(s.Config, typ)
	if err != nil {
		return nil, err
	}
	m := &model.Model{Config: s.Config}
	w := &m.Weights
	w.Layers = make([][model.LayerRoleCount]*model.Tensor, s.Config.NLayer)
	slots := map[string]**model.Tensor{model.NameTokEmbd: &w.TokEmbd, model.NamePosEmbd: &w.PosEmbd,
		model.NameOutputNorm: &w.OutputNorm, model.NameOutputNormB: &w.OutputNormB, model.NameOutput: &w.Output,
		model.NameRopeFreqs: &w.RopeFreqs}
	for l := range w.Layers {
		for r := range model.LayerRoleCount {
			slots[model.LayerTensorName(l, r)] = &w.Layers[l][r]
		}
	}
	for _, spec := range model.TensorSpecs(s.Config) {
		// As model.RandomWeights chooses: no optional tensor (biases) but
		// an untied output and Llama 3.1's frequency factors.
		want := spec.Required || (spec.Name == model.NameOutput && !s.Tied) || (spec.Name == model.NameRopeFreqs && s.Rope != nil)
		if !want {
			continue
		}
		slot, ok := slots[spec.Name]
		if !ok {
			return nil, fmt.Errorf("bench: %s: no slot for tensor %s", s.Name, spec.Name)
		}
		t := &model.Tensor{Name: spec.Name, Type: model.TypeF32, Shape: spec.Shape}
		if spec.Shape[1] > 1 {
			t.Type = types(spec.Name, spec.Shape)
		}
		*slot = t
	}
	return m, nil
}

// TensorBytes is the size of the tensors' data as stored: what a core that
// keeps the weights as they are (the CUDA core in bf16 mode: quantized
// blocks stay quantized) holds of them.
func TensorBytes(m *model.Model) int64 {
	var n int64
	each(&m.Weights, func(t *model.Tensor) {
		if b, err := t.Type.RowBytes(t.Shape[0]); err == nil {
			n += b * t.Shape[1]
		}
	})
	return n
}

func each(w *model.Weights, f func(*model.Tensor)) {
	for _, t := range []*model.Tensor{w.TokEmbd, w.PosEmbd, w.OutputNorm, w.OutputNormB, w.Output, w.RopeFreqs} {
		if t != nil {
			f(t)
		}
	}
	for l := range w.Layers {
		for _, t := range w.Layers[l] {
			if t != nil {
				f(t)
			}
		}
	}
}

// chunkValues is the unit of RandomModel's parallel draw: whole K-quant
// super-blocks, each chunk its own random stream, so that the weights do
// not depend on the number of workers.
const chunkValues = 1 << 20

// RandomModel makes the model of shape s with random weights of typ,
// reproducible from seed, on workers goroutines (0: one per core).
//
// The values are those model.RandomWeights draws (matrices uniform in
// ±sqrt(3/fan-in), embeddings in ±1, norms in [0.9, 1.1]) and the K-quant
// matrices are model.RandomBlocks of the amplitude model.QuantizeWeights
// would measure on them (the same bound), but drawn in parallel chunks:
// RandomWeights and QuantizeWeights draw one serial stream, which takes
// minutes for an 8B model and needs a 70B's 140 GB of bf16 values before
// its 40 GB of blocks exist.
func RandomModel(s Shape, typ string, seed uint64, workers int) (*model.Model, error) {
	m, err := Skeleton(s, typ)
	if err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	type chunk struct {
		t          *model.Tensor
		index      int
		first, end int64 // values
	}
	var chunks []chunk
	var setupErr error
	each(&m.Weights, func(t *model.Tensor) {
		if t.Name == model.NameRopeFreqs {
			rf, err := s.Rope.RopeFreqsTensor(s.Config)
			if err != nil {
				setupErr = err
			}
			t.Data = rf.Data
			return
		}
		n := t.Shape[0] * t.Shape[1]
		rowBytes, err := t.Type.RowBytes(t.Shape[0])
		if err != nil {
			setupErr = err
			return
		}
		t.Data = make([]byte, rowBytes*t.Shape[1])
		for i, first := 0, int64(0); first < n; i, first = i+1, first+chunkValues {
			chunks = append(chunks, chunk{t, i, first, min(first+chunkValues, n)})
		}
	})
	if setupErr != nil {
		return nil, fmt.Errorf("bench: %w", setupErr)
	}
	// Largest tensors first, so that no worker is left with the embedding
	// at the end: the chunks are of one size, so this is the tensor order.
	slices.SortStableFunc(chunks, func(a, b chunk) int {
		return int(b.t.Shape[0]*b.t.Shape[1]>>20) - int(a.t.Shape[0]*a.t.Shape[1]>>20)
	})
	// RandomBlocks returns each chunk's blocks in a new slice, copied and
	// dropped: collected early, that garbage stays small beside the model
	// (a 70B's 40 GB would otherwise take twice that, near the host's RAM).
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	jobs := make(chan chunk)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				if err := fillChunk(c.t, c.index, c.first, c.end, seed); err != nil {
					errs <- err
					for range jobs {
					}
					return
				}
			}
		}()
	}
	for _, c := range chunks {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return m, m.Weights.Check(m.Config)
}

// fillChunk draws values first..end of t from the stream of (seed, t's
// name, index).
func fillChunk(t *model.Tensor, index int, first, end int64, seed uint64) error {
	h := fnv.New64a()
	h.Write([]byte(t.Name))
	rng := rand.New(rand.NewPCG(seed^h.Sum64(), uint64(index)))
	lo, hi := valueRange(t)
	switch t.Type {
	case model.TypeF32:
		for i := first; i < end; i++ {
			binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(float32(lo+(hi-lo)*rng.Float64())))
		}
	case model.TypeF16, model.TypeBF16:
		// Encoded in place: a float32 copy of each chunk would be garbage
		// as large as the model, and the heap would grow to hold it.
		enc := model.F32ToBF16
		if t.Type == model.TypeF16 {
			enc = model.F32ToF16
		}
		for i := first; i < end; i++ {
			binary.LittleEndian.PutUint16(t.Data[2*i:], enc(float32(lo+(hi-lo)*rng.Float64())))
		}
	default:
		bs := int64(t.Type.BlockSize())
		blockBytes, err := t.Type.RowBytes(bs)
		if err != nil {
			return err
		}
		b, err := model.RandomBlocks(t.Type, int((end-first)/bs), hi, rng)
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		copy(t.Data[first/bs*blockBytes:], b)
	}
	return nil
}

// valueRange is model.RandomWeights' distribution for t: uniform in [lo, hi].
func valueRange(t *model.Tensor) (lo, hi float64) {
	switch {
	case t.Shape[1] > 1 && t.Name != model.NameTokEmbd && t.Name != model.NamePosEmbd:
		a := math.Sqrt(3 / float64(t.Shape[0]))
		return -a, a
	case t.Shape[1] > 1:
		return -1, 1
	case t.Name == model.NameOutputNorm || strings.HasSuffix(t.Name, "_norm.weight"):
		return 0.9, 1.1
	}
	return -0.1, 0.1
}
