package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// MarshalJSON encodes the record's present fields as a JSON object, in
// the form NewRecord reads back (timestamps as RFC 3339 strings).
func (r *Record) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(nil)
}

// AppendJSON appends the record's JSON encoding to dst.
func (r *Record) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, '{')
	first := true
	var err error
	r.Fields(func(f *Field, v ref.Val) {
		if err != nil {
			return
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = strconv.AppendQuote(dst, f.Name) // field names are [a-z0-9_]
		dst = append(dst, ':')
		dst, err = appendValue(dst, v)
	})
	if err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

func appendValue(dst []byte, v ref.Val) ([]byte, error) {
	switch x := v.(type) {
	case types.String:
		return appendString(dst, string(x)), nil
	case types.Int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case types.Double:
		return strconv.AppendFloat(dst, float64(x), 'g', -1, 64), nil
	case types.Bool:
		return strconv.AppendBool(dst, bool(x)), nil
	case types.Timestamp:
		dst = append(dst, '"')
		dst = x.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"'), nil
	case *Record:
		return x.AppendJSON(dst)
	}
	if l, ok := v.Value().([]string); ok {
		b, err := json.Marshal(l)
		return append(dst, b...), err
	}
	if l, ok := v.Value().([]ref.Val); ok {
		dst = append(dst, '[')
		for i, e := range l {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	if m, ok := v.Value().(map[string]any); ok {
		b, err := json.Marshal(m)
		return append(dst, b...), err
	}
	return nil, fmt.Errorf("cannot encode %T", v)
}

// appendString appends s as a JSON string. Plain ASCII, the common case,
// is copied as it is; anything else goes through encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// DecodeRecord reads a record of object from its JSON encoding.
func (o *Object) DecodeRecord(data []byte, lim Limits) (*Record, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode %s record: %w", o.Name, err)
	}
	return o.NewRecord(m, lim)
}
