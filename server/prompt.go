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
