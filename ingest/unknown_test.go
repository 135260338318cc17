package ingest

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
)

// unknownLog records what OnUnknownFields is told.
type unknownLog struct {
	mu    sync.Mutex
	calls []string // "EVENT: object.field object.field"
}

func (l *unknownLog) observe(ev *engine.Event, fields []crm.UnknownField) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, f := range fields {
		parts = append(parts, f.Object+"."+f.Field)
	}
	l.calls = append(l.calls, ev.ID+": "+strings.Join(parts, " "))
}

// TestEnvelopeUnknownFields: the envelope decoder reports the members of
// every record of an event that are no field (record, before, the
// related records, the tracker and its participants), each once per
// event; nothing for an event without any, or one that does not decode.
func TestEnvelopeUnknownFields(t *testing.T) {
	log := &unknownLog{}
	d := newEnvelope(t, DecoderOptions{Schema: crm.DefaultSchema(), OnUnknownFields: log.observe})
	for _, tt := range []struct {
		event string
		want  string // the call, "" for none
	}{
		{`{"id":"e1","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"o1","stage":"Won","stge":"x","Amount":1},"before":{"stge":"y","forecast":"z"},"account":{"tier":"Gold","tierr":"x"},"opportunity":{"x":1}}`,
			"e1: opportunity.stge opportunity.Amount opportunity.forecast account.tierr opportunity.x"},
		{`{"id":"e2","type":"tracker.detected","time":"2026-11-24T10:00:00Z","tracker":{"name":"Upsell","transcript":"…","participants":[{"contact_id":"c1","email":"e"},{"email":"f"}]}}`,
			"e2: tracker.transcript participant.email"},
		{`{"id":"e3","type":"record.created","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"o1","stage":"Won","amount":1},"unknown_top_level":1}`, ""},
		{`{"id":"e4","type":"record.created","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"o1","stge":"Won","amount":"x"}}`, ""}, // dead-lettered
		{`{"id":"e5","type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"l1","a b":1}}`, "e5: lead.a b"},
	} {
		log.calls = nil
		d.Decode(nil, []byte(tt.event))
		if got := strings.Join(log.calls, "\n"); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

// TestDebeziumUnknownFields: the Debezium decoder reports the columns
// mapped to no field, of the after and before rows; not the id column,
// the workspace column, or a column hidden by a rename.
func TestDebeziumUnknownFields(t *testing.T) {
	log := &unknownLog{}
	d, err := NewDebeziumDecoder(DebeziumOptions{DecoderOptions: DecoderOptions{Schema: customSchema(t), OnUnknownFields: log.observe},
		Tables: debeziumTables()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, want string }{
		{"pg_update.json", "dbz:public.opportunities:lsn=24023200:42: opportunity.internal_notes"},
		{"pg_create_wrapped.json", "dbz:public.opportunities:lsn=24023128:42: opportunity.internal_notes"},
		{"mysql_create_wrapped.json", "dbz:crm.accounts:file=mysql-bin.000003,pos=154,row=0:A-1: account.is_active"},
	} {
		log.calls = nil
		if _, err := d.Decode(nil, readFixture(t, tt.file)); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(log.calls, "\n"); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.file, got, tt.want)
		}
	}
}

// TestUnknownFieldMetrics: one count per event and field; past
// MaxUnknownFieldNames names of an object, and for names that are not
// identifiers, the field label is _other.
func TestUnknownFieldMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewUnknownFieldMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	d := newEnvelope(t, DecoderOptions{Schema: crm.DefaultSchema(), OnUnknownFields: m.Observe})
	event := func(id, fields string) {
		t.Helper()
		js := fmt.Sprintf(`{"id":%q,"type":"record.created","time":"2026-11-24T10:00:00Z","object":"lead","record":{"id":"l1"%s}}`, id, fields)
		if _, err := d.Decode(nil, []byte(js)); err != nil {
			t.Fatal(err)
		}
	}
	event("e1", `,"stauts":"x","a b":1`) // "a b" is no identifier: _other
	event("e2", `,"stauts":"y"`)
	for i := 0; i < MaxUnknownFieldNames; i++ { // 99 more names, then two past the bound
		event(fmt.Sprintf("n%d", i), fmt.Sprintf(`,"f%03d":1`, i))
	}
	if _, err := NewUnknownFieldMetrics(reg); err == nil {
		t.Error("registered twice")
	}
	if n := testutil.CollectAndCount(m.total); n != MaxUnknownFieldNames+1 { // 100 names and _other
		t.Errorf("%d series, want %d", n, MaxUnknownFieldNames+1)
	}
	for _, tt := range []struct {
		field string
		want  float64
	}{{"stauts", 2}, {"f000", 1}, {"f098", 1}, {"_other", 2}} { // "a b", f099
		if got := testutil.ToFloat64(m.total.WithLabelValues("lead", tt.field)); got != tt.want {
			t.Errorf("field %q: %v, want %v", tt.field, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.total); n != MaxUnknownFieldNames+1 {
		t.Errorf("%d series: f099 has a label value of its own", n)
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{"stage": "stage", "a b": "?", "": "?", strings.Repeat("x", 65): "?", "x-1$": "x-1$"} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEnvelopeUnknownAllocs: with OnUnknownFields set, an event without
// unknown fields decodes with the allocations of one decoded without it.
func TestEnvelopeUnknownAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector; make test also runs the allocation tests without it")
	}
	data, err := os.ReadFile("testdata/bench_opportunity.json")
	if err != nil {
		t.Fatal(err)
	}
	plain := newEnvelope(t, DecoderOptions{Schema: crm.DefaultSchema()})
	calls := 0
	hooked := newEnvelope(t, DecoderOptions{Schema: crm.DefaultSchema(), OnUnknownFields: func(*engine.Event, []crm.UnknownField) { calls++ }})
	decode := func(d *EnvelopeDecoder) func() {
		return func() {
			if _, err := d.Decode(nil, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := testing.AllocsPerRun(200, decode(plain)), testing.AllocsPerRun(200, decode(hooked))
	if a != b || calls != 0 {
		t.Fatalf("%v allocations with OnUnknownFields, %v without; %d calls", b, a, calls)
	}
}

// BenchmarkEnvelopeDecodeUnknownFields decodes the event of
// BenchmarkEnvelopeDecode with the service's OnUnknownFields (the
// metric): as it is, and with three fields the schema does not declare.
func BenchmarkEnvelopeDecodeUnknownFields(b *testing.B) {
	data, err := os.ReadFile("testdata/bench_opportunity.json")
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewUnknownFieldMetrics(nil)
	if err != nil {
		b.Fatal(err)
	}
	d := newEnvelope(b, DecoderOptions{Schema: crm.DefaultSchema(), OnUnknownFields: m.Observe})
	unknown := []byte(strings.Replace(string(data), `"stage":"Closed Won",`, `"stage":"Closed Won","stage_v2":"Won","region_code":"EMEA","legacy_id":17,`, 1))
	for _, bc := range []struct {
		name string
		data []byte
	}{{"none", data}, {"three", unknown}} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := d.Decode(nil, bc.data); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if _, err := d.Decode(nil, bc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
