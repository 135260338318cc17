package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
)

// This file keeps the envelope decoder as it was before it read messages
// with jsonx: encoding/json into a struct of any, then records built from
// maps by crm.Object.NewRecord. TestEnvelopeDecodeSameAsReference and
// FuzzEnvelopeDecode check that the decoder decodes every message as it
// did.

// refDecode is EnvelopeDecoder.Decode as it was.
func refDecode(d *EnvelopeDecoder, value []byte) (*engine.Event, error) {
	if _, err := refPrecheck(value, &d.opts, envelopeKeys); err != nil {
		return nil, err
	}
	var w refWire
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return nil, decodeErr(ReasonInvalidJSON, "%s", sanitize(err.Error()))
	}
	ev, err := refEvent(d, &w)
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// sameAsReference checks that d decodes value as refDecode does: the same
// event, or an error of the same reason and message. The message of a
// record with several bad fields depended on map order: any message
// refDecode can give will do.
func sameAsReference(t *testing.T, d *EnvelopeDecoder, value []byte) {
	t.Helper()
	ev, err := d.Decode(nil, value)
	want, wantErr := refDecode(d, value)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Decode(%q): error %v, before: %v", value, err, wantErr)
	}
	if err != nil {
		if Reason(err) != Reason(wantErr) {
			t.Fatalf("Decode(%q): error %v, before: %v", value, err, wantErr)
		}
		for i := 0; err.Error() != wantErr.Error(); i++ {
			if i == 100 || Reason(err) != ReasonInvalidField {
				t.Fatalf("Decode(%q): error %v, before: %v", value, err, wantErr)
			}
			_, wantErr = refDecode(d, value)
		}
		return
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("Decode(%q):\n%s\nbefore:\n%s", value, showEvent(ev), showEvent(want))
	}
}

func showEvent(ev *engine.Event) string {
	var b strings.Builder
	b.WriteString(ev.ID + " " + ev.Type + " " + ev.Time.String() + " " + ev.Workspace + " " + ev.Object + " " + ev.Schedule)
	if ev.Partial {
		b.WriteString(" partial")
	}
	for _, r := range []*crm.Record{ev.Record, ev.Before, ev.Tracker, ev.Call, ev.Account, ev.Opportunity} {
		b.WriteString("\n" + show(r))
	}
	return b.String()
}

type refWire struct {
	ID          any `json:"id"`
	Type        any `json:"type"`
	Time        any `json:"time"`
	Workspace   any `json:"workspace"`
	Object      any `json:"object"`
	Record      any `json:"record"`
	Before      any `json:"before"`
	Partial     any `json:"partial"`
	Tracker     any `json:"tracker"`
	Account     any `json:"account"`
	Opportunity any `json:"opportunity"`
	Schedule    any `json:"schedule"`
	Call        any `json:"call"`
}

func refEvent(d *EnvelopeDecoder, w *refWire) (*engine.Event, *DecodeError) {
	ev := &engine.Event{}
	var err *DecodeError
	if ev.ID, err = requiredString(w.ID, "id"); err != nil {
		return nil, err
	}
	if len(ev.ID) > MaxEventIDBytes {
		return nil, decodeErr(ReasonInvalidField, "id: %d bytes is over the limit of %d", len(ev.ID), MaxEventIDBytes)
	}
	if ev.Type, err = requiredString(w.Type, "type"); err != nil {
		return nil, err
	}
	if !knownType(ev.Type) {
		return nil, decodeErr(ReasonUnknownType, "type: not one of %s", strings.Join(eventTypes, ", "))
	}
	ts, err := requiredString(w.Time, "time")
	if err != nil {
		return nil, err
	}
	if ev.Time, err = parseEventTime(ts); err != nil {
		return nil, err
	}
	if ev.Workspace, err = workspace(w.Workspace); err != nil {
		return nil, err
	}
	schema, lim := d.opts.Schema, d.opts.Limits

	switch ev.Type {
	case engine.TypeTrackerDetected:
		tm, err := requiredObject(w.Tracker, "tracker")
		if err != nil {
			return nil, err
		}
		if ev.Tracker, err = refTrackerRecord(schema, tm, lim); err != nil {
			return nil, err
		}
	case engine.TypeCallProcessed:
		cm, err := requiredObject(w.Call, "call")
		if err != nil {
			return nil, err
		}
		if ev.Call, err = refMainRecord(schema.Call, cm, "call", lim); err != nil {
			return nil, err
		}
	default: // record.* and schedule.fired
		if ev.Type == engine.TypeScheduleFired {
			sm, err := requiredObject(w.Schedule, "schedule")
			if err != nil {
				return nil, err
			}
			if ev.Schedule, err = requiredString(sm["name"], "schedule.name"); err != nil {
				return nil, err
			}
		}
		objName, err := requiredString(w.Object, "object")
		if err != nil {
			return nil, err
		}
		obj, ok := schema.Object(objName)
		if !ok {
			return nil, decodeErr(ReasonUnknownObject, "object: not one of %s", strings.Join(crm.CRMObjects, ", "))
		}
		ev.Object = objName
		rm, err := requiredObject(w.Record, "record")
		if err != nil {
			return nil, err
		}
		if ev.Record, err = refMainRecord(obj, rm, "record", lim); err != nil {
			return nil, err
		}
		if ev.Partial, err = optionalBool(w.Partial, "partial"); err != nil {
			return nil, err
		}
		// before is read on updates and deletes; on a create (nothing was
		// before) and a schedule it is ignored.
		if ev.Type == engine.TypeRecordUpdated || ev.Type == engine.TypeRecordDeleted {
			bm, err := optionalObject(w.Before, "before")
			if err != nil {
				return nil, err
			}
			if bm != nil {
				if ev.Before, err = newRecord(obj, bm, "before", lim); err != nil {
					return nil, err
				}
			}
		}
	}
	if ev.Account, err = refRelated(schema, crm.ObjAccount, w.Account, lim); err != nil {
		return nil, err
	}
	if ev.Opportunity, err = refRelated(schema, crm.ObjOpportunity, w.Opportunity, lim); err != nil {
		return nil, err
	}
	return ev, nil
}

// refMainRecord builds the record an event is about: it needs a non-empty
// string id.
func refMainRecord(obj *crm.Object, m map[string]any, at string, lim crm.Limits) (*crm.Record, *DecodeError) {
	if id, ok := m["id"]; !ok || id == nil {
		return nil, decodeErr(ReasonMissingField, "%s.id is missing", at)
	}
	r, err := newRecord(obj, m, at, lim)
	if err != nil {
		return nil, err
	}
	if r.ID() == "" {
		return nil, decodeErr(ReasonMissingField, "%s.id is empty", at)
	}
	return r, nil
}

// refRelated builds an optional related record (account, opportunity); it
// need not have an id.
func refRelated(s *crm.Schema, name string, v any, lim crm.Limits) (*crm.Record, *DecodeError) {
	m, err := optionalObject(v, name)
	if err != nil || m == nil {
		return nil, err
	}
	obj, _ := s.Object(name)
	return newRecord(obj, m, name, lim)
}

// refTrackerRecord builds the tracker of a tracker.detected event: name is
// required and confidence, when present, lies in [0, 1].
func refTrackerRecord(s *crm.Schema, m map[string]any, lim crm.Limits) (*crm.Record, *DecodeError) {
	if _, err := requiredString(m["name"], "tracker.name"); err != nil {
		return nil, err
	}
	r, err := newRecord(s.Tracker, m, "tracker", lim)
	if err != nil {
		return nil, err
	}
	if f, ok := s.Tracker.Field("confidence"); ok {
		if c, ok := r.Get(f).(types.Double); ok && !(c >= 0 && c <= 1) {
			return nil, decodeErr(ReasonInvalidField, "tracker.confidence: want a number from 0 to 1")
		}
	}
	return r, nil
}

// refCases are messages beyond the good and bad cases of envelope_test.go
// that exercise the decoder's paths: several bad fields in one record,
// members in every order, nested values, escapes and odd white space.
var refCases = []string{
	`{"id":"e","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"1","amount":"x","stage":5,"close_date":true}}`,
	`{"record":{"stage":"S","id":"1"},"before":{"stage":"T","amount":1e400},"object":"opportunity","time":"2026-11-24T10:00:00Z","type":"record.updated","id":"e"}`,
	`{"id":"e","type":"record.deleted","time":"2026-11-24T10:00:00Z","object":"account","record":{"id":"1"},"before":null}`,
	`{"id":"e","type":"record.deleted","time":"2026-11-24T10:00:00Z","object":"account","record":{"id":"1"},"before":[]}`,
	`{"id":"e","type":"record.created","time":"2026-11-24T10:00:00Z","object":"account","record":{"id":""}}`,
	`{"id":"e","type":"record.created","time":"2026-11-24T10:00:00Z","object":"account","record":{"id":null,"name":"x"}}`,
	`{"id":"e","type":"record.created","time":"2026-11-24T10:00:00Z","object":"account","record":{"id":7}}`,
	`{"id":"e","type":"record.created","time":"2026-11-24T10:00:00Z","object":"account","record":{"i\u0064":"\u0031","n\u0061me":"caf\u00e9 \ud83d\ude00 \ud83d"}}`,
	"{ \"id\" : \"e\" ,\n\t\"type\":\"record.created\",\r\n\"time\":\"2026-11-24T10:00:00Z\",\"object\":\"lead\",\"record\": { \"id\" : \"L\" , \"score\" : 12 } } ",
	`{"id":"e","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"L","score":12.5}}`,
	`{"id":"e","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"L","score":9223372036854775808}}`,
	`{"id":"e","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"L","score":-0,"x":{"y":[1,{"z":null}]}}}`,
	`{"id":"e","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"name":"T","confidence":0.5,"participants":[{"contact_id":"c","role":"r","name":"n"}]},"account":{"tier":"x"},"opportunity":{"stage":"s"}}`,
	`{"id":"e","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"name":"T","confidence":1.5}}`,
	`{"id":"e","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"name":"","confidence":0.5}}`,
	`{"id":"e","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"confidence":"x","participants":5}}`,
	`{"id":"e","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"name":"T","participants":[{"role":5},{"name":[]}]}}`,
	`{"id":"e","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":"T"}`,
	`{"id":"e","type":"schedule.fired","time":"2026-11-24T10:00:00Z","schedule":{"name":"w"},"object":"opportunity","record":{"id":"1"},"account":[],"opportunity":{}}`,
	`{"id":"e","type":"schedule.fired","time":"2026-11-24T10:00:00Z","schedule":{"name":7},"object":"opportunity","record":{"id":"1"}}`,
	`{"id":"e","type":"schedule.fired","time":"2026-11-24T10:00:00Z","schedule":{},"object":"opportunity","record":{"id":"1"}}`,
	`{"id":"e","type":"schedule.fired","time":"2026-11-24T10:00:00Z","schedule":true,"object":"opportunity","record":{"id":"1"}}`,
	`{"id":"e","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"1"},"partial":"yes"}`,
	`{"id":"e","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"1"},"account":{"id":"a","annual_revenue":"x","employee_count":1.5}}`,
	`{"id":"e","type":"record.updated","time":"2026-11-24T10:00:00Z","workspace":"","object":"opportunity","record":{"id":"1","probability":null}}`,
}

func TestEnvelopeDecodeSameAsReference(t *testing.T) {
	var ins []string
	for _, c := range envelopeGoodCases() {
		ins = append(ins, c.in)
	}
	for _, c := range envelopeBadCases() {
		ins = append(ins, c.in)
	}
	ins = append(ins, refCases...)
	for _, opts := range []DecoderOptions{{}, {Schema: crm.DefaultSchema()}, {Limits: crm.Limits{MaxStringBytes: 4, MaxListLen: 1, MaxMapEntries: 2, MaxDepth: 2}}} {
		d := newEnvelope(t, opts)
		for _, in := range ins {
			sameAsReference(t, d, []byte(in))
		}
	}
}

func TestEnvelopeKeyIndexes(t *testing.T) {
	want := map[int]string{keyID: "id", keyType: "type", keyTime: "time", keyWorkspace: "workspace", keyObject: "object",
		keyRecord: "record", keyBefore: "before", keyPartial: "partial", keyTracker: "tracker", keyAccount: "account",
		keyOpportunity: "opportunity", keySchedule: "schedule", keyCall: "call"}
	if len(envelopeKeys) != numEnvelopeKeys || len(want) != numEnvelopeKeys {
		t.Fatalf("%d envelope keys, %d indexes", len(envelopeKeys), len(want))
	}
	for i, k := range want {
		if string(envelopeKeys[i]) != k {
			t.Errorf("envelopeKeys[%d] = %s, want %s", i, envelopeKeys[i], k)
		}
	}
}
