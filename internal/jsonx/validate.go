package jsonx

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"sync"
)

// MaxKeys is the most keys ValidateOptions.Keys may hold.
const MaxKeys = 64

// ValidateOptions are the limits and top-level keys of Validate.
type ValidateOptions struct {
	// MaxDepth is the deepest nesting of objects and arrays accepted, the
	// top-level object being depth 1; default (0) the package's MaxDepth.
	MaxDepth int
	// MaxElements is the most elements of one array, or members of one
	// object, accepted; default (0) no limit.
	MaxElements int
	// Keys are keys of the top-level object to look for, at most MaxKeys:
	// Validate reports which of them the object has, and where their
	// values are. A key of the top-level object that matches one of them
	// case-insensitively (with Unicode simple folding, as encoding/json
	// matches struct fields) but not exactly is an error, CaseVariantKey:
	// readers that match keys so would take it for the other.
	Keys [][]byte
}

// ErrorKind says what Validate found wrong.
type ErrorKind uint8

// Kinds of ValidateError.
const (
	BadSyntax      ErrorKind = iota + 1 // not RFC 8259 JSON, or something after the object
	NotObject                           // the value is not an object
	LoneSurrogate                       // a string holds an escaped lone UTF-16 surrogate
	TooDeep                             // nesting deeper than MaxDepth
	TooManyEntries                      // an array or object with more than MaxElements entries
	DuplicateKey                        // a key twice in one object, compared after unescaping
	CaseVariantKey                      // a top-level key that is one of Keys but for case
)

var errorKindNames = [...]string{"", "bad syntax", "not an object", "lone surrogate", "too deep", "too many entries", "duplicate key", "case-variant key"}

func (k ErrorKind) String() string {
	if int(k) < len(errorKindNames) && k != 0 {
		return errorKindNames[k]
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// ValidateError is what Validate finds wrong. The message names what and
// where, by byte offset or by path, but never quotes the data.
type ValidateError struct {
	Kind ErrorKind
	// Msg is the message, without the "jsonx: " of Error.
	Msg string
	// Offset is that of the byte at fault, or the length of the data when
	// it ends too early.
	Offset int
	// Path is where the fault is in the object: the keys from the top
	// level, joined with '.', with [] after the key of an array the fault
	// is in (not after that of an array too long); "" at the top level.
	// Keys that do not look like names (IsName) are written "?".
	Path string
	// Key is, for CaseVariantKey, the index in Keys of the key matched.
	Key int
}

func (e *ValidateError) Error() string { return "jsonx: " + e.Msg }

// Validate checks, in one pass and without building values, that data is
// exactly one JSON object (RFC 8259 syntax, nothing after it but white
// space), nested at most opts.MaxDepth deep, with at most
// opts.MaxElements entries in any array or object, with no key twice in
// any object (keys compared after unescaping, as encoding/json compares
// them), and with no escaped lone UTF-16 surrogate (which encoding/json
// replaces with U+FFFD). An error of the data is a *ValidateError.
//
// It also looks for opts.Keys in the top-level object: present has bit i
// set when the object has key Keys[i], and then, if offsets is not nil
// (it must be at least as long as Keys), offsets[i] is set to the offset
// in data of that key's value.
//
// data must be valid UTF-8 (utf8.Valid): bytes from 0x80 up are not
// checked. Validate allocates only for an object of more than 32 keys,
// and for an error. It is safe for concurrent use: its state is pooled.
func Validate(data []byte, opts ValidateOptions, offsets []int) (present uint64, err error) {
	if opts.MaxDepth < 0 || opts.MaxElements < 0 {
		return 0, errors.New("jsonx: ValidateOptions.MaxDepth and MaxElements must not be negative")
	}
	if len(opts.Keys) > MaxKeys {
		return 0, errors.New("jsonx: ValidateOptions.Keys has more than " + strconv.Itoa(MaxKeys) + " keys")
	}
	if offsets != nil && len(offsets) < len(opts.Keys) {
		return 0, errors.New("jsonx: Validate's offsets are shorter than ValidateOptions.Keys")
	}
	v := validators.Get().(*validator)
	e := v.validate(data, &opts)
	present = v.present
	if offsets != nil {
		// Copied rather than written by v, so that offsets, kept by no
		// pooled validator, can stay on the caller's stack.
		copy(offsets, v.offsets[:len(opts.Keys)])
	}
	v.reset()
	validators.Put(v)
	if e != nil {
		return 0, e
	}
	return present, nil
}

// smallObject is the number of keys of one object compared pairwise; past
// it, an object's keys go into a map.
const smallObject = 32

var validators = sync.Pool{New: func() any { return &validator{stack: make([]keyRef, 0, 64)} }}

// validator is the state of Validate, pooled.
type validator struct {
	data     []byte
	pos      int
	maxDepth int
	maxElems int
	keys     [][]byte
	present  uint64       // bit i: the top-level object has key keys[i]
	offsets  [MaxKeys]int // offsets[i]: where the value of keys[i] is, when present has bit i
	stack    []keyRef     // keys of the open objects, innermost last
	path     []pathElem
	buf      []byte // scratch for unescaped keys
	buf2     []byte
}

// keyRef is a key of an object: where its text is in the data (no
// pointer, so that the key and path stacks cost no write barriers).
type keyRef struct {
	start, end int  // of the text between the quotes, as written
	esc        bool // the text holds a backslash escape
}

type pathElem struct {
	key   keyRef
	array bool // inside an array under key
}

func (v *validator) reset() {
	v.data, v.keys = nil, nil
	v.stack = v.stack[:0]
	v.path = v.path[:0]
	if cap(v.buf) > maxKeep {
		v.buf = nil
	}
	if cap(v.buf2) > maxKeep {
		v.buf2 = nil
	}
}

func (v *validator) validate(data []byte, o *ValidateOptions) *ValidateError {
	v.data, v.keys, v.present = data, o.Keys, 0
	v.maxDepth, v.maxElems = o.MaxDepth, o.MaxElements
	if v.maxDepth == 0 {
		v.maxDepth = MaxDepth
	}
	if v.maxElems == 0 {
		v.maxElems = math.MaxInt
	}
	v.pos = skipSpace(data, 0)
	if v.pos >= len(data) || data[v.pos] != '{' {
		return v.fail(NotObject, "not a JSON object")
	}
	if err := v.value(1); err != nil {
		return err
	}
	v.pos = skipSpace(data, v.pos)
	if v.pos != len(data) {
		return v.fail(BadSyntax, "data after the JSON object at byte offset "+strconv.Itoa(v.pos))
	}
	return nil
}

// fail returns an error at v.pos, on the path of v.path.
func (v *validator) fail(kind ErrorKind, msg string) *ValidateError {
	return &ValidateError{Kind: kind, Msg: msg, Offset: v.pos, Path: v.at(false)}
}

// syntax returns a syntax error at v.pos, or at the end of the data.
func (v *validator) syntax() *ValidateError {
	if v.pos >= len(v.data) {
		v.pos = len(v.data)
		return v.fail(BadSyntax, "unexpected end of JSON input")
	}
	return v.fail(BadSyntax, "invalid JSON syntax at byte offset "+strconv.Itoa(v.pos))
}

// value checks the value at v.pos, at nesting depth depth (of the
// container it would open).
func (v *validator) value(depth int) *ValidateError {
	d := v.data
	v.pos = skipSpace(d, v.pos)
	if v.pos >= len(d) {
		return v.syntax()
	}
	switch c := d[v.pos]; {
	case c == '{':
		if depth > v.maxDepth {
			return v.tooDeep()
		}
		return v.object(depth)
	case c == '[':
		if depth > v.maxDepth {
			return v.tooDeep()
		}
		return v.array(depth)
	case c == '"':
		end, _, fault := scanString(d, v.pos, true)
		if fault != strOK {
			return v.strError(end, fault)
		}
		v.pos = end
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		end, ok := scanNumber(d, v.pos)
		if !ok {
			return v.syntax() // at the number's first byte
		}
		v.pos = end
		return nil
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	}
	return v.syntax()
}

// literal checks the literal lit at v.pos; an error is at its first byte,
// or at the end of the data when the data ends inside it.
func (v *validator) literal(lit string) *ValidateError {
	end, ok := scanLiteral(v.data, v.pos, lit)
	if !ok {
		if end >= len(v.data) {
			v.pos = end
		}
		return v.syntax()
	}
	v.pos = end
	return nil
}

func (v *validator) tooDeep() *ValidateError {
	e := v.fail(TooDeep, "")
	e.Msg = "nesting deeper than the limit of " + strconv.Itoa(v.maxDepth) + " at " + place(e.Path)
	return e
}

// place words a path for a message.
func place(path string) string {
	if path == "" {
		return "at the top level"
	}
	return path
}

func (v *validator) object(depth int) *ValidateError {
	v.pos++ // {
	base := len(v.stack)
	err := v.members(depth, base)
	v.stack = v.stack[:base]
	return err
}

// members checks the members of the object v.pos is in, whose keys go on
// v.stack from base.
func (v *validator) members(depth, base int) *ValidateError {
	d := v.data
	var set map[string]struct{} // the keys, once there are more than smallObject
	v.pos = skipSpace(d, v.pos)
	if v.pos < len(d) && d[v.pos] == '}' {
		v.pos++
		return nil
	}
	for n := 1; ; n++ {
		if n > v.maxElems {
			v.pos = skipSpace(d, v.pos)
			e := v.fail(TooManyEntries, "")
			e.Msg = "object " + place(e.Path) + " has more than the limit of " + strconv.Itoa(v.maxElems) + " members"
			return e
		}
		v.pos = skipSpace(d, v.pos)
		if v.pos >= len(d) || d[v.pos] != '"' {
			return v.syntax()
		}
		kpos := v.pos
		end, esc, fault := scanString(d, kpos, true)
		if fault != strOK {
			return v.strError(end, fault)
		}
		v.pos = end
		k := keyRef{start: kpos + 1, end: end - 1, esc: esc}
		fi := -1
		if depth == 1 && v.keys != nil {
			var err *ValidateError
			if fi, err = v.fold(k, kpos); err != nil {
				return err
			}
		}
		if v.seen(k, base, &set) {
			v.pos = kpos
			v.path = append(v.path, pathElem{key: k})
			e := v.fail(DuplicateKey, "")
			v.path = v.path[:len(v.path)-1]
			e.Msg = "key " + e.Path + " appears twice in one object"
			return e
		}
		v.pos = skipSpace(d, v.pos)
		if v.pos >= len(d) || d[v.pos] != ':' {
			return v.syntax()
		}
		v.pos = skipSpace(d, v.pos+1)
		if fi >= 0 {
			v.offsets[fi] = v.pos
		}
		v.path = append(v.path, pathElem{key: k})
		err := v.value(depth + 1)
		v.path = v.path[:len(v.path)-1]
		if err != nil {
			return err
		}
		v.pos = skipSpace(d, v.pos)
		if v.pos >= len(d) {
			return v.syntax()
		}
		switch d[v.pos] {
		case ',':
			v.pos++
		case '}':
			v.pos++
			return nil
		default:
			return v.syntax()
		}
	}
}

// seen reports whether key k is already a key of the object whose keys
// are v.stack[base:] (or *set, once the object has more than smallObject
// keys), and records it.
func (v *validator) seen(k keyRef, base int, set *map[string]struct{}) bool {
	if *set != nil {
		s := v.unquote(&v.buf, k)
		if _, dup := (*set)[string(s)]; dup {
			return true
		}
		(*set)[string(s)] = struct{}{}
		return false
	}
	keys := v.stack[base:]
	kn := k.end - k.start
	for _, o := range keys {
		if !o.esc && !k.esc {
			if o.end-o.start == kn && string(v.raw(o)) == string(v.raw(k)) {
				return true
			}
		} else if string(v.unquote(&v.buf, o)) == string(v.unquote(&v.buf2, k)) {
			return true
		}
	}
	if len(keys) < smallObject {
		v.stack = append(v.stack, k)
		return false
	}
	m := make(map[string]struct{}, 2*len(keys))
	for _, o := range keys {
		m[string(v.unquote(&v.buf, o))] = struct{}{}
	}
	m[string(v.unquote(&v.buf, k))] = struct{}{}
	*set = m
	return false
}

// fold looks for key k, at kpos, of the top-level object in v.keys,
// returning the index of the key it is, or -1.
func (v *validator) fold(k keyRef, kpos int) (int, *ValidateError) {
	raw := v.unquote(&v.buf, k)
	for i, f := range v.keys {
		if string(raw) == string(f) {
			v.present |= 1 << i
			return i, nil
		}
	}
	for i, f := range v.keys {
		if bytes.EqualFold(raw, f) {
			v.pos = kpos
			v.path = append(v.path, pathElem{key: k})
			e := v.fail(CaseVariantKey, "a key differs only in case from the key "+strconv.Quote(string(f)))
			v.path = v.path[:len(v.path)-1]
			e.Key = i
			return -1, e
		}
	}
	return -1, nil
}

func (v *validator) array(depth int) *ValidateError {
	d := v.data
	v.pos++ // [
	if n := len(v.path); n > 0 {
		v.path[n-1].array = true
	}
	v.pos = skipSpace(d, v.pos)
	if v.pos < len(d) && d[v.pos] == ']' {
		v.pos++
		return nil
	}
	for n := 1; ; n++ {
		if n > v.maxElems {
			v.pos = skipSpace(d, v.pos)
			path := v.at(true)
			return &ValidateError{Kind: TooManyEntries, Offset: v.pos, Path: path,
				Msg: "array " + place(path) + " has more than the limit of " + strconv.Itoa(v.maxElems) + " elements"}
		}
		if err := v.value(depth + 1); err != nil {
			return err
		}
		v.pos = skipSpace(d, v.pos)
		if v.pos >= len(d) {
			return v.syntax()
		}
		switch d[v.pos] {
		case ',':
			v.pos++
		case ']':
			v.pos++
			return nil
		default:
			return v.syntax()
		}
	}
}

// strError returns the error of fault at off, of scanString from v.pos.
func (v *validator) strError(off, fault int) *ValidateError {
	d := v.data
	v.pos = off
	switch fault {
	case strControl:
		return v.fail(BadSyntax, "unescaped control character in a string at byte offset "+strconv.Itoa(off))
	case strSurrogate:
		return v.fail(LoneSurrogate, "escaped lone UTF-16 surrogate in a string at byte offset "+strconv.Itoa(off))
	case strEscape:
		// A \u escape cut short by the end of the data is an unexpected
		// end.
		if d[off+1] == 'u' && len(d)-off < 6 {
			v.pos = len(d)
		}
	}
	return v.syntax() // strEOF: off is len(d)
}

func (v *validator) raw(k keyRef) []byte { return v.data[k.start:k.end] }

// unquote returns the text of key k unescaped, in *buf when it has an
// escape.
func (v *validator) unquote(buf *[]byte, k keyRef) []byte {
	if !k.esc {
		return v.raw(k)
	}
	*buf = appendUnquoted((*buf)[:0], v.raw(k))
	return *buf
}

// at writes v.path for a message: each key only if it looks like a name,
// with [] after the key of an array the value is in (but not after the
// innermost key when ofArray: the value is that array).
func (v *validator) at(ofArray bool) string {
	if len(v.path) == 0 {
		return ""
	}
	var b []byte
	for i, p := range v.path {
		if i > 0 {
			b = append(b, '.')
		}
		if k := v.unquote(&v.buf, p.key); IsName(k) {
			b = append(b, k...)
		} else {
			b = append(b, '?')
		}
		if p.array && (i < len(v.path)-1 || !ofArray) {
			b = append(b, "[]"...)
		}
	}
	return string(b)
}

// IsName reports whether key k is written as it is in the Path of a
// ValidateError: 1 to 64 of A-Z a-z 0-9 _ $ -. Any other key is written
// "?", so that a message never quotes text of the data that is not a
// field name.
func IsName(k []byte) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for _, c := range k {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '$', c == '-':
		default:
			return false
		}
	}
	return true
}
