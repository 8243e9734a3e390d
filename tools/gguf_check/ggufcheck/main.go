// Command ggufcheck is the Go half of the llama.cpp agreement check
// (../check.py): it writes GGUF files with lmscore's writer for the Python
// side to read with llama.cpp and the gguf package, and dumps what lmscore
// reads from files the gguf package wrote.
//
//	ggufcheck write-random DIR   3 architectures x 4 tensor types, plus manifest.json
//	ggufcheck dump FILE          metadata, tensors (with hashes) and load result as JSON
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ggufcheck write-random DIR | dump FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "write-random":
		err = writeRandom(os.Args[2])
	case "dump":
		err = dump(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ggufcheck:", err)
		os.Exit(1)
	}
}

// Configs is the shapes used by the check: small, GQA for the rope
// architectures, and an n_ff that is not a whole number of Q8_0 blocks so
// that the F16 fallback is exercised.
func configs() []model.Config {
	base := model.Config{NVocab: 320, NEmbd: 64, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 112, NCtxTrain: 64, RopeFreqBase: 10000, NormEps: 1e-5}
	llama, qwen, gpt2 := base, base, base
	llama.Arch, llama.RopeType = model.ArchLlama, model.RopeNorm
	qwen.Arch, qwen.RopeType, qwen.RopeFreqBase = model.ArchQwen2, model.RopeNeox, 1e6
	gpt2.Arch, gpt2.RopeType, gpt2.NHeadKV, gpt2.RopeFreqBase, gpt2.NFF = model.ArchGPT2, model.RopeNone, 4, 0, 256
	return []model.Config{llama, qwen, gpt2}
}

var types = []model.TensorType{model.TypeF32, model.TypeF16, model.TypeBF16, model.TypeQ8_0}

func writeRandom(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var files []string
	for _, cfg := range configs() {
		for _, typ := range types {
			w, err := model.RandomWeights(cfg, 42, typ)
			if err != nil {
				return err
			}
			tok, err := model.FixtureTokenizer(cfg.NVocab)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("%s-%s.gguf", cfg.Arch, typ)
			path := filepath.Join(dir, name)
			name2, _ := gguf.ValueOf("lmscore random " + cfg.Arch.String())
			extra := append([]gguf.KV{{Key: "general.name", Value: name2}}, tok...)
			if err := model.WriteGGUF(path, cfg, w, extra...); err != nil {
				return err
			}
			files = append(files, name)
		}
	}
	return writeJSON(filepath.Join(dir, "manifest.json"), map[string]any{"files": files})
}

type tensorDump struct {
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	TypeID    uint32  `json:"type_id"`
	Dims      []int64 `json:"dims"`
	Offset    int64   `json:"offset"`
	SHA256    string  `json:"sha256"`
	F32SHA256 string  `json:"f32_sha256,omitempty"` // of lmscore's float32 decoding
}

type kvDump struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

func dump(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	out := map[string]any{"version": f.Version, "alignment": f.Alignment, "data_offset": f.DataOffset}
	var kvs []kvDump
	for _, kv := range f.KV {
		kvs = append(kvs, kvDump{Key: kv.Key, Type: kv.Value.TypeName(), Value: jsonable(kv.Value)})
	}
	out["kv"] = kvs
	var ts []tensorDump
	for _, ti := range f.Tensors {
		data, err := f.TensorData(ti.Name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		td := tensorDump{Name: ti.Name, Type: ti.Type.String(), TypeID: uint32(ti.Type), Dims: ti.Dims, Offset: ti.Offset, SHA256: hex.EncodeToString(sum[:])}
		mt := model.TensorType(ti.Type)
		if mt.Supported() {
			n := ti.NumElements()
			t := &model.Tensor{Name: ti.Name, Type: mt, Shape: [2]int64{ti.Dims[0], n / max(ti.Dims[0], 1)}, Data: data}
			if x, err := t.Float32s(); err == nil {
				s := sha256.Sum256(model.EncodeF32(x))
				td.F32SHA256 = hex.EncodeToString(s[:])
			}
		}
		ts = append(ts, td)
	}
	out["tensors"] = ts
	if _, err := model.FromGGUF(f); err != nil {
		out["load_error"] = err.Error()
	} else {
		out["loadable"] = true
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(out)
}

// jsonable makes a metadata value printable as JSON: NaN and infinities,
// which JSON lacks, become strings; nested arrays recurse.
func jsonable(v gguf.Value) any {
	fix := func(x float64) any {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
		return x
	}
	switch x := v.Any().(type) {
	case float32:
		return fix(float64(x))
	case float64:
		return fix(x)
	case []float32:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fix(float64(e))
		}
		return out
	case []float64:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fix(e)
		}
		return out
	case []gguf.Value:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case []uint8:
		out := make([]int, len(x)) // not base64, as encoding/json would
		for i, e := range x {
			out[i] = int(e)
		}
		return out
	}
	return v.Any()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
