// Package units parses and prints human byte sizes such as "2GiB".
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

var suffixes = []struct {
	name string
	mult int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// ParseBytes reads "512MiB", "2GiB", "1.5GB", "4096" (bytes). Binary
// suffixes (KiB, and the bare K, M, G, T) are powers of 1024; KB, MB, GB and
// TB are powers of 1000.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, suf := range suffixes {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(suf.name)) && len(t) > len(suf.name) {
			// Case-insensitive, but KiB must not be read as "Ki" + "B".
			head := t[:len(t)-len(suf.name)]
			if _, err := strconv.ParseFloat(strings.TrimSpace(head), 64); err == nil {
				t, mult = strings.TrimSpace(head), suf.mult
				break
			}
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v >= 0) || math.IsInf(v, 0) { // !(v >= 0) also catches NaN
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit such as 512MiB or 2GiB", s)
	}
	n := v * float64(mult)
	if n > 1<<62 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(n), nil
}

// FormatBytes renders n as "1.5 GiB".
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
