package server

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// vocab caches every token's bytes and display string, read once at start:
// responses then never call into the model to decode a token.
type vocab struct {
	bytes   [][]byte
	display []string
	// maxTokenBytes is the longest token's byte length (at least 1): a
	// text of n bytes has at least n/maxTokenBytes tokens.
	maxTokenBytes int
	// keyJSON is the mean length of a display string written as a JSON
	// string, for estimating a response's size.
	keyJSON float64
}

func newVocab(m Scorer, n int) *vocab {
	v := &vocab{bytes: make([][]byte, n), display: make([]string, n), maxTokenBytes: 1}
	total := 0
	for id := range n {
		b := m.TokenBytes(int32(id))
		v.bytes[id] = b
		v.display[id] = displayToken(b)
		v.maxTokenBytes = max(v.maxTokenBytes, len(b))
		total += len(quote(v.display[id]))
	}
	v.keyJSON = float64(total) / float64(max(n, 1))
	return v
}

// displayToken is a token's entry in "tokens" and its key in "top_logprobs":
// its text, or, for a token that is not valid UTF-8 on its own (a byte of a
// multi-byte character), "bytes:" and its bytes as \xNN escapes, the
// convention of OpenAI's API.
func displayToken(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var s strings.Builder
	s.WriteString("bytes:")
	for _, c := range b {
		fmt.Fprintf(&s, "\\x%02x", c)
	}
	return s.String()
}

// text decodes the tokens into the choice's text and gives each token's
// text_offset: the index, in Unicode code points, of the character of text
// where the token's first byte lands. Bytes that do not form valid UTF-8
// become one U+FFFD each, so offsets count what the client sees.
func (v *vocab) text(toks []int32) (string, []int) {
	var raw []byte
	starts := make([]int, len(toks))
	for i, t := range toks {
		starts[i] = len(raw)
		raw = append(raw, v.bytes[t]...)
	}
	var out strings.Builder
	out.Grow(len(raw))
	offsets := make([]int, len(toks))
	next, chars := 0, 0
	for pos := 0; pos <= len(raw); {
		// Every token starting inside the character at pos gets its index.
		for next < len(toks) && starts[next] <= pos {
			offsets[next] = chars
			next++
		}
		if pos == len(raw) {
			break
		}
		r, size := utf8.DecodeRune(raw[pos:])
		for next < len(toks) && starts[next] < pos+size {
			offsets[next] = chars
			next++
		}
		out.WriteRune(r) // RuneError for an invalid byte, with size 1
		chars++
		pos += size
	}
	return out.String(), offsets
}
