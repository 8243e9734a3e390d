// Package csrchash fingerprints the C++ sources that binding/ compiles
// through its unity files. Go's build cache does not notice changes to
// files a cgo source #includes, so binding/ keeps this fingerprint in a Go
// constant: regenerating it after an edit is what makes `go build` compile
// the core again.
package csrchash

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Hash returns the SHA-256 over the names and contents of every C/C++
// source and header under dir, in sorted order.
func Hash(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch filepath.Ext(path) {
		case ".h", ".hpp", ".c", ".cpp", ".inc":
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		h.Write([]byte(filepath.ToSlash(rel) + "\x00"))
		h.Write([]byte(strings.ReplaceAll(string(data), "\r\n", "\n")))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
