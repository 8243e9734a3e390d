package scorejob

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore"
)

// --profile FILE (Config.Profile) writes the model's profile when the run
// ends, and says so when the profiler was off.
func TestProfileFileIsWritten(t *testing.T) {
	path := randomGGUF(t)
	in := writeLines(t, `{"context_tokens": [1, 2, 3, 4], "continuation_tokens": [5, 6]}`,
		`{"context_tokens": [1, 2, 3, 4], "continuation_tokens": [7]}`)
	for _, env := range []string{"1", ""} {
		t.Setenv(lmscore.ProfileEnv, env)
		dir := t.TempDir()
		prof := filepath.Join(dir, "sub", "profile.json")
		require.NoError(t, Run(context.Background(), Config{Model: path, In: in, Out: filepath.Join(dir, "out.jsonl"),
			Profile: prof, Stderr: &bytes.Buffer{}, Options: lmscore.Options{KVMemory: 16 << 20}}))
		b, err := os.ReadFile(prof)
		require.NoError(t, err)
		var p lmscore.Profile
		require.NoError(t, json.Unmarshal(b, &p))
		assert.Equal(t, env == "1", p.Enabled, "LMSCORE_PROFILE=%q", env)
		assert.Equal(t, env == "1", p.Core.Enabled)
		if env == "1" {
			assert.Equal(t, int64(1), p.ScoreCalls)
			assert.Positive(t, p.Core.Steps)
			assert.NotEmpty(t, p.Core.Phases)
		}
	}
}
