package crm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Limits caps the size of event values, so that the cost of evaluating a
// condition is bounded and can be estimated when rules load.
type Limits struct {
	MaxStringBytes int // longest string value; default 64 KiB
	MaxListLen     int // longest list; default 1,000
	MaxMapEntries  int // largest map(string, dyn) (all levels together); default 1,000
	MaxDepth       int // deepest nesting inside map(string, dyn) values; default 16
}

// DefaultLimits are the limits used when none are set.
var DefaultLimits = Limits{MaxStringBytes: 64 << 10, MaxListLen: 1000, MaxMapEntries: 1000, MaxDepth: 16}

// WithDefaults returns the limits with every unset (zero) limit at its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = DefaultLimits.MaxStringBytes
	}
	if l.MaxListLen <= 0 {
		l.MaxListLen = DefaultLimits.MaxListLen
	}
	if l.MaxMapEntries <= 0 {
		l.MaxMapEntries = DefaultLimits.MaxMapEntries
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}

// Record is a typed record value: a CEL object whose fields are those of
// its Object. Absent fields read as their type's zero value; has() tells
// whether a field is present. A field set to JSON null in a partial event is
// remembered as cleared, so that merging removes it.
//
// A Record is immutable once built; Merge and Overlay return new records.
type Record struct {
	obj  *Object
	vals []ref.Val // by Field.Index; nil = absent, types.NullValue = cleared
}

// FieldValueError is a record field whose value does not fit its type.
type FieldValueError struct {
	Object string
	Field  string
	Msg    string
}

func (e *FieldValueError) Error() string {
	return fmt.Sprintf("%s.%s: %s", e.Object, e.Field, e.Msg)
}

// NewRecord builds a record of object from a decoded JSON object (values as
// produced by encoding/json, with or without UseNumber). Fields the schema
// does not know are dropped; a value of the wrong type, or over a limit, is
// an error naming the field. JSON null marks a field cleared.
func (o *Object) NewRecord(m map[string]any, lim Limits) (*Record, error) {
	return o.newRecord(m, lim, nil)
}

// newRecord is NewRecord that appends the members that are no field to
// *unknown, when unknown is not nil (unknown.go).
func (o *Object) newRecord(m map[string]any, lim Limits, unknown *[]UnknownField) (*Record, error) {
	lim = lim.WithDefaults()
	r := &Record{obj: o, vals: make([]ref.Val, len(o.Fields))}
	for k, v := range m {
		f, ok := o.byName[k]
		if !ok {
			if unknown != nil {
				noteUnknown(unknown, o, k)
			}
			continue
		}
		cv, err := toCEL(f, v, lim, unknown)
		if err != nil {
			return nil, &FieldValueError{Object: o.Name, Field: k, Msg: err.Error()}
		}
		r.vals[f.Index] = cv
	}
	return r, nil
}

// Empty returns a record of object with no field set.
func (o *Object) Empty() *Record { return o.zero }

func toCEL(f *Field, v any, lim Limits, unknown *[]UnknownField) (ref.Val, error) {
	if v == nil {
		return types.NullValue, nil
	}
	switch f.Kind {
	case KindString:
		s, ok := v.(string)
		if !ok {
			return nil, typeErr("string", v)
		}
		if len(s) > lim.MaxStringBytes {
			return nil, fmt.Errorf("string of %d bytes is over the limit of %d", len(s), lim.MaxStringBytes)
		}
		return types.String(s), nil
	case KindInt:
		i, err := toInt(v)
		if err != nil {
			return nil, err
		}
		return types.Int(i), nil
	case KindDouble:
		d, err := toDouble(v)
		if err != nil {
			return nil, err
		}
		return types.Double(d), nil
	case KindBool:
		b, ok := v.(bool)
		if !ok {
			return nil, typeErr("bool", v)
		}
		return types.Bool(b), nil
	case KindTimestamp:
		t, err := ParseTime(v)
		if err != nil {
			return nil, err
		}
		return types.Timestamp{Time: t}, nil
	case KindStringList:
		l, ok := v.([]any)
		if !ok {
			if sl, ok := v.([]string); ok {
				l = make([]any, len(sl))
				for i, s := range sl {
					l[i] = s
				}
			} else {
				return nil, typeErr("list(string)", v)
			}
		}
		if len(l) > lim.MaxListLen {
			return nil, fmt.Errorf("list of %d elements is over the limit of %d", len(l), lim.MaxListLen)
		}
		ss := make([]string, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("element %d: %w", i, typeErr("string", e))
			}
			if len(s) > lim.MaxStringBytes {
				return nil, fmt.Errorf("element %d: string of %d bytes is over the limit of %d", i, len(s), lim.MaxStringBytes)
			}
			ss[i] = s
		}
		return types.NewStringList(types.DefaultTypeAdapter, ss), nil
	case KindDynMap:
		mv, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr("map(string, dyn)", v)
		}
		budget := lim.MaxMapEntries
		nv, err := normalizeDyn(mv, lim, 1, &budget)
		if err != nil {
			return nil, err
		}
		return types.DefaultTypeAdapter.NativeToValue(nv), nil
	case KindObjectList:
		l, ok := v.([]any)
		if !ok {
			return nil, typeErr("list", v)
		}
		if len(l) > lim.MaxListLen {
			return nil, fmt.Errorf("list of %d elements is over the limit of %d", len(l), lim.MaxListLen)
		}
		elems := make([]ref.Val, 0, len(l))
		for i, e := range l {
			em, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("element %d: %w", i, typeErr("object", e))
			}
			rec, err := f.Elem.newRecord(em, lim, unknown)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			elems = append(elems, rec)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, elems), nil
	}
	return nil, fmt.Errorf("unsupported field kind %v", f.Kind)
}

func typeErr(want string, v any) error {
	return fmt.Errorf("want %s, got %s", want, jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case json.Number, float64, int, int64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return reflect.TypeOf(v).String()
}

var errNotInteger = errors.New("want int, got a number with a fraction or out of the int64 range")

func toInt(v any) (int64, error) {
	switch n := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return 0, errNotInteger
		}
		return int64(f), nil
	case float64:
		if n != math.Trunc(n) || n < -(1<<63) || n >= 1<<63 {
			return 0, errNotInteger
		}
		return int64(n), nil
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	}
	return 0, typeErr("int", v)
}

func toDouble(v any) (float64, error) {
	switch n := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return 0, errors.New("number is out of the double range")
		}
		return f, nil
	case float64:
		if math.IsInf(n, 0) || math.IsNaN(n) {
			return 0, errors.New("number is not finite")
		}
		return n, nil
	case int64:
		return float64(n), nil
	case int:
		return float64(n), nil
	}
	return 0, typeErr("double", v)
}

// ParseTime reads a timestamp value of an event: an RFC 3339 string, or a
// date alone (YYYY-MM-DD, midnight UTC), as CRMs export date fields.
func ParseTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, typeErr("timestamp (RFC 3339 string)", v)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want an RFC 3339 timestamp or a YYYY-MM-DD date")
}

// normalizeDyn converts the numbers in a JSON value to int64 (integral and in
// range) or float64, and checks sizes and depth.
func normalizeDyn(v any, lim Limits, depth int, budget *int) (any, error) {
	if depth > lim.MaxDepth {
		return nil, fmt.Errorf("nesting deeper than the limit of %d", lim.MaxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			*budget--
			if *budget < 0 {
				return nil, fmt.Errorf("more than the limit of %d map and list entries", lim.MaxMapEntries)
			}
			ne, err := normalizeDyn(e, lim, depth+1, budget)
			if err != nil {
				return nil, err
			}
			out[k] = ne
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			*budget--
			if *budget < 0 {
				return nil, fmt.Errorf("more than the limit of %d map and list entries", lim.MaxMapEntries)
			}
			ne, err := normalizeDyn(e, lim, depth+1, budget)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, errors.New("number is out of the double range")
		}
		return f, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, errors.New("number is not finite")
		}
		return x, nil
	case string:
		if len(x) > lim.MaxStringBytes {
			return nil, fmt.Errorf("string of %d bytes is over the limit of %d", len(x), lim.MaxStringBytes)
		}
		return x, nil
	case bool, nil, int64:
		return x, nil
	}
	return nil, typeErr("JSON value", v)
}

// Object is the record's type.
func (r *Record) Object() *Object { return r.obj }

// Get returns the value of field f, or nil when it is absent or cleared.
func (r *Record) Get(f *Field) ref.Val {
	v := r.vals[f.Index]
	if v == types.NullValue {
		return nil
	}
	return v
}

// IsSet tells whether field f is present.
func (r *Record) IsSet(f *Field) bool {
	v := r.vals[f.Index]
	return v != nil && v != types.NullValue
}

// FieldValue returns field f's value, or its type's zero value when absent.
func (r *Record) FieldValue(f *Field) ref.Val {
	if v := r.Get(f); v != nil {
		return v
	}
	return zeroValue(f)
}

// String returns the value of a string field by name, "" when absent.
func (r *Record) String(name string) string {
	f, ok := r.obj.byName[name]
	if !ok {
		return ""
	}
	if s, ok := r.Get(f).(types.String); ok {
		return string(s)
	}
	return ""
}

// ID is the record's id field.
func (r *Record) ID() string {
	if r.obj.id == nil {
		return ""
	}
	s, _ := r.Get(r.obj.id).(types.String)
	return string(s)
}

// Time returns the value of a timestamp field by name, and whether it is set.
func (r *Record) Time(name string) (time.Time, bool) {
	f, ok := r.obj.byName[name]
	if !ok {
		return time.Time{}, false
	}
	if t, ok := r.Get(f).(types.Timestamp); ok {
		return t.Time, true
	}
	return time.Time{}, false
}

// Merge returns the record with the fields present in patch laid over it;
// fields cleared in patch are removed.
func (r *Record) Merge(patch *Record) *Record {
	out := &Record{obj: r.obj, vals: make([]ref.Val, len(r.vals))}
	copy(out.vals, r.vals)
	for i, v := range patch.vals {
		switch v {
		case nil:
		case types.NullValue:
			out.vals[i] = nil
		default:
			out.vals[i] = v
		}
	}
	return out
}

// Changed lists the names of the fields whose values differ between r and
// other (presence counts: a field set in one and absent in the other differs).
func (r *Record) Changed(other *Record) []string {
	var out []string
	for i, f := range r.obj.Fields {
		a, b := r.Get(f), other.Get(f)
		if a == nil && b == nil {
			continue
		}
		if a == nil || b == nil || a.Equal(b) != types.True {
			out = append(out, r.obj.Fields[i].Name)
		}
	}
	return out
}

// Fields calls fn for each present field, in schema order.
func (r *Record) Fields(fn func(f *Field, v ref.Val)) {
	for i, f := range r.obj.Fields {
		if v := r.vals[i]; v != nil && v != types.NullValue {
			fn(f, v)
		}
	}
}

func zeroValue(f *Field) ref.Val {
	switch f.Kind {
	case KindString:
		return types.String("")
	case KindInt:
		return types.IntZero
	case KindDouble:
		return types.Double(0)
	case KindBool:
		return types.False
	case KindTimestamp:
		return types.Timestamp{Time: time.Unix(0, 0).UTC()}
	case KindStringList:
		return types.NewStringList(types.DefaultTypeAdapter, nil)
	case KindObjectList:
		return types.NewRefValList(types.DefaultTypeAdapter, nil)
	case KindDynMap:
		return types.DefaultTypeAdapter.NativeToValue(map[string]any{})
	}
	return types.NullValue
}

// ref.Val implementation.

// ConvertToNative implements ref.Val. Records convert to
// map[string]any of their present fields.
func (r *Record) ConvertToNative(typeDesc reflect.Type) (any, error) {
	if typeDesc == reflect.TypeOf(r) {
		return r, nil
	}
	return nil, fmt.Errorf("type conversion error from %s to %v", r.obj.TypeName, typeDesc)
}

// ConvertToType implements ref.Val.
func (r *Record) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case r.obj.celType:
		return r
	case types.TypeType:
		return r.obj.celType
	}
	return types.NewErr("type conversion error from '%s' to '%s'", r.obj.TypeName, t)
}

// Equal implements ref.Val: records are equal when every field is.
func (r *Record) Equal(other ref.Val) ref.Val {
	o, ok := other.(*Record)
	if !ok || o.obj != r.obj {
		return types.False
	}
	for _, f := range r.obj.Fields {
		if r.FieldValue(f).Equal(o.FieldValue(f)) != types.True {
			return types.False
		}
	}
	return types.True
}

// Type implements ref.Val.
func (r *Record) Type() ref.Type { return r.obj.celType }

// Value implements ref.Val; it is the record itself, which the field
// getters of the type provider read.
func (r *Record) Value() any { return r }
