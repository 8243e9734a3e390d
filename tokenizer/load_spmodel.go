package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// LoadSentencePieceModel reads a SentencePiece .model file (a ModelProto
// protobuf, such as Llama-2's tokenizer.model) as a llama vocabulary with
// BOS added, as llama.cpp's converter writes it. Only BPE models are
// accepted; unigram models tokenize differently.
func LoadSentencePieceModel(path string) (*Vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := parseSentencePieceModel(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// The fields of sentencepiece_model.proto that matter here.
const (
	spFieldPieces     = 1 // ModelProto.pieces
	spFieldTrainer    = 2 // ModelProto.trainer_spec
	spFieldNormalizer = 3 // ModelProto.normalizer_spec

	spPieceText  = 1 // SentencePiece.piece
	spPieceScore = 2 // SentencePiece.score
	spPieceType  = 3 // SentencePiece.type (default NORMAL)

	spTrainerModelType = 3  // TrainerSpec.model_type: 1 unigram, 2 BPE
	spTrainerUnk       = 40 // TrainerSpec.unk_id (default 0)
	spTrainerBOS       = 41 // bos_id (default 1)
	spTrainerEOS       = 42 // eos_id (default 2)
	spTrainerPad       = 43 // pad_id (default -1)

	spNormDummyPrefix = 3 // NormalizerSpec.add_dummy_prefix (default true)
	spNormExtraSpaces = 4 // remove_extra_whitespaces (default true)
)

func parseSentencePieceModel(data []byte) (*Vocab, error) {
	v := NewVocab(ModelLlama)
	v.UNK, v.BOS, v.EOS = 0, 1, 2
	v.AddBOS = true
	modelType := int64(1)
	err := walkProto(data, func(field int, wire int, val uint64, b []byte) error {
		switch field {
		case spFieldPieces:
			text, score, typ := "", float32(0), TypeNormal
			err := walkProto(b, func(f int, w int, x uint64, pb []byte) error {
				switch {
				case f == spPieceText && w == 2:
					text = string(pb)
				case f == spPieceScore && w == 5:
					score = math.Float32frombits(uint32(x))
				case f == spPieceType && w == 0:
					typ = int32(x)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(v.Tokens), err)
			}
			v.Tokens = append(v.Tokens, text)
			v.Scores = append(v.Scores, score)
			v.Types = append(v.Types, typ)
		case spFieldTrainer:
			return walkProto(b, func(f int, w int, x uint64, _ []byte) error {
				if w != 0 {
					return nil
				}
				switch f {
				case spTrainerModelType:
					modelType = int64(x)
				case spTrainerUnk:
					v.UNK = int32(x)
				case spTrainerBOS:
					v.BOS = int32(x)
				case spTrainerEOS:
					v.EOS = int32(x)
				case spTrainerPad:
					v.PAD = int32(x)
				}
				return nil
			})
		case spFieldNormalizer:
			removeExtra := true
			err := walkProto(b, func(f int, w int, x uint64, _ []byte) error {
				if w == 0 && f == spNormDummyPrefix {
					v.NoSpacePrefix = x == 0
				}
				if w == 0 && f == spNormExtraSpaces {
					removeExtra = x != 0
				}
				return nil
			})
			if err != nil {
				return err
			}
			if removeExtra {
				// SentencePiece would fold runs of spaces; llama.cpp does
				// not, and lmscore follows llama.cpp. Say so rather than
				// silently tokenize differently from SentencePiece.
				return fmt.Errorf("normalizer removes extra whitespace, which llama.cpp and lmscore do not do")
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("not a SentencePiece model: %w", err)
	}
	if modelType != 2 {
		return nil, fmt.Errorf("SentencePiece model type %d is not BPE (2); only BPE models are supported", modelType)
	}
	if len(v.Tokens) == 0 {
		return nil, fmt.Errorf("SentencePiece model has no pieces")
	}
	for _, id := range []*int32{&v.UNK, &v.BOS, &v.EOS, &v.PAD} {
		if *id < 0 || int(*id) >= len(v.Tokens) {
			*id = -1
		}
	}
	v.AddBOS = v.BOS >= 0
	return v, nil
}

// walkProto calls f for each field of a protobuf message: its number, wire
// type, the value of a varint or fixed field, or the bytes of a
// length-delimited one.
func walkProto(b []byte, f func(field, wire int, val uint64, data []byte) error) error {
	for off := 0; off < len(b); {
		key, n := binary.Uvarint(b[off:])
		if n <= 0 {
			return fmt.Errorf("bad field key at byte %d", off)
		}
		off += n
		field, wire := int(key>>3), int(key&7)
		var val uint64
		var data []byte
		switch wire {
		case 0:
			val, n = binary.Uvarint(b[off:])
			if n <= 0 {
				return fmt.Errorf("bad varint at byte %d", off)
			}
			off += n
		case 1:
			if off+8 > len(b) {
				return fmt.Errorf("truncated fixed64 at byte %d", off)
			}
			val = binary.LittleEndian.Uint64(b[off:])
			off += 8
		case 2:
			l, n := binary.Uvarint(b[off:])
			if n <= 0 || l > uint64(len(b)-off-n) {
				return fmt.Errorf("bad length at byte %d", off)
			}
			off += n
			data = b[off : off+int(l)]
			off += int(l)
		case 5:
			if off+4 > len(b) {
				return fmt.Errorf("truncated fixed32 at byte %d", off)
			}
			val = uint64(binary.LittleEndian.Uint32(b[off:]))
			off += 4
		default:
			return fmt.Errorf("unsupported wire type %d at byte %d", wire, off)
		}
		if err := f(field, wire, val, data); err != nil {
			return err
		}
	}
	return nil
}
