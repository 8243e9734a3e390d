// Package progress reports a long job's progress: a one-line bar redrawn in
// place on a terminal, or a plain log line every few seconds where stderr is
// a file or a pipe (CI logs, nohup), so that those see the run move too.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Mode says how progress is shown.
type Mode int

const (
	ModeAuto Mode = iota // a bar on a terminal, log lines elsewhere
	ModeBar              // a bar, drawn even when the output is not a terminal
	ModeLog              // log lines
	ModeNone             // nothing
)

// Modes are the names ParseMode takes, in Mode order.
var Modes = []string{"auto", "bar", "log", "none"}

// ParseMode reads a --progress value.
func ParseMode(s string) (Mode, error) {
	for i, name := range Modes {
		if s == name {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown progress mode %q (want %s)", s, strings.Join(Modes, ", "))
}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(Modes) {
		return Modes[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Options shape a reporter; the zero value is a bar on a terminal and log
// lines elsewhere, counting tokens.
type Options struct {
	Mode     Mode
	Unit     string        // what is counted (default "tokens")
	Prefix   string        // starts every log line, e.g. "lmscore score: "
	LogEvery time.Duration // between log lines (default 5s)
}

// Bar shows progress in one of the modes. Its methods may be called from
// any goroutine.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	mode     Mode // ModeBar, ModeLog or ModeNone: NewWith resolves ModeAuto
	unit     string
	prefix   string
	last     time.Time
	every    time.Duration
	width    int
	finished bool
}

// New returns a bar on w, enabled only when w is a terminal, so that logs
// and pipes stay clean.
func New(w io.Writer) *Bar {
	mode := ModeNone
	if IsTerminal(w) {
		mode = ModeBar
	}
	return NewWith(w, Options{Mode: mode})
}

// NewWith returns a reporter on w; ModeAuto picks a bar when w is a
// terminal and log lines otherwise.
func NewWith(w io.Writer, o Options) *Bar {
	r := &Bar{w: w, mode: o.Mode, unit: o.Unit, prefix: o.Prefix, width: 30}
	if r.unit == "" {
		r.unit = "tokens"
	}
	if r.mode == ModeAuto {
		r.mode = ModeLog
		if IsTerminal(w) {
			r.mode = ModeBar
		}
	}
	switch r.mode {
	case ModeBar:
		r.every = 100 * time.Millisecond
	case ModeLog:
		r.every = o.LogEvery
		if r.every <= 0 {
			r.every = 5 * time.Second
		}
	}
	return r
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

// Update reports done of total after elapsed: the bar is redrawn at most
// every 100 ms, a log line written at most every LogEvery; final always
// shows, once.
func (b *Bar) Update(done, total int64, elapsed time.Duration, final bool) {
	if b.mode == ModeNone {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	now := time.Now()
	if b.last.IsZero() && b.mode == ModeLog && !final {
		// The first log line waits one period: a short run logs only its end.
		b.last = now
		return
	}
	if !final && now.Sub(b.last) < b.every {
		return
	}
	b.last = now
	b.finished = final
	switch b.mode {
	case ModeBar:
		fmt.Fprint(b.w, "\r"+line(done, total, elapsed, b.width, b.unit))
		if final {
			fmt.Fprintln(b.w)
		}
	case ModeLog:
		fmt.Fprintln(b.w, b.prefix+LogLine(done, total, elapsed, b.unit, final))
	}
}

// Line renders "[#####-----] 1.2k/3.4k tokens  5.6k tok/s  ETA 12s".
func Line(done, total int64, elapsed time.Duration, width int) string {
	return line(done, total, elapsed, width, "tokens")
}

func line(done, total int64, elapsed time.Duration, width int, unit string) string {
	frac := fraction(done, total)
	filled := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %s/%s %s  %s %s  ETA %s ",
		strings.Repeat("#", filled), strings.Repeat("-", width-filled),
		Count(float64(done)), Count(float64(total)), unit, Count(rate(done, elapsed)), rateUnit(unit), eta(done, total, elapsed))
}

// LogLine renders "1.2k/3.4k tokens (35%)  5.6k tok/s  ETA 12s  elapsed 7s",
// or for the final line "done: 3.4k/3.4k tokens in 12s  5.6k tok/s".
func LogLine(done, total int64, elapsed time.Duration, unit string, final bool) string {
	r := Count(rate(done, elapsed)) + " " + rateUnit(unit)
	if final {
		return fmt.Sprintf("done: %s/%s %s in %s  %s", Count(float64(done)), Count(float64(total)), unit,
			elapsed.Round(time.Millisecond), r)
	}
	return fmt.Sprintf("%s/%s %s (%.0f%%)  %s  ETA %s  elapsed %s", Count(float64(done)), Count(float64(total)), unit,
		100*fraction(done, total), r, eta(done, total, elapsed), elapsed.Round(time.Second))
}

func fraction(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return min(float64(done)/float64(total), 1)
}

func rate(done int64, elapsed time.Duration) float64 {
	if s := elapsed.Seconds(); s > 0 {
		return float64(done) / s
	}
	return 0
}

func eta(done, total int64, elapsed time.Duration) string {
	if r := rate(done, elapsed); r > 0 && total >= done {
		return (time.Duration(float64(total-done) / r * float64(time.Second))).Round(time.Second).String()
	}
	return "?"
}

// rateUnit is "tok/s" for tokens, "<unit>/s" otherwise.
func rateUnit(unit string) string {
	if unit == "tokens" {
		return "tok/s"
	}
	return unit + "/s"
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
