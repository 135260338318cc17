package crm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// binRoundTrip checks that a record DecodeRecord reads from data comes
// back from its binary encoding as the same record: the same JSON, field
// for field.
func binRoundTrip(t *testing.T, o *Object, data []byte, lim Limits) {
	t.Helper()
	r, err := o.DecodeRecord(data, lim)
	if err != nil {
		return
	}
	bin, err := r.AppendBinary([]byte("prefix"))
	if err != nil {
		t.Fatalf("AppendBinary of %q: %v", data, err)
	}
	if !bytes.HasPrefix(bin, []byte("prefix")) {
		t.Fatalf("AppendBinary did not append")
	}
	back, err := o.DecodeBinary(bin[len("prefix"):], lim)
	if err != nil {
		t.Fatalf("DecodeBinary of %q: %v", data, err)
	}
	want, _ := r.MarshalJSON()
	got, _ := back.MarshalJSON()
	if !bytes.Equal(got, want) {
		t.Fatalf("%q: binary round trip gives %s, want %s", data, got, want)
	}
	if ch := r.Changed(back); len(ch) != 0 {
		t.Fatalf("%q: binary round trip changes %v", data, ch)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	s := DefaultSchema()
	cases := append(decodeCases,
		`{"id":"1","amount":-9223372036854775808,"probability":1e-300,"close_date":"2027-03-15T10:20:30.123456789+02:00","name":"caf\u00e9 \ud83d\ude00"}`,
		`{"id":"1","close_date":"0001-01-01T00:00:00Z","updated_at":"9999-12-31T23:59:59.999999999Z","amount":9223372036854775807}`,
		`{"id":"","name":""}`)
	for _, name := range CRMObjects {
		o, _ := s.Object(name)
		for _, c := range cases {
			binRoundTrip(t, o, []byte(c), Limits{})
		}
		binRoundTrip(t, o, snapshotJSON(t), Limits{})
	}
	for _, o := range []*Object{s.Tracker, s.Event} {
		for _, c := range append(cases,
			`{"name":"T","confidence":0.5,"participants":[{"contact_id":"c","role":"r","name":"n"},{"role":"x"}]}`,
			`{"participants":[],"data":{"a":[1,2.5,{"b":null,"c":"d"}],"e":true}}`) {
			binRoundTrip(t, o, []byte(c), Limits{})
		}
	}
}

// TestBinarySmaller: the point of the encoding.
func TestBinarySmaller(t *testing.T) {
	data := snapshotJSON(t)
	opp, _ := DefaultSchema().Object(ObjOpportunity)
	r, err := opp.DecodeRecord(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := r.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bin) >= len(data)/2 {
		t.Fatalf("binary %d bytes, JSON %d", len(bin), len(data))
	}
	t.Logf("an opportunity: %d bytes binary, %d JSON", len(bin), len(data))
}

// TestBinarySchemaChange: a snapshot written under one schema is read
// under another as its JSON would be: a removed field is skipped, a field
// whose kind changed converts (int to double) or makes the record
// unreadable, naming the field.
func TestBinarySchemaChange(t *testing.T) {
	before, err := ParseSchema("before.yaml", []byte("objects:\n  opportunity:\n    fields:\n      seats: int\n      region: string\n      renewal_on: timestamp\n      tags: list(string)\n"))
	if err != nil {
		t.Fatal(err)
	}
	oppB, _ := before.Object(ObjOpportunity)
	rec, err := oppB.DecodeRecord([]byte(`{"id":"o1","seats":12,"region":"emea","renewal_on":"2027-01-01T00:00:00Z","tags":["a"]}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := rec.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := rec.MarshalJSON()
	for _, c := range []struct{ schema, want, err string }{
		{"seats: double\n      renewal_on: string\n", `{"id":"o1","renewal_on":"2027-01-01T00:00:00Z","seats":12}`, ""},
		{"region: int\n", "", "opportunity.region"},
		{"tags: string\n", "", "opportunity.tags"},
		{"seats: list(string)\n", "", "opportunity.seats"},
	} {
		after, err := ParseSchema("after.yaml", []byte("objects:\n  opportunity:\n    fields:\n      "+c.schema))
		if err != nil {
			t.Fatal(err)
		}
		oppA, _ := after.Object(ObjOpportunity)
		got, err := oppA.DecodeBinary(bin, Limits{})
		fromJSON, jerr := oppA.DecodeRecord(js, Limits{})
		if c.err != "" {
			var fe *FieldValueError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.err) || jerr == nil {
				t.Fatalf("%s: %v (from JSON: %v)", c.schema, err, jerr)
			}
			continue
		}
		if err != nil || jerr != nil {
			t.Fatalf("%s: %v (from JSON: %v)", c.schema, err, jerr)
		}
		g, _ := got.MarshalJSON()
		w, _ := fromJSON.MarshalJSON()
		if string(g) != c.want || string(w) != c.want {
			t.Fatalf("%s: %s, from JSON %s, want %s", c.schema, g, w, c.want)
		}
	}
}

// TestBinaryBad: damaged and hostile encodings are errors, never panics
// or huge allocations; limits hold as in JSON.
func TestBinaryBad(t *testing.T) {
	opp, _ := DefaultSchema().Object(ObjOpportunity)
	good, _ := opp.DecodeRecord(snapshotJSON(t), Limits{})
	bin, _ := good.AppendBinary(nil)
	for i := range bin {
		if _, err := opp.DecodeBinary(bin[:i], Limits{}); err == nil {
			t.Fatalf("cut at %d of %d: no error", i, len(bin))
		}
	}
	for _, c := range []struct {
		data []byte
		lim  Limits
		want string
	}{
		{append(bin, 0), Limits{}, "1 bytes after the record"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, Limits{}, "truncated"},
		{[]byte{1, 5, 42}, Limits{}, "unknown value tag 42"},
		{[]byte{1, 5, binString, 3, 'a', 'b', 'c'}, Limits{MaxStringBytes: 2}, "over the limit"},
		{[]byte{1, 5, binStringList, 0xff, 0xff, 0x03}, Limits{}, "truncated"},
		{[]byte{1, 5, binTimestamp, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03}, Limits{}, "nanoseconds"},
		{[]byte{1, 17, binDouble, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f}, Limits{}, "not finite"},
		{deepBinary(20), Limits{}, "nested too deep"},
	} {
		_, err := opp.DecodeBinary(c.data, c.lim)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%x: %v, want %q", c.data, err, c.want)
		}
	}
}

// BenchmarkDecodeBinary decodes the stored opportunity of
// BenchmarkDecodeRecord in its binary form.
//
//	go test -run '^$' -bench 'Decode(Record|Binary)|AppendBinary' -benchmem ./crm/
func BenchmarkDecodeBinary(b *testing.B) {
	opp, _ := DefaultSchema().Object(ObjOpportunity)
	r, _ := opp.DecodeRecord(snapshotJSON(b), Limits{})
	data, _ := r.AppendBinary(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := opp.DecodeBinary(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBinary(b *testing.B) {
	opp, _ := DefaultSchema().Object(ObjOpportunity)
	r, _ := opp.DecodeRecord(snapshotJSON(b), Limits{})
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = r.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzDecodeBinary(f *testing.F) {
	s := DefaultSchema()
	for _, c := range append(decodeCases, string(snapshotJSON(f))) {
		if r, err := s.Tracker.DecodeRecord([]byte(c), Limits{}); err == nil {
			b, _ := r.AppendBinary(nil)
			f.Add(b)
		}
	}
	f.Add([]byte{2, 32, binObjectList, 1, 1, 34, binString, 1, 'x', 0, 3, 'f', 'o', 'o', binTrue})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := s.Tracker.DecodeBinary(data, Limits{MaxStringBytes: 64, MaxListLen: 8})
		if err != nil {
			return
		}
		// What it reads encodes and reads back the same.
		b, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := s.Tracker.DecodeBinary(b, Limits{MaxStringBytes: 64, MaxListLen: 8})
		if err != nil {
			t.Fatal(err)
		}
		if ch := r.Changed(back); len(ch) != 0 {
			t.Fatalf("fields %v change", ch)
		}
	})
}

// binFieldNamesV1 is binFieldNames as the first binary snapshots were
// written: the numbers stored data holds.
var binFieldNamesV1 = []string{
	"id", "owner_id", "created_at", "updated_at", "name", "tier", "industry", "region", "annual_revenue",
	"employee_count", "renewal_date", "primary_contact_id", "account_id", "stage", "type", "forecast_category",
	"amount", "probability", "close_date", "email", "first_name", "last_name", "company", "status", "source",
	"country", "score", "title", "phone", "call_id", "confidence", "participants", "contact_id", "role",
	"started_at", "duration_s", "direction", "opportunity_id", "time", "object", "workspace",
}

// TestBinFieldNames: the numbers of stored names never change, and every
// built-in field has one.
func TestBinFieldNames(t *testing.T) {
	if len(binFieldNames) < len(binFieldNamesV1) || !slices.Equal(binFieldNames[:len(binFieldNamesV1)], binFieldNamesV1) {
		t.Fatal("binFieldNames is append-only: stored snapshots hold its numbers")
	}
	if len(binFieldNames) > 127 {
		t.Fatal("past 127 names, a number takes two bytes: still correct, but check the sizes")
	}
	seen := map[string]bool{}
	for _, n := range binFieldNames {
		if seen[n] {
			t.Fatalf("%s twice", n)
		}
		seen[n] = true
	}
	for _, o := range DefaultSchema().Objects() {
		for _, f := range o.Fields {
			if !seen[f.Name] {
				t.Errorf("built-in field %s.%s: append its name to binFieldNames", o.Name, f.Name)
			}
		}
	}
}

// deepBinary nests n records in a member no field holds.
func deepBinary(n int) []byte {
	b := []byte{0}
	for range n {
		b = append([]byte{1, 0, 1, 'x', binObjectList, 1}, b...)
	}
	return b
}

// TestBinaryLimitsAsJSON: limits and nested errors read as in JSON: a list
// over the limit names its field, a skipped member is not checked, and an
// element's bad field is named under its list.
func TestBinaryLimitsAsJSON(t *testing.T) {
	s := DefaultSchema()
	js := []byte(`{"name":"T","participants":[{"contact_id":"c1"},{"contact_id":"c2"},{"contact_id":"c3"}],"tags":["a","b","c"]}`)
	acc, _ := s.Object(ObjAccount)
	for _, c := range []struct {
		o   *Object
		lim Limits
	}{
		{s.Tracker, Limits{MaxListLen: 2}},
		{s.Tracker, Limits{MaxStringBytes: 1}},
		{acc, Limits{MaxListLen: 2}}, // participants is no account field: skipped
	} {
		r, err := s.Tracker.DecodeRecord(js, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		bin, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := c.o.DecodeRecord(js, c.lim)
		_, wantErr := c.o.DecodeRecord(js, c.lim)
		got, err := c.o.DecodeBinary(bin, c.lim)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Errorf("%s %+v: error %v, JSON says %v", c.o.Name, c.lim, err, wantErr)
		}
		if wantErr == nil {
			g, _ := got.MarshalJSON()
			w, _ := want.MarshalJSON()
			if !bytes.Equal(g, w) {
				t.Errorf("%s %+v: %s, JSON gives %s", c.o.Name, c.lim, g, w)
			}
		}
	}
	// A participant whose role is a number, in binary and in JSON.
	bad := []byte{1, 32, binObjectList, 1, 1, 34, binInt, 10}
	_, err := s.Tracker.DecodeBinary(bad, Limits{})
	_, wantErr := s.Tracker.DecodeRecord([]byte(`{"participants":[{"role":5}]}`), Limits{})
	var fe *FieldValueError
	if !errors.As(err, &fe) || wantErr == nil || err.Error() != wantErr.Error() {
		t.Errorf("nested bad field: %v, JSON says %v", err, wantErr)
	}
}
