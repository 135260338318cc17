// Package jsonx parses JSON into the values encoding/json builds when it
// decodes into an empty interface with UseNumber: map[string]any, []any,
// string, json.Number, bool and nil. It accepts and rejects what
// encoding/json accepts and rejects, and builds the same values: escapes
// and surrogate pairs decoded, lone surrogates and invalid UTF-8 replaced
// by U+FFFD, the last of duplicate keys kept, numbers kept as their text.
// It does so without reflection and with few allocations: the strings of a
// small document are substrings of one copy of it, and maps and slices are
// made at their final size.
//
// Besides whole values, a Parser reads objects and arrays member by
// member (Parser.Object, Parser.Array), so that a caller can fill its own
// fields from the members it knows and skip the others without building
// them.
//
// Validate checks a JSON object in one pass before anything is built:
// syntax, nesting depth, entries per array or object, keys twice in one
// object, escaped lone surrogates, and top-level keys that differ only in
// case from keys the caller knows; it reports which of those keys the
// object has and where their values are, for a Parser to Seek to. Its
// errors (ValidateError) have a kind, an offset and a path, and never
// quote the data. Parser and Validate share one set of scanning
// primitives (scan.go).
package jsonx

import (
	"encoding/json"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays accepted, as in
// encoding/json.
const MaxDepth = 10000

// shareMax is the largest document whose strings share one copy of it. A
// shared copy lives as long as any of its strings; past this size, each
// string is a copy of its own so that a small one does not keep a large
// document alive.
const shareMax = 64 << 10

// SyntaxError is a JSON syntax error. The message names what is wrong,
// never quoting the input.
type SyntaxError struct {
	Msg    string
	Offset int // of the byte at fault, or the length of the input when it ends too early
}

func (e *SyntaxError) Error() string {
	return "jsonx: " + e.Msg + " at byte offset " + strconv.Itoa(e.Offset)
}

// Kind is the type of a JSON value.
type Kind uint8

// Kinds of values. Invalid is what Parser.Kind returns at the end of the
// input, after an error, or before a byte that starts no value.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{"invalid", "null", "bool", "number", "string", "array", "object"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// A Parser reads one JSON document at a time, set with Reset; it keeps
// its buffers from one document to the next. The zero Parser is ready to
// use. A Parser is not safe for concurrent use.
//
// The first error is kept: every later read returns it (Err), and Kind
// returns Invalid.
type Parser struct {
	data      []byte
	pos       int
	text      string // string(data), once a string needs it, when share
	share     bool
	validUTF8 bool
	depth     int
	err       error

	buf   []byte            // unescaped value strings
	kbuf  []byte            // unescaped keys
	keys  map[string]string // interned keys, for documents not shared
	mems  []member          // members of the objects being built, innermost last
	elems []any             // elements of the arrays being built, innermost last
}

type member struct {
	key string
	val any
}

// Reset makes p read data, from its beginning.
func (p *Parser) Reset(data []byte) { p.reset(data, false) }

// ResetValidUTF8 is Reset for data the caller knows to be valid UTF-8
// (utf8.Valid): strings are then not checked for invalid bytes. Given
// invalid UTF-8, the values may differ from encoding/json's, but p still
// reports syntax errors and never panics.
func (p *Parser) ResetValidUTF8(data []byte) { p.reset(data, true) }

func (p *Parser) reset(data []byte, validUTF8 bool) {
	p.data, p.pos, p.text, p.depth, p.err = data, 0, "", 0, nil
	p.share = len(data) <= shareMax
	p.validUTF8 = validUTF8
	// Building pops what it pushes, even on an error: the stacks are empty.
	clear(p.mems)
	p.mems = p.mems[:0]
	clear(p.elems)
	p.elems = p.elems[:0]
}

// Offset is the offset in the data of the next byte to read.
func (p *Parser) Offset() int { return p.pos }

// Seek moves p to offset off of its data, to read the value there again:
// typically one an ObjectReader or ArrayReader stood at, as Offset told.
// It clears the error (an offset outside the data is one); the strings of
// values read keep sharing one copy of the data.
func (p *Parser) Seek(off int) {
	p.depth, p.err = 0, nil
	if off < 0 || off > len(p.data) {
		p.pos = len(p.data)
		p.fail("seek outside the data")
		return
	}
	p.pos = off
}

// Err is the first error met, if any.
func (p *Parser) Err() error { return p.err }

// End reports the first error met, or an error if anything but white
// space follows what was read.
func (p *Parser) End() error {
	if p.err == nil {
		p.skipSpace()
		if p.pos < len(p.data) {
			p.fail("data after the top-level value")
		}
	}
	return p.err
}

// Value reads the next value and returns it built.
func (p *Parser) Value() (any, error) {
	if p.err != nil {
		return nil, p.err
	}
	v := p.value()
	if p.err != nil {
		return nil, p.err
	}
	return v, nil
}

// String reads the next value, which must be a string, and returns it.
func (p *Parser) String() (string, error) {
	if p.err != nil {
		return "", p.err
	}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		p.failHere("looking for the beginning of a string")
		return "", p.err
	}
	start, end, plain := p.str(&p.buf)
	switch {
	case p.err != nil:
		return "", p.err
	case plain:
		return p.sub(start, end), nil
	}
	return string(p.buf), nil
}

// Skip reads past the next value, checking it, without building it.
func (p *Parser) Skip() error {
	if p.err == nil {
		p.skip()
	}
	return p.err
}

// Raw reads past the next value, checking it, and returns its text. The
// slice is part of the data.
func (p *Parser) Raw() ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	p.skipSpace()
	start := p.pos
	p.skip()
	if p.err != nil {
		return nil, p.err
	}
	return p.data[start:p.pos], nil
}

// Kind returns the kind of the next value, judged from its first byte,
// without reading it.
func (p *Parser) Kind() Kind {
	if p.err != nil {
		return Invalid
	}
	p.skipSpace()
	if p.pos >= len(p.data) {
		return Invalid
	}
	switch c := p.data[p.pos]; c {
	case '{':
		return Object
	case '[':
		return Array
	case '"':
		return String
	case 't', 'f':
		return Bool
	case 'n':
		return Null
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return Number
		}
	}
	return Invalid
}

func (p *Parser) fail(msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Msg: msg, Offset: p.pos}
	}
}

func (p *Parser) failAt(msg string, off int) {
	p.pos = off
	p.fail(msg)
}

// eof records that the input ended inside a value.
func (p *Parser) eof() {
	p.pos = len(p.data)
	p.fail("unexpected end of JSON input")
}

// failHere reports a syntax error at p.pos, or the end of the input.
func (p *Parser) failHere(what string) {
	if p.pos >= len(p.data) {
		p.eof()
		return
	}
	p.fail("invalid character " + what)
}

func (p *Parser) skipSpace() { p.pos = skipSpace(p.data, p.pos) }

// sub returns data[start:end] as a string.
func (p *Parser) sub(start, end int) string {
	if !p.share {
		return string(p.data[start:end])
	}
	if p.text == "" {
		p.text = string(p.data)
	}
	return p.text[start:end]
}

// value reads and builds the next value. On error it returns nil with
// p.err set.
func (p *Parser) value() any {
	p.skipSpace()
	if p.pos >= len(p.data) {
		p.eof()
		return nil
	}
	switch c := p.data[p.pos]; c {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case '"':
		start, end, plain := p.str(&p.buf)
		switch {
		case p.err != nil:
			return nil
		case plain:
			return p.sub(start, end)
		}
		return string(p.buf)
	case 't':
		p.literal("true")
		return p.err == nil
	case 'f':
		p.literal("false")
		return false
	case 'n':
		p.literal("null")
		return nil
	default:
		start := p.pos
		if !p.number() {
			return nil
		}
		return json.Number(p.sub(start, p.pos))
	}
}

// key reads the key at p.pos (a '"') and returns it as a string: a
// substring of the shared document, or else an interned copy.
func (p *Parser) key() string {
	start, end, plain := p.str(&p.kbuf)
	if p.err != nil {
		return ""
	}
	if plain && p.share {
		return p.sub(start, end)
	}
	b := p.kbuf
	if plain {
		b = p.data[start:end]
	}
	return p.intern(b)
}

// maxInterned is the most keys a Parser interns, and maxInternLen the
// longest.
const (
	maxInterned  = 1024
	maxInternLen = 64
)

func (p *Parser) intern(b []byte) string {
	if s, ok := p.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) <= maxInternLen && len(p.keys) < maxInterned {
		if p.keys == nil {
			p.keys = make(map[string]string)
		}
		p.keys[s] = s
	}
	return s
}

func (p *Parser) push() bool {
	p.depth++
	if p.depth > MaxDepth {
		p.fail("nesting deeper than the limit of " + strconv.Itoa(MaxDepth))
		return false
	}
	return true
}

// object builds the object at p.pos (a '{').
func (p *Parser) object() any {
	if !p.push() {
		return nil
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return map[string]any{}
	}
	base := len(p.mems)
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			p.failHere("looking for the beginning of an object key")
			break
		}
		k := p.key()
		p.skipSpace()
		if p.err != nil || p.pos >= len(p.data) || p.data[p.pos] != ':' {
			p.failHere("after an object key")
			break
		}
		p.pos++
		v := p.value()
		if p.err != nil {
			break
		}
		p.mems = append(p.mems, member{k, v})
		p.skipSpace()
		if p.pos >= len(p.data) {
			p.eof()
			break
		}
		c := p.data[p.pos]
		if c == ',' {
			p.pos++
			continue
		}
		if c != '}' {
			p.fail("invalid character after an object member")
			break
		}
		p.pos++
		break
	}
	ms := p.mems[base:]
	var m map[string]any
	if p.err == nil {
		m = make(map[string]any, len(ms))
		for _, e := range ms {
			m[e.key] = e.val
		}
	}
	clear(ms)
	p.mems = p.mems[:base]
	p.depth--
	if p.err != nil {
		return nil
	}
	return m
}

// array builds the array at p.pos (a '[').
func (p *Parser) array() any {
	if !p.push() {
		return nil
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return []any{}
	}
	base := len(p.elems)
	for {
		v := p.value()
		if p.err != nil {
			break
		}
		p.elems = append(p.elems, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			p.eof()
			break
		}
		c := p.data[p.pos]
		if c == ',' {
			p.pos++
			continue
		}
		if c != ']' {
			p.fail("invalid character after an array element")
			break
		}
		p.pos++
		break
	}
	es := p.elems[base:]
	var a []any
	if p.err == nil {
		a = make([]any, len(es))
		copy(a, es)
	}
	clear(es)
	p.elems = p.elems[:base]
	p.depth--
	if p.err != nil {
		return nil
	}
	return a
}

// skip reads past the next value without building it.
func (p *Parser) skip() {
	p.skipSpace()
	if p.pos >= len(p.data) {
		p.eof()
		return
	}
	switch c := p.data[p.pos]; c {
	case '{':
		o := p.Object()
		for o.Next() {
		}
	case '[':
		a := p.Array()
		for a.Next() {
		}
	case '"':
		p.skipString()
	case 't':
		p.literal("true")
	case 'f':
		p.literal("false")
	case 'n':
		p.literal("null")
	default:
		p.number()
	}
}

func (p *Parser) literal(lit string) {
	end, ok := scanLiteral(p.data, p.pos, lit)
	switch {
	case ok:
		p.pos = end
	case end >= len(p.data):
		p.eof()
	default:
		p.failAt("invalid character in literal "+lit, end)
	}
}

// number reads the number at p.pos, reporting whether it is one.
func (p *Parser) number() bool {
	end, ok := scanNumber(p.data, p.pos)
	switch {
	case ok:
		p.pos = end
		return true
	case end >= len(p.data):
		p.eof()
	case end-p.pos <= 1: // where a digit, after an optional '-', starts it
		p.failAt("invalid character looking for the beginning of a value", end)
	case p.data[end-1] == '.':
		p.failAt("invalid character after a decimal point in a number", end)
	default:
		p.failAt("invalid character in the exponent of a number", end)
	}
	return false
}

// str reads the string at p.pos (a '"'). When plain, its content is
// data[start:end] as it is; otherwise the content, unescaped and with
// invalid UTF-8 replaced, is *buf.
func (p *Parser) str(buf *[]byte) (start, end int, plain bool) {
	d := p.data
	start = p.pos + 1
	i := start
	skip := &plainASCII
	if p.validUTF8 {
		skip = &plainByte
	}
	for i < len(d) {
		for i < len(d) && skip[d[i]] {
			i++
		}
		if i == len(d) {
			break
		}
		c := d[i]
		if c == '"' {
			p.pos = i + 1
			return start, i, true
		}
		if c == '\\' || c < 0x20 {
			break
		}
		r, size := utf8.DecodeRune(d[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	b := append((*buf)[:0], d[start:i]...)
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			*buf = b
			return start, i, false
		case c == '\\':
			var ok bool
			if b, i, ok = p.escape(b, i); !ok {
				*buf = b
				return 0, 0, false
			}
		case c < 0x20:
			p.failAt("invalid control character in a string", i)
			*buf = b
			return 0, 0, false
		case c < utf8.RuneSelf || p.validUTF8:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, unicode.ReplacementChar)
			} else {
				b = append(b, d[i:i+size]...)
			}
			i += size
		}
	}
	*buf = b
	p.eof()
	return 0, 0, false
}

// escape decodes the escape at data[i] (a '\\') onto b, as encoding/json
// does.
func (p *Parser) escape(b []byte, i int) ([]byte, int, bool) {
	b, next, ok := appendEscape(b, p.data, i)
	switch {
	case ok:
	case next >= len(p.data):
		p.eof()
	case p.data[i+1] == 'u':
		p.failAt("invalid character in a \\u escape", next)
	default:
		p.failAt("invalid escape in a string", next)
	}
	return b, next, ok
}

// skipString reads past the string at p.pos (a '"'), checking it.
func (p *Parser) skipString() {
	end, _, fault := scanString(p.data, p.pos, false)
	switch fault {
	case strOK:
		p.pos = end
	case strEOF:
		p.eof()
	case strControl:
		p.failAt("invalid control character in a string", end)
	default: // strEscape: escape says what is wrong with it
		p.escape(nil, end)
	}
}

// ObjectReader reads the members of an object one by one:
//
//	o := p.Object()
//	for o.Next() {
//		switch string(o.Key()) {
//		case "id":
//			id, err := p.Value()
//			...
//		}
//	}
//	if err := p.Err(); err != nil { ... }
//
// A member's value is read with the Parser (Value, Skip, Raw, Object,
// Array); Next skips a value left unread.
type ObjectReader struct {
	container
	key []byte
}

// container is what ObjectReader and ArrayReader share: the position in
// an open object or array.
type container struct {
	p    *Parser
	n    int // members or elements met
	val  int // offset of the current member's value or element
	done bool
}

// open enters the object or array (open is '{' or '[') that is the next
// value; what names it in the error when the next value is something else.
func (p *Parser) open(open byte, what string) container {
	if p.err != nil {
		return container{done: true}
	}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != open {
		p.failHere("looking for the beginning of " + what)
		return container{done: true}
	}
	if !p.push() {
		return container{done: true}
	}
	p.pos++
	return container{p: p}
}

// next skips a value left unread and moves past the separator to the
// next member or element, reporting whether there is one; false at the
// closing byte or on an error (after names the entries in the error).
func (c *container) next(closing byte, after string) bool {
	if c.done {
		return false
	}
	p := c.p
	if p.err == nil && c.n > 0 && p.pos == c.val {
		p.skip()
	}
	if p.err != nil {
		c.done = true
		return false
	}
	p.skipSpace()
	if p.pos >= len(p.data) {
		p.eof()
		c.done = true
		return false
	}
	switch b := p.data[p.pos]; {
	case b == closing:
		p.pos++
		p.depth--
		c.done = true
		return false
	case c.n == 0:
	case b == ',':
		p.pos++
		p.skipSpace()
	default:
		p.fail("invalid character after " + after)
		c.done = true
		return false
	}
	return true
}

// Object starts reading the object that is the next value. If the next
// value is not an object, that is an error and the reader has no members.
func (p *Parser) Object() ObjectReader {
	return ObjectReader{container: p.open('{', "an object")}
}

// Next reads up to the next member's value, reporting whether there is
// one; false at the end of the object or on an error.
func (o *ObjectReader) Next() bool {
	if !o.next('}', "an object member") {
		return false
	}
	p := o.p
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		p.failHere("looking for the beginning of an object key")
		o.done = true
		return false
	}
	start, end, plain := p.str(&p.kbuf)
	if plain {
		o.key = p.data[start:end]
	} else {
		o.key = p.kbuf
	}
	p.skipSpace()
	if p.err != nil || p.pos >= len(p.data) || p.data[p.pos] != ':' {
		p.failHere("after an object key")
		o.done = true
		return false
	}
	p.pos++
	p.skipSpace()
	o.val = p.pos
	o.n++
	return true
}

// Key is the current member's key, unescaped. It is valid until the next
// call on the Parser.
func (o *ObjectReader) Key() []byte { return o.key }

// ArrayReader reads the elements of an array one by one, as ObjectReader
// reads members: each element is read with the Parser, and Next skips an
// element left unread.
type ArrayReader struct {
	container
}

// Array starts reading the array that is the next value. If the next value
// is not an array, that is an error and the reader has no elements.
func (p *Parser) Array() ArrayReader {
	return ArrayReader{container: p.open('[', "an array")}
}

// Next reports whether there is another element, positioning p at it.
func (a *ArrayReader) Next() bool {
	if !a.next(']', "an array element") {
		return false
	}
	a.val = a.p.pos
	a.n++
	return true
}

// Len is the number of elements met so far: the index of the current
// element plus one.
func (a *ArrayReader) Len() int { return a.n }

var pool = sync.Pool{New: func() any { return new(Parser) }}

// maxKeep is the largest buffer a pooled Parser keeps.
const maxKeep = 64 << 10

// Get returns a Parser from a pool shared by the package; give it back
// with Put.
func Get() *Parser { return pool.Get().(*Parser) }

// Put returns p to the pool. p must not be used after.
func Put(p *Parser) {
	p.reset(nil, false)
	if cap(p.buf) > maxKeep {
		p.buf = nil
	}
	if cap(p.kbuf) > maxKeep {
		p.kbuf = nil
	}
	if cap(p.mems) > maxKeep/16 {
		p.mems = nil
	}
	if cap(p.elems) > maxKeep/16 {
		p.elems = nil
	}
	pool.Put(p)
}

// Parse parses data, which must hold one JSON value with nothing but white
// space around it, as json.Unmarshal does.
func Parse(data []byte) (any, error) {
	p := Get()
	defer Put(p)
	p.Reset(data)
	v := p.value()
	if err := p.End(); err != nil {
		return nil, err
	}
	return v, nil
}

// ParsePrefix parses the first JSON value of data, as json.Decoder's
// Decode does: what follows the value is not read. n is the length of
// the white space and value read.
func ParsePrefix(data []byte) (v any, n int, err error) {
	p := Get()
	defer Put(p)
	p.Reset(data)
	v = p.value()
	if p.err != nil {
		return nil, 0, p.err
	}
	return v, p.pos, nil
}
