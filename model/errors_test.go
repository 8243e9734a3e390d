package model

import (
	"errors"
	"testing"
)

func TestUnsupportedSentinels(t *testing.T) {
	if _, err := ParseArch("mamba"); !errors.Is(err, ErrUnsupportedArch) || err.Error() != `unsupported architecture "mamba" (lmscore supports `+supportedList()+`)` {
		t.Errorf("ParseArch: %v", err)
	}
	if err := (Config{Arch: Arch(99)}).Validate(); !errors.Is(err, ErrUnsupportedArch) {
		t.Errorf("Validate: %v", err)
	}
	q4 := TensorType(16) // IQ2_XXS
	if _, err := q4.RowBytes(32); !errors.Is(err, ErrUnsupportedType) || err.Error() != "unsupported tensor type "+q4.String() {
		t.Errorf("RowBytes: %v", err)
	}
	if _, err := NewTensor("x", q4, [2]int64{32, 1}, make([]float32, 32)); !errors.Is(err, ErrUnsupportedType) || err.Error() != `tensor "x": unsupported tensor type `+q4.String() {
		t.Errorf("NewTensor: %v", err)
	}
}
