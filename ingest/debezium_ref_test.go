package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/internal/jsonx"
)

// This file keeps the decoding of the Debezium decoder as it was before it
// read messages with jsonx (encoding/json into dbzWire and into maps), and
// checks that the decoder decodes every message as it did.

// refDebeziumDecode is DebeziumDecoder.Decode as it was.
func refDebeziumDecode(d *DebeziumDecoder, key, value []byte) (*engine.Event, error) {
	present, derr := refPrecheck(value, &d.opts, dbzKeys)
	if derr != nil {
		return nil, derr
	}
	var w dbzWire
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, decodeErr(ReasonInvalidJSON, "%s", sanitize(err.Error()))
		}
	}
	var p map[string]any
	var cols map[string]colType
	if present&dbzHasPayload != 0 && present&dbzHasOp == 0 {
		if w.Payload == nil {
			return nil, decodeErr(ReasonEmpty, "payload is null (tombstone)")
		}
		var ok bool
		if p, ok = w.Payload.(map[string]any); !ok {
			return nil, decodeErr(ReasonInvalidField, "payload: want object, got %s", jsonKind(w.Payload))
		}
		cols = w.Schema.columnTypes()
	} else {
		p = map[string]any{"op": w.Op, "before": w.Before, "after": w.After, "source": w.Source, "ts_ms": w.TsMs}
	}
	ev, derr := d.event(key, p, cols)
	if derr != nil {
		return nil, derr
	}
	return ev, nil
}

// refDecodeObject is decodeObject as it was.
func refDecodeObject(b []byte) (map[string]any, *DecodeError) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, decodeErr(ReasonInvalidJSON, "%s", sanitize(err.Error()))
	}
	return m, nil
}

// dbzSameAsReference checks that d decodes the message as
// refDebeziumDecode does, and a key as refDecodeObject does. As in
// sameAsReference, any message the map order let refDebeziumDecode give
// will do.
func dbzSameAsReference(t *testing.T, d *DebeziumDecoder, key, value []byte) {
	t.Helper()
	ev, err := d.Decode(key, value)
	want, wantErr := refDebeziumDecode(d, key, value)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Decode(%q, %q): error %v, before: %v", key, value, err, wantErr)
	}
	if err != nil {
		for i := 0; err.Error() != wantErr.Error(); i++ {
			if i == 100 || Reason(err) != Reason(wantErr) || Reason(err) != ReasonInvalidField {
				t.Fatalf("Decode(%q, %q): error %v, before: %v", key, value, err, wantErr)
			}
			_, wantErr = refDebeziumDecode(d, key, value)
		}
	} else if !reflect.DeepEqual(ev, want) {
		t.Fatalf("Decode(%q, %q):\n%s\nbefore:\n%s", key, value, showEvent(ev), showEvent(want))
	}

	if _, err := refPrecheck(key, &d.opts, nil); err == nil {
		m, err := decodeObject(key)
		want, wantErr := refDecodeObject(key)
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(m, want) {
			t.Fatalf("decodeObject(%q) = %v, %v; before: %v, %v", key, m, err, want, wantErr)
		}
	}
}

// schemaSameAsEncodingJSON checks that readSchema decodes data as
// encoding/json decodes it into a *connectSchema with UseNumber.
func schemaSameAsEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		return
	}
	var want *connectSchema
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&want); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			t.Fatalf("encoding/json: %v", err)
		}
	}
	var got *connectSchema
	p := jsonx.Get()
	defer jsonx.Put(p)
	p.Reset(data)
	readSchema(p, &got)
	if err := p.End(); err != nil {
		t.Fatalf("readSchema(%q): %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("readSchema(%q) = %#v, encoding/json: %#v", data, got, want)
	}
}

// schemaCases are schemas of unexpected shapes.
var schemaCases = []string{
	`null`, `5`, `"x"`, `[]`, `[{}]`, `{}`, `true`,
	`{"field":"a","name":"n","parameters":{"scale":"2","x":[1,{"y":null}]},"fields":[]}`,
	`{"FIELD":"a","Field":"b","field":null,"NAME":5,"Name":[1],"name":{"a":1}}`,
	`{"fields":[{"field":"after","fields":[{"field":"c","name":"n"}]},{"field":"before"}],"Fields":[{"name":"x"}],"fields":[null,{"name":"y"},5,"s",[]]}`,
	`{"fields":[{"field":"a"},{"field":"b"},{"field":"c"}],"Fields":[{"name":"x"}],"FIELDS":[{},{}],"fields":null}`,
	`{"fields":[{"field":"a"},{"field":"b"},{"field":"c"}],"Fields":[],"FIELDS":[{},{}]}`,
	`{"fields":{"a":1},"parameters":[1],"field":5}`,
	`{"parameters":{"a":1},"PARAMETERS":{"b":2},"Parameters":{"a":3}}`,
	`{"parameters":{"a":1},"PARAMETERS":null,"Parameters":{"b":2}}`,
	`{"parameterſ":{"a":1},"fieldſ":[{"ſield":"x"}],"nAmE":"n","fıeld":"dotless","\u0066ield":"esc"}`,
	`{"fields":[{"fields":[{"fields":[{"field":"deep","parameters":{"k":"\ud83d\ude00"}}]}]}]}`,
	`{"fields":[{"parameters":{"a":1}},{"parameters":{"b":2}}],"Fields":[{"parameters":{"c":3}}],"FIELDS":[{},{"parameters":{"d":4}}]}`,
}

func TestConnectSchemaSameAsEncodingJSON(t *testing.T) {
	for _, c := range schemaCases {
		schemaSameAsEncodingJSON(t, []byte(c))
	}
}

func TestDebeziumDecodeSameAsReference(t *testing.T) {
	d := newDebezium(t)
	for _, c := range debeziumBadCases() {
		dbzSameAsReference(t, d, []byte(c.key), c.value())
	}
	for _, name := range fixtureNames(t) {
		v := readFixture(t, name)
		dbzSameAsReference(t, d, []byte(`{"id":42}`), v)
		dbzSameAsReference(t, d, nil, v)
		for _, s := range schemaCases {
			// The fixture with its schema replaced by one of an unexpected
			// shape.
			if i := bytes.Index(v, []byte(`"payload"`)); bytes.HasPrefix(v, []byte(`{"schema"`)) && i > 0 {
				w := []byte(`{"schema":` + s + `,` + string(v[i:]))
				dbzSameAsReference(t, d, nil, w)
			}
		}
	}
	for _, key := range []string{`{"id":42}`, `{"payload":{"id":"x"}}`, `{"id":{"a":[1,"\u00e9"]},"id2":1e400}`, `[1]`, `"x"`, `{"a":1}x`, " {\"\\u0061\":-0} "} {
		dbzSameAsReference(t, d, []byte(key), []byte(`{"op":"d","before":null,"source":{"table":"leads","ts_ms":1}}`))
	}
}

func fixtureNames(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", "debezium"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func FuzzConnectSchema(f *testing.F) {
	for _, c := range schemaCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		schemaSameAsEncodingJSON(t, data)
	})
}
