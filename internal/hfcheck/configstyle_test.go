package hfcheck

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/convert"
)

// TestConfigStylesConvertAlike: the llama31 and gptneox fixtures' config.json
// is in transformers 5's style (rope_parameters); testdata/config_v4 holds the
// same configs as transformers 4 wrote them (rope_scaling and rope_theta;
// rotary_pct and rotary_emb_base), which make_models.py checked load in
// transformers to the same log-probabilities. With the same weights and
// tokenizer, both styles must convert to byte-identical GGUF files.
func TestConfigStylesConvertAlike(t *testing.T) {
	for _, name := range []string{"llama31", "gptneox"} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join("testdata", name)
			// The same folder name: the file records it (general.name).
			v4 := filepath.Join(t.TempDir(), name)
			require.NoError(t, os.MkdirAll(v4, 0o755))
			entries, err := os.ReadDir(src)
			require.NoError(t, err)
			for _, e := range entries {
				data, err := os.ReadFile(filepath.Join(src, e.Name()))
				require.NoError(t, err)
				if e.Name() == "config.json" {
					data, err = os.ReadFile(filepath.Join("testdata", "config_v4", name+".json"))
					require.NoError(t, err)
				}
				require.NoError(t, os.WriteFile(filepath.Join(v4, e.Name()), data, 0o644))
			}
			cfg5, err := os.ReadFile(filepath.Join(src, "config.json"))
			require.NoError(t, err)
			cfg4, err := os.ReadFile(filepath.Join(v4, "config.json"))
			require.NoError(t, err)
			require.NotEqual(t, cfg5, cfg4, "the two configs must differ in style")

			out5, out4 := filepath.Join(t.TempDir(), "v5.gguf"), filepath.Join(t.TempDir(), "v4.gguf")
			require.NoError(t, convert.HF(src, out5, convert.Options{Type: "f32"}))
			require.NoError(t, convert.HF(v4, out4, convert.Options{Type: "f32"}))
			a, err := os.ReadFile(out5)
			require.NoError(t, err)
			b, err := os.ReadFile(out4)
			require.NoError(t, err)
			if !bytes.Equal(a, b) {
				t.Fatalf("%s: the transformers 4 and 5 configs convert to different files (%d and %d bytes)", name, len(a), len(b))
			}
		})
	}
}
