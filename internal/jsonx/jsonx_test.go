package jsonx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdPrefix decodes the first value of data as json.Decoder with UseNumber
// does, and returns the offset after it.
func stdPrefix(data []byte) (any, int, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, 0, err
	}
	return v, int(dec.InputOffset()), nil
}

// std decodes data as one JSON text (json.Unmarshal's rules), with
// UseNumber.
func std(data []byte) (any, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("invalid")
	}
	v, _, err := stdPrefix(data)
	return v, err
}

// compare checks every way of reading data against encoding/json.
func compare(t *testing.T, data []byte) {
	t.Helper()
	want, wantN, wantErr := stdPrefix(data)
	got, n, err := ParsePrefix(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("ParsePrefix(%q): error %v, encoding/json: %v", data, err, wantErr)
	}
	if err == nil {
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParsePrefix(%q) = %#v, encoding/json: %#v", data, got, want)
		}
		if n != wantN {
			t.Fatalf("ParsePrefix(%q): n = %d, encoding/json read %d", data, n, wantN)
		}
	}

	want, wantErr = std(data)
	got, err = Parse(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Parse(%q): error %v, encoding/json: %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(%q) = %#v, encoding/json: %#v", data, got, want)
	}

	var p Parser
	p.Reset(data)
	if err = p.Skip(); err == nil {
		err = p.End()
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Skip(%q): error %v, encoding/json: %v", data, err, wantErr)
	}

	// Told the data is valid UTF-8, p builds the same values when it is,
	// and otherwise still finds the same syntax errors.
	p.ResetValidUTF8(data)
	got, err = p.Value()
	if err == nil {
		err = p.End()
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("ResetValidUTF8 Value(%q): error %v, encoding/json: %v", data, err, wantErr)
	}
	if err == nil && utf8.Valid(data) && !reflect.DeepEqual(got, want) {
		t.Fatalf("ResetValidUTF8 Value(%q) = %#v, encoding/json: %#v", data, got, want)
	}

	// Member by member: the values built one by one, laid into a map
	// (the last of duplicate keys wins), are the object; each member's
	// Raw text is valid JSON.
	if m, ok := want.(map[string]any); ok {
		got := members(t, data, false)
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("Object(%q) = %#v, encoding/json: %#v", data, got, m)
		}
		members(t, data, true)
	} else if p.Reset(data); wantErr != nil && p.Kind() == Object {
		// An invalid object is an error member by member too.
		o := p.Object()
		for o.Next() {
			if _, err := p.Value(); err != nil {
				break
			}
		}
		if p.End() == nil {
			t.Fatalf("Object(%q): no error, encoding/json: %v", data, wantErr)
		}
	}
	if a, ok := want.([]any); ok {
		p.Reset(data)
		var got []any
		r := p.Array()
		for r.Next() {
			if r.Len()%2 == 0 {
				v, err := p.Value()
				if err != nil {
					t.Fatalf("Array(%q): %v", data, err)
				}
				got = append(got, v)
			} else {
				raw, err := p.Raw()
				if err != nil {
					t.Fatalf("Array(%q): %v", data, err)
				}
				v, err := Parse(raw)
				if err != nil {
					t.Fatalf("Array(%q): Raw %q: %v", data, raw, err)
				}
				got = append(got, v)
			}
		}
		if err := p.End(); err != nil {
			t.Fatalf("Array(%q): %v", data, err)
		}
		if got == nil {
			got = []any{}
		}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("Array(%q) = %#v, encoding/json: %#v", data, got, a)
		}
	}
}

// members reads the object in data member by member; with raw, through
// the members' Raw text, every other member left unread.
func members(t *testing.T, data []byte, raw bool) map[string]any {
	t.Helper()
	var p Parser
	p.Reset(data)
	m := map[string]any{}
	o := p.Object()
	i := 0
	for o.Next() {
		k := string(o.Key())
		i++
		switch {
		case !raw:
			v, err := p.Value()
			if err != nil {
				t.Fatalf("Object(%q): %v", data, err)
			}
			m[k] = v
		case i%2 == 0:
			r, err := p.Raw()
			if err != nil {
				t.Fatalf("Object(%q): %v", data, err)
			}
			if !json.Valid(r) {
				t.Fatalf("Object(%q): member %q: Raw %q is not valid JSON", data, k, r)
			}
		}
	}
	if err := p.End(); err != nil {
		t.Fatalf("Object(%q): %v", data, err)
	}
	return m
}

// cases are the inputs of TestCompare and the seeds of FuzzJSONX.
var cases = []string{
	// Scalars and containers.
	`null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `0.5`, `-0.0`, `1e3`, `1E+3`, `1e-3`, `2.5E-07`,
	`9007199254740993`, `-9223372036854775809`, `18446744073709551616`, `1e400`, `-1e400`, `1e-400`,
	`123456789012345678901234567890.123456789e-12345`,
	`""`, `"a"`, `"héllo"`, `{}`, `[]`, `[[]]`, `[{}]`, `{"a":{}}`, `{"a":[]}`,
	`{"a":1,"b":[true,false,null,"x",1.5,{"c":"d"}]}`,
	`[1,"2",[3,[4,[5]]],{"6":{"7":8}}]`,
	// White space.
	" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \t\r\n", " 1 ", "\n\"x\"\n", "[ ]", "{ }",
	"\f1", "\v1", "\u00a01", "1\f", "{\"a\":1}\u00a0",
	// Truncated.
	``, ` `, `{`, `[`, `"`, `"abc`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,`, `[1`, `[1,`, `t`, `tr`, `tru`,
	`f`, `fals`, `n`, `nul`, `-`, `1.`, `1e`, `1e+`, `"\`, `"\u`, `"\u12`, `"\u123`, `"\u1234`,
	`{"a":"b`, `{"a":tru`, `[1.5e`, `"\uD83D`, `"\uD83D\`, `"\uD83D\u`, `"\uD83D\uDE0`,
	// Trailing data.
	`{} {}`, `{}x`, `{}}`, `[]]`, `1 2`, `1x`, `1.5x`, `0x10`, `01`, `-01`, `00`, `truex`, `nullnull`,
	`"a""b"`, `"a"x`, `{"a":1} garbage`, `[1] ,`, `{"a":1}\x00`, "1\xff", "{}\xff",
	// Bad syntax.
	`{"a" 1}`, `{"a":1 "b":2}`, `{a:1}`, `{'a':1}`, `{"a":1,}`, `[1,]`, `[,1]`, `[1 2]`, `{,}`,
	`{"a":}`, `{:1}`, `{"a"::1}`, `[1:2]`, `{"a",1}`, `+1`, `.5`, `1.e3`, `-.5`, `-a`, `0.`, `1e+x`,
	`--1`, `NaN`, `Infinity`, `-Infinity`, `TRUE`, `Null`, `nulL`, `trUe`, `]`, `}`, `,`, `:`, `'a'`,
	`[}`, `{]`, `[[]`, `[]]`, `{"a":{}`, `"\x"`, `"\a"`, `"\'"`, `"\U0041"`, `"\u00G0"`, `"\u-123"`,
	// BOM.
	"\ufeff{}", "\ufeff1", "\xef\xbb\xbf\"a\"",
	// Control characters.
	"\"a\x00b\"", "\"\x1f\"", "\"\t\"", "\"\n\"", "\"\x7f\"", "{\"a\x01\":1}", "\"\\u0000\"", "\"\\u001f\"",
	// Escapes.
	`"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u4e2d\uFFFD\uffff"`, `"a\u0000b"`, `{"\u0061":1,"a":2}`,
	`{"a":1,"\u0061":2}`, `{"\n":"\r"}`, `"\/"`,
	// Surrogates.
	`"\uD83D\uDE00"`, `"\ud83d\ude00"`, `"\uD83D"`, `"\uDE00"`, `"\uDE00\uD83D"`, `"\uD83D\uD83D\uDE00"`,
	`"\uD83Dx"`, `"\uD83D\u0041"`, `"\uD83D\n"`, `"\uD800\uDC00"`, `"\uDBFF\uDFFF"`, `"\uD83D\\uDE00"`,
	`{"\uD83D":1,"\uDE00":2}`, `{"\uD800":1,"\uDBFF":2}`, `"x\uDFFF"`, `"\uD83D\uDE00\uDE00"`,
	// Invalid UTF-8.
	"\"\xff\"", "\"a\xffb\"", "\"\xc3\"", "\"\xc3\x28\"", "\"\xe2\x82\"", "\"\xf0\x9f\x98\"",
	"\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xc0\xaf\"", "\"\xef\xbf\xbd\"", "{\"\xff\":\"\xfe\"}",
	"{\"\xff\":1,\"\xfe\":2}", "[\"\x80\\n\x80\"]", "\"\xff\\u0041\"", "\"é\xff\"",
	// Duplicate and case-variant keys: the last wins.
	`{"a":1,"a":2}`, `{"a":{"b":1},"a":[2]}`, `{"id":1,"ID":2}`, `{"a":1,"b":2,"a":3,"b":4}`,
	// Integers above 2^53, exponents.
	`{"n":9007199254740993,"m":-9007199254740993,"x":1e400,"y":-0,"z":0.1e-999}`,
	// Deep nesting.
	strings.Repeat("[", 100) + strings.Repeat("]", 100),
	strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100),
	strings.Repeat("[", 100) + strings.Repeat("]", 99),
	strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
	strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
	strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth),
	strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1),
	// An envelope.
	`{"id":"evt-9f1c","type":"record.updated","time":"2026-11-24T10:00:00Z","workspace":"acme","object":"opportunity",` +
		`"record":{"id":"006A1","stage":"Closed Won","amount":250000,"owner_id":"u-7"},"before":{"stage":"Negotiation"},"partial":false}`,
}

func TestCompare(t *testing.T) {
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			compare(t, []byte(c))
			validateSameAsParser(t, []byte(c))
		})
	}
}

func TestLarge(t *testing.T) {
	// Past shareMax, strings are copies and keys are interned.
	var b strings.Builder
	b.WriteString(`{"list":[`)
	for i := 0; b.Len() < 2*shareMax; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"r-%d","n\u0061me":"caf\u00e9 %d","amount":%d.5,"ok":true,"tags":["a","b"]}`, i, i, i)
	}
	b.WriteString(`]}`)
	compare(t, []byte(b.String()))
	// 10^6 elements.
	data := []byte("[" + strings.Repeat("1,", 999_999) + "1]")
	v, err := Parse(data)
	want, wantErr := std(data)
	if err != nil || wantErr != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("10^6 elements: error %v, encoding/json: %v; equal %v", err, wantErr, reflect.DeepEqual(v, want))
	}
}

func TestSyntaxError(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{`{"a":1,}`, "jsonx: invalid character looking for the beginning of an object key at byte offset 7"},
		{`{"a":"SECRET`, "jsonx: unexpected end of JSON input at byte offset 12"},
		{`{"a":tXue}`, "jsonx: invalid character in literal true at byte offset 6"},
		{"[\"a\x01\"]", "jsonx: invalid control character in a string at byte offset 3"},
		{`["\q"]`, "jsonx: invalid escape in a string at byte offset 3"},
		{`1 2`, "jsonx: data after the top-level value at byte offset 2"},
		{strings.Repeat("[", MaxDepth+1), "jsonx: nesting deeper than the limit of 10000 at byte offset 10000"},
	} {
		t.Run(tc.in[:min(len(tc.in), 16)], func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
		})
	}
}

func TestObjectReader(t *testing.T) {
	var p Parser
	p.Reset([]byte(` {"skip":{"x":[1,{"y":2}]},"a":"\u0041","b":[1,2,3],"c":{"d":true},"e":null} `))
	var got []string
	o := p.Object()
	for o.Next() {
		switch k := string(o.Key()); k {
		case "a":
			v, _ := p.Value()
			got = append(got, fmt.Sprintf("%s=%v", k, v))
		case "b":
			a := p.Array()
			for a.Next() {
				if a.Len() == 2 {
					v, _ := p.Value()
					got = append(got, fmt.Sprintf("b[1]=%v", v))
				}
			}
		case "c":
			c := p.Object()
			for c.Next() {
				got = append(got, "c."+string(c.Key())+":"+p.Kind().String())
			}
		case "e":
			got = append(got, "e:"+p.Kind().String())
		}
	}
	if err := p.End(); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "a=A b[1]=2 c.d:bool e:null" {
		t.Errorf("got %s", s)
	}

	p.Reset([]byte(`[1]`))
	o = p.Object()
	if o.Next() || p.Err() == nil {
		t.Errorf("Object of an array: no error")
	}
	p.Reset([]byte(`{"a":1,"b":}`))
	o = p.Object()
	for o.Next() {
	}
	if p.Err() == nil {
		t.Errorf("bad member value skipped without error")
	}
}

func TestAllocs(t *testing.T) {
	data := []byte(cases[len(cases)-1])
	var p Parser
	p.Reset(data)
	if _, err := p.Value(); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		p.Reset(data)
		if _, err := p.Value(); err != nil {
			t.Fatal(err)
		}
	})
	// The shared text, 3 maps of 2 allocations, 9 strings and 1 number
	// boxed in interfaces.
	if n > 17 {
		t.Errorf("%v allocations, want at most 17", n)
	}
	// The members of the top-level object, read without building it: no
	// allocation.
	n = testing.AllocsPerRun(100, func() {
		p.Reset(data)
		o := p.Object()
		for o.Next() {
			_ = o.Key()
		}
		if err := p.End(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations skipping members, want 0", n)
	}
}

func FuzzJSONX(f *testing.F) {
	for _, c := range cases {
		if len(c) < 1000 {
			f.Add([]byte(c))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compare(t, data)
		validateSameAsParser(t, data)
	})
}
