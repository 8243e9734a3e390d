package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// SentencePiece's tokenizer.model is a protobuf ModelProto. Only a few
// fields matter here, so it is decoded by hand (the project takes no
// protobuf dependency):
//
//	ModelProto      1: repeated SentencePiece pieces, 2: TrainerSpec, 3: NormalizerSpec
//	SentencePiece   1: string piece, 2: float score, 3: Type (NORMAL=1 by default)
//	TrainerSpec     3: ModelType (UNIGRAM=1, BPE=2, WORD=3, CHAR=4),
//	                40: unk_id (0), 41: bos_id (1), 42: eos_id (2), 43: pad_id (-1)
//	NormalizerSpec  3: add_dummy_prefix (true)

type protoReader struct {
	b    []byte
	off  int
	path string
	what string
}

func (r *protoReader) fail(format string, args ...any) error {
	return fmt.Errorf("convert: %s: %s at byte %d: %s", r.path, r.what, r.off, fmt.Sprintf(format, args...))
}

func (r *protoReader) varint() (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, r.fail("bad varint")
	}
	r.off += n
	return v, nil
}

// field reads one field: its number and wire type, and for length-delimited
// fields the payload; for varint and fixed fields the value in v.
func (r *protoReader) field() (num int, wire int, v uint64, payload []byte, err error) {
	key, err := r.varint()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	num, wire = int(key>>3), int(key&7)
	switch wire {
	case 0:
		v, err = r.varint()
	case 1:
		if len(r.b)-r.off < 8 {
			return 0, 0, 0, nil, r.fail("truncated fixed64")
		}
		v = binary.LittleEndian.Uint64(r.b[r.off:])
		r.off += 8
	case 5:
		if len(r.b)-r.off < 4 {
			return 0, 0, 0, nil, r.fail("truncated fixed32")
		}
		v = uint64(binary.LittleEndian.Uint32(r.b[r.off:]))
		r.off += 4
	case 2:
		var n uint64
		if n, err = r.varint(); err != nil {
			return
		}
		if n > uint64(len(r.b)-r.off) {
			return 0, 0, 0, nil, r.fail("field %d of %d bytes, only %d remain", num, n, len(r.b)-r.off)
		}
		payload = r.b[r.off : r.off+int(n)]
		r.off += int(n)
	default:
		return 0, 0, 0, nil, r.fail("unsupported wire type %d (not a SentencePiece model?)", wire)
	}
	return num, wire, v, payload, err
}

func (r *protoReader) done() bool { return r.off >= len(r.b) }

var spmModelTypes = map[uint64]string{1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}

// readSentencePiece reads tokenizer.model into a "llama" vocabulary.
func readSentencePiece(path string) (*vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	v := newVocab("llama")
	v.unk, v.bos, v.eos, v.pad = 0, 1, 2, -1 // TrainerSpec defaults
	v.addSpacePrefix = boolPtr(true)
	modelType := uint64(1)
	top := &protoReader{b: data, path: path, what: "ModelProto"}
	for !top.done() {
		num, wire, _, payload, err := top.field()
		if err != nil {
			return nil, err
		}
		if wire != 2 {
			continue
		}
		sub := &protoReader{b: payload, path: path}
		switch num {
		case 1:
			sub.what = fmt.Sprintf("piece %d", len(v.tokens))
			piece, score, typ := "", float32(0), int32(TokenNormal)
			for !sub.done() {
				n, w, x, p, err := sub.field()
				if err != nil {
					return nil, err
				}
				switch {
				case n == 1 && w == 2:
					piece = string(p)
				case n == 2 && w == 5:
					score = math.Float32frombits(uint32(x))
				case n == 3 && w == 0:
					if x < 1 || x > 6 {
						return nil, sub.fail("unknown piece type %d", x)
					}
					typ = int32(x)
				}
			}
			v.tokens = append(v.tokens, piece)
			v.scores = append(v.scores, score)
			v.types = append(v.types, typ)
		case 2:
			sub.what = "TrainerSpec"
			for !sub.done() {
				n, w, x, _, err := sub.field()
				if err != nil {
					return nil, err
				}
				if w != 0 {
					continue
				}
				id := int(int32(x)) // int32 fields: negatives are 10-byte varints
				switch n {
				case 3:
					modelType = x
				case 40:
					v.unk = id
				case 41:
					v.bos = id
				case 42:
					v.eos = id
				case 43:
					v.pad = id
				}
			}
		case 3:
			sub.what = "NormalizerSpec"
			for !sub.done() {
				n, w, x, _, err := sub.field()
				if err != nil {
					return nil, err
				}
				if n == 3 && w == 0 {
					v.addSpacePrefix = boolPtr(x != 0)
				}
			}
		}
	}
	if modelType != 2 {
		name := spmModelTypes[modelType]
		if name == "" {
			name = fmt.Sprint(modelType)
		}
		return nil, fmt.Errorf("convert: %s: SentencePiece model type %s is not supported (BPE only)", path, name)
	}
	if len(v.tokens) == 0 {
		return nil, fmt.Errorf("convert: %s: no pieces (not a SentencePiece model?)", path)
	}
	for _, id := range []*int{&v.unk, &v.bos, &v.eos, &v.pad} {
		if *id >= len(v.tokens) {
			return nil, fmt.Errorf("convert: %s: special token id %d is outside the %d pieces", path, *id, len(v.tokens))
		}
		if *id < 0 {
			*id = -1
		}
	}
	v.addBOS, v.addEOS = boolPtr(true), boolPtr(false)
	return v, nil
}
