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

func TestLogModeWritesPlainLines(t *testing.T) {
	var buf bytes.Buffer
	b := NewWith(&buf, Options{Mode: ModeAuto, Prefix: "lmscore score: ", LogEvery: 20 * time.Millisecond})
	b.Update(10, 100, time.Second, false) // the first period: nothing yet
	assert.Empty(t, buf.String(), "a run shorter than one period logs only its end")
	time.Sleep(30 * time.Millisecond)
	b.Update(35, 100, 2*time.Second, false)
	b.Update(36, 100, 2*time.Second, false) // within the period: dropped
	b.Update(100, 100, 4*time.Second, true)
	b.Update(100, 100, 4*time.Second, true) // after the final line: dropped
	assert.Equal(t, "lmscore score: 35/100 tokens (35%)  18 tok/s  ETA 4s  elapsed 2s\n"+
		"lmscore score: done: 100/100 tokens in 4s  25 tok/s\n", buf.String())
	assert.NotContains(t, buf.String(), "\r", "no carriage returns in a log")
}

func TestModes(t *testing.T) {
	for i, name := range Modes {
		m, err := ParseMode(name)
		assert.NoError(t, err)
		assert.Equal(t, Mode(i), m)
		assert.Equal(t, name, m.String())
	}
	_, err := ParseMode("fancy")
	assert.ErrorContains(t, err, `unknown progress mode "fancy" (want auto, bar, log, none)`)

	var buf bytes.Buffer
	NewWith(&buf, Options{Mode: ModeNone}).Update(1, 2, time.Second, true)
	assert.Empty(t, buf.String())
	NewWith(&buf, Options{Mode: ModeBar, Unit: "tensors"}).Update(1, 2, time.Second, true)
	assert.Equal(t, "\r[###############---------------] 1/2 tensors  1 tensors/s  ETA 1s \n", buf.String())
}
