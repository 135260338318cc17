package jsonx

import (
	"encoding/binary"
	"math/bits"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The scanning primitives that Parser and Validate share. Each reads one
// token of data d from offset i and returns where it ends; on a fault, the
// offset at fault (len(d) when d ends inside the token), so that each
// caller words and places its errors as its own callers expect.

// skipSpace returns the offset of the first byte from d[i] on that is not
// JSON white space.
func skipSpace(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanLiteral reads the literal lit (true, false or null) at d[i]. ok
// false: end is the offset of the first byte that differs.
func scanLiteral(d []byte, i int, lit string) (end int, ok bool) {
	rest := d[i:]
	n := min(len(rest), len(lit))
	for j := range n {
		if rest[j] != lit[j] {
			return i + j, false
		}
	}
	if n < len(lit) {
		return len(d), false
	}
	return i + n, true
}

// scanNumber reads the number at d[i] (RFC 8259: no '+', no leading
// zero, digits on both sides of a '.'). ok false: end is the offset of
// the byte where a digit was wanted.
func scanNumber(d []byte, i int) (end int, ok bool) {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return i, false
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		i++
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return i, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	return i, true
}

// IsNumber reports whether s is exactly one JSON number.
func IsNumber(s string) bool {
	end, ok := scanNumber([]byte(s), 0)
	return ok && end == len(s)
}

// Faults of scanString.
const (
	strOK        = iota
	strEOF       // d ends inside the string
	strControl   // a raw control character, at end
	strEscape    // an invalid escape; its '\' is at end
	strSurrogate // an escaped lone UTF-16 surrogate; its '\' is at end
)

// scanString reads the string whose opening quote is d[i]. It returns
// the offset after the closing quote and whether the text holds a
// backslash escape; on a fault, the offset at fault (see the faults).
// With surrogates, an escaped lone UTF-16 surrogate, which encoding/json
// replaces with U+FFFD, is a fault. Bytes from 0x80 up are not checked:
// UTF-8 is the caller's concern.
func scanString(d []byte, i int, surrogates bool) (end int, esc bool, fault int) {
	i++ // "
	for i < len(d) {
		// Eight bytes at a time while there are eight: the high bit of each
		// byte that is '"', '\\' or below 0x20, and perhaps of bytes after
		// one (borrows carry upwards, to later bytes): the lowest is the
		// first that is not plainByte.
		for i+8 <= len(d) {
			x := binary.LittleEndian.Uint64(d[i : i+8])
			q, b := x^(ones*'"'), x^(ones*'\\')
			if m := ((q-ones)&^q | (b-ones)&^b | (x-ones*0x20)&^x) & highs; m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(d) && plainByte[d[i]] {
			i++
		}
		if i == len(d) {
			break
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, esc, strOK
		case c < 0x20:
			return i, esc, strControl
		}
		// A '\'.
		esc = true
		if i+1 >= len(d) {
			return len(d), esc, strEOF
		}
		switch d[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			r, ok := Hex4(d[i+2:])
			if !ok {
				return i, esc, strEscape
			}
			i += 6
			if surrogates && utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
					r2, _ = Hex4(d[i+2:])
				}
				if utf16.DecodeRune(r, r2) == unicode.ReplacementChar {
					return i - 6, esc, strSurrogate
				}
				i += 6
			}
		default:
			return i, esc, strEscape
		}
	}
	return len(d), esc, strEOF
}

// ones and highs are 0x01 and 0x80 in each byte of a uint64.
const ones, highs = 0x0101010101010101, 0x8080808080808080

// plainByte tells the bytes of a string's text that are copied as they
// are: all but control characters, '"' and '\\'; plainASCII, those of them
// that are ASCII.
var plainByte, plainASCII = func() (all, ascii [256]bool) {
	for b := 0x20; b < 256; b++ {
		all[b] = b != '"' && b != '\\'
		ascii[b] = all[b] && b < utf8.RuneSelf
	}
	return all, ascii
}()

// appendEscape decodes the escape at d[i] (a '\') onto b, as encoding/json
// does: a \u escape of a lone UTF-16 surrogate becomes U+FFFD. It returns
// the offset after the escape; ok false, the offset at fault: of the byte
// after the '\', or of the first that is not a hex digit of a \u escape.
func appendEscape(b, d []byte, i int) (_ []byte, next int, ok bool) {
	if i+1 >= len(d) {
		return b, len(d), false
	}
	switch c := d[i+1]; c {
	case '"', '\\', '/':
		return append(b, c), i + 2, true
	case 'b':
		return append(b, '\b'), i + 2, true
	case 'f':
		return append(b, '\f'), i + 2, true
	case 'n':
		return append(b, '\n'), i + 2, true
	case 'r':
		return append(b, '\r'), i + 2, true
	case 't':
		return append(b, '\t'), i + 2, true
	case 'u':
		for j := i + 2; j < i+6; j++ {
			if j >= len(d) {
				return b, len(d), false
			}
			if !isHex(d[j]) {
				return b, j, false
			}
		}
		r, _ := Hex4(d[i+2 : i+6])
		i += 6
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if i+6 <= len(d) && d[i] == '\\' && d[i+1] == 'u' {
				if x, ok := Hex4(d[i+2 : i+6]); ok {
					r2 = x
				}
			}
			if dr := utf16.DecodeRune(r, r2); dr != unicode.ReplacementChar {
				return utf8.AppendRune(b, dr), i + 6, true
			}
			r = unicode.ReplacementChar
		}
		return utf8.AppendRune(b, r), i, true
	}
	return b, i + 1, false
}

// appendUnquoted appends the text of a string that scanString accepted,
// raw (between the quotes, as written), unescaped as encoding/json
// unescapes it.
func appendUnquoted(b, raw []byte) []byte {
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			b = append(b, raw[i])
			i++
			continue
		}
		b, i, _ = appendEscape(b, raw, i)
	}
	return b
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// Hex4 decodes the four hex digits that start b (of a \uXXXX escape);
// false when b is shorter or they are not hex digits.
func Hex4(b []byte) (rune, bool) {
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
