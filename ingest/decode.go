package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/internal/jsonx"
	"github.com/whenthen/whenthen/rules"
)

// Decoder turns the key and value of one Kafka message into an event. An
// error is a *DecodeError when the message itself is at fault; the message
// then goes to the dead-letter topic. Decoders are safe for concurrent use.
type Decoder interface {
	Decode(key, value []byte) (*engine.Event, error)
}

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

// DecoderOptions configures the decoders.
type DecoderOptions struct {
	// Schema types the records. Required.
	Schema *rules.Schema
	// Limits caps record values (string bytes, list length, map entries,
	// map depth); default rules.DefaultLimits.
	Limits rules.Limits
	// MaxBytes is the largest message value accepted; default 1 MiB.
	MaxBytes int
	// MaxDepth is the deepest nesting of JSON objects and arrays accepted,
	// the top-level object being depth 1; default 32, at least 8.
	MaxDepth int
	// MaxElements is the most elements of one JSON array, or members of one
	// JSON object, anywhere in a message; it bounds the memory a message can
	// make the decoder allocate whatever MaxBytes is. Default 4096, raised
	// to Limits.MaxListLen and Limits.MaxMapEntries if either is larger.
	MaxElements int
}

// Defaults of DecoderOptions.
const (
	DefaultMaxBytes    = 1 << 20
	DefaultMaxDepth    = 32
	DefaultMaxElements = 4096
	minMaxDepth        = 8
)

func (o DecoderOptions) withDefaults() (DecoderOptions, error) {
	if o.Schema == nil {
		return o, errors.New("ingest: DecoderOptions.Schema is required")
	}
	if o.MaxBytes < 0 || o.MaxDepth < 0 || o.MaxElements < 0 {
		return o, errors.New("ingest: DecoderOptions.MaxBytes, MaxDepth and MaxElements must not be negative")
	}
	if o.MaxDepth != 0 && o.MaxDepth < minMaxDepth {
		return o, fmt.Errorf("ingest: DecoderOptions.MaxDepth %d is below the minimum of %d", o.MaxDepth, minMaxDepth)
	}
	d := rules.DefaultLimits
	if o.Limits.MaxStringBytes <= 0 {
		o.Limits.MaxStringBytes = d.MaxStringBytes
	}
	if o.Limits.MaxListLen <= 0 {
		o.Limits.MaxListLen = d.MaxListLen
	}
	if o.Limits.MaxMapEntries <= 0 {
		o.Limits.MaxMapEntries = d.MaxMapEntries
	}
	if o.Limits.MaxDepth <= 0 {
		o.Limits.MaxDepth = d.MaxDepth
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxElements == 0 {
		o.MaxElements = max(DefaultMaxElements, o.Limits.MaxListLen, o.Limits.MaxMapEntries)
	}
	return o, nil
}

// precheck runs the checks common to every JSON decoder, in order of cost:
// empty, size, UTF-8, then one pass over the bytes validating the syntax,
// depth, element counts and duplicate keys (see checker). fold is passed to
// the checker.
// The result has bit i set when the top-level object has key fold[i].
func precheck(value []byte, o *DecoderOptions, fold [][]byte) (uint64, *DecodeError) {
	return precheckAt(value, o, fold, nil)
}

// precheckAt is precheck that also sets offs[i], when the top-level object
// has key fold[i], to the offset in value of that member's value. offs is
// nil or as long as fold.
func precheckAt(value []byte, o *DecoderOptions, fold [][]byte, offs []int) (uint64, *DecodeError) {
	if isEmpty(value) {
		return 0, decodeErr(ReasonEmpty, "empty message (tombstone)")
	}
	if len(value) > o.MaxBytes {
		return 0, decodeErr(ReasonTooLarge, "message of %d bytes is over the limit of %d", len(value), o.MaxBytes)
	}
	if !utf8.Valid(value) {
		return 0, decodeErr(ReasonInvalidUTF8, "message is not valid UTF-8")
	}
	c := checkerPool.Get().(*checker)
	c.wantOffs = offs != nil
	err := c.check(value, o.MaxDepth, o.MaxElements, fold)
	present := c.present
	if offs != nil {
		copy(offs, c.offs[:])
	}
	c.reset()
	checkerPool.Put(c)
	return present, err
}

// isEmpty reports whether a value is a tombstone: no bytes, only white
// space, or the JSON literal null.
func isEmpty(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

var checkerPool = sync.Pool{New: func() any { return &checker{keys: make([]keyRef, 0, 64)} }}

// checker validates, in one pass and without building values, that a
// message is exactly one JSON object (RFC 8259 syntax, no trailing data),
// nested at most maxDepth deep, with at most maxElems entries per array or
// object, with no key twice in any object (keys compared after unescaping,
// as encoding/json does), and with no escaped lone UTF-16 surrogate (which
// encoding/json silently replaces with U+FFFD). With fold set, a key of the
// top-level object that matches one of fold case-insensitively (with
// Unicode simple folding, as encoding/json matches struct fields) but not
// exactly is a duplicate_key error too, and present records which of fold
// (at most 64) the top-level object has. The input is known to be valid
// UTF-8.
type checker struct {
	data     []byte
	pos      int
	maxDepth int
	maxElems int
	fold     [][]byte
	present  uint64   // bit i: the top-level object has key fold[i]
	wantOffs bool     // set offs
	offs     [64]int  // offs[i]: where the value of key fold[i] is, when wantOffs and present has bit i
	keys     []keyRef // keys of the open objects, innermost last
	path     []pathElem
}

// keyRef is a key of an object: where its text is in the message (no
// pointer, so that the key and path stacks cost no write barriers).
type keyRef struct {
	start, end int  // of the text between the quotes, as written
	esc        bool // the text holds a backslash escape
}

type pathElem struct {
	key   keyRef
	array bool // inside an array under key
}

// smallObject is the number of keys of one object compared pairwise; past
// it, an object's keys go into a map.
const smallObject = 32

func (c *checker) reset() {
	c.data, c.fold, c.wantOffs = nil, nil, false
	clear(c.keys[:cap(c.keys)])
	c.keys = c.keys[:0]
	clear(c.path[:cap(c.path)])
	c.path = c.path[:0]
}

func (c *checker) check(data []byte, maxDepth, maxElems int, fold [][]byte) *DecodeError {
	c.data, c.pos, c.maxDepth, c.maxElems, c.fold, c.present = data, 0, maxDepth, maxElems, fold, 0
	c.skipSpace()
	if c.pos >= len(c.data) || c.data[c.pos] != '{' {
		return decodeErr(ReasonInvalidJSON, "message is not a JSON object")
	}
	if err := c.value(1); err != nil {
		return err
	}
	c.skipSpace()
	if c.pos != len(c.data) {
		return decodeErr(ReasonInvalidJSON, "data after the JSON object at byte offset %d", c.pos)
	}
	return nil
}

func (c *checker) skipSpace() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *checker) syntax() *DecodeError {
	if c.pos >= len(c.data) {
		return decodeErr(ReasonInvalidJSON, "unexpected end of JSON input (truncated message?)")
	}
	return decodeErr(ReasonInvalidJSON, "invalid JSON syntax at byte offset %d", c.pos)
}

// value checks the value at c.pos, at nesting depth depth (of the
// container it would open).
func (c *checker) value(depth int) *DecodeError {
	c.skipSpace()
	if c.pos >= len(c.data) {
		return c.syntax()
	}
	switch b := c.data[c.pos]; {
	case b == '{':
		if depth > c.maxDepth {
			return decodeErr(ReasonTooDeep, "nesting deeper than the limit of %d at %s", c.maxDepth, c.where())
		}
		return c.object(depth)
	case b == '[':
		if depth > c.maxDepth {
			return decodeErr(ReasonTooDeep, "nesting deeper than the limit of %d at %s", c.maxDepth, c.where())
		}
		return c.array(depth)
	case b == '"':
		_, err := c.str()
		return err
	case b == '-' || (b >= '0' && b <= '9'):
		n := scanNumber(c.data[c.pos:])
		if n == 0 {
			return c.syntax()
		}
		c.pos += n
		return nil
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	}
	return c.syntax()
}

func (c *checker) literal(lit string) *DecodeError {
	if !bytes.HasPrefix(c.data[c.pos:], []byte(lit)) {
		if len(c.data)-c.pos < len(lit) && strings.HasPrefix(lit, string(c.data[c.pos:])) {
			c.pos = len(c.data)
		}
		return c.syntax()
	}
	c.pos += len(lit)
	return nil
}

func (c *checker) object(depth int) *DecodeError {
	c.pos++ // {
	start := len(c.keys)
	defer func() { c.keys = c.keys[:start] }()
	var set map[string]struct{} // the keys, once there are more than smallObject
	c.skipSpace()
	if c.pos < len(c.data) && c.data[c.pos] == '}' {
		c.pos++
		return nil
	}
	for n := 1; ; n++ {
		if n > c.maxElems {
			return decodeErr(ReasonTooLarge, "object %s has more than the limit of %d members", c.where(), c.maxElems)
		}
		c.skipSpace()
		if c.pos >= len(c.data) || c.data[c.pos] != '"' {
			return c.syntax()
		}
		k, err := c.str()
		if err != nil {
			return err
		}
		fi := -1
		if depth == 1 && c.fold != nil {
			if fi, err = c.checkFold(k); err != nil {
				return err
			}
		}
		if c.seen(k, start, &set) {
			c.path = append(c.path, pathElem{key: k})
			err := decodeErr(ReasonDuplicateKey, "key %s appears twice in one object", c.where())
			c.path = c.path[:len(c.path)-1]
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.data) || c.data[c.pos] != ':' {
			return c.syntax()
		}
		c.pos++
		if fi >= 0 && c.wantOffs {
			c.skipSpace()
			c.offs[fi] = c.pos
		}
		c.path = append(c.path, pathElem{key: k})
		err = c.value(depth + 1)
		c.path = c.path[:len(c.path)-1]
		if err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.data) {
			return c.syntax()
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
		case '}':
			c.pos++
			return nil
		default:
			return c.syntax()
		}
	}
}

// seen reports whether key k is already a key of the object whose keys
// are c.keys[start:] (or *set, once the object has more than smallObject
// keys), and records it.
func (c *checker) seen(k keyRef, start int, set *map[string]struct{}) bool {
	if *set != nil {
		s := c.keyString(k)
		if _, dup := (*set)[s]; dup {
			return true
		}
		(*set)[s] = struct{}{}
		return false
	}
	keys := c.keys[start:]
	kn := k.end - k.start
	for _, o := range keys {
		if !o.esc && !k.esc {
			if o.end-o.start == kn && string(c.raw(o)) == string(c.raw(k)) {
				return true
			}
		} else if c.keyString(o) == c.keyString(k) {
			return true
		}
	}
	if len(keys) < smallObject {
		c.keys = append(c.keys, k)
		return false
	}
	m := make(map[string]struct{}, 2*len(keys))
	for _, o := range keys {
		m[c.keyString(o)] = struct{}{}
	}
	m[c.keyString(k)] = struct{}{}
	*set = m
	return false
}

// checkFold checks key k of the top-level object against c.fold,
// returning the index of the key it is, or -1.
func (c *checker) checkFold(k keyRef) (int, *DecodeError) {
	raw := c.raw(k)
	if k.esc {
		raw = []byte(unquote(raw))
	}
	for i, f := range c.fold {
		if bytes.Equal(raw, f) {
			c.present |= 1 << i
			return i, nil
		}
	}
	for _, f := range c.fold {
		if bytes.EqualFold(raw, f) {
			return -1, decodeErr(ReasonDuplicateKey, "a key differs only in case from the envelope key %q", f)
		}
	}
	return -1, nil
}

func (c *checker) array(depth int) *DecodeError {
	c.pos++ // [
	if n := len(c.path); n > 0 {
		c.path[n-1].array = true
	}
	c.skipSpace()
	if c.pos < len(c.data) && c.data[c.pos] == ']' {
		c.pos++
		return nil
	}
	for n := 1; ; n++ {
		if n > c.maxElems {
			return decodeErr(ReasonTooLarge, "array %s has more than the limit of %d elements", c.at(true), c.maxElems)
		}
		if err := c.value(depth + 1); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.data) {
			return c.syntax()
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
		case ']':
			c.pos++
			return nil
		default:
			return c.syntax()
		}
	}
}

// str checks the string at c.pos and returns its raw content.
func (c *checker) str() (keyRef, *DecodeError) {
	c.pos++ // "
	start := c.pos
	esc := false
	for c.pos < len(c.data) {
		i, d := c.pos, c.data
		for i < len(d) && plainStringByte[d[i]] {
			i++
		}
		if c.pos = i; i == len(d) {
			break
		}
		b := d[i]
		switch {
		case b == '"':
			k := keyRef{start: start, end: c.pos, esc: esc}
			c.pos++
			return k, nil
		case b < 0x20:
			return keyRef{}, decodeErr(ReasonInvalidJSON, "unescaped control character in a string at byte offset %d", c.pos)
		case b == '\\':
			esc = true
			if c.pos+1 >= len(c.data) {
				c.pos = len(c.data)
				return keyRef{}, c.syntax()
			}
			switch c.data[c.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.pos += 2
			case 'u':
				r, ok := hex4(c.data[c.pos+2:])
				if !ok {
					if len(c.data)-c.pos < 6 {
						c.pos = len(c.data)
					}
					return keyRef{}, c.syntax()
				}
				c.pos += 6
				if utf16.IsSurrogate(r) {
					var r2 rune = -1
					if c.pos+1 < len(c.data) && c.data[c.pos] == '\\' && c.data[c.pos+1] == 'u' {
						r2, _ = hex4(c.data[c.pos+2:])
					}
					if utf16.DecodeRune(r, r2) == unicode.ReplacementChar {
						return keyRef{}, decodeErr(ReasonInvalidUTF8, "escaped lone UTF-16 surrogate in a string at byte offset %d", c.pos-6)
					}
					c.pos += 6
				}
			default:
				return keyRef{}, c.syntax()
			}
		default:
			c.pos++
		}
	}
	return keyRef{}, c.syntax()
}

// plainStringByte tells the bytes of a string's text that need no check:
// all but control characters, '"' and '\'.
var plainStringByte = func() (t [256]bool) {
	for b := 0x20; b < 256; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// where names the position of the current value for messages: the path of
// keys from the top-level object, each key written only if it looks like a
// field name (payload text that is not a name is never echoed), with []
// after the key of an array the value is in (but not after the innermost
// key when ofArray: the value is that array).
func (c *checker) where() string { return c.at(false) }

func (c *checker) at(ofArray bool) string {
	if len(c.path) == 0 {
		return "at the top level"
	}
	var b strings.Builder
	for i, p := range c.path {
		if i > 0 {
			b.WriteByte('.')
		}
		k := c.raw(p.key)
		if p.key.esc {
			k = []byte(unquote(k))
		}
		if isName(k) {
			b.Write(k)
		} else {
			b.WriteByte('?')
		}
		if p.array && (i < len(c.path)-1 || !ofArray) {
			b.WriteString("[]")
		}
	}
	return b.String()
}

// isName reports whether b looks like a field or column name: it may then
// appear in an error message.
func isName(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, r := range b {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '$', r == '-':
		default:
			return false
		}
	}
	return true
}

func (c *checker) raw(k keyRef) []byte { return c.data[k.start:k.end] }

func (c *checker) keyString(k keyRef) string {
	if k.esc {
		return unquote(c.raw(k))
	}
	return string(c.raw(k))
}

func hex4(b []byte) (rune, bool) { return jsonx.Hex4(b) }

// unquote decodes the escapes of the content of a JSON string already
// checked by the checker, the way encoding/json does.
func unquote(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, _ := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, _ = hex4(raw[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
					r = d
					i += 6
				} else {
					r = unicode.ReplacementChar
				}
			}
			b.WriteRune(r)
			continue
		default: // " \ /
			b.WriteByte(raw[i+1])
		}
		i += 2
	}
	return b.String()
}

// scanNumber returns the length of the JSON number at the start of b, or 0
// if b does not start with one.
func scanNumber(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i
}

// isNumber reports whether s is exactly one JSON number.
func isNumber(s string) bool {
	return len(s) > 0 && scanNumber([]byte(s)) == len(s)
}

// validWorkspace reports whether s is a workspace name: [A-Za-z0-9._-]{1,128}.
func validWorkspace(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// jsonKind names the JSON type of a decoded value, for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "number"
}

// recordError turns an error of rules.Object.NewRecord into a DecodeError,
// removing any value the message quotes. at names the envelope field
// holding the record.
func recordError(at string, err error) *DecodeError {
	var fe *rules.FieldValueError
	if errors.As(err, &fe) {
		return decodeErr(ReasonInvalidField, "%s.%s: %s", at, fe.Field, sanitize(fe.Msg))
	}
	return decodeErr(ReasonInvalidField, "%s: %s", at, sanitize(err.Error()))
}

// numberText returns the literal of a number decoded with UseNumber.
func numberText(v any) (string, bool) {
	n, ok := v.(json.Number)
	return string(n), ok
}
