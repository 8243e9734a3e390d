package progress

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLine(t *testing.T) {
	got := Line(1500, 3000, 2*time.Second, 10)
	assert.Equal(t, "[#####-----] 1.5k/3.0k tokens  750 tok/s  ETA 2s ", got)
	assert.Contains(t, Line(0, 0, 0, 4), "[----] 0/0 tokens  0 tok/s  ETA ?")
}

func TestBarIsSilentOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf)
	b.Update(1, 2, time.Second, true)
	assert.Empty(t, buf.String())
}
