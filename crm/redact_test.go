package crm

import (
	"errors"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ err, want string }{
		{`invalid RFC 3339 timestamp "2026-13-01"`, `invalid RFC 3339 timestamp "…"`},
		{`no such key: "a\"b" and "c"`, `no such key: "…" and "…"`},
		{`division by zero`, `division by zero`},
	} {
		if got := Redact(errors.New(tt.err)); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
