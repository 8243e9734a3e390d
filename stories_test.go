package lmscore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/convert"
)

const storiesDir = "../shared/models/stories260K"

// storiesGGUF converts the shared stories260K model once per test, or skips.
func storiesGGUF(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(storiesDir, "stories260K.bin")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("stories260K not found at %s (../shared is absent outside the workshop): %v", storiesDir, err)
	}
	out := filepath.Join(t.TempDir(), "stories260K.gguf")
	require.NoError(t, convert.Llama2C(bin, filepath.Join(storiesDir, "tok512.bin"), out))
	return out
}
