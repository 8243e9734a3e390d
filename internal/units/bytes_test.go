package units

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"4096": 4096, "2GiB": 2 << 30, "512MiB": 512 << 20, "1.5GB": 1500000000,
		"64k": 64 << 10, "3 MiB": 3 << 20, "10B": 10, "1kib": 1024,
	} {
		got, err := ParseBytes(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "GiB", "-1GiB", "two", "1XB", "NaN", "Inf", "NaNGiB"} {
		_, err := ParseBytes(bad)
		assert.ErrorContains(t, err, "invalid size", bad)
	}
}

func TestFormatBytes(t *testing.T) {
	assert.Equal(t, "1.50 GiB", FormatBytes(3<<29))
	assert.Equal(t, "512 B", FormatBytes(512))
}
