package server

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// prompt is one prompt of a completions request: text, or token ids.
type prompt struct {
	text     string
	tokens   []int32
	isTokens bool
}

const promptForms = "prompt must be a string, a list of strings, a list of token ids, or a list of lists of token ids"

// parsePrompts reads the four forms of the OpenAI "prompt" field: "text",
// ["text", ...], [id, ...] and [[id, ...], ...]. A list of token ids is one
// prompt, a list of lists several. Token ids are checked against the
// vocabulary here, so that nothing out of range reaches the model.
func parsePrompts(raw json.RawMessage, nVocab int) ([]prompt, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, badRequest("prompt", "missing_prompt", "prompt is required")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badRequest("prompt", "invalid_prompt", "prompt: %v", err)
		}
		return []prompt{{text: s}}, nil
	case '[':
	default:
		return nil, badRequest("prompt", "invalid_prompt", "%s", promptForms)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest("prompt", "invalid_prompt", "%s: %v", promptForms, err)
	}
	if len(items) == 0 {
		return nil, badRequest("prompt", "invalid_prompt", "prompt is an empty list")
	}
	first := bytes.TrimSpace(items[0])
	if len(first) == 0 {
		return nil, badRequest("prompt", "invalid_prompt", "%s", promptForms)
	}
	switch first[0] {
	case '"':
		out := make([]prompt, len(items))
		for i, it := range items {
			if err := json.Unmarshal(it, &out[i].text); err != nil {
				return nil, badRequest("prompt", "invalid_prompt", "prompt[%d]: a list of strings must hold only strings", i)
			}
		}
		return out, nil
	case '[':
		out := make([]prompt, len(items))
		for i, it := range items {
			ids, err := parseTokenIDs(it, nVocab, fmt.Sprintf("prompt[%d]", i))
			if err != nil {
				return nil, err
			}
			out[i] = prompt{tokens: ids, isTokens: true}
		}
		return out, nil
	default:
		ids, err := parseTokenIDs(raw, nVocab, "prompt")
		if err != nil {
			return nil, err
		}
		return []prompt{{tokens: ids, isTokens: true}}, nil
	}
}

// parseTokenIDs reads a JSON list of token ids, each an integer in
// [0, nVocab). where names the list in error messages.
func parseTokenIDs(raw json.RawMessage, nVocab int, where string) ([]int32, error) {
	// Decoding into []any keeps "12" (a string) apart from 12, which a
	// []json.Number would accept alike.
	var items []any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&items); err != nil {
		return nil, badRequest("prompt", "invalid_prompt", "%s: %s", where, promptForms)
	}
	if len(items) == 0 {
		return nil, badRequest("prompt", "invalid_prompt", "%s is an empty list of token ids", where)
	}
	ids := make([]int32, len(items))
	for j, it := range items {
		n, ok := it.(json.Number)
		if !ok {
			return nil, badRequest("prompt", "invalid_token_id", "%s[%d]: a list of token ids must hold only integers, not %s", where, j, jsonKind(it))
		}
		v, err := n.Int64()
		if err != nil {
			return nil, badRequest("prompt", "invalid_token_id", "%s[%d]: token id %s is not an integer", where, j, n)
		}
		if v < 0 || v >= int64(nVocab) {
			return nil, badRequest("prompt", "invalid_token_id", "%s[%d]: token id %d is out of range: the vocabulary has %d tokens (ids 0 to %d)", where, j, v, nVocab, nVocab-1)
		}
		ids[j] = int32(v)
	}
	return ids, nil
}

// jsonKind names the JSON type of a value decoded into any.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// longestTextPrompt finds the "prompt" member of a request body by a quick
// scan, without decoding it, and returns the decoded byte length of its
// longest string (the prompt itself, or an element of a list of strings;
// \u escapes count at their fewest bytes, so it is never more than the
// real length). ok is false when the body is not a plain JSON object with a
// prompt of those forms; the full decoder then judges it. A scan is a
// tenth of what decoding costs, which for a 10 MB prompt is the difference
// between an answer in milliseconds and one in a second.
func longestTextPrompt(body []byte) (n int, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return 0, false
	}
	i = skipSpace(body, i+1)
	for i < len(body) && body[i] != '}' {
		keyEnd, _, ok := scanString(body, i)
		if !ok {
			return 0, false
		}
		isPrompt := string(body[i:keyEnd]) == `"prompt"`
		i = skipSpace(body, keyEnd)
		if i >= len(body) || body[i] != ':' {
			return 0, false
		}
		i = skipSpace(body, i+1)
		if isPrompt {
			return longestString(body, i)
		}
		if i, ok = skipValue(body, i); !ok {
			return 0, false
		}
		i = skipSpace(body, i)
		if i < len(body) && body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return 0, false
}

// longestString is the decoded length of the string at body[i], or of the
// longest string of the list at body[i] (0 for a list of anything else).
func longestString(body []byte, i int) (int, bool) {
	if i >= len(body) {
		return 0, false
	}
	switch body[i] {
	case '"':
		_, n, ok := scanString(body, i)
		return n, ok
	case '[':
	default:
		return 0, true
	}
	longest := 0
	for i = skipSpace(body, i+1); i < len(body) && body[i] != ']'; {
		if body[i] != '"' {
			return longest, true // token ids: no text to bound
		}
		end, n, ok := scanString(body, i)
		if !ok {
			return 0, false
		}
		longest = max(longest, n)
		i = skipSpace(body, end)
		if i < len(body) && body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return longest, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the JSON string at b[i] (b[i] == '"'): the index after
// its closing quote and its decoded length at least.
func scanString(b []byte, i int) (end, n int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1, n, true
		case '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				i += 5 // \uXXXX: one byte at least
			} else {
				i++
			}
		}
		n++
	}
	return 0, 0, false
}

// skipValue returns the index after the JSON value at b[i], judged only
// by its brackets and strings.
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			end, _, ok := scanString(b, i)
			if !ok {
				return 0, false
			}
			i = end
			if depth == 0 {
				return i, true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return 0, false
			}
			if depth == 0 {
				return i + 1, true
			}
		case ',':
			if depth == 0 {
				return i, true
			}
		}
		i++
	}
	return i, depth == 0
}
