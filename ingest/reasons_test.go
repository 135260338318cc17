package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReason(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"decode error", &DecodeError{Reason: ReasonInvalidJSON, Msg: "x"}, ReasonInvalidJSON},
		{"wrapped decode error", fmt.Errorf("partition 3: %w", &DecodeError{Reason: ReasonEmpty, Msg: "x"}), ReasonEmpty},
		{"other error", errors.New("boom"), ReasonInternal},
		{"nil", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Reason(c.err); got != c.want {
				t.Errorf("Reason = %s, want %s", got, c.want)
			}
		})
	}
}

func TestDetail(t *testing.T) {
	long := strings.Repeat("é", 700) // 1400 bytes
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"decode error", &DecodeError{Reason: ReasonMissingField, Msg: "record.id is missing"}, "record.id is missing"},
		{"wrapped", fmt.Errorf("at offset 7: %w", &DecodeError{Reason: ReasonMissingField, Msg: "id is missing"}), "id is missing"},
		{"quoted value in another error", errors.New(`opportunity.close_date: want an RFC 3339 timestamp or a YYYY-MM-DD date, got "SECRET \"x\" …"`),
			"opportunity.close_date: want an RFC 3339 timestamp or a YYYY-MM-DD date, got a value"},
		{"number in another error", errors.New("opportunity.amount: number 1e400 is out of the double range"), "opportunity.amount: number is out of the double range"},
		{"encoding/json number", errors.New("json: cannot unmarshal number 1e400 into Go value of type int64"), "json: cannot unmarshal number into Go value of type int64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Detail(c.err); got != c.want {
				t.Errorf("Detail = %q, want %q", got, c.want)
			}
		})
	}
	t.Run("truncated to 1 KiB at a rune boundary", func(t *testing.T) {
		for _, err := range []error{&DecodeError{Reason: ReasonInvalidField, Msg: long}, errors.New(long), errors.New("a" + long)} {
			d := Detail(err)
			if len(d) > MaxDetailBytes || len(d) < MaxDetailBytes-4 || !utf8.ValidString(d) || !strings.HasSuffix(d, "…") {
				t.Errorf("Detail of %d bytes, valid %v: ...%q", len(d), utf8.ValidString(d), d[len(d)-8:])
			}
		}
	})
}

func TestDecodeErrorError(t *testing.T) {
	err := &DecodeError{Reason: ReasonUnknownType, Msg: "type: not one of ..."}
	if got := err.Error(); got != "unknown_type: type: not one of ..." {
		t.Errorf("Error() = %q", got)
	}
}

func TestDetailValueLeftOut(t *testing.T) {
	const note = " (the original value, 2000000 bytes, is left out: too large for the dead-letter topic)"
	if got, want := DetailValueLeftOut("invalid_json: unexpected end", 2_000_000), "invalid_json: unexpected end"+note; got != want {
		t.Errorf("DetailValueLeftOut = %q, want %q", got, want)
	}
	long := strings.Repeat("é", 510) // 1020 bytes: with the note, over the limit
	d := DetailValueLeftOut(long, 2_000_000)
	if len(d) > MaxDetailBytes || len(d) < MaxDetailBytes-4 || !utf8.ValidString(d) || !strings.HasSuffix(d, "…") || !strings.HasPrefix(d, long) {
		t.Errorf("DetailValueLeftOut of %d bytes, valid %v: ...%q", len(d), utf8.ValidString(d), d[len(d)-8:])
	}
}
