package crm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/whenthen/whenthen/internal/jsonx"
)

// The compact binary encoding of a record, for stored snapshots: smaller
// and cheaper to read than its JSON, and as self-describing, so that a
// schema change reads it as it would read the JSON.
//
//	record = uvarint(number of members) member*
//	member = uvarint(N) value         N ≥ 1: the field named binFieldNames[N-1]
//	       | 0 uvarint(len(name)) name value
//	value  = tag payload
//
// Members are the present fields in schema order, known by name, not by
// position: a schema file may add, remove or reorder fields. The names of
// the built-in fields are numbered (binFieldNames), others written out.
// Tags and payloads:
//
//	1 string        uvarint(len) bytes
//	2 int           zig-zag varint
//	3 double        8 bytes, IEEE 754, little-endian
//	4 false, 5 true (no payload)
//	6 timestamp     zig-zag varint(Unix seconds) uvarint(nanoseconds)
//	7 list(string)  uvarint(n) (uvarint(len) bytes)*
//	8 map(string, dyn)  uvarint(len) JSON (dyn values are JSON's)
//	9 list(object)  uvarint(n) record*
//
// A member the schema no longer has is skipped; a value of another kind
// than its field's goes through the conversions of NewRecord (an int read
// into a double field, a timestamp into a string field as RFC 3339).
const (
	binString byte = iota + 1
	binInt
	binDouble
	binFalse
	binTrue
	binTimestamp
	binStringList
	binDynMap
	binObjectList
)

// AppendBinary appends the record's binary encoding to dst.
func (r *Record) AppendBinary(dst []byte) ([]byte, error) {
	n := 0
	r.Fields(func(*Field, ref.Val) { n++ })
	dst = binary.AppendUvarint(dst, uint64(n))
	var err error
	r.Fields(func(f *Field, v ref.Val) {
		if err != nil {
			return
		}
		if f.binNum != 0 {
			dst = binary.AppendUvarint(dst, f.binNum)
		} else {
			dst = appendBinString(append(dst, 0), f.Name)
		}
		dst, err = appendBinValue(dst, v)
		if err != nil {
			err = fmt.Errorf("field %s: %w", f.Name, err)
		}
	})
	if err != nil {
		return nil, err
	}
	return dst, nil
}

func appendBinString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBinValue(dst []byte, v ref.Val) ([]byte, error) {
	switch x := v.(type) {
	case types.String:
		return appendBinString(append(dst, binString), string(x)), nil
	case types.Int:
		return binary.AppendVarint(append(dst, binInt), int64(x)), nil
	case types.Double:
		return binary.LittleEndian.AppendUint64(append(dst, binDouble), math.Float64bits(float64(x))), nil
	case types.Bool:
		if x {
			return append(dst, binTrue), nil
		}
		return append(dst, binFalse), nil
	case types.Timestamp:
		dst = binary.AppendVarint(append(dst, binTimestamp), x.Unix())
		return binary.AppendUvarint(dst, uint64(x.Nanosecond())), nil
	}
	switch x := v.Value().(type) {
	case []string:
		dst = binary.AppendUvarint(append(dst, binStringList), uint64(len(x)))
		for _, s := range x {
			dst = appendBinString(dst, s)
		}
		return dst, nil
	case []ref.Val:
		dst = binary.AppendUvarint(append(dst, binObjectList), uint64(len(x)))
		for i, e := range x {
			rec, ok := e.(*Record)
			if !ok {
				return nil, fmt.Errorf("element %d: cannot encode %T", i, e)
			}
			var err error
			if dst, err = rec.AppendBinary(dst); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return dst, nil
	case map[string]any:
		js, err := appendValue(nil, v)
		if err != nil {
			return nil, err
		}
		return appendBinString(append(dst, binDynMap), string(js)), nil
	}
	return nil, fmt.Errorf("cannot encode %T", v)
}

// DecodeBinary reads a record of object from its binary encoding (all of
// data), with the checks NewRecord makes: values over lim are errors, as
// are values that do not fit their field. A *FieldValueError names a bad
// field.
func (o *Object) DecodeBinary(data []byte, lim Limits) (*Record, error) {
	d := binReader{b: data, lim: lim.WithDefaults()}
	r := d.record(o)
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the record", len(d.b))
	}
	if d.err != nil {
		var fe *FieldValueError
		if errors.As(d.err, &fe) {
			return nil, fe
		}
		return nil, fmt.Errorf("decode %s record: %w", o.Name, d.err)
	}
	return r, nil
}

// binReader reads the binary encoding; its first error stops it.
type binReader struct {
	b     []byte
	lim   Limits
	err   error
	depth int // records being read, nested
}

// maxBinDepth bounds the nesting of records (the schema nests one level:
// participants; a member no field holds is skipped whatever it holds).
const maxBinDepth = 8

var errShort = errors.New("truncated")

func (d *binReader) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *binReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *binReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *binReader) byte() byte {
	if len(d.b) == 0 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes reads a length-prefixed byte string (aliasing the input).
func (d *binReader) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// count reads an element count: no more than the bytes left (every
// element takes one at least), so that a damaged count allocates
// nothing. The list limit is the field's to check, as in JSON: a member
// no field holds is skipped whatever its length.
func (d *binReader) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

// record reads a record of o; o nil skips it.
func (d *binReader) record(o *Object) *Record {
	if d.depth++; d.depth > maxBinDepth {
		d.fail(errors.New("records nested too deep"))
		return nil
	}
	defer func() { d.depth-- }()
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return nil
	}
	var r *Record
	if o != nil {
		r = &Record{obj: o, vals: make([]ref.Val, len(o.Fields))}
	}
	for range n {
		var f *Field
		switch num := d.uvarint(); {
		case num == 0:
			if name := d.bytes(); o != nil {
				f = o.byName[string(name)]
			}
		case num <= uint64(len(binFieldNames)):
			if o != nil {
				f = o.byName[binFieldNames[num-1]]
			}
		default:
			d.fail(fmt.Errorf("field number %d is not known to this version", num))
			return nil
		}
		tag := d.byte()
		v := d.value(tag, f)
		if d.err != nil {
			if fe, ok := d.err.(*FieldValueError); ok && fe.Object == "" {
				fe.Object = o.Name
			}
			return nil
		}
		if f != nil {
			r.vals[f.Index] = v
		}
	}
	return r
}

// value reads a value of tag for field f; f nil skips it.
func (d *binReader) value(tag byte, f *Field) ref.Val {
	switch tag {
	case binString:
		s := d.bytes()
		if f != nil && f.Kind == KindString && len(s) <= d.lim.MaxStringBytes {
			return types.String(s)
		}
		return d.convert(f, string(s))
	case binInt:
		i := d.varint()
		if f != nil && f.Kind == KindInt {
			return types.Int(i)
		}
		return d.convert(f, i)
	case binDouble:
		if len(d.b) < 8 {
			d.fail(errShort)
			return nil
		}
		x := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
		if f != nil && f.Kind == KindDouble && !math.IsNaN(x) && !math.IsInf(x, 0) {
			return types.Double(x)
		}
		return d.convert(f, x)
	case binFalse, binTrue:
		return d.convert(f, tag == binTrue)
	case binTimestamp:
		sec, nsec := d.varint(), d.uvarint()
		if nsec >= 1e9 {
			d.fail(fmt.Errorf("timestamp of %d nanoseconds", nsec))
			return nil
		}
		t := time.Unix(sec, int64(nsec)).UTC()
		if f != nil && f.Kind == KindTimestamp {
			return types.Timestamp{Time: t}
		}
		return d.convert(f, t.Format(time.RFC3339Nano))
	case binStringList:
		n := d.count()
		var ss []string
		if f != nil {
			ss = make([]string, 0, n)
		}
		for range n {
			s := d.bytes()
			if f != nil {
				ss = append(ss, string(s))
			}
		}
		if f != nil && f.Kind == KindStringList && len(ss) <= d.lim.MaxListLen && !slices.ContainsFunc(ss, func(s string) bool { return len(s) > d.lim.MaxStringBytes }) {
			return types.NewStringList(types.DefaultTypeAdapter, ss)
		}
		return d.convert(f, ss) // over a limit, or another kind: as NewRecord says it
	case binDynMap:
		js := d.bytes()
		if f == nil || d.err != nil {
			return nil
		}
		v, err := jsonx.Parse(js)
		if err != nil {
			d.fail(err)
			return nil
		}
		return d.convert(f, v)
	case binObjectList:
		n := d.count()
		var elem *Object
		if f != nil && f.Kind == KindObjectList {
			elem = f.Elem
		}
		if elem != nil && n > d.lim.MaxListLen {
			d.fail(&FieldValueError{Field: f.Name, Msg: fmt.Sprintf("list of %d elements is over the limit of %d", n, d.lim.MaxListLen)})
			return nil
		}
		var elems []ref.Val
		for i := range n {
			rec := d.record(elem)
			if d.err != nil {
				if fe, ok := d.err.(*FieldValueError); ok && f != nil {
					// As NewRecord names it: the field, then the element's.
					d.err = &FieldValueError{Field: f.Name, Msg: fmt.Sprintf("element %d: %v", i, fe)}
				}
				return nil
			}
			if elem != nil && rec != nil {
				elems = append(elems, rec)
			}
		}
		if d.err != nil || f == nil {
			return nil
		}
		if elem == nil {
			d.fail(&FieldValueError{Field: f.Name, Msg: "a list of objects in a field of " + kindNames[f.Kind]})
			return nil
		}
		return types.NewRefValList(types.DefaultTypeAdapter, elems)
	}
	d.fail(fmt.Errorf("unknown value tag %d", tag))
	return nil
}

// convert reads a value of another kind than f's, or over a limit, as
// NewRecord reads it.
func (d *binReader) convert(f *Field, v any) ref.Val {
	if f == nil || d.err != nil {
		return nil
	}
	if ss, ok := v.([]string); ok {
		l := make([]any, len(ss))
		for i, s := range ss {
			l[i] = s
		}
		v = l
	}
	out, err := toCEL(f, v, d.lim, nil)
	if err != nil {
		d.fail(&FieldValueError{Field: f.Name, Msg: err.Error()})
		return nil
	}
	return out
}

// binFieldNames numbers field names in binary records: the number of a
// name is its position plus one. Stored snapshots hold these numbers, so
// the list is append-only: a name keeps its number for ever, and a new
// built-in field's name goes at the end (TestBinFieldNames checks both).
var binFieldNames = []string{
	"id", "owner_id", "created_at", "updated_at", "name", "tier", "industry", "region", "annual_revenue",
	"employee_count", "renewal_date", "primary_contact_id", "account_id", "stage", "type", "forecast_category",
	"amount", "probability", "close_date", "email", "first_name", "last_name", "company", "status", "source",
	"country", "score", "title", "phone", "call_id", "confidence", "participants", "contact_id", "role",
	"started_at", "duration_s", "direction", "opportunity_id", "time", "object", "workspace",
}

var binFieldNum = func() map[string]uint64 {
	m := make(map[string]uint64, len(binFieldNames))
	for i, n := range binFieldNames {
		m[n] = uint64(i + 1)
	}
	return m
}()
