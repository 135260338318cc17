package ingest

import (
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// MaxDetailBytes is the longest Detail.
const MaxDetailBytes = 1024

// Reason returns the reason code of a decode failure: the Reason of a
// *DecodeError in err's chain, else ReasonInternal. It is one of Reasons,
// or "" for a nil error.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ReasonInternal
}

// Detail returns a message describing a decode failure, for the
// dead-letter record and the log: at most MaxDetailBytes of valid UTF-8,
// naming fields and types but never quoting payload values. "" for a nil
// error.
func Detail(err error) string {
	if err == nil {
		return ""
	}
	var msg string
	var de *DecodeError
	if errors.As(err, &de) {
		msg = de.Msg // built without payload values
	} else {
		msg = sanitize(err.Error())
	}
	return truncate(msg, MaxDetailBytes)
}

// DetailValueLeftOut returns detail, the Detail of a dead letter, extended
// to say that the original value, n bytes, is left out of it because the
// dead-letter topic refused it as too large: at most MaxDetailBytes, like
// Detail.
func DetailValueLeftOut(detail string, n int) string {
	return truncate(fmt.Sprintf("%s (the original value, %d bytes, is left out: too large for the dead-letter topic)",
		detail, n), MaxDetailBytes)
}

var (
	quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"…?`)
	numberRE = regexp.MustCompile(`\bnumber [^ ]+ (is|into)\b`)
)

// sanitize removes the values an error message of another package may
// quote: Go-quoted strings (crm.ParseTime writes the rejected text with
// %q) and number literals (rules writes "number 1e400 is out of the double
// range", encoding/json "cannot unmarshal number 1e400 into").
func sanitize(s string) string {
	s = quotedRE.ReplaceAllLiteralString(s, "a value")
	return numberRE.ReplaceAllString(s, "number $1")
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	n -= len(mark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}
