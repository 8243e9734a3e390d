package tokenizer

import (
	"sort"
	"sync"
)

// NFC, Unicode's canonical composition: the normalizer of Qwen2 and Qwen3's
// tokenizer.json, applied by Hugging Face tokenizers to the text between
// added tokens before the pre-tokenizer. Go's standard library has no
// normalization, so the data is generated (nfc_tables.go, from
// tools/tokref/gen_nfc.py at the Unicode version of the Rust crate
// tokenizers uses).

// Normalizer names, the values of Vocab.Normalizer.
const (
	NormalizerNFC = "nfc"
)

// Hangul syllables compose and decompose arithmetically.
const (
	hangulS, hangulL, hangulV, hangulT = 0xAC00, 0x1100, 0x1161, 0x11A7
	hangulLCount, hangulVCount         = 19, 21
	hangulTCount                       = 28
	hangulNCount                       = hangulVCount * hangulTCount
	hangulSCount                       = hangulLCount * hangulNCount
)

var nfcTables = sync.OnceValue(func() (t struct {
	compose map[[2]rune]rune
	second  map[rune]bool // runes that a composition can take as its second
}) {
	t.compose = make(map[[2]rune]rune, len(nfcCompose))
	t.second = make(map[rune]bool, 128)
	for _, c := range nfcCompose {
		t.compose[[2]rune{c[0], c[1]}] = c[2]
		t.second[c[1]] = true
	}
	return t
})

func nfcClass(r rune) int32 {
	if r < 0x300 {
		return 0
	}
	i := sort.Search(len(nfcCCC), func(i int) bool { return nfcCCC[i][1] >= int32(r) })
	if i < len(nfcCCC) && nfcCCC[i][0] <= int32(r) {
		return nfcCCC[i][2]
	}
	return 0
}

// nfcStable reports whether r can neither change nor change a neighbour
// under NFC; text of such runes only is already normalized.
func nfcStable(r rune) bool {
	if r < 0x300 {
		return true
	}
	if hangulV <= r && r < hangulV+hangulVCount || hangulT < r && r < hangulT+hangulTCount {
		return false
	}
	if _, ok := nfcDecomp[r]; ok {
		return false
	}
	return !nfcTables().second[r] && nfcClass(r) == 0
}

// nfc returns s in Normalization Form C. s must be valid UTF-8.
func nfc(s string) string {
	stable := true
	for _, r := range s {
		if !nfcStable(r) {
			stable = false
			break
		}
	}
	if stable {
		return s
	}
	// Full canonical decomposition.
	rs := make([]rune, 0, len(s))
	for _, r := range s {
		switch d, ok := nfcDecomp[r]; {
		case ok:
			rs = append(rs, d...)
		case hangulS <= r && r < hangulS+hangulSCount:
			i := r - hangulS
			rs = append(rs, hangulL+i/hangulNCount, hangulV+i%hangulNCount/hangulTCount)
			if t := i % hangulTCount; t != 0 {
				rs = append(rs, hangulT+t)
			}
		default:
			rs = append(rs, r)
		}
	}
	// Canonical order: a stable sort by class of each run of non-starters.
	for i := 1; i < len(rs); i++ {
		c := nfcClass(rs[i])
		if c == 0 {
			continue
		}
		for j := i; j > 0; j-- {
			p := nfcClass(rs[j-1])
			if p <= c {
				break
			}
			rs[j-1], rs[j] = rs[j], rs[j-1]
		}
	}
	// Canonical composition: each rune combines with the last starter unless
	// a rune between them blocks it (has class 0, or a class >= its own).
	comp := nfcTables().compose
	out := rs[:0]
	starter, last := -1, int32(0)
	for _, r := range rs {
		c := nfcClass(r)
		if starter >= 0 && (starter == len(out)-1 || last != 0 && last < c) {
			if x, ok := nfcCombine(comp, out[starter], r); ok {
				out[starter] = x
				continue
			}
		}
		if c == 0 {
			starter = len(out)
		}
		last = c
		out = append(out, r)
	}
	return string(out)
}

func nfcCombine(comp map[[2]rune]rune, a, b rune) (rune, bool) {
	if hangulL <= a && a < hangulL+hangulLCount && hangulV <= b && b < hangulV+hangulVCount {
		return hangulS + ((a-hangulL)*hangulVCount+b-hangulV)*hangulTCount, true
	}
	if hangulS <= a && a < hangulS+hangulSCount && (a-hangulS)%hangulTCount == 0 && hangulT < b && b < hangulT+hangulTCount {
		return a + b - hangulT, true
	}
	x, ok := comp[[2]rune{a, b}]
	return x, ok
}
