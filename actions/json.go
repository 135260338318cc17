package actions

import (
	"fmt"
	"math"
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
	if a.RunID != "" {
		dst = append(dst, `,"run_id":`...)
		dst = appendString(dst, a.RunID)
	}
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
	if r.Why != nil {
		dst = append(dst, `,"why":`...)
		dst = r.Why.appendJSON(dst)
	}
	if len(r.Persons) > 0 {
		dst = append(dst, `,"persons":[`...)
		for i := range r.Persons {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = r.Persons[i].appendJSON(dst)
		}
		dst = append(dst, ']')
	}
	if r.Context != nil {
		dst = append(dst, `,"context":`...)
		dst = r.Context.appendJSON(dst)
	}
	return append(dst, '}')
}

func (w *Why) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"clauses":[`...)
	for i := range w.Clauses {
		c := &w.Clauses[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"text":`...)
		dst = appendString(dst, c.Text)
		if c.Result != nil {
			dst = append(dst, `,"result":`...)
			dst = strconv.AppendBool(dst, *c.Result)
		}
		if c.Error != "" {
			dst = append(dst, `,"error":`...)
			dst = appendString(dst, c.Error)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `],"values":[`...)
	for i := range w.Values {
		v := &w.Values[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"field":`...)
		dst = appendString(dst, v.Field)
		dst = append(dst, `,"value":`...)
		if len(v.Value) == 0 {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, v.Value...)
		}
		if v.Truncated {
			dst = append(dst, `,"truncated":true`...)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if w.HeldBefore != nil {
		dst = append(dst, `,"held_before":`...)
		dst = strconv.AppendBool(dst, *w.HeldBefore)
	}
	if w.Truncated {
		dst = append(dst, `,"truncated":true`...)
	}
	return append(dst, '}')
}

func (p *Person) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"person_id":`...)
	dst = appendString(dst, p.PersonID)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, p.Status)
	if p.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, p.Reason)
	}
	if p.ActionID != "" {
		dst = append(dst, `,"action_id":`...)
		dst = appendString(dst, p.ActionID)
	}
	return append(dst, '}')
}

func (c *Context) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	sep := func() {
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
	}
	if t := c.Tracker; t != nil {
		dst = append(dst, `"tracker":{"name":`...)
		dst = appendString(dst, t.Name)
		if t.CallID != "" {
			dst = append(dst, `,"call_id":`...)
			dst = appendString(dst, t.CallID)
		}
		dst = append(dst, `,"confidence":`...)
		dst = appendFloat(dst, t.Confidence)
		if t.AccountID != "" {
			dst = append(dst, `,"account_id":`...)
			dst = appendString(dst, t.AccountID)
		}
		if t.OpportunityID != "" {
			dst = append(dst, `,"opportunity_id":`...)
			dst = appendString(dst, t.OpportunityID)
		}
		dst = append(dst, '}')
	}
	if k := c.Call; k != nil {
		sep()
		dst = append(dst, `"call":{"id":`...)
		dst = appendString(dst, k.ID)
		if k.Title != "" {
			dst = append(dst, `,"title":`...)
			dst = appendString(dst, k.Title)
		}
		if k.AccountID != "" {
			dst = append(dst, `,"account_id":`...)
			dst = appendString(dst, k.AccountID)
		}
		if k.OpportunityID != "" {
			dst = append(dst, `,"opportunity_id":`...)
			dst = appendString(dst, k.OpportunityID)
		}
		dst = append(dst, '}')
	}
	if t := c.Timer; t != nil {
		sep()
		dst = append(dst, `"timer":{"field":`...)
		dst = appendString(dst, t.Field)
		dst = append(dst, `,"date":`...)
		dst = appendTime(dst, t.Date)
		dst = append(dst, `,"due":`...)
		dst = appendTime(dst, t.Due)
		dst = append(dst, `,"late_ms":`...)
		dst = strconv.AppendInt(dst, t.LateMS, 10)
		dst = append(dst, '}')
	}
	if sc := c.Schedule; sc != nil {
		sep()
		dst = append(dst, `"schedule":{`...)
		n := len(dst)
		if sc.Name != "" {
			dst = append(dst, `"name":`...)
			dst = appendString(dst, sc.Name)
		}
		if sc.Cron != "" {
			if len(dst) > n {
				dst = append(dst, ',')
			}
			dst = append(dst, `"cron":`...)
			dst = appendString(dst, sc.Cron)
		}
		if !sc.Tick.IsZero() {
			if len(dst) > n {
				dst = append(dst, ',')
			}
			dst = append(dst, `"tick":`...)
			dst = appendTime(dst, sc.Tick)
		}
		if sc.LateMS != 0 {
			if len(dst) > n {
				dst = append(dst, ',')
			}
			dst = append(dst, `"late_ms":`...)
			dst = strconv.AppendInt(dst, sc.LateMS, 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendFloat appends f as encoding/json writes a float64: the shortest
// decimal that reads back as f, in exponent form below 1e-6 and from
// 1e21 on (exponents without leading zeros). f must be finite.
func appendFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// MarshalJSON implements json.Marshaler with [Run.AppendJSON]. It fails, as
// encoding/json does, on a time outside years 0 to 9999.
func (r Run) MarshalJSON() ([]byte, error) {
	ts := []time.Time{r.RanAt}
	if c := r.Context; c != nil {
		if c.Timer != nil {
			ts = append(ts, c.Timer.Date, c.Timer.Due)
		}
		if c.Schedule != nil {
			ts = append(ts, c.Schedule.Tick)
		}
	}
	if err := checkTimes("run", ts...); err != nil {
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
