// Package progress draws a one-line progress bar on a terminal.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar redraws one status line in place. It draws nothing unless its output
// is a terminal, so logs and pipes stay clean.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	enabled bool
	last    time.Time
	every   time.Duration
	width   int
}

// New returns a bar on w, enabled only when w is a terminal.
func New(w io.Writer) *Bar {
	return &Bar{w: w, enabled: IsTerminal(w), every: 100 * time.Millisecond, width: 30}
}

// IsTerminal reports whether w is a character device such as a tty.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update redraws the bar, at most every 100 ms unless final.
func (b *Bar) Update(done, total int64, elapsed time.Duration, final bool) {
	if !b.enabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if !final && now.Sub(b.last) < b.every {
		return
	}
	b.last = now
	fmt.Fprint(b.w, "\r"+Line(done, total, elapsed, b.width))
	if final {
		fmt.Fprintln(b.w)
	}
}

// Line renders "[#####-----] 1.2k/3.4k tokens  5.6k tok/s  ETA 12s".
func Line(done, total int64, elapsed time.Duration, width int) string {
	frac := 0.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	filled := int(frac * float64(width))
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	eta := "?"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s%s] %s/%s tokens  %s tok/s  ETA %s ",
		strings.Repeat("#", filled), strings.Repeat("-", width-filled),
		Count(float64(done)), Count(float64(total)), Count(rate), eta)
}

// Count renders n with a k/M/G suffix.
func Count(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fG", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}
