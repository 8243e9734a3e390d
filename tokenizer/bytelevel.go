package tokenizer

// GPT-2's byte-level alphabet: every byte is written as one printable code
// point so that BPE vocabularies can be stored as text. Printable Latin-1
// bytes stand for themselves; the other 68 bytes (controls, space, 0x7F-0xA0,
// 0xAD) map, in order, to U+0100 upwards. A space is therefore "Ġ" (U+0120).

// byteToRune is the code point that stands for each byte.
var byteToRune = func() (t [256]rune) {
	printable := func(b int) bool {
		return ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			t[b] = rune(b)
		} else {
			t[b] = rune(256 + n)
			n++
		}
	}
	return t
}()

// runeToByte inverts byteToRune; -1 for code points outside the alphabet.
var runeToByte = func() map[rune]int {
	m := make(map[rune]int, 256)
	for b, r := range byteToRune {
		m[r] = b
	}
	return m
}()

// decodeByteLevel turns a token's text back into the bytes it stands for.
// ok is false when the text holds a code point outside the alphabet (the
// text of an added or control token, which stands for itself).
func decodeByteLevel(s string) (b []byte, ok bool) {
	b = make([]byte, 0, len(s))
	for _, r := range s {
		v, found := runeToByte[r]
		if !found {
			return nil, false
		}
		b = append(b, byte(v))
	}
	return b, true
}
