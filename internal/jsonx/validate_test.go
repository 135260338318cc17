package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

func TestValidate(t *testing.T) {
	keys := [][]byte{[]byte("id"), []byte("type"), []byte("tracker")}
	for _, c := range []struct {
		name   string
		in     string
		opts   ValidateOptions
		kind   ErrorKind
		msg    string
		offset int
		path   string
	}{
		{"empty object", `{}`, ValidateOptions{}, 0, "", 0, ""},
		{"white space", " \t\r\n{ \"a\" : [ 1 , { } ] } \n", ValidateOptions{}, 0, "", 0, ""},
		{"every kind of value", `{"a":[1,-0.5e+10,"x\n\u00e9\ud83d\ude00",true,false,null,{"b":{}}]}`, ValidateOptions{}, 0, "", 0, ""},

		{"no bytes", ``, ValidateOptions{}, NotObject, "not a JSON object", 0, ""},
		{"array", ` [{}]`, ValidateOptions{}, NotObject, "not a JSON object", 1, ""},
		{"number", `42`, ValidateOptions{}, NotObject, "not a JSON object", 0, ""},

		{"truncated", `{"a":"SECRET`, ValidateOptions{}, BadSyntax, "unexpected end of JSON input", 12, "a"},
		{"truncated in a literal", `{"a":tr`, ValidateOptions{}, BadSyntax, "unexpected end of JSON input", 7, "a"},
		{"truncated in a \\u escape", `{"a":"\u12`, ValidateOptions{}, BadSyntax, "unexpected end of JSON input", 10, "a"},
		{"truncated after a key", `{"a"`, ValidateOptions{}, BadSyntax, "unexpected end of JSON input", 4, ""},
		{"bad literal", `{"a":tXue}`, ValidateOptions{}, BadSyntax, "invalid JSON syntax at byte offset 5", 5, "a"},
		{"bad number", `{"a":1.x}`, ValidateOptions{}, BadSyntax, "invalid JSON syntax at byte offset 5", 5, "a"},
		{"number cut short", `{"a":-`, ValidateOptions{}, BadSyntax, "invalid JSON syntax at byte offset 5", 5, "a"},
		{"bad escape", `{"a":"\q"}`, ValidateOptions{}, BadSyntax, "invalid JSON syntax at byte offset 6", 6, "a"},
		{"bad \\u escape", `{"a":"\u12G4"}`, ValidateOptions{}, BadSyntax, "invalid JSON syntax at byte offset 6", 6, "a"},
		{"trailing comma", `{"a":1,}`, ValidateOptions{}, BadSyntax, "invalid JSON syntax at byte offset 7", 7, ""},
		{"control character", "{\"a\":[\"x\x01\"]}", ValidateOptions{}, BadSyntax, "unescaped control character in a string at byte offset 8", 8, "a[]"},
		{"data after", `{"a":1} {}`, ValidateOptions{}, BadSyntax, "data after the JSON object at byte offset 8", 8, ""},

		{"lone surrogate", `{"a":{"b":"x\ud800"}}`, ValidateOptions{}, LoneSurrogate, "escaped lone UTF-16 surrogate in a string at byte offset 12", 12, "a.b"},
		{"lone low surrogate", `{"a":"\udc00\ud800"}`, ValidateOptions{}, LoneSurrogate, "escaped lone UTF-16 surrogate in a string at byte offset 6", 6, "a"},
		{"surrogate and a cut escape", `{"a":"\ud83d\ude0`, ValidateOptions{}, LoneSurrogate, "escaped lone UTF-16 surrogate in a string at byte offset 6", 6, "a"},
		{"lone surrogate in a key", `{"\ud800":1}`, ValidateOptions{}, LoneSurrogate, "escaped lone UTF-16 surrogate in a string at byte offset 2", 2, ""},

		{"too deep", `{"a":[[{"b":{}}]]}`, ValidateOptions{MaxDepth: 4}, TooDeep, "nesting deeper than the limit of 4 at a[].b", 12, "a[].b"},
		{"deep enough", `{"a":[[{"b":1}]]}`, ValidateOptions{MaxDepth: 4}, 0, "", 0, ""},
		{"default depth", `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, ValidateOptions{}, TooDeep, "nesting deeper than the limit of 10000 at a[]", 10004, "a[]"},

		{"long array", `{"a":{"b":[1,2, 3]}}`, ValidateOptions{MaxElements: 2}, TooManyEntries, "array a.b has more than the limit of 2 elements", 16, "a.b"},
		{"long array in an array", `{"a":[{"b":[1,2,3]}]}`, ValidateOptions{MaxElements: 2}, TooManyEntries, "array a[].b has more than the limit of 2 elements", 16, "a[].b"},
		{"big object", `{"a":[{"x":1,"y":2,"z":3}]}`, ValidateOptions{MaxElements: 2}, TooManyEntries, "object a[] has more than the limit of 2 members", 19, "a[]"},
		{"big top-level object", `{"x":1,"y":2,"z":3}`, ValidateOptions{MaxElements: 2}, TooManyEntries, "object at the top level has more than the limit of 2 members", 13, ""},

		{"duplicate key", `{"a":{"b":1,"b":2}}`, ValidateOptions{}, DuplicateKey, "key a.b appears twice in one object", 12, "a.b"},
		{"escaped duplicate", `{"id":1,"\u0069d":2}`, ValidateOptions{}, DuplicateKey, "key id appears twice in one object", 8, "id"},
		{"duplicate, unescaped alike", `{"a\/b":1,"a/b":2}`, ValidateOptions{}, DuplicateKey, "key ? appears twice in one object", 10, "?"},
		{"duplicate pair", `{"\ud83d\ude00":1,"😀":2}`, ValidateOptions{}, DuplicateKey, "key ? appears twice in one object", 18, "?"},
		{"duplicate, not a name", `{"x":{"SECRET key":1,"SECRET key":2}}`, ValidateOptions{}, DuplicateKey, "key x.? appears twice in one object", 21, "x.?"},
		{"same key in two objects", `{"a":{"b":1},"c":{"b":1}}`, ValidateOptions{}, 0, "", 0, ""},
		{"case variants without keys", `{"id":1,"ID":2}`, ValidateOptions{}, 0, "", 0, ""},

		{"case variant", `{"id":1,"ID":2}`, ValidateOptions{Keys: keys}, CaseVariantKey, `a key differs only in case from the key "id"`, 8, "ID"},
		{"case variant alone", `{"Type":"x"}`, ValidateOptions{Keys: keys}, CaseVariantKey, `a key differs only in case from the key "type"`, 1, "Type"},
		{"case variant with a Kelvin sign", `{"trac\u212aer":1}`, ValidateOptions{Keys: keys}, CaseVariantKey, `a key differs only in case from the key "tracker"`, 1, "?"},
		{"case variant below the top level", `{"a":{"ID":1}}`, ValidateOptions{Keys: keys}, 0, "", 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Validate([]byte(c.in), c.opts, nil)
			if c.kind == 0 {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			var e *ValidateError
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want a *ValidateError", err)
			}
			if e.Kind != c.kind || e.Msg != c.msg || e.Offset != c.offset || e.Path != c.path {
				t.Errorf("got %v %q at %d, path %q; want %v %q at %d, path %q", e.Kind, e.Msg, e.Offset, e.Path, c.kind, c.msg, c.offset, c.path)
			}
			if e.Error() != "jsonx: "+c.msg {
				t.Errorf("Error() = %q", e.Error())
			}
			if strings.Contains(e.Msg, "SECRET") || strings.Contains(e.Path, "SECRET") {
				t.Errorf("message quotes the data: %q, path %q", e.Msg, e.Path)
			}
		})
	}
}

func TestValidateKeys(t *testing.T) {
	keys := [][]byte{[]byte("id"), []byte("type"), []byte("record"), []byte("x")}
	in := " {\"type\" :\t\"t\", \"other\":{\"id\":1},\"record\":  {\"id\":\"r\"},\"\\u0069d\":[1]}"
	offsets := make([]int, len(keys))
	present, err := Validate([]byte(in), ValidateOptions{Keys: keys}, offsets)
	if err != nil {
		t.Fatal(err)
	}
	if present != 0b0111 {
		t.Errorf("present = %b, want 111", present)
	}
	for i, want := range map[int]string{0: "[1]}", 1: `"t", `, 2: `{"id":"r"},`} {
		if got := in[offsets[i]:]; !strings.HasPrefix(got, want) {
			t.Errorf("value of %s at %d: %.12q, want %q", keys[i], offsets[i], got, want)
		}
	}
	if p, err := Validate([]byte(in), ValidateOptions{Keys: keys}, nil); p != present || err != nil {
		t.Errorf("without offsets: %b, %v", p, err)
	}

	_, err = Validate([]byte(`{"a":1,"X":2}`), ValidateOptions{Keys: keys}, nil)
	var e *ValidateError
	if !errors.As(err, &e) || e.Kind != CaseVariantKey || e.Key != 3 {
		t.Errorf("error %v, want CaseVariantKey of key 3", err)
	}
	for name, call := range map[string]func() error{
		"too many keys": func() error {
			_, err := Validate([]byte(`{}`), ValidateOptions{Keys: make([][]byte, MaxKeys+1)}, nil)
			return err
		},
		"negative depth":    func() error { _, err := Validate([]byte(`{}`), ValidateOptions{MaxDepth: -1}, nil); return err },
		"negative elements": func() error { _, err := Validate([]byte(`{}`), ValidateOptions{MaxElements: -1}, nil); return err },
		"short offsets": func() error {
			_, err := Validate([]byte(`{}`), ValidateOptions{Keys: keys}, make([]int, 3))
			return err
		},
	} {
		if err := call(); err == nil || errors.As(err, &e) {
			t.Errorf("%s: error %v, want an error of the options", name, err)
		}
	}
}

// TestValidateBigObject covers the map Validate switches to past
// smallObject keys.
func TestValidateBigObject(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"record":{`)
	for i := range 200 {
		b.WriteString(`"f` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1,`)
	}
	base := b.String()
	for _, c := range []struct {
		name, tail string
		kind       ErrorKind
	}{
		{"no duplicate", `"last":1}}`, 0},
		{"duplicate of an early key", `"faa":1}}`, DuplicateKey},
		{"duplicate of a late key", `"fxxah":1}}`, DuplicateKey},
		{"escaped duplicate", `"f\u0061a":1}}`, DuplicateKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Validate([]byte(base+c.tail), ValidateOptions{}, nil)
			var e *ValidateError
			if c.kind == 0 && err != nil || c.kind != 0 && (!errors.As(err, &e) || e.Kind != c.kind) {
				t.Errorf("error %v, want kind %v", err, c.kind)
			}
		})
	}
}

// validateSameAsParser checks Validate on data against encoding/json and
// the Parser: it accepts only what encoding/json accepts, and of that
// rejects only duplicate keys, escaped lone surrogates and case variants
// of the keys; a top-level object is the Parser's, with the values of
// the keys where the ObjectReader finds them.
func validateSameAsParser(t *testing.T, data []byte) {
	t.Helper()
	if !utf8.Valid(data) {
		return
	}
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("id"), []byte("k")}
	offsets := make([]int, len(keys))
	present, err := Validate(data, ValidateOptions{Keys: keys}, offsets)
	var e *ValidateError
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("Validate(%q): %v", data, err)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	isObject := len(trimmed) > 0 && trimmed[0] == '{'
	if (e != nil && e.Kind == NotObject) == isObject {
		t.Fatalf("Validate(%q): error %v", data, err)
	}
	if !json.Valid(data) {
		if err == nil {
			t.Fatalf("Validate(%q) accepts what encoding/json rejects", data)
		}
		return
	}
	if err != nil {
		switch e.Kind {
		case NotObject, DuplicateKey, LoneSurrogate, CaseVariantKey:
		default:
			t.Fatalf("Validate(%q): %v, but encoding/json accepts it", data, err)
		}
		return
	}
	var p Parser
	p.Reset(data)
	var found uint64
	o := p.Object()
	for o.Next() {
		for i, k := range keys {
			if string(o.Key()) == string(k) {
				found |= 1 << i
				if offsets[i] != p.Offset() {
					t.Fatalf("Validate(%q): value of %s at %d, the Parser finds it at %d", data, k, offsets[i], p.Offset())
				}
			} else if bytes.EqualFold(o.Key(), k) {
				t.Fatalf("Validate(%q) accepts a case variant of %s", data, k)
			}
		}
	}
	if err := p.End(); err != nil {
		t.Fatalf("Validate(%q) accepts what the Parser rejects: %v", data, err)
	}
	if present != found {
		t.Fatalf("Validate(%q): present = %b, the Parser finds %b", data, present, found)
	}
}

func TestUnquote(t *testing.T) {
	for _, raw := range []string{`abc`, `a\"b`, `\u0041\n`, `\ud83d\ude00x`, `\/\\`, `\b\f\r\t`, `caf\u00e9 \u4e2d`, `\ud83d\u0041`, `é\u00e9`} {
		var want string
		if err := json.Unmarshal([]byte(`"`+raw+`"`), &want); err != nil {
			t.Fatal(err)
		}
		if got := string(appendUnquoted(nil, []byte(raw))); got != want {
			t.Errorf("appendUnquoted(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestIsNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "12", "-1.5", "1e400", "2.5E-07", "9007199254740993"} {
		if !IsNumber(s) {
			t.Errorf("IsNumber(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-", "01", "+1", ".5", "1.", "1e", "1e+", "0x10", "1 ", " 1", "NaN", "1.5x"} {
		if IsNumber(s) {
			t.Errorf("IsNumber(%q) = true", s)
		}
	}
}

func TestIsName(t *testing.T) {
	for _, s := range []string{"id", "owner_id", "$type", "a-b", "X9", strings.Repeat("a", 64)} {
		if !IsName([]byte(s)) {
			t.Errorf("IsName(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a b", "a.b", "é", "a\"", strings.Repeat("a", 65)} {
		if IsName([]byte(s)) {
			t.Errorf("IsName(%q) = true", s)
		}
	}
}

func TestValidateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector; make test also runs this package without it")
	}
	data := []byte(cases[len(cases)-1])
	keys := [][]byte{[]byte("id"), []byte("type"), []byte("record")}
	// offsets, an array of the caller's, does not escape.
	n := testing.AllocsPerRun(100, func() {
		var offsets [3]int
		if _, err := Validate(data, ValidateOptions{MaxDepth: 32, MaxElements: 4096, Keys: keys}, offsets[:]); err != nil || offsets[2] == 0 {
			t.Fatal(err, offsets)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// scanStringRef is scanString as it was before it looked at eight bytes
// at a time.
func scanStringRef(d []byte, i int, surrogates bool) (end int, esc bool, fault int) {
	i++
	for i < len(d) {
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

// TestScanStringEightBytes checks scanString against scanStringRef with
// every byte at every place of a string, after every other.
func TestScanStringEightBytes(t *testing.T) {
	for b := range 256 {
		for prev := range 256 {
			for _, at := range []int{1, 2, 5, 7, 8, 9, 10, 15, 16, 17, 18} {
				d := []byte(`"` + strings.Repeat("ab\xc3\xa9 9~\x7f", 3))[:20]
				d[at] = byte(b)
				d[at-1] = byte(prev)
				for _, n := range []int{len(d), at + 1, at + 3} {
					for _, s := range []bool{false, true} {
						end, esc, fault := scanString(d[:n], 0, s)
						wantEnd, wantEsc, wantFault := scanStringRef(d[:n], 0, s)
						if end != wantEnd || esc != wantEsc || fault != wantFault {
							t.Fatalf("scanString(%q) = %d, %v, %d; want %d, %v, %d", d[:n], end, esc, fault, wantEnd, wantEsc, wantFault)
						}
					}
				}
			}
		}
	}
}
