package tokenizer

import "testing"

// TestNFC checks nfc on what canonical composition has to get right:
// singletons, reordering by combining class, blocking, Hangul, composition
// exclusions, starters that compose. Expected values are Python's
// unicodedata2 16.0.0 (the data nfc_tables.go is generated from).
func TestNFC(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain ascii", "plain ascii"},
		{"e\u0301", "\u00e9"},
		{"A\u030a", "\u00c5"},
		{"\u212b", "\u00c5"}, // singleton
		{"\u2126", "\u03a9"},
		{"\u1100\u1161\u11a8", "\uac01"}, // Hangul L V T
		{"\u1100\u1161", "\uac00"},
		{"\uac00\u11a8", "\uac01"},
		{"a\u0323\u0302", "\u1ead"}, // reordered, then composed twice
		{"a\u0302\u0323", "\u1ead"},
		{"\u1e69", "\u1e69"},
		{"s\u0307\u0323", "\u1e69"},
		{"q\u0307\u0323", "q\u0323\u0307"}, // reordered, nothing composes
		{"\u0958", "\u0915\u093c"},         // composition exclusion
		{"\u0344", "\u0308\u0301"},         // non-starter decomposition
		{"\u0f73", "\u0f71\u0f72"},
		{"e\u0301\u0301", "\u00e9\u0301"},            // the second acute is blocked
		{"\ufb01\u00bd\u2460", "\ufb01\u00bd\u2460"}, // compatibility forms stay
		{"\u0b47\u0b3e", "\u0b4b"},                   // two starters compose
		{"\u0928\u093c", "\u0929"},
		{"a\u05b0\u0301b", "\u00e1\u05b0b"},
		{"\U0001d15e", "\U0001d157\U0001d165"},
		{"\u00e9\u0327", "\u0229\u0301"},
		{"A\u0300\u0316", "\u00c0\u0316"},
		{"\u0dd9\u0dcf\u0dca", "\u0ddd"},
		{"\U00011099\U000110ba", "\U0001109a"},
		{"\u3099\u304b\u3099", "\u3099\u304c"}, // a leading non-starter stays
	} {
		if got := nfc(c.in); got != c.want {
			t.Errorf("nfc(%+q) = %+q, want %+q", c.in, got, c.want)
		}
	}
}
