package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// LoadLlama2c reads a tokenizer in llama2.c's format (tokenizer.bin,
// tok512.bin): an int32 max token length, then per id a float32 score, an
// int32 byte length and the bytes. The format stores no types or special
// ids, so they follow llama2.c's SentencePiece export: <unk> (else id 0),
// <s> (else 1) is BOS, </s> (else 2) is EOS, "<0xXX>" pieces are byte
// fallback, the rest normal.
//
// The export also rewrote the pieces, and this undoes it as llama.cpp's
// convert-llama2c-to-ggml does: SentencePiece's "▁" was written as a plain
// space and is restored, and BOS and EOS, written "\n<s>\n" and "\n</s>\n",
// get their SentencePiece names back.
func LoadLlama2c(path string) (*Vocab, error) {
	return readLlama2c(path, -1)
}

// LoadLlama2cTokens is LoadLlama2c for the tokenizer of a checkpoint whose
// vocabulary is n tokens: a file with fewer or more is an error that says
// so, rather than a vocabulary that does not match the model.
func LoadLlama2cTokens(path string, n int) (*Vocab, error) {
	if n < 0 {
		return nil, fmt.Errorf("%s: a vocabulary of %d tokens", path, n)
	}
	return readLlama2c(path, n)
}

func readLlama2c(path string, n int) (*Vocab, error) {
	return parseFile(path, func(data []byte) (*Vocab, error) {
		v, err := parseLlama2c(data, n)
		if err != nil {
			return nil, fmt.Errorf("llama2.c tokenizer: %w", err)
		}
		return v, nil
	})
}

// parseLlama2c reads want tokens, or all of data when want is negative.
func parseLlama2c(data []byte, want int) (*Vocab, error) {
	fail := func(off int, format string, args ...any) error {
		return fmt.Errorf("at byte %d: %s", off, fmt.Sprintf(format, args...))
	}
	if len(data) < 4 {
		return nil, fail(0, "%d bytes, too short for its header", len(data))
	}
	maxLen := int32(binary.LittleEndian.Uint32(data))
	if maxLen <= 0 {
		return nil, fail(0, "max token length %d in the header", maxLen)
	}
	v := NewVocab(ModelLlama)
	off := 4
	for want < 0 && off < len(data) || len(v.Tokens) < want {
		id := len(v.Tokens)
		if len(data)-off < 8 {
			if want < 0 {
				return nil, fail(off, "truncated: token %d is cut short", id)
			}
			return nil, fail(off, "truncated: token %d of %d is missing (the model's vocabulary is %d)", id, want, want)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 || int(n) > len(data)-off {
			return nil, fail(off-4, "token %d has length %d, only %d bytes remain", id, n, len(data)-off)
		}
		if n > maxLen {
			return nil, fail(off-4, "token %d has length %d, more than the declared maximum %d", id, n, maxLen)
		}
		piece := string(data[off : off+int(n)])
		off += int(n)
		switch piece {
		case "\n<s>\n":
			piece = "<s>"
		case "\n</s>\n":
			piece = "</s>"
		}
		v.Tokens = append(v.Tokens, strings.ReplaceAll(piece, " ", spmSpace))
		v.Scores = append(v.Scores, score)
	}
	if off != len(data) {
		return nil, fail(off, "%d bytes left after %d tokens: the tokenizer does not match the model's vocabulary", len(data)-off, want)
	}
	if len(v.Tokens) < 3 {
		return nil, fmt.Errorf("%d tokens, fewer than <unk>, <s>, </s>", len(v.Tokens))
	}
	// run.c hard-codes BOS 1 and EOS 2; SentencePiece puts <unk> at 0.
	v.UNK, v.BOS, v.EOS = 0, 1, 2
	for _, s := range []struct {
		id   *int32
		text string
	}{{&v.UNK, "<unk>"}, {&v.BOS, "<s>"}, {&v.EOS, "</s>"}} {
		if id := v.tokenID(s.text); id >= 0 {
			*s.id = id
		}
	}
	v.Types = make([]int32, len(v.Tokens))
	for i, t := range v.Tokens {
		switch id := int32(i); {
		case id == v.UNK:
			v.Types[i] = TypeUnknown
		case id == v.BOS || id == v.EOS:
			v.Types[i] = TypeControl
		case isByteToken(t):
			v.Types[i] = TypeByte
		default:
			v.Types[i] = TypeNormal
		}
	}
	v.AddBOS, v.SpacePrefixStated = true, true
	return v, nil
}
