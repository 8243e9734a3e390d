package gguf

import (
	"fmt"
)

// Value is one metadata value. It holds a Go value of the matching type:
// uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32,
// float64, bool or string for a scalar; a slice of one of those for an
// array; []Value for an array of arrays.
type Value struct {
	typ  ValueType
	elem ValueType // arrays only
	v    any
}

// ValueOf wraps a Go value as a metadata value. Go's int and uint are
// refused: GGUF readers such as llama.cpp insist on the exact width a key was
// written with, so the caller must choose it.
func ValueOf(x any) (Value, error) {
	switch x := x.(type) {
	case Value:
		return x, nil
	case uint8:
		return Value{typ: TypeUint8, v: x}, nil
	case int8:
		return Value{typ: TypeInt8, v: x}, nil
	case uint16:
		return Value{typ: TypeUint16, v: x}, nil
	case int16:
		return Value{typ: TypeInt16, v: x}, nil
	case uint32:
		return Value{typ: TypeUint32, v: x}, nil
	case int32:
		return Value{typ: TypeInt32, v: x}, nil
	case uint64:
		return Value{typ: TypeUint64, v: x}, nil
	case int64:
		return Value{typ: TypeInt64, v: x}, nil
	case float32:
		return Value{typ: TypeFloat32, v: x}, nil
	case float64:
		return Value{typ: TypeFloat64, v: x}, nil
	case bool:
		return Value{typ: TypeBool, v: x}, nil
	case string:
		return Value{typ: TypeString, v: x}, nil
	case []uint8:
		return Value{typ: TypeArray, elem: TypeUint8, v: x}, nil
	case []int8:
		return Value{typ: TypeArray, elem: TypeInt8, v: x}, nil
	case []uint16:
		return Value{typ: TypeArray, elem: TypeUint16, v: x}, nil
	case []int16:
		return Value{typ: TypeArray, elem: TypeInt16, v: x}, nil
	case []uint32:
		return Value{typ: TypeArray, elem: TypeUint32, v: x}, nil
	case []int32:
		return Value{typ: TypeArray, elem: TypeInt32, v: x}, nil
	case []uint64:
		return Value{typ: TypeArray, elem: TypeUint64, v: x}, nil
	case []int64:
		return Value{typ: TypeArray, elem: TypeInt64, v: x}, nil
	case []float32:
		return Value{typ: TypeArray, elem: TypeFloat32, v: x}, nil
	case []float64:
		return Value{typ: TypeArray, elem: TypeFloat64, v: x}, nil
	case []bool:
		return Value{typ: TypeArray, elem: TypeBool, v: x}, nil
	case []string:
		return Value{typ: TypeArray, elem: TypeString, v: x}, nil
	case []Value:
		for i, e := range x {
			if e.typ != TypeArray {
				return Value{}, fmt.Errorf("element %d of an array of arrays is a %s", i, e.typ)
			}
		}
		return Value{typ: TypeArray, elem: TypeArray, v: x}, nil
	case int, uint:
		return Value{}, fmt.Errorf("a Go %T has no fixed GGUF width: convert it to a sized integer type", x)
	}
	return Value{}, fmt.Errorf("a Go %T has no GGUF value type", x)
}

// Type is the value's type; TypeArray for arrays.
func (v Value) Type() ValueType { return v.typ }

// ElemType is an array's element type.
func (v Value) ElemType() ValueType { return v.elem }

// Any is the Go value held (see Value).
func (v Value) Any() any { return v.v }

// Len is an array's element count (0 for a scalar).
func (v Value) Len() int {
	if v.typ != TypeArray {
		return 0
	}
	switch a := v.v.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float32:
		return len(a)
	case []float64:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// TypeName is a readable type such as "uint32" or "array[string]".
func (v Value) TypeName() string {
	if v.typ == TypeArray {
		return "array[" + v.elem.String() + "]"
	}
	return v.typ.String()
}

// asInt64 converts any integer scalar; ok is false for other types and for
// a uint64 beyond int64's range.
func (v Value) asInt64() (int64, bool) {
	switch x := v.v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > 1<<63-1 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// KV is one metadata entry; a file keeps them in their written order.
type KV struct {
	Key   string
	Value Value
}
