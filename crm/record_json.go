package crm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/whenthen/whenthen/internal/jsonx"
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
		// Field names are [a-z0-9_] (the schema checks it): no escaping.
		dst = append(dst, '"')
		dst = append(dst, f.Name...)
		dst = append(dst, '"', ':')
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

// DecodeRecord reads a record of object from its JSON encoding: the JSON
// value at the start of data (what follows it is not read), an object or
// null (no field set). It reads what NewRecord reads from the map
// encoding/json decodes the object into with UseNumber.
func (o *Object) DecodeRecord(data []byte, lim Limits) (*Record, error) {
	p := jsonx.Get()
	defer jsonx.Put(p)
	p.Reset(data)
	switch k := p.Kind(); k {
	case jsonx.Object:
		r, err := o.ReadRecord(p, lim)
		if perr := p.Err(); perr != nil {
			return nil, fmt.Errorf("decode %s record: %w", o.Name, perr)
		}
		return r, err
	case jsonx.Null:
		if err := p.Skip(); err != nil {
			return nil, fmt.Errorf("decode %s record: %w", o.Name, err)
		}
		return o.NewRecord(nil, lim)
	default:
		if err := p.Skip(); err != nil {
			return nil, fmt.Errorf("decode %s record: %w", o.Name, err)
		}
		return nil, fmt.Errorf("decode %s record: want a JSON object, got %s", o.Name, k)
	}
}

// ReadRecord reads a record of object from the JSON object that is p's
// next value, as NewRecord reads the map encoding/json decodes the object
// into with UseNumber, without building the map: members that are no
// field are skipped, and of a key twice, the last member counts. The
// values are checked once the whole object is read, so a syntax error
// (then p.Err() != nil) comes before a bad value. A *FieldValueError
// names the first bad field in schema order.
func (o *Object) ReadRecord(p *jsonx.Parser, lim Limits) (*Record, error) {
	return o.readRecord(p, lim, nil)
}

// readRecord is ReadRecord that appends the members that are no field to
// *unknown, when unknown is not nil (unknown.go).
func (o *Object) readRecord(p *jsonx.Parser, lim Limits, unknown *[]UnknownField) (*Record, error) {
	lim = lim.WithDefaults()
	r := &Record{obj: o, vals: make([]ref.Val, len(o.Fields))}
	var bad []error // by field index: the error of the field's value
	m := p.Object()
	for m.Next() {
		f, ok := o.byName[string(m.Key())]
		if !ok {
			if unknown != nil {
				noteUnknown(unknown, o, string(m.Key()))
			}
			continue
		}
		v, err := readValue(p, f, lim, unknown)
		if p.Err() != nil {
			break
		}
		r.vals[f.Index] = v
		if bad != nil {
			bad[f.Index] = nil
		}
		if err != nil {
			if bad == nil {
				bad = make([]error, len(o.Fields))
			}
			bad[f.Index] = err
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	for i, err := range bad {
		if err != nil {
			return nil, &FieldValueError{Object: o.Name, Field: o.Fields[i].Name, Msg: err.Error()}
		}
	}
	return r, nil
}

// readValue reads the value of field f that is p's next value, converting
// it as toCEL does. A syntax error is left in p.Err().
func readValue(p *jsonx.Parser, f *Field, lim Limits, unknown *[]UnknownField) (ref.Val, error) {
	if f.Kind == KindString && p.Kind() == jsonx.String {
		s, err := p.String()
		if err != nil {
			return nil, nil
		}
		if len(s) <= lim.MaxStringBytes {
			return types.String(s), nil
		}
		return toCEL(f, s, lim, nil)
	}
	v, err := p.Value()
	if err != nil {
		return nil, nil
	}
	return toCEL(f, v, lim, unknown)
}
