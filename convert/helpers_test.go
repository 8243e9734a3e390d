package convert

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/lmscore/lmscore/model"
)

// hfTensor is one tensor of a synthetic Hugging Face checkpoint, kept as
// float32 for checking and encoded as dtype when written.
type hfTensor struct {
	name  string
	dtype string // F32, F16 or BF16
	shape []int64
	x     []float32
}

func randTensor(rng *rand.Rand, name, dtype string, shape ...int64) hfTensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	x := make([]float32, n)
	for i := range x {
		// Multiples of 1/64 in [-2, 2) are exact in F16 and BF16, so the
		// float32 copy stays the truth whatever the dtype.
		x[i] = float32(rng.IntN(256)-128) / 64
	}
	return hfTensor{name: name, dtype: dtype, shape: shape, x: x}
}

func (t hfTensor) bytes() []byte {
	switch t.dtype {
	case "F16":
		return model.EncodeF16(t.x)
	case "BF16":
		return model.EncodeBF16(t.x)
	}
	return model.EncodeF32(t.x)
}

// writeSafetensors writes tensors to path in the safetensors format.
func writeSafetensors(t *testing.T, path string, tensors []hfTensor) {
	t.Helper()
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, ts := range tensors {
		b := ts.bytes()
		hdr[ts.name] = map[string]any{"dtype": ts.dtype, "shape": ts.shape, "data_offsets": []int{len(data), len(data) + len(b)}}
		data = append(data, b...)
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	out = append(append(out, hb...), data...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSharded splits tensors over n files with an index, as
// save_pretrained does for large models.
func writeSharded(t *testing.T, dir string, tensors []hfTensor, n int) {
	t.Helper()
	weightMap := map[string]string{}
	for s := 0; s < n; s++ {
		var part []hfTensor
		name := filepathShard(s, n)
		for i, ts := range tensors {
			if i%n == s {
				part = append(part, ts)
				weightMap[ts.name] = name
			}
		}
		writeSafetensors(t, filepath.Join(dir, name), part)
	}
	writeJSON(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
}

func filepathShard(i, n int) string {
	return "model-0000" + string(rune('1'+i)) + "-of-0000" + string(rune('0'+n)) + ".safetensors"
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// byteLevelVocab is a small GPT-2-style vocabulary: the 256 byte symbols
// of GPT-2's byte-to-unicode table, then merged tokens.
func byteLevelVocab() (map[string]int, []string) {
	var bs []int
	for b := '!'; b <= '~'; b++ {
		bs = append(bs, int(b))
	}
	for b := 0xA1; b <= 0xAC; b++ {
		bs = append(bs, b)
	}
	for b := 0xAE; b <= 0xFF; b++ {
		bs = append(bs, b)
	}
	cs := append([]int(nil), bs...)
	n := 0
	for b := 0; b < 256; b++ {
		found := false
		for _, x := range bs {
			if x == b {
				found = true
			}
		}
		if !found {
			bs = append(bs, b)
			cs = append(cs, 256+n)
			n++
		}
	}
	idx := make([]int, 256)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return bs[idx[a]] < bs[idx[b]] })
	vocab := map[string]int{}
	for id, i := range idx {
		vocab[string(rune(cs[i]))] = id
	}
	merges := []string{"Ġ t", "h e", "Ġt he"}
	for _, m := range []string{"Ġt", "he", "Ġthe"} {
		vocab[m] = len(vocab)
	}
	return vocab, merges
}

func jsonUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
