package hfcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
	"github.com/lmscore/lmscore/convert"
)

// TestFixtureTokenizersMatchHF: each fixture's tokenizer, imitating its
// family's (Gemma's SentencePiece-style BPE with byte fallback, GPT-NeoX's
// and OLMo 2's byte-level BPE with their split rules, the llama and Qwen
// styles), converted by `convert hf` into GGUF metadata and read back from
// the file, splits the texts make_models.py recorded into the ids HF
// tokenizers gave (reference.json "tokenized", special tokens not added).
func TestFixtureTokenizersMatchHF(t *testing.T) {
	for _, name := range fixtureNames(t, "testdata") {
		t.Run(name, func(t *testing.T) {
			folder := filepath.Join("testdata", name)
			raw, err := os.ReadFile(filepath.Join(folder, "reference.json"))
			require.NoError(t, err)
			var ref struct {
				Tokenized [][2]json.RawMessage `json:"tokenized"`
			}
			require.NoError(t, json.Unmarshal(raw, &ref))
			if len(ref.Tokenized) == 0 {
				t.Skipf("%s's reference.json records no tokenized texts", name)
			}
			out := filepath.Join(t.TempDir(), name+".gguf")
			require.NoError(t, convert.HF(folder, out, convert.Options{Type: "f32"}))
			m, err := lmscore.Open(out, lmscore.Options{KVMemory: 8 << 20, Threads: 1})
			require.NoError(t, err)
			defer m.Close()
			for _, pair := range ref.Tokenized {
				var text string
				var want []int32
				require.NoError(t, json.Unmarshal(pair[0], &text))
				require.NoError(t, json.Unmarshal(pair[1], &want))
				got, err := m.Tokenize(text, false)
				require.NoError(t, err)
				require.Equal(t, want, got, "%s: %q", name, text)
			}
		})
	}
}
