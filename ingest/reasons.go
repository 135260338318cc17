package ingest

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/utf8x"
)

// Why a message is rejected: the reason codes of decode failures, which
// label metrics and the dead-letter header, and their details, which the
// dead-letter record carries (package pipeline writes it).

// MaxDetailBytes is the longest Detail: the longest detail header a dead
// letter carries.
const MaxDetailBytes = actions.MaxDetailBytes

// Reasons a message is rejected. They label metrics and the dead-letter
// header, so the set is small and fixed; docs/events.md describes each.
const (
	ReasonTooLarge      = "too_large"      // over DecoderOptions.MaxBytes, or a JSON array or object with too many entries
	ReasonEmpty         = "empty"          // empty value or tombstone
	ReasonInvalidJSON   = "invalid_json"   // not one JSON object: syntax error, truncated, trailing data
	ReasonInvalidUTF8   = "invalid_utf8"   // invalid UTF-8 bytes, or an escaped lone UTF-16 surrogate
	ReasonMissingField  = "missing_field"  // a required field is absent, null or empty
	ReasonInvalidField  = "invalid_field"  // a field of the wrong type, format or range, or over a size limit
	ReasonUnknownType   = "unknown_type"   // an event type (or Debezium op) that is not accepted
	ReasonUnknownObject = "unknown_object" // an object that is not a CRM object
	ReasonDuplicateKey  = "duplicate_key"  // a key twice in one object, or an envelope key in another case
	ReasonTooDeep       = "too_deep"       // nesting deeper than DecoderOptions.MaxDepth
	ReasonUnknownTable  = "unknown_table"  // a Debezium event of a table with no TableMapping
	ReasonInternal      = "internal"       // any error that is not a *DecodeError
)

// Reasons lists every value Reason can return, for pre-creating metric
// label values.
var Reasons = []string{
	ReasonTooLarge, ReasonEmpty, ReasonInvalidJSON, ReasonInvalidUTF8,
	ReasonMissingField, ReasonInvalidField, ReasonUnknownType, ReasonUnknownObject,
	ReasonDuplicateKey, ReasonTooDeep, ReasonUnknownTable, ReasonInternal,
}

// DecodeError is a message that cannot be decoded. Reason is one of the
// Reason constants; Msg says what is wrong, naming fields and types but
// never quoting a value of the payload, so that it can be logged and put in
// a dead-letter header.
type DecodeError struct {
	Reason string
	Msg    string
}

func (e *DecodeError) Error() string { return e.Reason + ": " + e.Msg }

func decodeErr(reason, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

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
	return utf8x.Cut(msg, MaxDetailBytes)
}

// DetailValueLeftOut returns detail, the Detail of a dead letter, extended
// to say that the original value, n bytes, is left out of it because the
// dead-letter topic refused it as too large: at most MaxDetailBytes, like
// Detail.
func DetailValueLeftOut(detail string, n int) string {
	return utf8x.Cut(fmt.Sprintf("%s (the original value, %d bytes, is left out: too large for the dead-letter topic)",
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
