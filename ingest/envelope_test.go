package ingest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
)

func customSchema(t testing.TB) *crm.Schema {
	t.Helper()
	s, err := crm.LoadSchema("testdata/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newEnvelope(t testing.TB, opts DecoderOptions) *EnvelopeDecoder {
	t.Helper()
	if opts.Schema == nil {
		opts.Schema = customSchema(t)
	}
	d, err := NewEnvelopeDecoder(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type goodCase struct {
	name string
	key  string
	in   string
	want want
}

func envelopeGoodCases() []goodCase {
	return []goodCase{
		{
			name: "the example of docs/events.md",
			in: `{"id": "evt-9f1c", "type": "record.updated", "time": "2026-11-24T10:00:00Z",
			 "workspace": "acme", "object": "opportunity",
			 "record": {"id": "006A1", "stage": "Closed Won", "amount": 250000, "owner_id": "u-7"},
			 "before": {"stage": "Negotiation"},
			 "partial": false}`,
			want: want{ID: "evt-9f1c", Type: "record.updated", Time: "2026-11-24T10:00:00Z", Workspace: "acme", Object: "opportunity",
				Record: `{id:"006A1" owner_id:"u-7" stage:"Closed Won" amount:250000}`, Before: `{stage:"Negotiation"}`},
		},
		{
			name: "created with every standard field",
			in: `{"id":"evt-1","type":"record.created","time":"2026-11-24T10:00:00.123456789Z","object":"opportunity",
			 "record":{"id":"006A1","owner_id":"u-7","created_at":"2026-09-01T14:22:10Z","updated_at":"2026-11-24T10:00:00+01:00",
			 "name":"Acme expansion","account_id":"001A","stage":"Prospecting","type":"New","forecast_category":"Pipeline",
			 "amount":12.5,"probability":0.25,"close_date":"2026-12-31","primary_contact_id":"003X"}}`,
			want: want{ID: "evt-1", Type: "record.created", Time: "2026-11-24T10:00:00.123456789Z", Object: "opportunity",
				Record: `{id:"006A1" owner_id:"u-7" created_at:2026-09-01T14:22:10Z updated_at:2026-11-24T09:00:00Z name:"Acme expansion" account_id:"001A" stage:"Prospecting" type:"New" forecast_category:"Pipeline" amount:12.5 probability:0.25 close_date:2026-12-31T00:00:00Z primary_contact_id:"003X"}`},
		},
		{
			name: "before on a create is ignored",
			in:   `{"id":"evt-2","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"00Q1","score":7},"before":{"score":"not even checked"}}`,
			want: want{ID: "evt-2", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1" score:int(7)}`},
		},
		{
			name: "partial update without before",
			in:   `{"id":"evt-3","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"contact","record":{"id":"003X","title":"CTO"},"partial":true}`,
			want: want{ID: "evt-3", Type: "record.updated", Time: "2026-11-24T10:00:00Z", Object: "contact", Partial: true, Record: `{id:"003X" title:"CTO"}`},
		},
		{
			name: "delete with the id only",
			in:   `{"id":"evt-4","type":"record.deleted","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"00Q1"}}`,
			want: want{ID: "evt-4", Type: "record.deleted", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1"}`},
		},
		{
			name: "delete with before",
			in:   `{"id":"evt-5","type":"record.deleted","time":"2026-11-24T10:00:00Z","object":"account","record":{"id":"001A"},"before":{"tier":"Gold"}}`,
			want: want{ID: "evt-5", Type: "record.deleted", Time: "2026-11-24T10:00:00Z", Object: "account", Record: `{id:"001A"}`, Before: `{tier:"Gold"}`},
		},
		{
			name: "tracker with participants and related records",
			in: `{"id":"evt-t1","type":"tracker.detected","time":"2026-11-24T10:00:00Z","workspace":"acme",
			 "tracker":{"name":"Upsell opportunity","call_id":"call-1","confidence":0.92,
			   "participants":[{"contact_id":"003X","role":"customer","name":"Ana"},{"role":"rep","name":"Bo"}]},
			 "account":{"id":"001A","tier":"Enterprise"},"opportunity":{"stage":"Discovery"}}`,
			want: want{ID: "evt-t1", Type: "tracker.detected", Time: "2026-11-24T10:00:00Z", Workspace: "acme",
				Tracker: `{name:"Upsell opportunity" call_id:"call-1" confidence:0.92 participants:[{contact_id:"003X" role:"customer" name:"Ana"} {role:"rep" name:"Bo"}]}`,
				Account: `{id:"001A" tier:"Enterprise"}`, Opp: `{stage:"Discovery"}`},
		},
		{
			name: "tracker with confidence 1 and no participants; object and record ignored",
			in:   `{"id":"evt-t2","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"name":"Churn risk","confidence":1},"object":"deal","record":"x"}`,
			want: want{ID: "evt-t2", Type: "tracker.detected", Time: "2026-11-24T10:00:00Z", Tracker: `{name:"Churn risk" confidence:1}`},
		},
		{
			name: "tracker with confidence 0",
			in:   `{"id":"evt-t3","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"name":"Churn risk","confidence":0,"participants":[]}}`,
			want: want{ID: "evt-t3", Type: "tracker.detected", Time: "2026-11-24T10:00:00Z", Tracker: `{name:"Churn risk" confidence:0 participants:[]}`},
		},
		{
			name: "call processed with participants and its account",
			in: `{"id":"evt-c1","type":"call.processed","time":"2026-11-24T10:00:00Z","workspace":"acme",
			 "call":{"id":"call-7","title":"QBR","started_at":"2026-11-24T09:00:00Z","duration_s":1800,"direction":"outbound",
			   "participants":[{"contact_id":"003X","role":"customer","name":"Ana"}],"account_id":"001A","opportunity_id":"006A1"},
			 "account":{"id":"001A","tier":"Enterprise"}}`,
			want: want{ID: "evt-c1", Type: "call.processed", Time: "2026-11-24T10:00:00Z", Workspace: "acme",
				Call:    `{id:"call-7" title:"QBR" started_at:2026-11-24T09:00:00Z duration_s:int(1800) direction:"outbound" participants:[{contact_id:"003X" role:"customer" name:"Ana"}] account_id:"001A" opportunity_id:"006A1"}`,
				Account: `{id:"001A" tier:"Enterprise"}`},
		},
		{
			name: "schedule fired",
			in:   `{"id":"evt-s1","type":"schedule.fired","time":"2026-11-23T09:00:00Z","schedule":{"name":"weekly-pipeline-review"},"object":"opportunity","record":{"id":"006A1"}}`,
			want: want{ID: "evt-s1", Type: "schedule.fired", Time: "2026-11-23T09:00:00Z", Object: "opportunity", Schedule: "weekly-pipeline-review", Record: `{id:"006A1"}`},
		},
		{
			name: "record event with related account",
			in:   `{"id":"evt-r1","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"006A1","account_id":"001A"},"account":{"id":"001A","tier":"Strategic"}}`,
			want: want{ID: "evt-r1", Type: "record.updated", Time: "2026-11-24T10:00:00Z", Object: "opportunity", Record: `{id:"006A1" account_id:"001A"}`, Account: `{id:"001A" tier:"Strategic"}`},
		},
		{
			name: "null optional fields are absent",
			in:   `{"id":"evt-6","type":"record.updated","time":"2026-11-24T10:00:00Z","workspace":null,"object":"opportunity","record":{"id":"006A1"},"before":null,"partial":null,"account":null,"opportunity":null,"tracker":null,"schedule":null}`,
			want: want{ID: "evt-6", Type: "record.updated", Time: "2026-11-24T10:00:00Z", Object: "opportunity", Record: `{id:"006A1"}`},
		},
		{
			name: "empty workspace is none",
			in:   `{"id":"evt-7","type":"record.created","time":"2026-11-24T10:00:00Z","workspace":"","object":"lead","record":{"id":"00Q1"}}`,
			want: want{ID: "evt-7", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1"}`},
		},
		{
			name: "unknown keys are ignored",
			in:   `{"id":"evt-8","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"00Q1","nickname":"x","Score":3},"source":"crm","version":2,"meta":{"a":[1,2,{"b":null}]},"records":[]}`,
			want: want{ID: "evt-8", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1"}`},
		},
		{
			name: "message key different from record id is ignored",
			key:  "some-other-key",
			in:   `{"id":"evt-9","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"00Q1"}}`,
			want: want{ID: "evt-9", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1"}`},
		},
		{
			name: "integers above 2^53 stay exact",
			in:   `{"id":"evt-10","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"name":"T"},"opportunity":{"seats":9007199254740993},"account":{"big_number":-9223372036854775808,"employee_count":9223372036854775807}}`,
			want: want{ID: "evt-10", Type: "tracker.detected", Time: "2026-11-24T10:00:00Z", Tracker: `{name:"T"}`,
				Opp: `{seats:int(9007199254740993)}`, Account: `{employee_count:int(9223372036854775807) big_number:int(-9223372036854775808)}`},
		},
		{
			name: "integral numbers in int fields",
			in:   `{"id":"evt-11","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"00Q1","score":1e3}}`,
			want: want{ID: "evt-11", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1" score:int(1000)}`},
		},
		{
			name: "control characters in strings",
			in:   `{"id":"evt-\u0000\t","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"00Q1","company":"a\u0000b\u001f\n\t\"\\\/é😀"}}`,
			want: want{ID: "evt-\x00\t", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1" company:"a\x00b\x1f\n\t\"\\/é😀"}`},
		},
		{
			name: "timestamps in year 1 and 9999",
			in:   `{"id":"evt-12","type":"record.created","time":"0001-01-01T00:00:00Z","object":"opportunity","record":{"id":"006A1","created_at":"0001-01-01T00:00:00Z","close_date":"9999-12-31T23:59:59.999999999Z"}}`,
			want: want{ID: "evt-12", Type: "record.created", Time: "0001-01-01T00:00:00Z", Object: "opportunity", Record: `{id:"006A1" created_at:0001-01-01T00:00:00Z close_date:9999-12-31T23:59:59.999999999Z}`},
		},
		{
			name: "event time in year 9999 with an offset",
			in:   `{"id":"evt-13","type":"record.created","time":"9999-12-31T23:59:59.5-05:00","object":"lead","record":{"id":"00Q1"}}`,
			want: want{ID: "evt-13", Type: "record.created", Time: "9999-12-31T23:59:59.5-05:00", Object: "lead", Record: `{id:"00Q1"}`},
		},
		{
			name: "escaped keys",
			in:   `{"\u0069d":"evt-14","typ\u0065":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"\u0069d":"00Q1"}}`,
			want: want{ID: "evt-14", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1"}`},
		},
		{
			name: "custom fields",
			in:   `{"id":"evt-15","type":"record.created","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"006A1","competitors":["Globex","Initech"],"extra":{"n":1,"d":1.5,"l":["x",{"y":true}]},"is_priority":true,"seats":40}}`,
			want: want{ID: "evt-15", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "opportunity",
				Record: `{id:"006A1" competitors:["Globex" "Initech"] extra:map{d:1.5 l:["x" map{y:true}] n:int(1)} is_priority:true seats:int(40)}`},
		},
		{
			name: "null clears a field of a partial record",
			in:   `{"id":"evt-16","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"006A1","stage":null},"partial":true}`,
			want: want{ID: "evt-16", Type: "record.updated", Time: "2026-11-24T10:00:00Z", Object: "opportunity", Partial: true, Record: `{id:"006A1"}`},
		},
		{
			name: "case variants inside a record are distinct keys",
			in:   `{"id":"evt-17","type":"record.created","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"006A1","stage":"Won","Stage":"Lost","ID":"x"}}`,
			want: want{ID: "evt-17", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "opportunity", Record: `{id:"006A1" stage:"Won"}`},
		},
		{
			name: "white space around the object",
			in:   "\n\t {\"id\":\"evt-18\",\"type\":\"record.created\",\"time\":\"2026-11-24T10:00:00Z\",\"object\":\"lead\",\"record\":{\"id\":\"00Q1\"}}\r\n",
			want: want{ID: "evt-18", Type: "record.created", Time: "2026-11-24T10:00:00Z", Object: "lead", Record: `{id:"00Q1"}`},
		},
	}
}

func TestEnvelopeDecodeGood(t *testing.T) {
	d := newEnvelope(t, DecoderOptions{})
	for _, c := range envelopeGoodCases() {
		t.Run(c.name, func(t *testing.T) {
			ev, err := d.Decode([]byte(c.key), []byte(c.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			checkEvent(t, ev, c.want)
		})
	}
}

// TestEnvelopeRecordValues reads decoded values through the record API the
// engine uses.
func TestEnvelopeRecordValues(t *testing.T) {
	s := customSchema(t)
	d := newEnvelope(t, DecoderOptions{Schema: s})
	ev, err := d.Decode(nil, []byte(`{"id":"e","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity",
		"record":{"id":"006A1","stage":null,"seats":9007199254740993,"close_date":"2026-12-31T00:00:00Z"},"partial":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.RecordID() != "006A1" || ev.Record.String("id") != "006A1" {
		t.Errorf("record id %q", ev.RecordID())
	}
	opp, _ := s.Object("opportunity")
	seats, _ := opp.Field("seats")
	if v := ev.Record.FieldValue(seats); v != types.Int(9007199254740993) {
		t.Errorf("seats = %v, want 9007199254740993 exactly", v)
	}
	if tm, ok := ev.Record.Time("close_date"); !ok || tm.Format("2006-01-02") != "2026-12-31" {
		t.Errorf("close_date = %v, %v", tm, ok)
	}
	// stage: null clears the stored value when merged.
	stored, err := opp.NewRecord(map[string]any{"id": "006A1", "stage": "Won"}, crm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := stored.Merge(ev.Record).String("stage"); got != "" {
		t.Errorf("merged stage = %q, want cleared", got)
	}
}

// TestEnvelopeSameIDDifferentContent: the decoder accepts both; dedup by
// id is the engine's job.
func TestEnvelopeSameIDDifferentContent(t *testing.T) {
	d := newEnvelope(t, DecoderOptions{})
	a, err := d.Decode(nil, []byte(`{"id":"evt-1","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"00Q1","score":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Decode(nil, []byte(`{"id":"evt-1","type":"record.updated","time":"2026-11-25T10:00:00Z","object":"lead","record":{"id":"00Q1","score":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || show(a.Record) == show(b.Record) || a.Type == b.Type {
		t.Errorf("got %s %s, %s %s", a.Type, show(a.Record), b.Type, show(b.Record))
	}
}

type badCase struct {
	name    string
	in      string
	reason  string
	msg     string
	secrets []string
}

const (
	hdr = `"id":"evt-SECRET1","time":"2026-11-24T10:00:00Z",`
	upd = `{` + hdr + `"type":"record.updated","object":"opportunity",`
)

func envelopeBadCases() []badCase {
	return []badCase{
		// empty
		{"no bytes", ``, ReasonEmpty, "empty", nil},
		{"white space", " \n\t", ReasonEmpty, "empty", nil},
		{"null", ` null `, ReasonEmpty, "empty", nil},

		// too_large
		{"over MaxBytes", `{"id":"` + strings.Repeat("x", 1<<20) + `"}`, ReasonTooLarge, "over the limit of 1048576", nil},

		// invalid_json
		{"truncated in a string", `{"id":"evt-SECRET1","type":"record.cre`, ReasonInvalidJSON, "truncated", nil},
		{"truncated after a value", `{"id":"evt-SECRET1"`, ReasonInvalidJSON, "truncated", nil},
		{"truncated in a literal", `{"id":"evt-SECRET1","partial":tr`, ReasonInvalidJSON, "truncated", nil},
		{"truncated in an escape", `{"id":"evt-SECRET1\u00`, ReasonInvalidJSON, "truncated", nil},
		{"array", `[{"id":"evt-SECRET1"}]`, ReasonInvalidJSON, "not a JSON object", nil},
		{"string", `"SECRET"`, ReasonInvalidJSON, "not a JSON object", nil},
		{"number", `42`, ReasonInvalidJSON, "not a JSON object", nil},
		{"trailing data", `{"id":"evt-SECRET1"} {"id":"SECRET2"}`, ReasonInvalidJSON, "data after the JSON object at byte offset 21", nil},
		{"raw control character", `{"id":"SECRET` + "\x01" + `"}`, ReasonInvalidJSON, "unescaped control character in a string at byte offset 13", nil},
		{"raw newline in a string", `{"id":"SECRET` + "\n" + `"}`, ReasonInvalidJSON, "unescaped control character", nil},
		{"NaN", `{"id":"evt-SECRET1","x":NaN}`, ReasonInvalidJSON, "invalid JSON syntax at byte offset 24", nil},
		{"trailing comma", `{"id":"evt-SECRET1",}`, ReasonInvalidJSON, "invalid JSON syntax", nil},
		{"single quotes", `{'id':'SECRET'}`, ReasonInvalidJSON, "invalid JSON syntax", nil},
		{"leading zero", `{"id":"evt-SECRET1","x":0123}`, ReasonInvalidJSON, "invalid JSON syntax", nil},
		{"bad escape", `{"id":"SECRET\q"}`, ReasonInvalidJSON, "invalid JSON syntax", nil},

		// invalid_utf8
		{"invalid byte in a string", `{"id":"SECRET` + "\xff" + `"}`, ReasonInvalidUTF8, "not valid UTF-8", nil},
		{"invalid byte in a key", `{"SECRET` + "\xfe" + `":1}`, ReasonInvalidUTF8, "not valid UTF-8", nil},
		{"overlong encoding", `{"id":"SECRET` + "\xc0\xaf" + `"}`, ReasonInvalidUTF8, "not valid UTF-8", nil},
		{"encoded surrogate", `{"id":"SECRET` + "\xed\xa0\x80" + `"}`, ReasonInvalidUTF8, "not valid UTF-8", nil},
		{"truncated sequence", `{"id":"SECRET` + "\xe2\x82" + `"}`, ReasonInvalidUTF8, "not valid UTF-8", nil},
		{"escaped lone surrogate", upd + `"record":{"id":"SECRET","name":"\ud800"}}`, ReasonInvalidUTF8, "escaped lone UTF-16 surrogate", nil},

		// missing_field
		{"no id", `{"type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "id is missing", nil},
		{"null id", `{"id":null,"type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "id is missing", nil},
		{"empty id", `{"id":"","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "id is empty", nil},
		{"no type", `{` + hdr + `"object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "type is missing", nil},
		{"null type", `{` + hdr + `"type":null,"object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "type is missing", nil},
		{"no time", `{"id":"evt-SECRET1","type":"record.created","object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "time is missing", nil},
		{"call without call", `{` + hdr + `"type":"call.processed"}`, ReasonMissingField, "call is missing", nil},
		{"call without id", `{` + hdr + `"type":"call.processed","call":{"title":"SECRET"}}`, ReasonMissingField, "call.id is missing", nil},
		{"call with a wrong duration", `{` + hdr + `"type":"call.processed","call":{"id":"c1","duration_s":"SECRET"}}`, ReasonInvalidField, "call.duration_s", nil},
		{"null time", `{"id":"evt-SECRET1","time":null,"type":"record.created","object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "time is missing", nil},
		{"no object", `{` + hdr + `"type":"record.created","record":{"id":"SECRET"}}`, ReasonMissingField, "object is missing", nil},
		{"null object", `{` + hdr + `"type":"record.deleted","object":null,"record":{"id":"SECRET"}}`, ReasonMissingField, "object is missing", nil},
		{"no record", upd + `"before":{"stage":"SECRET"}}`, ReasonMissingField, "record is missing", nil},
		{"null record", upd + `"record":null}`, ReasonMissingField, "record is missing", nil},
		{"no record id", upd + `"record":{"stage":"SECRET"}}`, ReasonMissingField, "record.id is missing", nil},
		{"null record id", upd + `"record":{"id":null,"stage":"SECRET"}}`, ReasonMissingField, "record.id is missing", nil},
		{"empty record id", upd + `"record":{"id":"","stage":"SECRET"}}`, ReasonMissingField, "record.id is empty", nil},
		{"delete without record id", `{` + hdr + `"type":"record.deleted","object":"lead","record":{}}`, ReasonMissingField, "record.id is missing", nil},
		{"no tracker", `{` + hdr + `"type":"tracker.detected","account":{"id":"SECRET"}}`, ReasonMissingField, "tracker is missing", nil},
		{"null tracker", `{` + hdr + `"type":"tracker.detected","tracker":null}`, ReasonMissingField, "tracker is missing", nil},
		{"no tracker name", `{` + hdr + `"type":"tracker.detected","tracker":{"call_id":"SECRET"}}`, ReasonMissingField, "tracker.name is missing", nil},
		{"empty tracker name", `{` + hdr + `"type":"tracker.detected","tracker":{"name":""}}`, ReasonMissingField, "tracker.name is empty", nil},
		{"no schedule", `{` + hdr + `"type":"schedule.fired","object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "schedule is missing", nil},
		{"no schedule name", `{` + hdr + `"type":"schedule.fired","schedule":{},"object":"lead","record":{"id":"SECRET"}}`, ReasonMissingField, "schedule.name is missing", nil},
		{"schedule without object", `{` + hdr + `"type":"schedule.fired","schedule":{"name":"SECRET"},"record":{"id":"SECRET"}}`, ReasonMissingField, "object is missing", nil},
		{"schedule without record id", `{` + hdr + `"type":"schedule.fired","schedule":{"name":"SECRET"},"object":"lead","record":{}}`, ReasonMissingField, "record.id is missing", nil},

		// invalid_field
		{"numeric id", `{"id":12345678,"type":"record.created","time":"2026-11-24T10:00:00Z"}`, ReasonInvalidField, "id: want string, got number", []string{"12345678"}},
		{"object id", `{"id":{"SECRET":1}}`, ReasonInvalidField, "id: want string, got object", nil},
		{"id too long", `{"id":"SECRET` + strings.Repeat("x", 251) + `"}`, ReasonInvalidField, "id: 257 bytes is over the limit of 256", nil},
		{"numeric type", `{` + hdr + `"type":5}`, ReasonInvalidField, "type: want string, got number", nil},
		{"bad time", `{"id":"evt-SECRET1","type":"record.created","time":"SECRET-time"}`, ReasonInvalidField, "time: want an RFC 3339 timestamp", nil},
		{"date-only time", `{"id":"evt-SECRET1","type":"record.created","time":"2026-11-24"}`, ReasonInvalidField, "time: want an RFC 3339 timestamp", []string{"2026-11-24"}},
		{"time without zone", `{"id":"evt-SECRET1","type":"record.created","time":"2026-11-24T10:00:00"}`, ReasonInvalidField, "time: want an RFC 3339 timestamp", nil},
		{"time in year 10000", `{"id":"evt-SECRET1","type":"record.created","time":"10000-01-01T00:00:00Z"}`, ReasonInvalidField, "time: want an RFC 3339 timestamp", nil},
		{"numeric time", `{"id":"evt-SECRET1","type":"record.created","time":1764000000}`, ReasonInvalidField, "time: want string, got number", []string{"1764000000"}},
		{"bad workspace", upd + `"workspace":"SECRET ws","record":{"id":"SECRET"}}`, ReasonInvalidField, "workspace: want 1 to 128 of", nil},
		{"long workspace", upd + `"workspace":"SECRET` + strings.Repeat("w", 123) + `","record":{"id":"SECRET"}}`, ReasonInvalidField, "workspace: want 1 to 128 of", nil},
		{"numeric workspace", upd + `"workspace":7,"record":{"id":"SECRET"}}`, ReasonInvalidField, "workspace: want string, got number", nil},
		{"numeric object", `{` + hdr + `"type":"record.updated","object":1,"record":{"id":"SECRET"}}`, ReasonInvalidField, "object: want string, got number", nil},
		{"string record", upd + `"record":"SECRET"}`, ReasonInvalidField, "record: want object, got string", nil},
		{"array record", upd + `"record":["SECRET"]}`, ReasonInvalidField, "record: want object, got array", nil},
		{"numeric record id", upd + `"record":{"id":4242}}`, ReasonInvalidField, "record.id: want string, got number", []string{"4242"}},
		{"string before", upd + `"record":{"id":"SECRET"},"before":"SECRET"}`, ReasonInvalidField, "before: want object, got string", nil},
		{"bad before field", upd + `"record":{"id":"SECRET"},"before":{"amount":"SECRET"}}`, ReasonInvalidField, "before.amount: want double, got string", nil},
		{"string partial", upd + `"record":{"id":"SECRET"},"partial":"true"}`, ReasonInvalidField, "partial: want bool, got string", nil},
		{"string amount", upd + `"record":{"id":"SECRET","amount":"SECRET-250000"}}`, ReasonInvalidField, "record.amount: want double, got string", nil},
		{"1e400 in a double field", upd + `"record":{"id":"SECRET","amount":1e400}}`, ReasonInvalidField, "record.amount: number is out of the double range", []string{"1e400"}},
		{"1e400 in an int field", upd + `"record":{"id":"SECRET","seats":1e400}}`, ReasonInvalidField, "record.seats: want int, got a number with a fraction or out of the int64 range", []string{"1e400"}},
		{"2^63 in an int field", upd + `"record":{"id":"SECRET","seats":9223372036854775808}}`, ReasonInvalidField, "record.seats: want int", []string{"9223372036854775808"}},
		{"fraction in an int field", upd + `"record":{"id":"SECRET","seats":1.5}}`, ReasonInvalidField, "record.seats: want int", nil},
		{"bool in a double field", upd + `"record":{"id":"SECRET","probability":true}}`, ReasonInvalidField, "record.probability: want double, got bool", nil},
		{"bad timestamp field", upd + `"record":{"id":"SECRET","close_date":"SECRET-date \"quoted\""}}`, ReasonInvalidField, "record.close_date: want an RFC 3339 timestamp or a YYYY-MM-DD date", []string{"quoted"}},
		{"string over the limit", upd + `"record":{"id":"SECRET","name":"SECRET` + strings.Repeat("n", 64<<10) + `"}}`, ReasonInvalidField, "record.name: string of 65542 bytes is over the limit of 65536", nil},
		{"list over the limit", upd + `"record":{"id":"SECRET","competitors":[` + strings.Repeat(`"SECRET",`, 1000) + `"x"]}}`, ReasonInvalidField, "record.competitors: list of 1001 elements is over the limit of 1000", nil},
		{"list element of the wrong type", upd + `"record":{"id":"SECRET","competitors":["SECRET",7]}}`, ReasonInvalidField, "record.competitors: element 1: want string, got number", nil},
		{"map deeper than Limits.MaxDepth", upd + `"record":{"id":"SECRET","extra":` + strings.Repeat(`{"a":`, 17) + `1` + strings.Repeat(`}`, 17) + `}}`, ReasonInvalidField, "record.extra: nesting deeper than the limit of 16", nil},
		{"1e400 in a map", upd + `"record":{"id":"SECRET","extra":{"x":1e400}}}`, ReasonInvalidField, "record.extra: number is out of the double range", []string{"1e400"}},
		{"confidence over 1", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET","confidence":1.5}}`, ReasonInvalidField, "tracker.confidence: want a number from 0 to 1", []string{"1.5"}},
		{"negative confidence", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET","confidence":-0.1}}`, ReasonInvalidField, "tracker.confidence: want a number from 0 to 1", []string{"0.1"}},
		{"string confidence", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET","confidence":"SECRET"}}`, ReasonInvalidField, "tracker.confidence: want double, got string", nil},
		{"string participants", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET","participants":"SECRET"}}`, ReasonInvalidField, "tracker.participants: want list, got string", nil},
		{"numeric participant", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET","participants":[{"name":"SECRET"},7]}}`, ReasonInvalidField, "tracker.participants: element 1: want object, got number", nil},
		{"numeric participant name", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET","participants":[{"name":5}]}}`, ReasonInvalidField, "tracker.participants: element 0: participant.name: want string, got number", nil},
		{"numeric tracker name", `{` + hdr + `"type":"tracker.detected","tracker":{"name":5}}`, ReasonInvalidField, "tracker.name: want string, got number", nil},
		{"string tracker", `{` + hdr + `"type":"tracker.detected","tracker":"SECRET"}`, ReasonInvalidField, "tracker: want object, got string", nil},
		{"string account", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET"},"account":"SECRET"}`, ReasonInvalidField, "account: want object, got string", nil},
		{"bad account field", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET"},"account":{"employee_count":"SECRET"}}`, ReasonInvalidField, "account.employee_count: want int, got string", nil},
		{"array opportunity", upd + `"record":{"id":"SECRET"},"opportunity":[]}`, ReasonInvalidField, "opportunity: want object, got array", nil},
		{"string schedule", `{` + hdr + `"type":"schedule.fired","schedule":"SECRET","object":"lead","record":{"id":"SECRET"}}`, ReasonInvalidField, "schedule: want object, got string", nil},
		{"numeric schedule name", `{` + hdr + `"type":"schedule.fired","schedule":{"name":5},"object":"lead","record":{"id":"SECRET"}}`, ReasonInvalidField, "schedule.name: want string, got number", nil},

		// unknown_type
		{"unknown type", `{` + hdr + `"type":"record.SECRET"}`, ReasonUnknownType, "type: not one of record.created, record.updated, record.deleted, tracker.detected, schedule.fired", nil},
		{"type in another case", `{` + hdr + `"type":"Record.Created"}`, ReasonUnknownType, "type: not one of", []string{"Record.Created"}},

		// unknown_object
		{"unknown object", `{` + hdr + `"type":"record.created","object":"SECRET","record":{"id":"SECRET"}}`, ReasonUnknownObject, "object: not one of account, opportunity, lead, contact", nil},
		{"object in another case", `{` + hdr + `"type":"record.created","object":"Opportunity","record":{"id":"SECRET"}}`, ReasonUnknownObject, "object: not one of", []string{"Opportunity"}},

		// duplicate_key
		{"duplicate id", `{"id":"evt-SECRET1","id":"evt-SECRET2"}`, ReasonDuplicateKey, "key id appears twice in one object", nil},
		{"case-variant id", `{"id":"evt-SECRET1","ID":"evt-SECRET2"}`, ReasonDuplicateKey, `a key differs only in case from the envelope key "id"`, nil},
		{"case variant alone", `{"ID":"evt-SECRET1","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"SECRET"}}`, ReasonDuplicateKey, `envelope key "id"`, nil},
		{"case-variant type", `{"type":"record.created","Type":"record.deleted"}`, ReasonDuplicateKey, `envelope key "type"`, nil},
		{"escaped duplicate", `{"id":"evt-SECRET1","\u0069d":"evt-SECRET2"}`, ReasonDuplicateKey, "key id appears twice", nil},
		{"Kelvin sign", `{"trac` + "\u212a" + `er":{"name":"SECRET"}}`, ReasonDuplicateKey, `envelope key "tracker"`, nil},
		{"escaped Kelvin sign", `{"trac\u212Aer":{"name":"SECRET"}}`, ReasonDuplicateKey, `envelope key "tracker"`, nil},
		{"long s", `{"ſchedule":{"name":"SECRET"}}`, ReasonDuplicateKey, `envelope key "schedule"`, nil},
		{"duplicate in the record", upd + `"record":{"id":"SECRET","stage":"SECRET1","stage":"SECRET2"}}`, ReasonDuplicateKey, "key record.stage appears twice", nil},
		{"duplicate in a participant", `{` + hdr + `"type":"tracker.detected","tracker":{"name":"SECRET","participants":[{"role":"a","role":"b"}]}}`, ReasonDuplicateKey, "key tracker.participants[].role appears twice", nil},
		{"duplicate under an unknown key", upd + `"record":{"id":"SECRET"},"meta":{"SECRET key":1,"SECRET key":2}}`, ReasonDuplicateKey, "key meta.? appears twice", nil},

		// too_deep
		{"deep unknown value", upd + `"record":{"id":"SECRET"},"x":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`, ReasonTooDeep, "nesting deeper than the limit of 32 at x[]", nil},
		{"deep record value", upd + `"record":{"id":"SECRET","extra":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}}`, ReasonTooDeep, "nesting deeper than the limit of 32 at record.extra.a.a.a", nil},
	}
}

func TestEnvelopeDecodeBad(t *testing.T) {
	d := newEnvelope(t, DecoderOptions{})
	for _, c := range envelopeBadCases() {
		t.Run(c.name, func(t *testing.T) {
			ev, err := d.Decode([]byte("SECRET-key"), []byte(c.in))
			if err == nil {
				t.Fatalf("decoded %+v, want reason %s", ev, c.reason)
			}
			if ev != nil {
				t.Errorf("event %+v returned with an error", ev)
			}
			checkReject(t, err, c.reason, c.msg, c.secrets...)
		})
	}
}

// TestEnvelopeTombstone: a Kafka tombstone has a nil value.
func TestEnvelopeTombstone(t *testing.T) {
	_, err := newEnvelope(t, DecoderOptions{}).Decode([]byte("006A1"), nil)
	checkReject(t, err, ReasonEmpty, "tombstone")
}

// TestEnvelopeEveryPrefixRejected truncates good events at every byte:
// each prefix is rejected as invalid JSON (or empty), never decoded.
func TestEnvelopeEveryPrefixRejected(t *testing.T) {
	d := newEnvelope(t, DecoderOptions{})
	for _, c := range envelopeGoodCases() {
		in := strings.TrimSpace(c.in)
		for n := range len(in) - 1 {
			if !utf8.ValidString(in[:n]) {
				continue
			}
			_, err := d.Decode(nil, []byte(in[:n]))
			if r := Reason(err); r != ReasonInvalidJSON && r != ReasonEmpty {
				t.Errorf("%s: prefix of %d bytes: reason %s (%v)", c.name, n, r, err)
			}
		}
	}
}

func TestEnvelopeLimitsOption(t *testing.T) {
	for _, c := range []struct {
		name        string
		opts        DecoderOptions
		in          string
		reason, msg string
	}{
		{"MaxStringBytes", DecoderOptions{Limits: crm.Limits{MaxStringBytes: 8}},
			upd + `"record":{"id":"SECRET","name":"SECRET-long"}}`, ReasonInvalidField, "record.name: string of 11 bytes is over the limit of 8"},
		{"MaxBytes", DecoderOptions{MaxBytes: 200},
			upd + `"record":{"id":"SECRET","name":"` + strings.Repeat("x", 200) + `"}}`, ReasonTooLarge, "over the limit of 200"},
		{"MaxDepth", DecoderOptions{MaxDepth: 8},
			upd + `"record":{"id":"SECRET","extra":[[[[[[[1]]]]]]]}}`, ReasonTooDeep, "limit of 8 at record.extra[]"},
		{"MaxElements, array", DecoderOptions{MaxElements: 3},
			`{"record":{"competitors":["a","b","c","d"]}}`, ReasonTooLarge, "array record.competitors has more than the limit of 3 elements"},
		{"MaxElements, object", DecoderOptions{MaxElements: 3},
			`{"record":{"a":1,"b":2,"c":3,"d":4}}`, ReasonTooLarge, "object record has more than the limit of 3 members"},
		{"MaxElements, top level", DecoderOptions{MaxElements: 3},
			`{"a":1,"b":2,"c":3,"d":4}`, ReasonTooLarge, "object at the top level has more than the limit of 3 members"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := newEnvelope(t, c.opts).Decode(nil, []byte(c.in))
			checkReject(t, err, c.reason, c.msg)
		})
	}
}

func TestEnvelopeConcurrent(t *testing.T) {
	d := newEnvelope(t, DecoderOptions{})
	cases := envelopeGoodCases()
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				c := cases[(g+i)%len(cases)]
				if _, err := d.Decode(nil, []byte(c.in)); err != nil {
					t.Errorf("%s: %v", c.name, err)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func FuzzEnvelopeDecode(f *testing.F) {
	for _, c := range envelopeGoodCases() {
		f.Add([]byte(c.in))
	}
	for _, c := range envelopeBadCases() {
		if len(c.in) < 4096 {
			f.Add([]byte(c.in))
		}
	}
	if b, err := os.ReadFile("testdata/bench_opportunity.json"); err == nil {
		f.Add(b)
	}
	for _, in := range refCases {
		f.Add([]byte(in))
	}
	d := newEnvelope(f, DecoderOptions{})
	f.Fuzz(func(t *testing.T, value []byte) {
		sameAsReference(t, d, value)
		ev, err := d.Decode(nil, value)
		if err != nil {
			r := Reason(err)
			if r == ReasonInternal {
				t.Fatalf("internal error: %v", err)
			}
			if dt := Detail(err); len(dt) > MaxDetailBytes || !utf8.ValidString(dt) {
				t.Fatalf("bad detail %q", dt)
			}
			if r == ReasonInvalidJSON && json.Valid(value) && strings.HasPrefix(strings.TrimSpace(string(value)), "{") {
				t.Fatalf("rejected as invalid JSON, but encoding/json accepts it: %v", err)
			}
			return
		}
		if !json.Valid(value) {
			t.Fatalf("decoded a message encoding/json rejects")
		}
		if ev.ID == "" || !knownType(ev.Type) {
			t.Fatalf("decoded event with id %q, type %q", ev.ID, ev.Type)
		}
		switch ev.Type {
		case engine.TypeTrackerDetected:
			if ev.Tracker == nil || ev.Tracker.String("name") == "" {
				t.Fatalf("tracker event without tracker name")
			}
		case engine.TypeCallProcessed:
			if ev.Call == nil || ev.Call.ID() == "" {
				t.Fatalf("call event without call id")
			}
		default:
			if ev.Record == nil || ev.RecordID() == "" || ev.Object == "" {
				t.Fatalf("%s event without object or record id", ev.Type)
			}
			if ev.Type == engine.TypeScheduleFired && ev.Schedule == "" {
				t.Fatalf("schedule event without name")
			}
		}
	})
}

func BenchmarkEnvelopeDecode(b *testing.B) {
	data, err := os.ReadFile("testdata/bench_opportunity.json")
	if err != nil {
		b.Fatal(err)
	}
	d := newEnvelope(b, DecoderOptions{Schema: crm.DefaultSchema()})
	if _, err := d.Decode(nil, data); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := d.Decode(nil, data); err != nil {
			b.Fatal(err)
		}
	}
}
