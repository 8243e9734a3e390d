package tokenizer

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// protoField is one decoded field of a protobuf message: the value that
// its wire type carries (a varint, a fixed32, or the bytes of a
// length-delimited field; fixed64 and groups are skipped over unread).
type protoField struct {
	num     protowire.Number
	typ     protowire.Type
	varint  uint64
	fixed32 uint32
	bytes   []byte
}

// walkProto calls f for each field of the protobuf message b, in file
// order. what names the message in errors, with the byte offset of the
// field that is malformed or runs past the end of b.
func walkProto(b []byte, what string, f func(protoField) error) error {
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return fmt.Errorf("%s: field tag at byte %d: %w", what, off, protowire.ParseError(n))
		}
		val := b[off+n:]
		m := protowire.ConsumeFieldValue(num, typ, val)
		if m < 0 {
			return fmt.Errorf("%s: field %d (wire type %d) at byte %d: %w", what, num, typ, off, protowire.ParseError(m))
		}
		field := protoField{num: num, typ: typ}
		// ConsumeFieldValue has checked the value, so these cannot fail.
		switch typ {
		case protowire.VarintType:
			field.varint, _ = protowire.ConsumeVarint(val)
		case protowire.Fixed32Type:
			field.fixed32, _ = protowire.ConsumeFixed32(val)
		case protowire.BytesType:
			field.bytes, _ = protowire.ConsumeBytes(val)
		}
		if err := f(field); err != nil {
			return err
		}
		off += n + m
	}
	return nil
}
