package convert

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
)

type l2cShape struct{ dim, hidden, layers, heads, kv, vocab, seq int }

// writeLlama2c writes a legacy checkpoint of random floats and returns the
// floats after the header.
func writeLlama2c(t *testing.T, path string, s l2cShape, shared bool) []float32 {
	t.Helper()
	hd := s.dim / s.heads
	kvDim := hd * s.kv
	n := s.vocab*s.dim + s.layers*(2*s.dim+2*s.dim*s.dim+2*s.dim*kvDim+3*s.dim*s.hidden) + s.dim + s.seq*hd
	if !shared {
		n += s.vocab * s.dim
	}
	rng := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32() - 0.5
	}
	vocab := int32(s.vocab)
	if !shared {
		vocab = -vocab
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []int32{int32(s.dim), int32(s.hidden), int32(s.layers), int32(s.heads), int32(s.kv), vocab, int32(s.seq)})
	binary.Write(&b, binary.LittleEndian, x)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return x
}

// writeLlama2cTokenizer writes tokenizer.bin the way llama2.c's exporter
// does: spaces for "▁", BOS and EOS wrapped in newlines.
func writeLlama2cTokenizer(t *testing.T, path string, vocab int) {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, int32(8))
	piece := func(score float32, s string) {
		binary.Write(&b, binary.LittleEndian, score)
		binary.Write(&b, binary.LittleEndian, int32(len(s)))
		b.WriteString(s)
	}
	piece(0, "<unk>")
	piece(0, "\n<s>\n")
	piece(0, "\n</s>\n")
	for i := 3; i < vocab; i++ {
		if i < 3+256 {
			piece(0, fmt.Sprintf("<0x%02X>", i-3))
		} else {
			piece(float32(-(i - 259)), fmt.Sprintf(" w%d", i))
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLlama2CSynthetic(t *testing.T) {
	dir := t.TempDir()
	s := l2cShape{dim: 32, hidden: 48, layers: 2, heads: 4, kv: 2, vocab: 270, seq: 16}
	for _, shared := range []bool{true, false} {
		mp, tp, out := filepath.Join(dir, "m.bin"), filepath.Join(dir, "t.bin"), filepath.Join(dir, "m.gguf")
		x := writeLlama2c(t, mp, s, shared)
		writeLlama2cTokenizer(t, tp, s.vocab)
		if err := Llama2C(mp, tp, out); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		c := m.Config
		if c.NEmbd != 32 || c.NFF != 48 || c.NLayer != 2 || c.NHead != 4 || c.NHeadKV != 2 || c.NVocab != 270 || c.NCtxTrain != 16 ||
			c.RopeType != model.RopeNorm || c.RopeFreqBase != 10000 || c.NormEps != 1e-5 {
			t.Fatalf("config %+v", c)
		}
		// Offsets of llama2.c's layout: embedding, rms_att, wq (layer 1).
		off := s.vocab*s.dim + s.layers*s.dim + s.dim*s.dim
		sameValues(t, "wq layer 1", values(t, m.Weights.Layers[1][model.WQ]), x[off:off+s.dim*s.dim])
		sameValues(t, "embedding", values(t, m.Weights.TokEmbd), x[:s.vocab*s.dim])
		if shared != (m.Weights.Output == nil) {
			t.Fatalf("shared %v, output present %v", shared, m.Weights.Output != nil)
		}
		if !shared {
			sameValues(t, "wcls", values(t, m.Weights.Output), x[len(x)-s.vocab*s.dim:])
		}
		toks, _ := m.File.Strings("tokenizer.ggml.tokens")
		if toks[1] != "<s>" || toks[2] != "</s>" || toks[260] != "▁w260" {
			t.Fatalf("tokens %q %q %q", toks[1], toks[2], toks[260])
		}
		m.Close()
	}
	// --type q8_0: 32-wide rows quantize, 48-wide ffn_down rows fall back to F16.
	out := filepath.Join(dir, "q.gguf")
	if err := Llama2C(filepath.Join(dir, "m.bin"), filepath.Join(dir, "t.bin"), out, Options{Type: "q8_0"}); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if l := m.Weights.Layers[0]; l[model.WQ].Type != model.TypeQ8_0 || l[model.FFNDown].Type != model.TypeF16 {
		t.Fatalf("types %s %s", l[model.WQ].Type, l[model.FFNDown].Type)
	}
	// The legacy quantized types: the same choice of rows, each matrix the
	// Go quantizer's encoding of the source values (gguf-py's bytes, see
	// model.TestQuantDequantizeMatchesGGUFPy), general.file_type llama.cpp's.
	f32 := filepath.Join(dir, "f32.gguf")
	if err := Llama2C(filepath.Join(dir, "m.bin"), filepath.Join(dir, "t.bin"), f32, Options{Type: "f32"}); err != nil {
		t.Fatal(err)
	}
	src, err := model.Load(f32)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, c := range []struct {
		flag  string
		typ   model.TensorType
		ftype string
	}{{"q4_0", model.TypeQ4_0, "MOSTLY_Q4_0"}, {"q4_1", model.TypeQ4_1, "MOSTLY_Q4_1"},
		{"q5_0", model.TypeQ5_0, "MOSTLY_Q5_0"}, {"q5_1", model.TypeQ5_1, "MOSTLY_Q5_1"}} {
		out := filepath.Join(dir, c.flag+".gguf")
		if err := Llama2C(filepath.Join(dir, "m.bin"), filepath.Join(dir, "t.bin"), out, Options{Type: c.flag}); err != nil {
			t.Fatal(err)
		}
		q, err := model.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		l := q.Weights.Layers[0]
		if l[model.WQ].Type != c.typ || l[model.FFNDown].Type != model.TypeF16 {
			t.Fatalf("%s: types %s %s", c.flag, l[model.WQ].Type, l[model.FFNDown].Type)
		}
		want, err := model.Quantize(c.typ, values(t, src.Weights.Layers[0][model.WQ]))
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != string(l[model.WQ].Data) {
			t.Fatalf("%s: attn_q is not the quantized source", c.flag)
		}
		if s := model.Summarize(q.File); s.FileType != c.ftype || s.Tensors[0].Type == "" {
			t.Fatalf("%s: file type %q", c.flag, s.FileType)
		}
		q.Close()
	}
}

func TestLlama2CErrors(t *testing.T) {
	dir := t.TempDir()
	s := l2cShape{dim: 32, hidden: 48, layers: 2, heads: 4, kv: 2, vocab: 270, seq: 16}
	good, tok := filepath.Join(dir, "good.bin"), filepath.Join(dir, "tok.bin")
	writeLlama2c(t, good, s, true)
	writeLlama2cTokenizer(t, tok, s.vocab)
	gb, _ := os.ReadFile(good)
	tb, _ := os.ReadFile(tok)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	header := func(f ...int32) []byte {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, f)
		return b.Bytes()
	}
	cases := []struct {
		name, model, tok, want string
	}{
		{"truncated", write("trunc.bin", gb[:len(gb)-4]), tok, "but a checkpoint with dim 32, hidden_dim 48, 2 layers, 4 heads, 2 kv heads, vocab 270, seq_len 16 (classifier shared: true) takes"},
		{"short", write("short.bin", gb[:10]), tok, "10 bytes is too short for a llama2.c checkpoint header"},
		{"version 1", write("v1.bin", append(header(0x616b3432, 1), gb[8:]...)), tok, "llama2.c export version 1 is not supported"},
		{"bad dim", write("dim.bin", append(header(-5), gb[4:]...)), tok, "header dim is -5, want 1 to 65536"},
		{"heads", write("heads.bin", append(header(32, 48, 2, 5), gb[16:]...)), tok, "dim 32, n_heads 5, n_kv_heads 2 do not divide into whole heads"},
		{"tokenizer short", good, write("t1.bin", tb[:len(tb)-3]), "token 269 has length"},
		{"tokenizer long", good, write("t2.bin", append(append([]byte(nil), tb...), 0, 0, 0, 0)), "4 bytes left after 270 tokens"},
		{"tokenizer missing tokens", good, write("t3.bin", tb[:4]), "truncated: token 0 of 270 is missing"},
		{"no tokenizer", good, filepath.Join(dir, "none.bin"), "none.bin: no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Llama2C(c.model, c.tok, filepath.Join(dir, "o.gguf"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant %q", err, c.want)
			}
		})
	}
}

func shared(t *testing.T, parts ...string) string {
	p := filepath.Join(append([]string{"..", "..", "shared"}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is absent (../shared is only present in the workshop): %v", p, err)
	}
	return p
}

// The acceptance check of the issue: stories260K converts and reads back
// as a 5-layer, 64-wide llama with a 512-token llama tokenizer.
func TestStories260K(t *testing.T) {
	mp := shared(t, "models", "stories260K", "stories260K.bin")
	tp := shared(t, "models", "stories260K", "tok512.bin")
	out := filepath.Join(t.TempDir(), "stories260K.gguf")
	if err := Llama2C(mp, tp, out); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := model.Summarize(f)
	if !s.Loadable || s.Architecture != "llama" || s.NLayer != 5 || s.NEmbd != 64 || s.NHead != 8 || s.NHeadKV != 4 ||
		s.NFF != 172 || s.NVocab != 512 || s.NCtxTrain != 512 || s.RopeType != "norm" || *s.RopeFreqBase != 10000 || *s.NormEps != 1e-5 {
		t.Fatalf("summary %+v", s)
	}
	tk := s.Tokenizer
	if tk.Model != "llama" || tk.NTokens != 512 || tk.NByteTypes != 256 || !tk.HasScores || *tk.BOS != 1 || *tk.EOS != 2 || *tk.UNK != 0 || !*tk.AddBOS {
		t.Fatalf("tokenizer %+v", tk)
	}
	if !s.OutputTied || s.TensorCount != 2+9*5 || s.TensorTypes["F32"] != 47 || s.ParamCount != 260032 {
		t.Fatalf("tensors %d %v params %d", s.TensorCount, s.TensorTypes, s.ParamCount)
	}
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	scores, _ := f.Float32s("tokenizer.ggml.scores")
	if toks[259] != "▁t" || toks[1] != "<s>" || scores[260] != -1 {
		t.Fatalf("tokens %q %q, score %v", toks[259], toks[1], scores[260])
	}
	// The embedding is the checkpoint's first tensor, byte for byte.
	raw, _ := os.ReadFile(mp)
	emb, _ := f.TensorData(model.NameTokEmbd)
	if !bytes.Equal(emb, raw[28:28+512*64*4]) {
		t.Fatal("embedding differs from the checkpoint")
	}
}
