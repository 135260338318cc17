package utf8x

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 0, ""},
		{"abc", 3, "abc"},
		{"abcdef", 5, "ab…"},
		{"héllo wörld", 8, "héll…"}, // é is 2 bytes: "héll" is 5, with the mark 8
		{"日本語テキスト", 10, "日本…"},      // 3 bytes a rune
		{"日本語テキスト", 8, "日…"},        // not "日\xe6…"
		{"héllo", 5, "h…"},          // "hé" and the mark would be 6
		{"abcdef", 2, "…"},          // no room for any text: the mark alone
		{"abcdef", 0, "…"},
	} {
		got := Cut(c.s, c.n)
		if got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Cut(%q, %d) = %q, not valid UTF-8", c.s, c.n, got)
		}
	}
	// Over many lengths the result fits whenever the mark does.
	s := strings.Repeat("aé日🙂", 50)
	for n := len(Mark); n < len(s)+2; n++ {
		if got := Cut(s, n); len(got) > n || !utf8.ValidString(got) || (len(s) > n && !strings.HasSuffix(got, Mark)) {
			t.Fatalf("Cut(s, %d) = %q (%d bytes)", n, got, len(got))
		}
	}
}
