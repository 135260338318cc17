// Package utf8x cuts text to a byte budget without splitting a character:
// run records, dead-letter details, briefs and history rows all hold text
// of bounded size, cut the same way.
package utf8x

import "unicode/utf8"

// Mark ends a text that Cut shortened.
const Mark = "…"

// Cut returns s if it fits in n bytes, else its longest prefix that ends
// at a rune boundary and fits in n bytes with Mark appended, followed by
// Mark; Mark alone (3 bytes) when n is smaller than that. s is assumed
// valid UTF-8 (strings.ToValidUTF8 makes it so).
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len(Mark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + Mark
}
