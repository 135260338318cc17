package ingest

// This file keeps the checker that jsonx.Validate replaced, as it was
// then (commit c6a9961), with every name prefixed ref. It is the oracle
// until it is retired: FuzzPrecheck checks that precheck, now built on
// jsonx.Validate, gives every input the same verdict, reason, message,
// present bits and value offsets, and the reference decoders of
// envelope_ref_test.go and debezium_ref_test.go run it, so that their
// comparisons cover the pre-check too.
//
// An older, unoptimised version of the checker used to be kept here for
// the reference decoders. This one replaced it as the only oracle: it is
// exactly what shipped, and it also records the value offsets the
// envelope decoder reads, which the older one did not; the two had been
// compared by FuzzEnvelopeDecode and FuzzDebeziumDecode for as long as
// both existed.

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// refPrecheck runs the checks common to every JSON decoder, in order of
// cost: empty, size, UTF-8, then one pass over the bytes validating the
// syntax, depth, element counts and duplicate keys (see refChecker). fold
// is passed to the refChecker. The result has bit i set when the
// top-level object has key fold[i].
func refPrecheck(value []byte, o *DecoderOptions, fold [][]byte) (uint64, *DecodeError) {
	return refPrecheckAt(value, o, fold, nil)
}

// refPrecheckAt is refPrecheck that also sets offs[i], when the top-level
// object has key fold[i], to the offset in value of that member's value.
// offs is nil or as long as fold.
func refPrecheckAt(value []byte, o *DecoderOptions, fold [][]byte, offs []int) (uint64, *DecodeError) {
	if refIsEmpty(value) {
		return 0, decodeErr(ReasonEmpty, "empty message (tombstone)")
	}
	if len(value) > o.MaxBytes {
		return 0, decodeErr(ReasonTooLarge, "message of %d bytes is over the limit of %d", len(value), o.MaxBytes)
	}
	if !utf8.Valid(value) {
		return 0, decodeErr(ReasonInvalidUTF8, "message is not valid UTF-8")
	}
	c := refCheckerPool.Get().(*refChecker)
	c.wantOffs = offs != nil
	err := c.check(value, o.MaxDepth, o.MaxElements, fold)
	present := c.present
	if offs != nil {
		copy(offs, c.offs[:])
	}
	c.reset()
	refCheckerPool.Put(c)
	return present, err
}

// refIsEmpty reports whether a value is a tombstone: no bytes, only white
// space, or the JSON literal null.
func refIsEmpty(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

var refCheckerPool = sync.Pool{New: func() any { return &refChecker{keys: make([]refKeyRef, 0, 64)} }}

// refChecker validates, in one pass and without building values, that a
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
type refChecker struct {
	data     []byte
	pos      int
	maxDepth int
	maxElems int
	fold     [][]byte
	present  uint64      // bit i: the top-level object has key fold[i]
	wantOffs bool        // set offs
	offs     [64]int     // offs[i]: where the value of key fold[i] is, when wantOffs and present has bit i
	keys     []refKeyRef // keys of the open objects, innermost last
	path     []refPathElem
}

// refKeyRef is a key of an object: where its text is in the message (no
// pointer, so that the key and path stacks cost no write barriers).
type refKeyRef struct {
	start, end int  // of the text between the quotes, as written
	esc        bool // the text holds a backslash escape
}

type refPathElem struct {
	key   refKeyRef
	array bool // inside an array under key
}

// refSmallObject is the number of keys of one object compared pairwise; past
// it, an object's keys go into a map.
const refSmallObject = 32

func (c *refChecker) reset() {
	c.data, c.fold, c.wantOffs = nil, nil, false
	clear(c.keys[:cap(c.keys)])
	c.keys = c.keys[:0]
	clear(c.path[:cap(c.path)])
	c.path = c.path[:0]
}

func (c *refChecker) check(data []byte, maxDepth, maxElems int, fold [][]byte) *DecodeError {
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

func (c *refChecker) skipSpace() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *refChecker) syntax() *DecodeError {
	if c.pos >= len(c.data) {
		return decodeErr(ReasonInvalidJSON, "unexpected end of JSON input (truncated message?)")
	}
	return decodeErr(ReasonInvalidJSON, "invalid JSON syntax at byte offset %d", c.pos)
}

// value checks the value at c.pos, at nesting depth depth (of the
// container it would open).
func (c *refChecker) value(depth int) *DecodeError {
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
		n := refScanNumber(c.data[c.pos:])
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

func (c *refChecker) literal(lit string) *DecodeError {
	if !bytes.HasPrefix(c.data[c.pos:], []byte(lit)) {
		if len(c.data)-c.pos < len(lit) && strings.HasPrefix(lit, string(c.data[c.pos:])) {
			c.pos = len(c.data)
		}
		return c.syntax()
	}
	c.pos += len(lit)
	return nil
}

func (c *refChecker) object(depth int) *DecodeError {
	c.pos++ // {
	start := len(c.keys)
	defer func() { c.keys = c.keys[:start] }()
	var set map[string]struct{} // the keys, once there are more than refSmallObject
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
			c.path = append(c.path, refPathElem{key: k})
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
		c.path = append(c.path, refPathElem{key: k})
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
// are c.keys[start:] (or *set, once the object has more than refSmallObject
// keys), and records it.
func (c *refChecker) seen(k refKeyRef, start int, set *map[string]struct{}) bool {
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
	if len(keys) < refSmallObject {
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
func (c *refChecker) checkFold(k refKeyRef) (int, *DecodeError) {
	raw := c.raw(k)
	if k.esc {
		raw = []byte(refUnquote(raw))
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

func (c *refChecker) array(depth int) *DecodeError {
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
func (c *refChecker) str() (refKeyRef, *DecodeError) {
	c.pos++ // "
	start := c.pos
	esc := false
	for c.pos < len(c.data) {
		i, d := c.pos, c.data
		for i < len(d) && refPlainStringByte[d[i]] {
			i++
		}
		if c.pos = i; i == len(d) {
			break
		}
		b := d[i]
		switch {
		case b == '"':
			k := refKeyRef{start: start, end: c.pos, esc: esc}
			c.pos++
			return k, nil
		case b < 0x20:
			return refKeyRef{}, decodeErr(ReasonInvalidJSON, "unescaped control character in a string at byte offset %d", c.pos)
		case b == '\\':
			esc = true
			if c.pos+1 >= len(c.data) {
				c.pos = len(c.data)
				return refKeyRef{}, c.syntax()
			}
			switch c.data[c.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.pos += 2
			case 'u':
				r, ok := refHex4(c.data[c.pos+2:])
				if !ok {
					if len(c.data)-c.pos < 6 {
						c.pos = len(c.data)
					}
					return refKeyRef{}, c.syntax()
				}
				c.pos += 6
				if utf16.IsSurrogate(r) {
					var r2 rune = -1
					if c.pos+1 < len(c.data) && c.data[c.pos] == '\\' && c.data[c.pos+1] == 'u' {
						r2, _ = refHex4(c.data[c.pos+2:])
					}
					if utf16.DecodeRune(r, r2) == unicode.ReplacementChar {
						return refKeyRef{}, decodeErr(ReasonInvalidUTF8, "escaped lone UTF-16 surrogate in a string at byte offset %d", c.pos-6)
					}
					c.pos += 6
				}
			default:
				return refKeyRef{}, c.syntax()
			}
		default:
			c.pos++
		}
	}
	return refKeyRef{}, c.syntax()
}

// refPlainStringByte tells the bytes of a string's text that need no check:
// all but control characters, '"' and '\'.
var refPlainStringByte = func() (t [256]bool) {
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
func (c *refChecker) where() string { return c.at(false) }

func (c *refChecker) at(ofArray bool) string {
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
			k = []byte(refUnquote(k))
		}
		if refIsName(k) {
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

// refIsName reports whether b looks like a field or column name: it may then
// appear in an error message.
func refIsName(b []byte) bool {
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

func (c *refChecker) raw(k refKeyRef) []byte { return c.data[k.start:k.end] }

func (c *refChecker) keyString(k refKeyRef) string {
	if k.esc {
		return refUnquote(c.raw(k))
	}
	return string(c.raw(k))
}

func refHex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return -1, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

// refUnquote decodes the escapes of the content of a JSON string already
// checked by the refChecker, the way encoding/json does.
func refUnquote(raw []byte) string {
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
			r, _ := refHex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, _ = refHex4(raw[i+2:])
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

// refScanNumber returns the length of the JSON number at the start of b, or 0
// if b does not start with one.
func refScanNumber(b []byte) int {
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

// precheckSameAsReference checks that precheck, with the limits of o and
// keys, gives value what refPrecheckAt gives it: the same error (reason
// and message), or the same present bits and the same offsets of the
// values of the keys present.
func precheckSameAsReference(t *testing.T, value []byte, o *DecoderOptions, keys [][]byte) {
	t.Helper()
	offs := make([]int, len(keys))
	present, err := precheckAt(value, o, keys, offs)
	wantOffs := make([]int, len(keys))
	wantPresent, wantErr := refPrecheckAt(value, o, keys, wantOffs)
	if (err == nil) != (wantErr == nil) || err != nil && *err != *wantErr {
		t.Fatalf("precheck(%q, depth %d, elements %d, %d keys): error %v, the checker: %v", value, o.MaxDepth, o.MaxElements, len(keys), err, wantErr)
	}
	if err != nil {
		return
	}
	if present != wantPresent {
		t.Fatalf("precheck(%q, depth %d, elements %d, %d keys): present %b, the checker: %b", value, o.MaxDepth, o.MaxElements, len(keys), present, wantPresent)
	}
	for i := range keys {
		if present&(1<<i) != 0 && offs[i] != wantOffs[i] {
			t.Fatalf("precheck(%q): value of %s at %d, the checker: %d", value, keys[i], offs[i], wantOffs[i])
		}
	}
}

// precheckCases are the bad input of RELIABILITY.md and more, as seeds of
// FuzzPrecheck.
var precheckCases = []string{
	// Empty, tombstone, not an object.
	``, ` `, "\t\n", `null`, ` null `, `nul`, `[]`, `[{"id":1}]`, `"x"`, `42`, `true`, ` {}`, `{}`,
	// Truncated.
	`{`, `{"`, `{"id`, `{"id"`, `{"id":`, `{"id":"x`, `{"id":"x"`, `{"id":"x",`, `{"id":tr`, `{"id":-`, `{"id":1.`,
	`{"id":1e`, `{"a":[`, `{"a":[1,`, `{"a":{"b":`, `{"a":"\`, `{"a":"\u`, `{"a":"\u00`, `{"a":"\u00e`, `{"a":"\u12"}`,
	`{"a":"\ud83d\`, `{"a":"\ud83d\u`, `{"a":"\ud83d\ude0`, `{"a":"\ud83d\ude00`,
	// Syntax.
	`{"a":1,}`, `{"a":[1,]}`, `{'a':1}`, `{"a":1}/**/`, `{"a":"\x"}`, `{"a":"\u12G4"}`, `{"a" 1}`, `{"a":1 "b":2}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":fals}`, `{"a":tXue}`, `{"a":[}`, `{"a":]}`, `{,}`, `{"a":1,,"b":2}`, `{:1}`,
	`{"a":01}`, `{"a":+1}`, `{"a":.5}`, `{"a":1.}`, `{"a":1e}`, `{"a":1e+}`, `{"a":0x10}`, `{"a":-01}`, `{"a":--1}`,
	`{"a":NaN}`, `{"a":Infinity}`, `{"a":-Infinity}`, `{"a":1}{}`, `{"a":1}x`, "{\"a\":1}\n", `{"a":1} {"b":2}`,
	// Invalid UTF-8.
	"{\"a\":\"\xff\"}", "{\"\xfe\":1}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xe2\x82\"}", "\xff{}",
	// Numbers: above 2^53, out of range, exact.
	`{"n":9007199254740993,"m":-9007199254740993,"x":1e400,"y":-0,"z":0.1e-999,"w":18446744073709551616}`,
	`{"a":-0.5e+10,"b":0,"c":1E5,"d":1e-5,"e":2.5E-07}`,
	// Duplicate and case-variant keys.
	`{"id":1,"id":2}`, `{"id":1,"ID":2}`, `{"ID":1}`, `{"Type":"x"}`, `{"trac\u212aer":{}}`, "{\"trac\u212aer\":{}}",
	`{"id":1,"\u0069d":2}`, `{"\u0069d":1}`, `{"\u0049D":1}`, `{"a\/b":1,"a/b":2}`, `{"\ud83d\ude00":1,"😀":2}`,
	`{"record":{"id":"1","ID":"2"}}`, `{"record":{"a":1,"a":2}}`, `{"x":{"SECRET key":1,"SECRET key":2}}`,
	`{"payload":{"op":"c"},"Payload":null}`, `{"schema":{},"payload":null}`, `{"op":"c","OP":"d"}`, `{"ts_ms":1,"TS_MS":2}`,
	// Deep nesting.
	`{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
	`{"x":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`,
	`{"x":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat("}", 40) + `}`,
	`{"a":[[{"b":{}}]],"c":[{"d":[1,[2,{"e":{}}]]}]}`,
	// Many entries.
	`{"a":[` + strings.Repeat("0,", 4096) + `0]}`,
	`{"a":[1,2,3,4,5],"b":{"c":1,"d":2,"e":3,"f":4}}`,
	// Control characters.
	"{\"a\":\"x\x01\"}", "{\"a\":\"x\ny\"}", "{\"a\x1f\":1}", "{\"a\":\"\x7f\"}", `{"a":"\u0001\u001f\n"}`,
	// Escaped lone surrogates.
	`{"a":"\ud800"}`, `{"a":"\udc00\ud800"}`, `{"a":"\ud800\u0041"}`, `{"\ud800":1}`, `{"a":"\ud83d\ude00"}`, `{"a":"\uD83D\uDE00\uDE00"}`,
	// White space.
	" \t\r\n{ \"id\" : [ 1 , 2 ] , \"type\" : { } } \t\r\n", "{\"id\":\f1}", "\u00a0{}",
}

// FuzzPrecheck checks precheck against the checker it replaced, on
// arbitrary input, limits and keys.
func FuzzPrecheck(f *testing.F) {
	var seeds [][]byte
	for _, c := range precheckCases {
		seeds = append(seeds, []byte(c))
	}
	for _, c := range envelopeGoodCases() {
		seeds = append(seeds, []byte(c.in))
	}
	for _, c := range envelopeBadCases() {
		if len(c.in) < 4096 {
			seeds = append(seeds, []byte(c.in))
		}
	}
	for _, in := range refCases {
		seeds = append(seeds, []byte(in))
	}
	for _, c := range debeziumBadCases() {
		if len(c.in) < 4096 {
			seeds = append(seeds, c.value(), []byte(c.key))
		}
	}
	for _, name := range fixtureNames(f) {
		seeds = append(seeds, readFixture(f, name))
	}
	for _, s := range seeds {
		// The defaults, and small limits.
		f.Add(s, uint8(31), uint16(4095), uint8(0))
		f.Add(s, uint8(31), uint16(4095), uint8(1))
		f.Add(s, uint8(2), uint16(2), uint8(2))
	}
	f.Fuzz(func(t *testing.T, value []byte, depth uint8, elems uint16, keys uint8) {
		o := &DecoderOptions{MaxBytes: DefaultMaxBytes, MaxDepth: 1 + int(depth)%64, MaxElements: 1 + int(elems)%5000}
		precheckSameAsReference(t, value, o, [][][]byte{envelopeKeys, dbzKeys, nil}[keys%3])
	})
}
