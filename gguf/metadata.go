package gguf

import (
	"fmt"
	"math"
)

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.keys[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// Has reports whether key is present.
func (f *File) Has(key string) bool { _, ok := f.keys[key]; return ok }

func (f *File) lookup(key string) (Value, error) {
	v, ok := f.Get(key)
	if !ok {
		return Value{}, fmt.Errorf("gguf: %s: key %q: %w", f.Name, key, ErrKeyNotFound)
	}
	return v, nil
}

func (f *File) wrongType(key string, v Value, want string) error {
	return fmt.Errorf("gguf: %s: key %q is %s, want %s", f.Name, key, v.TypeName(), want)
}

// String returns a string value.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := v.v.(string)
	if !ok {
		return "", f.wrongType(key, v, "string")
	}
	return s, nil
}

// Int returns an integer value of any width and signedness.
func (f *File) Int(key string) (int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	if !v.typ.isInteger() {
		return 0, f.wrongType(key, v, "an integer")
	}
	n, ok := v.asInt64()
	if !ok {
		return 0, fmt.Errorf("gguf: %s: key %q: %v does not fit in int64", f.Name, key, v.v)
	}
	return n, nil
}

// Float returns a float32 or float64 value.
func (f *File) Float(key string) (float64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.v.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return 0, f.wrongType(key, v, "a float")
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := v.v.(bool)
	if !ok {
		return false, f.wrongType(key, v, "bool")
	}
	return b, nil
}

// Strings returns an array of strings. The slice is the file's own: do not
// modify it.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	a, ok := v.v.([]string)
	if !ok {
		return nil, f.wrongType(key, v, "array[string]")
	}
	return a, nil
}

// Float32s returns an array of float32 (a float64 array is converted). The
// slice may be the file's own: do not modify it.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	switch a := v.v.(type) {
	case []float32:
		return a, nil
	case []float64:
		out := make([]float32, len(a))
		for i, x := range a {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, f.wrongType(key, v, "an array of floats")
}

// Int32s returns an array of integers of any type, each of which must fit
// in an int32. The slice may be the file's own: do not modify it.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	if a, ok := v.v.([]int32); ok {
		return a, nil
	}
	if v.typ != TypeArray || !v.elem.isInteger() {
		return nil, f.wrongType(key, v, "an array of integers")
	}
	out := make([]int32, v.Len())
	for i := range out {
		var x int64
		var fits bool
		switch a := v.v.(type) {
		case []uint8:
			x, fits = int64(a[i]), true
		case []int8:
			x, fits = int64(a[i]), true
		case []uint16:
			x, fits = int64(a[i]), true
		case []int16:
			x, fits = int64(a[i]), true
		case []uint32:
			x, fits = int64(a[i]), true
		case []int64:
			x, fits = a[i], true
		case []uint64:
			x, fits = int64(a[i]), a[i] <= math.MaxInt64
		}
		if !fits || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, fmt.Errorf("gguf: %s: key %q: element %d does not fit in int32", f.Name, key, i)
		}
		out[i] = int32(x)
	}
	return out, nil
}
