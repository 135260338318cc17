package crm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// snapshotJSON is a stored opportunity snapshot as AppendJSON writes it.
func snapshotJSON(tb testing.TB) []byte {
	tb.Helper()
	opp, _ := DefaultSchema().Object(ObjOpportunity)
	m := map[string]any{
		"id": "006-31337", "name": "Acme renewal 4242", "account_id": "acc-17", "stage": "Negotiation",
		"type": "Renewal", "forecast_category": "Commit", "amount": json.Number("250000"),
		"probability": json.Number("0.6"), "close_date": "2027-03-15T00:00:00Z", "owner_id": "u-7",
		"primary_contact_id": "003-1234", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-11-24T10:00:00Z",
	}
	r, err := opp.NewRecord(m, Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	data, err := r.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkDecodeRecord decodes a stored opportunity snapshot.
//
//	go test -run '^$' -bench DecodeRecord -benchmem ./rules/
func BenchmarkDecodeRecord(b *testing.B) {
	data := snapshotJSON(b)
	opp, _ := DefaultSchema().Object(ObjOpportunity)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := opp.DecodeRecord(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// refDecodeRecord is DecodeRecord as it was, with encoding/json.
func refDecodeRecord(o *Object, data []byte, lim Limits) (*Record, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode %s record: %w", o.Name, err)
	}
	return o.NewRecord(m, lim)
}

// decodeSameAsReference checks that DecodeRecord reads data as it did with
// encoding/json: the same record, or an error of the same kind (a bad
// field, the same message, or else a JSON error). The message of a record
// with several bad fields depended on map order: any message the map
// order let it give will do.
func decodeSameAsReference(t *testing.T, o *Object, data []byte, lim Limits) {
	t.Helper()
	r, err := o.DecodeRecord(data, lim)
	want, wantErr := refDecodeRecord(o, data, lim)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("DecodeRecord(%q): error %v, before: %v", data, err, wantErr)
	}
	if err == nil {
		if !reflect.DeepEqual(r, want) {
			got, _ := r.MarshalJSON()
			was, _ := want.MarshalJSON()
			t.Fatalf("DecodeRecord(%q) = %s, before: %s", data, got, was)
		}
		return
	}
	var fe, wantFE *FieldValueError
	if errors.As(err, &fe) != errors.As(wantErr, &wantFE) {
		t.Fatalf("DecodeRecord(%q): error %v, before: %v", data, err, wantErr)
	}
	if fe == nil {
		if !strings.HasPrefix(err.Error(), "decode "+o.Name+" record: ") {
			t.Fatalf("DecodeRecord(%q): error %v", data, err)
		}
		return
	}
	for i := 0; err.Error() != wantErr.Error(); i++ {
		if i == 100 {
			t.Fatalf("DecodeRecord(%q): error %v, before: %v", data, err, wantErr)
		}
		_, wantErr = refDecodeRecord(o, data, lim)
	}
}

// decodeCases are stored records and records that are not.
var decodeCases = []string{
	`{}`, `null`, ` null x`, `{"id":"1"} trailing`, `{"id":"1"}{`, `[]`, `[1]`, `"x"`, `1`, `true`, ``, ` `, `nul`, `{`, `{"id":`,
	`{"id":"1","id":"2"}`, `{"id":5,"id":"2"}`, `{"id":"2","id":5}`, `{"amount":"x","stage":5,"close_date":true}`,
	`{"id":"006","name":"caf\u00e9 \ud83d\ude00 \ud83d","amount":250000.5,"probability":1e400,"close_date":"2027-03-15"}`,
	`{"amount":9007199254740993,"probability":-0,"stage":null,"unknown":{"a":[1,2,{"b":null}]}}`,
	"{\"name\":\"\xff\xfe\",\"stage\":\"a\\u0000b\"}",
	`{"name":"` + strings.Repeat("x", 100) + `"}`,
	`{"ID":"1","Stage":"x"}`,
	`{"id":"1"` + strings.Repeat(`,"x":[`, 50) + strings.Repeat(`]`, 50) + `}`,
}

func TestDecodeRecordSameAsReference(t *testing.T) {
	s := DefaultSchema()
	for _, name := range CRMObjects {
		o, _ := s.Object(name)
		for _, lim := range []Limits{{}, {MaxStringBytes: 8, MaxListLen: 1, MaxMapEntries: 2, MaxDepth: 2}} {
			for _, c := range decodeCases {
				decodeSameAsReference(t, o, []byte(c), lim)
			}
			decodeSameAsReference(t, o, snapshotJSON(t), lim)
		}
	}
	for _, o := range []*Object{s.Tracker, s.Participant, s.Event} {
		for _, c := range append(decodeCases,
			`{"name":"T","confidence":0.5,"participants":[{"contact_id":"c","role":"r","name":"n"},{"role":5}]}`,
			`{"participants":[{"contact_id":"c"}],"call_id":7}`) {
			decodeSameAsReference(t, o, []byte(c), Limits{})
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Add(snapshotJSON(f))
	s := DefaultSchema()
	opp, _ := s.Object(ObjOpportunity)
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeSameAsReference(t, opp, data, Limits{})
		decodeSameAsReference(t, s.Tracker, data, Limits{MaxStringBytes: 8, MaxListLen: 2})
		binRoundTrip(t, opp, data, Limits{})
		binRoundTrip(t, s.Tracker, data, Limits{})
	})
}
