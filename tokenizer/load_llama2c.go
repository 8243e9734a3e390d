package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
)

// LoadLlama2c reads a tokenizer in llama2.c's format (tokenizer.bin,
// tok512.bin): an int32 max token length, then per id a float32 score, an
// int32 byte length and the bytes. The format stores no types or special
// ids, so they follow llama2.c's SentencePiece export: id 0 <unk>, 1 <s>
// (BOS), 2 </s> (EOS), "<0xXX>" pieces are byte fallback, the rest normal.
//
// The export also rewrote the pieces, and this undoes it as llama.cpp's
// convert-llama2c-to-ggml does: SentencePiece's "▁" was written as a plain
// space and is restored, and BOS and EOS, written "\n<s>\n" and "\n</s>\n",
// get their SentencePiece names back.
func LoadLlama2c(path string) (*Vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := parseLlama2c(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func parseLlama2c(data []byte) (*Vocab, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("llama2.c tokenizer: %d bytes, too short for its header", len(data))
	}
	maxLen := int32(binary.LittleEndian.Uint32(data))
	if maxLen <= 0 {
		return nil, fmt.Errorf("llama2.c tokenizer: max token length %d in the header", maxLen)
	}
	v := NewVocab(ModelLlama)
	for off := 4; off < len(data); {
		id := len(v.Tokens)
		if off+8 > len(data) {
			return nil, fmt.Errorf("llama2.c tokenizer: token %d: truncated at byte %d", id, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 || n > maxLen || int(n) > len(data)-off {
			return nil, fmt.Errorf("llama2.c tokenizer: token %d: length %d at byte %d (max %d, %d bytes left)", id, n, off-4, maxLen, len(data)-off)
		}
		text := strings.ReplaceAll(string(data[off:off+int(n)]), " ", spmSpace)
		off += int(n)
		typ := TypeNormal
		switch {
		case id == 0:
			text, typ = "<unk>", TypeUnknown
		case id == 1:
			text, typ = "<s>", TypeControl
		case id == 2:
			text, typ = "</s>", TypeControl
		case isByteToken(text):
			typ = TypeByte
		}
		v.Tokens = append(v.Tokens, text)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	if len(v.Tokens) < 3 {
		return nil, fmt.Errorf("llama2.c tokenizer: %d tokens, fewer than <unk>, <s>, </s>", len(v.Tokens))
	}
	v.UNK, v.BOS, v.EOS = 0, 1, 2
	v.AddBOS = true
	return v, nil
}

// isByteToken reports whether text is a byte-fallback piece, "<0x41>".
func isByteToken(text string) bool {
	if len(text) != 6 || text[:3] != "<0x" || text[5] != '>' {
		return false
	}
	hex := func(c byte) bool { return ('0' <= c && c <= '9') || ('A' <= c && c <= 'F') }
	return hex(text[3]) && hex(text[4])
}
