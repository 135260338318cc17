package actions

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON object of a to dst and returns the extended
// buffer. The output is byte for byte what encoding/json gives for the same
// struct with HTML escaping off (json.Encoder.SetEscapeHTML(false)), except
// that times are converted to UTC and a nil Brief.Recipients is written as []:
// fields in declaration order, empty optional fields left out, strings
// escaped as encoding/json escapes them (invalid UTF-8 becomes \ufffd), times
// in RFC 3339 with as many fractional-second digits as needed.
//
// A time outside years 0 to 9999 has no RFC 3339 form; it is written as
// Go's time.RFC3339Nano layout writes it, which json.Unmarshal rejects.
// [Action.MarshalJSON] reports such times as an error.
func (a *Action) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"action_id":`...)
	dst = appendString(dst, a.ActionID)
	dst = append(dst, `,"workspace":`...)
	dst = appendString(dst, a.Workspace)
	dst = append(dst, `,"automation_id":`...)
	dst = appendString(dst, a.AutomationID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, a.Type)
	if b := a.Brief; b != nil {
		dst = append(dst, `,"brief":{"kind":`...)
		dst = appendString(dst, b.Kind)
		dst = append(dst, `,"recipients":`...)
		dst = appendStrings(dst, b.Recipients)
		dst = append(dst, '}')
	}
	if f := a.Flow; f != nil {
		dst = append(dst, `,"flow":{"id":`...)
		dst = appendString(dst, f.ID)
		dst = append(dst, `,"person_id":`...)
		dst = appendString(dst, f.PersonID)
		dst = append(dst, '}')
	}
	if a.Object != "" {
		dst = append(dst, `,"object":`...)
		dst = appendString(dst, a.Object)
	}
	if a.RecordID != "" {
		dst = append(dst, `,"record_id":`...)
		dst = appendString(dst, a.RecordID)
	}
	dst = append(dst, `,"event_id":`...)
	dst = appendString(dst, a.EventID)
	dst = append(dst, `,"event_time":`...)
	dst = appendTime(dst, a.EventTime)
	dst = append(dst, `,"fired_at":`...)
	dst = appendTime(dst, a.FiredAt)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with [Action.AppendJSON], so that
// encoding/json writes the same bytes as the Kafka writer (package
// actions/writer). It fails, as encoding/json does, on a time outside
// years 0 to 9999.
func (a Action) MarshalJSON() ([]byte, error) {
	if err := checkTimes("action", a.EventTime, a.FiredAt); err != nil {
		return nil, err
	}
	return a.AppendJSON(make([]byte, 0, 320)), nil
}

// AppendJSON appends the JSON object of r to dst and returns the extended
// buffer, as [Action.AppendJSON] does; a nil ActionIDs is written as [].
func (r *Run) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"run_id":`...)
	dst = appendString(dst, r.RunID)
	dst = append(dst, `,"workspace":`...)
	dst = appendString(dst, r.Workspace)
	dst = append(dst, `,"automation_id":`...)
	dst = appendString(dst, r.AutomationID)
	dst = append(dst, `,"trigger":`...)
	dst = appendString(dst, r.Trigger)
	dst = append(dst, `,"event_id":`...)
	dst = appendString(dst, r.EventID)
	if r.Object != "" {
		dst = append(dst, `,"object":`...)
		dst = appendString(dst, r.Object)
	}
	if r.RecordID != "" {
		dst = append(dst, `,"record_id":`...)
		dst = appendString(dst, r.RecordID)
	}
	dst = append(dst, `,"ran_at":`...)
	dst = appendTime(dst, r.RanAt)
	dst = append(dst, `,"outcome":`...)
	dst = appendString(dst, r.Outcome)
	dst = append(dst, `,"reason":`...)
	dst = appendString(dst, r.Reason)
	if r.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, r.Error)
	}
	if r.LateMS != 0 {
		dst = append(dst, `,"late_ms":`...)
		dst = strconv.AppendInt(dst, r.LateMS, 10)
	}
	dst = append(dst, `,"action_ids":`...)
	dst = appendStrings(dst, r.ActionIDs)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with [Run.AppendJSON]. It fails, as
// encoding/json does, on a time outside years 0 to 9999.
func (r Run) MarshalJSON() ([]byte, error) {
	if err := checkTimes("run", r.RanAt); err != nil {
		return nil, err
	}
	return r.AppendJSON(make([]byte, 0, 320)), nil
}

func checkTimes(what string, ts ...time.Time) error {
	for _, t := range ts {
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("actions: marshal %s: time %v: year outside of range [0,9999]", what, t)
		}
	}
	return nil
}

// appendTime appends t in UTC as a quoted RFC 3339 time with nanoseconds,
// trailing zeros trimmed, as time.Time.MarshalJSON writes it
// (time.RFC3339Nano), only faster.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	hour, minute, sec := t.Clock()
	var b [32]byte // "2006-01-02T15:04:05.999999999Z"
	b[0] = '"'
	put4(b[1:], year)
	b[5] = '-'
	put2(b[6:], int(month))
	b[8] = '-'
	put2(b[9:], day)
	b[11] = 'T'
	put2(b[12:], hour)
	b[14] = ':'
	put2(b[15:], minute)
	b[17] = ':'
	put2(b[18:], sec)
	n := 20
	if ns := t.Nanosecond(); ns != 0 {
		b[20] = '.'
		for i := 29; i > 20; i-- {
			b[i] = byte('0' + ns%10)
			ns /= 10
		}
		n = 30
		for b[n-1] == '0' {
			n--
		}
	}
	b[n] = 'Z'
	b[n+1] = '"'
	return append(dst, b[:n+2]...)
}

func put2(b []byte, v int) {
	b[0] = byte('0' + v/10)
	b[1] = byte('0' + v%10)
}

func put4(b []byte, v int) {
	put2(b, v/100)
	put2(b[2:], v%100)
}

// appendStrings appends ss as a JSON array of strings; nil is written as [].
func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// safeASCII reports the ASCII bytes that appear in a JSON string unescaped:
// everything from 0x20 up, except '"' and '\\'. HTML characters are not
// escaped: the records are read by programs, not rendered by browsers.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// appendString appends s as a quoted JSON string, escaping as encoding/json
// does without HTML escaping: '"' and '\\' with a backslash, \b \f \n \r \t
// by name, other bytes below 0x20 as \u00XX, U+2028 and U+2029 as \u2028
// and \u2029 (for JavaScript), and every byte that is not part of valid
// UTF-8 as \ufffd.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if safeASCII[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
