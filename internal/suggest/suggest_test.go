package suggest

import "testing"

func TestNearest(t *testing.T) {
	stages := []string{"Prospecting", "Negotiation", "Closed Won", "Closed Lost"}
	for _, tt := range []struct {
		s          string
		candidates []string
		want       string // "" for none
	}{
		{"Closed-Won", stages, "Closed Won"},
		{"closed won", stages, "Closed Won"},
		{"ClosedWon", stages, "Closed Won"},
		{"Negociation", stages, "Negotiation"},
		{"Negotaition", stages, "Negotiation"}, // a swap is one edit
		{"Closed Wn", stages, "Closed Won"},
		{"Won", stages, ""},
		{"Prospect", stages, ""},   // 3 edits from Prospecting, over a quarter of 8
		{"Closed Won", stages, ""}, // a candidate itself
		{"acmee", []string{"acme", "globex"}, "acme"},
		{"acm", []string{"acme", "globex"}, "acme"},
		{"ab", []string{"xy"}, ""},
		{"a", []string{"b"}, "b"}, // one edit always allowed
		{"", []string{"acme"}, ""},
		{"!!", []string{"?"}, ""},                                          // nothing left to fold, two edits
		{"Closed Wan", []string{"Closed Won", "Closed Wax"}, "Closed Won"}, // ties: the first
		{"ПРОДАЖА", []string{"продажа"}, "продажа"},
	} {
		got, ok := Nearest(tt.s, tt.candidates)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Nearest(%q) = %q, %v; want %q", tt.s, got, ok, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"abc", "abd", 1}, {"abc", "acb", 1}, {"abc", "", 3},
		{"kitten", "sitting", 3}, {"ca", "abc", 3},
	} {
		if got := distance([]rune(tt.a), []rune(tt.b), 10); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := distance([]rune(tt.a), []rune(tt.b), 2); got != min(tt.want, 2) {
			t.Errorf("distance(%q, %q, bound 2) = %d, want %d", tt.a, tt.b, got, min(tt.want, 2))
		}
	}
}
