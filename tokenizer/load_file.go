package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
)

// parseFile reads path and parses it, naming the file in parse errors.
// (A read error names it already.)
func parseFile(path string, parse func([]byte) (*Vocab, error)) (*Vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readJSONFile decodes the JSON file path into x.
func readJSONFile(path string, x any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, x); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
