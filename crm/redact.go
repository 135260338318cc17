package crm

import "regexp"

// quotedValue matches a Go-quoted string in an error message: CEL and the
// record decoders quote the offending value (`invalid RFC 3339 timestamp
// "..."`).
var quotedValue = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// Redact returns err's message for a log, which must not hold CRM field
// values: every quoted string is replaced by "…". Run records keep the
// whole message.
func Redact(err error) string {
	return quotedValue.ReplaceAllLiteralString(err.Error(), `"…"`)
}
