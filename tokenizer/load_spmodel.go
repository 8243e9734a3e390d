package tokenizer

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// LoadSentencePieceModel reads a SentencePiece .model file (a ModelProto
// protobuf, such as Llama-2's tokenizer.model) as a llama vocabulary with
// BOS added, as llama.cpp's converter writes it. Only BPE models are
// accepted; unigram models tokenize differently. So are models whose
// normalizer folds runs of spaces, which llama.cpp and lmscore do not do.
func LoadSentencePieceModel(path string) (*Vocab, error) {
	v, foldsSpaces, err := readSentencePiece(path)
	if err != nil {
		return nil, err
	}
	if foldsSpaces {
		// Say so rather than silently tokenize differently from
		// SentencePiece. (LoadHFFolder converts such a model as llama.cpp's
		// converter does, leaving the difference to the GGUF reader.)
		return nil, fmt.Errorf("%s: the normalizer removes extra whitespace, which llama.cpp and lmscore do not do", path)
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

	spTrainerModelType = 3  // TrainerSpec.model_type
	spTrainerUnk       = 40 // TrainerSpec.unk_id (default 0)
	spTrainerBOS       = 41 // bos_id (default 1)
	spTrainerEOS       = 42 // eos_id (default 2)
	spTrainerPad       = 43 // pad_id (default -1)

	spNormDummyPrefix = 3 // NormalizerSpec.add_dummy_prefix (default true)
	spNormExtraSpaces = 4 // remove_extra_whitespaces (default true)
)

// TrainerSpec.ModelType; only BPE is read.
var spModelTypes = map[uint64]string{1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}

const spModelBPE = 2

// readSentencePiece reads a .model file and reports whether its normalizer
// folds runs of spaces (remove_extra_whitespaces).
func readSentencePiece(path string) (v *Vocab, foldsSpaces bool, err error) {
	v, err = parseFile(path, func(data []byte) (*Vocab, error) {
		var err error
		v, foldsSpaces, err = parseSentencePiece(data)
		return v, err
	})
	return v, foldsSpaces, err
}

func parseSentencePiece(data []byte) (*Vocab, bool, error) {
	v := NewVocab(ModelLlama)
	v.UNK, v.BOS, v.EOS = 0, 1, 2 // TrainerSpec's defaults
	v.SpacePrefixStated = true
	modelType, foldsSpaces := uint64(1), true
	err := walkProto(data, "ModelProto", func(f protoField) error {
		if f.typ != protowire.BytesType {
			return nil
		}
		switch f.num {
		case spFieldPieces:
			id := len(v.Tokens)
			text, score, typ := "", float32(0), TypeNormal
			err := walkProto(f.bytes, fmt.Sprintf("piece %d", id), func(p protoField) error {
				switch {
				case p.num == spPieceText && p.typ == protowire.BytesType:
					text = string(p.bytes)
				case p.num == spPieceScore && p.typ == protowire.Fixed32Type:
					score = math.Float32frombits(p.fixed32)
				case p.num == spPieceType && p.typ == protowire.VarintType:
					if p.varint < uint64(TypeNormal) || p.varint > uint64(TypeByte) {
						return fmt.Errorf("piece %d: unknown piece type %d", id, p.varint)
					}
					typ = int32(p.varint)
				}
				return nil
			})
			if err != nil {
				return err
			}
			v.Tokens = append(v.Tokens, text)
			v.Scores = append(v.Scores, score)
			v.Types = append(v.Types, typ)
		case spFieldTrainer:
			return walkProto(f.bytes, "TrainerSpec", func(p protoField) error {
				if p.typ != protowire.VarintType {
					return nil
				}
				id := int32(p.varint) // int32 fields: a negative id is a 10-byte varint
				switch p.num {
				case spTrainerModelType:
					modelType = p.varint
				case spTrainerUnk:
					v.UNK = id
				case spTrainerBOS:
					v.BOS = id
				case spTrainerEOS:
					v.EOS = id
				case spTrainerPad:
					v.PAD = id
				}
				return nil
			})
		case spFieldNormalizer:
			return walkProto(f.bytes, "NormalizerSpec", func(p protoField) error {
				if p.typ != protowire.VarintType {
					return nil
				}
				switch p.num {
				case spNormDummyPrefix:
					v.NoSpacePrefix = p.varint == 0
				case spNormExtraSpaces:
					foldsSpaces = p.varint != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("not a SentencePiece model: %w", err)
	}
	if len(v.Tokens) == 0 {
		return nil, false, fmt.Errorf("no pieces (not a SentencePiece model?)")
	}
	if modelType != spModelBPE {
		name := spModelTypes[modelType]
		if name == "" {
			name = fmt.Sprint(modelType)
		}
		return nil, false, fmt.Errorf("SentencePiece model type %s is not supported (BPE only)", name)
	}
	for _, id := range []*int32{&v.UNK, &v.BOS, &v.EOS, &v.PAD} {
		if int(*id) >= len(v.Tokens) {
			return nil, false, fmt.Errorf("special token id %d is outside the %d pieces", *id, len(v.Tokens))
		}
		if *id < 0 {
			*id = -1
		}
	}
	v.AddBOS = v.BOS >= 0
	return v, foldsSpaces, nil
}
