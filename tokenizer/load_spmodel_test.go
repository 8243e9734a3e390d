package tokenizer

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestSentencePieceLlama2(t *testing.T) {
	path := filepath.Join(sharedDir, "tokenizers", "llama2", "tokenizer.model")
	if fileMissing(path) {
		t.Skipf("the Llama-2 tokenizer is not at %s (../shared is only present in the workshop)", path)
	}
	v, err := LoadSentencePieceModel(path)
	if err != nil {
		t.Fatal(err)
	}
	// Values from the sentencepiece Python package on the same file.
	if len(v.Tokens) != 32000 || v.BOS != 1 || v.EOS != 2 || v.UNK != 0 || v.PAD != -1 {
		t.Fatalf("%d tokens, bos %d eos %d unk %d pad %d", len(v.Tokens), v.BOS, v.EOS, v.UNK, v.PAD)
	}
	bytesN := 0
	for _, ty := range v.Types {
		if ty == TypeByte {
			bytesN++
		}
	}
	checks := []struct {
		id    int
		piece string
		score float32
		typ   int32
	}{{0, "<unk>", 0, TypeUnknown}, {1, "<s>", 0, TypeControl}, {3, "<0x00>", 0, TypeByte},
		{259, "▁▁", -1e9, TypeNormal}, {260, "▁t", -1, TypeNormal}, {31999, "给", -31740, TypeNormal}}
	for _, c := range checks {
		if v.Tokens[c.id] != c.piece || v.Scores[c.id] != c.score || v.Types[c.id] != c.typ {
			t.Errorf("id %d: %q %v %d, want %q %v %d", c.id, v.Tokens[c.id], v.Scores[c.id], v.Types[c.id], c.piece, c.score, c.typ)
		}
	}
	if bytesN != 256 || v.NoSpacePrefix || !v.SpacePrefixStated || !v.AddBOS || v.AddEOS {
		t.Errorf("%d byte tokens, no space prefix %v (stated %v), add BOS %v, add EOS %v", bytesN, v.NoSpacePrefix, v.SpacePrefixStated, v.AddBOS, v.AddEOS)
	}
}

// spProto builds sentencepiece_model.proto messages for the tests.
type spProto []byte

func (m spProto) bytes(num protowire.Number, b []byte) spProto {
	return protowire.AppendBytes(protowire.AppendTag(m, num, protowire.BytesType), b)
}

func (m spProto) varint(num protowire.Number, x uint64) spProto {
	return protowire.AppendVarint(protowire.AppendTag(m, num, protowire.VarintType), x)
}

func spPiece(text string, score float32, typ uint64) []byte {
	p := spProto(nil).bytes(spPieceText, []byte(text))
	p = protowire.AppendFixed32(protowire.AppendTag(p, spPieceScore, protowire.Fixed32Type), math.Float32bits(score))
	return p.varint(spPieceType, typ)
}

// tinySentencePiece is a BPE model of five pieces with the given
// TrainerSpec fields and NormalizerSpec (nil: one that keeps runs of
// spaces, as Llama-2's does).
func tinySentencePiece(trainer spProto, normalizer spProto) []byte {
	var m spProto
	for i, p := range []struct {
		text string
		typ  uint64
	}{{"<unk>", 2}, {"<s>", 3}, {"</s>", 3}, {"▁", 1}, {"<0x41>", 6}} {
		m = m.bytes(spFieldPieces, spPiece(p.text, -float32(i), p.typ))
	}
	m = m.bytes(spFieldTrainer, trainer.varint(spTrainerModelType, spModelBPE))
	if normalizer == nil {
		normalizer = spProto(nil).varint(spNormExtraSpaces, 0)
	}
	return m.bytes(spFieldNormalizer, normalizer)
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSentencePieceTiny(t *testing.T) {
	v, err := LoadSentencePieceModel(writeTemp(t, "tiny.model", tinySentencePiece(spProto(nil).varint(spTrainerPad, 3), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 5 || v.Tokens[3] != "▁" || v.Scores[4] != -4 || v.Types[4] != TypeByte || v.PAD != 3 || v.BOS != 1 || !v.AddBOS {
		t.Fatalf("%+v", v)
	}
	// A negative id (a 10-byte varint) means none, and BOS is then not added.
	v, err = LoadSentencePieceModel(writeTemp(t, "nobos.model", tinySentencePiece(spProto(nil).varint(spTrainerBOS, uint64(1<<64-1)), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if v.BOS != -1 || v.AddBOS {
		t.Fatalf("BOS %d, add BOS %v", v.BOS, v.AddBOS)
	}
}

func TestSentencePieceErrors(t *testing.T) {
	good := tinySentencePiece(nil, nil)
	unigram := append(tinySentencePiece(nil, nil), spProto(nil).bytes(spFieldTrainer, spProto(nil).varint(spTrainerModelType, 1))...)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no pieces"},
		{"truncated", good[:len(good)-1], "not a SentencePiece model: ModelProto: field 3 (wire type 2) at byte 80: unexpected EOF"},
		{"truncated piece", good[:7], "ModelProto: field 1 (wire type 2) at byte 0: unexpected EOF"},
		{"truncated inside a piece", spProto(nil).bytes(spFieldPieces, spPiece("a", 0, 1)[:5]), "piece 0: field 2 (wire type 5) at byte 3: unexpected EOF"},
		{"bad tag", []byte{0x80}, "ModelProto: field tag at byte 0: unexpected EOF"},
		// protowire's own words ("proto: invalid field number") vary their
		// spaces on purpose, so that no one matches them.
		{"field number 0", []byte{0x02, 0x00}, "ModelProto: field tag at byte 0:"},
		{"text file", []byte("hello, world\n"), "not a SentencePiece model"},
		{"bad piece type", spProto(nil).bytes(spFieldPieces, spPiece("a", 0, 9)), "piece 0: unknown piece type 9"},
		{"unigram", unigram, "SentencePiece model type UNIGRAM is not supported (BPE only)"},
		{"BOS outside", tinySentencePiece(spProto(nil).varint(spTrainerBOS, 5), nil), "special token id 5 is outside the 5 pieces"},
		{"folds spaces", tinySentencePiece(nil, spProto(nil).varint(spNormExtraSpaces, 1)), "the normalizer removes extra whitespace"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "bad.model", c.data)
			_, err := LoadSentencePieceModel(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v\nwant %q, naming the file", err, c.want)
			}
		})
	}
	if _, err := LoadSentencePieceModel(filepath.Join(t.TempDir(), "none.model")); err == nil || !strings.Contains(err.Error(), "none.model") {
		t.Errorf("missing file: %v", err)
	}
}

// A folder's tokenizer.model converts even when its normalizer folds
// spaces, as llama.cpp's converter converts it.
func TestHFFolderSentencePieceFoldingSpaces(t *testing.T) {
	dir := t.TempDir()
	model := tinySentencePiece(nil, spProto(nil).varint(spNormDummyPrefix, 0).varint(spNormExtraSpaces, 1))
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := LoadHFFolder(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 5 || !v.NoSpacePrefix || !v.SpacePrefixStated {
		t.Fatalf("%+v", v)
	}
}
