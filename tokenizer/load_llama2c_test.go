package tokenizer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// llama2cTokenizer writes tokenizer.bin the way llama2.c's exporter does:
// spaces for "▁", BOS and EOS wrapped in newlines.
func llama2cTokenizer(maxLen int32, pieces ...string) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, maxLen)
	for i, p := range pieces {
		binary.Write(&b, binary.LittleEndian, float32(-i))
		binary.Write(&b, binary.LittleEndian, int32(len(p)))
		b.WriteString(p)
	}
	return b.Bytes()
}

func TestLlama2cTiny(t *testing.T) {
	data := llama2cTokenizer(8, "<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", " the", "a b")
	v, err := LoadLlama2cTokens(writeTemp(t, "tok.bin", data), 6)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"<unk>", "<s>", "</s>", "<0x0A>", "▁the", "a▁b"}
	types := []int32{TypeUnknown, TypeControl, TypeControl, TypeByte, TypeNormal, TypeNormal}
	for i := range want {
		if v.Tokens[i] != want[i] || v.Types[i] != types[i] || v.Scores[i] != float32(-i) {
			t.Errorf("token %d: %q type %d score %v, want %q type %d", i, v.Tokens[i], v.Types[i], v.Scores[i], want[i], types[i])
		}
	}
	if v.UNK != 0 || v.BOS != 1 || v.EOS != 2 || !v.AddBOS || v.AddEOS || v.NoSpacePrefix || !v.SpacePrefixStated {
		t.Errorf("%+v", v)
	}
	all, err := LoadLlama2c(writeTemp(t, "tok.bin", data))
	if err != nil || fmt.Sprint(all) != fmt.Sprint(v) {
		t.Errorf("LoadLlama2c differs from LoadLlama2cTokens(6): %v", err)
	}
}

func TestLlama2cErrors(t *testing.T) {
	good := llama2cTokenizer(8, "<unk>", "\n<s>\n", "\n</s>\n", " a")
	for _, c := range []struct {
		name string
		data []byte
		n    int // tokens expected, -1 for LoadLlama2c
		want string
	}{
		{"empty", nil, -1, "at byte 0: 0 bytes, too short for its header"},
		{"no max length", llama2cTokenizer(0, "a"), -1, "max token length 0 in the header"},
		{"cut in a length", good[:len(good)-5], -1, "at byte 44: truncated: token 3 is cut short"},
		{"cut in a piece", good[:len(good)-1], -1, "at byte 48: token 3 has length 2, only 1 bytes remain"},
		{"cut in a score", llama2cTokenizer(8, "a")[:8], -1, "at byte 4: truncated: token 0 is cut short"},
		{"negative length", binary.LittleEndian.AppendUint32(llama2cTokenizer(8, "a")[:8], 1<<32-1), -1, "at byte 8: token 0 has length -1"},
		{"too long", llama2cTokenizer(2, "abc"), -1, "at byte 8: token 0 has length 3, more than the declared maximum 2"},
		{"too few tokens", llama2cTokenizer(8, "<unk>", "<s>"), -1, "2 tokens, fewer than <unk>, <s>, </s>"},
		{"fewer than the model", good, 5, "at byte 54: truncated: token 4 of 5 is missing (the model's vocabulary is 5)"},
		{"more than the model", good, 3, "at byte 44: 10 bytes left after 3 tokens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "tok.bin", c.data)
			var err error
			if c.n < 0 {
				_, err = LoadLlama2c(path)
			} else {
				_, err = LoadLlama2cTokens(path, c.n)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), path+": llama2.c tokenizer: ") {
				t.Fatalf("got %v\nwant %q after the file's name", err, c.want)
			}
		})
	}
}
