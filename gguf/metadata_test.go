package gguf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestGetters(t *testing.T) {
	f, err := ParseBytes(writeBytes(t, sampleWriter(t, 0)), "s.gguf")
	if err != nil {
		t.Fatal(err)
	}
	ints := map[string]int64{"t.u8": 200, "t.i8": -100, "t.u16": 60000, "t.i16": -30000,
		"t.u32": 4000000000, "t.i32": -2000000000, "t.i64": -1 << 62}
	for k, want := range ints {
		if got, err := f.Int(k); err != nil || got != want {
			t.Errorf("Int(%s) = %d, %v; want %d", k, got, err, want)
		}
	}
	if x, err := f.Float("t.f32"); err != nil || x != 3.25 {
		t.Errorf("Float(t.f32) = %v, %v", x, err)
	}
	if x, err := f.Float("t.f64"); err != nil || x < 3.14159 || x > 3.1416 {
		t.Errorf("Float(t.f64) = %v, %v", x, err)
	}
	if b, err := f.Bool("t.bool"); err != nil || !b {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if s, err := f.String("t.str"); err != nil || s != "héllo ▁world" {
		t.Errorf("String = %q, %v", s, err)
	}
	if a, err := f.Strings("t.a.str"); err != nil || !reflect.DeepEqual(a, []string{"a", "", "<0x0A>", "▁the"}) {
		t.Errorf("Strings = %q, %v", a, err)
	}
	if a, err := f.Float32s("t.a.f32"); err != nil || len(a) != 3 || a[1] != -1.5 {
		t.Errorf("Float32s = %v, %v", a, err)
	}
	if a, err := f.Float32s("t.a.f64"); err != nil || len(a) != 2 || a[0] < 1e38 {
		t.Errorf("Float32s(f64) = %v, %v", a, err)
	}
	for k, want := range map[string][]int32{
		"t.a.u8": {1, 2, 255}, "t.a.i8": {-1, 0, 1}, "t.a.u16": {1, 65535}, "t.a.i16": {-32768, 7},
		"t.a.i32": {-5, 5, 1<<31 - 1},
	} {
		if got, err := f.Int32s(k); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Int32s(%s) = %v, %v; want %v", k, got, err, want)
		}
	}
}

func TestGetterErrorsNameKeyAndFile(t *testing.T) {
	f, err := ParseBytes(writeBytes(t, sampleWriter(t, 0)), "s.gguf")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		call func() error
		want string
	}{
		{func() error { _, err := f.String("t.u8"); return err }, `gguf: s.gguf: key "t.u8" is uint8, want string`},
		{func() error { _, err := f.Int("t.str"); return err }, `key "t.str" is string, want an integer`},
		{func() error { _, err := f.Int("t.u64"); return err }, `key "t.u64": 9223372036854775813 does not fit in int64`},
		{func() error { _, err := f.Float("t.i32"); return err }, `key "t.i32" is int32, want a float`},
		{func() error { _, err := f.Bool("t.u8"); return err }, `key "t.u8" is uint8, want bool`},
		{func() error { _, err := f.Strings("t.a.i32"); return err }, `key "t.a.i32" is array[int32], want array[string]`},
		{func() error { _, err := f.Float32s("t.a.i32"); return err }, `key "t.a.i32" is array[int32], want an array of floats`},
		{func() error { _, err := f.Int32s("t.a.f32"); return err }, `key "t.a.f32" is array[float32], want an array of integers`},
		{func() error { _, err := f.Int32s("t.a.u32"); return err }, `key "t.a.u32": element 2 does not fit in int32`},
		{func() error { _, err := f.Int32s("t.a.u64"); return err }, `key "t.a.u64": element 0 does not fit in int32`},
		{func() error { _, err := f.TensorData("nope"); return err }, `gguf: s.gguf: tensor "nope": tensor not found`},
	}
	for _, c := range cases {
		if err := c.call(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	_, err = f.String("missing.key")
	if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), `gguf: s.gguf: key "missing.key": key not found`) {
		t.Errorf("missing key: got %v", err)
	}
	if f.Has("missing.key") || !f.Has("t.u8") {
		t.Error("Has is wrong")
	}
}
