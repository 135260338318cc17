package ingest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
)

func debeziumTables() map[string]TableMapping {
	return map[string]TableMapping{
		// Postgres: schema-qualified, renamed columns, a fixed workspace.
		"public.opportunities": {Object: "opportunity", Workspace: "acme",
			Columns: map[string]string{"deal_name": "name", "amount_usd": "amount"}, TimeUnit: "us"},
		// MySQL: db-qualified, an id column of another name, a workspace column.
		"crm.accounts": {Object: "account", IDColumn: "account_id", WorkspaceColumn: "tenant",
			Columns: map[string]string{"acct_name": "name"}},
		// A bare table name, no position in the source block.
		"leads": {Object: "lead"},
	}
}

func newDebezium(t testing.TB) *DebeziumDecoder {
	t.Helper()
	d, err := NewDebeziumDecoder(DebeziumOptions{DecoderOptions: DecoderOptions{Schema: customSchema(t)}, Tables: debeziumTables()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "debezium", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	pgRecord = `{id:"42" owner_id:"u-7" created_at:2026-09-01T14:22:10.123456Z updated_at:2026-11-24T10:00:00Z name:"Acme expansion" stage:"Closed Won" amount:250000 close_date:2026-12-31T00:00:00Z}`
	// Unwrapped Postgres fixtures carry no date column: without a schema
	// one time unit applies to the whole table.
	pgRecordNoDate = `{id:"42" owner_id:"u-7" created_at:2026-09-01T14:22:10.123456Z updated_at:2026-11-24T10:00:00Z name:"Acme expansion" stage:"Closed Won" amount:250000}`
	pgBefore       = `{updated_at:2026-11-20T08:30:00Z stage:"Negotiation"}`
	myRecord       = `{id:"A-1" name:"Acme Corp" tier:"Enterprise" annual_revenue:1.5e+06 employee_count:int(250) renewal_date:2027-03-01T00:00:00Z}`
	dbzTime        = "2026-11-24T10:00:00Z" // source.ts_ms
)

func TestDebeziumDecodeGood(t *testing.T) {
	d := newDebezium(t)
	for _, c := range []struct {
		file string
		key  string
		want want
	}{
		{"pg_create_wrapped.json", "", want{ID: "dbz:public.opportunities:lsn=24023128:42", Type: engine.TypeRecordCreated, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecord}},
		{"pg_create.json", "", want{ID: "dbz:public.opportunities:lsn=24023128:42", Type: engine.TypeRecordCreated, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecordNoDate}},
		{"pg_read_wrapped.json", "", want{ID: "dbz:public.opportunities:lsn=24000000:42", Type: engine.TypeRecordCreated, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecord}},
		{"pg_update_wrapped.json", "", want{ID: "dbz:public.opportunities:lsn=24023200:42", Type: engine.TypeRecordUpdated, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecord, Before: pgBefore}},
		{"pg_update.json", "", want{ID: "dbz:public.opportunities:lsn=24023200:42", Type: engine.TypeRecordUpdated, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecordNoDate, Before: pgBefore}},
		{"pg_update_no_before.json", "", want{ID: "dbz:public.opportunities:lsn=24023300:42", Type: engine.TypeRecordUpdated, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecordNoDate}},
		{"pg_update_key_before.json", "", want{ID: "dbz:public.opportunities:lsn=24023400:42", Type: engine.TypeRecordUpdated, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecordNoDate}},
		{"pg_update_toast.json", "", want{ID: "dbz:public.opportunities:lsn=24023500:42", Type: engine.TypeRecordUpdated, Time: dbzTime, Workspace: "acme", Object: "opportunity", Partial: true,
			Record: `{id:"42" owner_id:"u-7" created_at:2026-09-01T14:22:10.123456Z updated_at:2026-11-24T10:00:00Z stage:"Closed Won" amount:250000}`}},
		{"pg_delete.json", "", want{ID: "dbz:public.opportunities:lsn=24023600:42", Type: engine.TypeRecordDeleted, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecordNoDate}},
		{"pg_delete_wrapped.json", "", want{ID: "dbz:public.opportunities:lsn=24023600:42", Type: engine.TypeRecordDeleted, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: pgRecord}},
		{"pg_delete_no_before.json", `{"id":42}`, want{ID: "dbz:public.opportunities:lsn=24023700:42", Type: engine.TypeRecordDeleted, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: `{id:"42"}`}},
		{"pg_delete_no_before.json", `{"schema":{"type":"struct","fields":[{"type":"int64","field":"id"}]},"payload":{"id":42}}`, want{ID: "dbz:public.opportunities:lsn=24023700:42", Type: engine.TypeRecordDeleted, Time: dbzTime, Workspace: "acme", Object: "opportunity", Record: `{id:"42"}`}},
		{"mysql_create_wrapped.json", "", want{ID: "dbz:crm.accounts:file=mysql-bin.000003,pos=154,row=0:A-1", Type: engine.TypeRecordCreated, Time: dbzTime, Workspace: "acme", Object: "account", Record: myRecord}},
		{"mysql_read.json", "", want{ID: "dbz:crm.accounts:file=mysql-bin.000003,pos=4,row=0:A-1", Type: engine.TypeRecordCreated, Time: dbzTime, Workspace: "acme", Object: "account", Record: myRecord}},
		{"mysql_update.json", "", want{ID: "dbz:crm.accounts:file=mysql-bin.000003,pos=1020,row=1:A-1", Type: engine.TypeRecordUpdated, Time: dbzTime, Workspace: "acme", Object: "account", Record: myRecord, Before: `{tier:"Gold" employee_count:int(200)}`}},
		{"mysql_update_wrapped.json", "", want{ID: "dbz:crm.accounts:file=mysql-bin.000003,pos=1020,row=1:A-1", Type: engine.TypeRecordUpdated, Time: dbzTime, Workspace: "acme", Object: "account", Record: myRecord, Before: `{tier:"Gold" employee_count:int(200)}`}},
		{"mysql_delete.json", "", want{ID: "dbz:crm.accounts:file=mysql-bin.000003,pos=2048,row=0:A-1", Type: engine.TypeRecordDeleted, Time: dbzTime, Workspace: "acme", Object: "account", Record: myRecord}},
		{"mysql_delete_wrapped.json", "", want{ID: "dbz:crm.accounts:file=mysql-bin.000003,pos=2048,row=0:A-1", Type: engine.TypeRecordDeleted, Time: dbzTime, Workspace: "acme", Object: "account", Record: myRecord}},
	} {
		name := c.file
		if strings.HasPrefix(c.key, `{"schema"`) {
			name += " with a wrapped key"
		} else if c.key != "" {
			name += " with a key"
		}
		t.Run(name, func(t *testing.T) {
			ev, err := d.Decode([]byte(c.key), readFixture(t, c.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			checkEvent(t, ev, c.want)
		})
	}
}

// TestDebeziumInline covers mapping details on small unwrapped events.
func TestDebeziumInline(t *testing.T) {
	d := newDebezium(t)
	const src = `"source":{"table":"leads","ts_ms":1795514400000}`
	for _, c := range []struct {
		name, in string
		want     want
	}{
		{"bare table, no log position, payload ts_ms unused",
			`{"op":"c","ts_ms":1,"after":{"id":7,"email":"a@example.com","score":"12"},` + src + `}`,
			want{ID: "dbz:leads:ts=1795514400000:7", Type: engine.TypeRecordCreated, Time: dbzTime, Object: "lead", Record: `{id:"7" email:"a@example.com" score:int(12)}`}},
		{"payload ts_ms when the source has none",
			`{"op":"c","ts_ms":1795514400000,"after":{"id":"L1"},"source":{"table":"leads"}}`,
			want{ID: "dbz:leads:ts=1795514400000:L1", Type: engine.TypeRecordCreated, Time: dbzTime, Object: "lead", Record: `{id:"L1"}`}},
		{"null columns clear fields; numbers become strings in string fields",
			`{"op":"c","after":{"id":"L1","email":null,"company":12345678901234567890,"owner_id":9007199254740993},` + src + `}`,
			want{ID: "dbz:leads:ts=1795514400000:L1", Type: engine.TypeRecordCreated, Time: dbzTime, Object: "lead", Record: `{id:"L1" owner_id:"9007199254740993" company:"12345678901234567890"}`}},
		{"an update with nothing changed has an empty before",
			`{"op":"u","before":{"id":"L1","score":1},"after":{"id":"L1","score":1},` + src + `}`,
			want{ID: "dbz:leads:ts=1795514400000:L1", Type: engine.TypeRecordUpdated, Time: dbzTime, Object: "lead", Record: `{id:"L1" score:int(1)}`, Before: `{}`}},
		{"a column set to null is a change",
			`{"op":"u","before":{"id":"L1","email":"a@example.com","score":1},"after":{"id":"L1","email":null,"score":1},` + src + `}`,
			want{ID: "dbz:leads:ts=1795514400000:L1", Type: engine.TypeRecordUpdated, Time: dbzTime, Object: "lead", Record: `{id:"L1" score:int(1)}`, Before: `{email:"a@example.com"}`}},
		{"a column set from null is a change (before clears it)",
			`{"op":"u","before":{"id":"L1","email":null},"after":{"id":"L1","email":"a@example.com"},` + src + `}`,
			want{ID: "dbz:leads:ts=1795514400000:L1", Type: engine.TypeRecordUpdated, Time: dbzTime, Object: "lead", Record: `{id:"L1" email:"a@example.com"}`, Before: `{}`}},
		{"a schema of an unexpected shape is ignored",
			`{"schema":{"fields":[{"field":5,"fields":"x"},{"field":"after","fields":[{"field":"created_at","name":7}]}]},"payload":{"op":"c","after":{"id":"L1","created_at":1795514400000},` + dsrc + `}}`,
			want{ID: "dbz:leads:ts=1795514400000:L1", Type: engine.TypeRecordCreated, Time: dbzTime, Object: "lead", Record: `{id:"L1" created_at:2026-11-24T10:00:00Z}`}},
		{"wrapped without a schema",
			`{"schema":null,"payload":{"op":"c","after":{"id":"L1"},` + dsrc + `}}`,
			want{ID: "dbz:leads:ts=1795514400000:L1", Type: engine.TypeRecordCreated, Time: dbzTime, Object: "lead", Record: `{id:"L1"}`}},
		{"unknown payload keys are ignored",
			`{"op":"c","after":{"id":"L1"},"transaction":{"id":"571","total_order":1},"future":[1,2],` + src + `}`,
			want{ID: "dbz:leads:ts=1795514400000:L1", Type: engine.TypeRecordCreated, Time: dbzTime, Object: "lead", Record: `{id:"L1"}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := d.Decode(nil, []byte(c.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			checkEvent(t, ev, c.want)
		})
	}
}

// TestDebeziumNullBeforeClears checks that a before field set from null
// is recorded as cleared, so that laying before over the record removes
// the field, as docs/events.md defines the prior state.
func TestDebeziumNullBeforeClears(t *testing.T) {
	ev, err := newDebezium(t).Decode(nil, []byte(`{"op":"u","before":{"id":"L1","email":null},"after":{"id":"L1","email":"a@example.com"},"source":{"table":"leads","ts_ms":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if prior := ev.Record.Merge(ev.Before); prior.String("email") != "" || prior.ID() != "L1" {
		t.Errorf("prior state %s, want the email cleared", show(prior))
	}
}

func TestDebeziumConversions(t *testing.T) {
	s := customSchema(t)
	opp, _ := s.Object("opportunity")
	field := func(name string) *crm.Field {
		f, ok := opp.Field(name)
		if !ok {
			t.Fatalf("no field %s", name)
		}
		return f
	}
	for _, c := range []struct {
		name  string
		v     any
		field string
		ct    colType
		unit  string
		want  any
		err   string
	}{
		{"ms", json.Number("1795514400000"), "close_date", colType{}, "ms", "2026-11-24T10:00:00Z", ""},
		{"us", json.Number("1795514400000001"), "close_date", colType{}, "us", "2026-11-24T10:00:00.000001Z", ""},
		{"ns", json.Number("1795514400000000001"), "close_date", colType{}, "ns", "2026-11-24T10:00:00.000000001Z", ""},
		{"days", json.Number("20818"), "close_date", colType{}, "days", "2026-12-31T00:00:00Z", ""},
		{"negative days", json.Number("-719162"), "close_date", colType{}, "days", "0001-01-01T00:00:00Z", ""},
		{"schema name wins over unit", json.Number("20818"), "close_date", colType{name: ltDbzDate}, "us", "2026-12-31T00:00:00Z", ""},
		{"connect timestamp", json.Number("1795514400000"), "close_date", colType{name: ltTimestamp}, "days", "2026-11-24T10:00:00Z", ""},
		{"micro timestamp", json.Number("1795514400000000"), "close_date", colType{name: ltDbzMicroTS}, "ms", "2026-11-24T10:00:00Z", ""},
		{"nano timestamp", json.Number("1795514400000000000"), "close_date", colType{name: ltDbzNanoTS}, "ms", "2026-11-24T10:00:00Z", ""},
		{"zoned timestamp string", "2026-11-24T10:00:00+01:00", "close_date", colType{name: "io.debezium.time.ZonedTimestamp"}, "ms", "2026-11-24T10:00:00+01:00", ""},
		{"fractional epoch", json.Number("1.5"), "close_date", colType{}, "ms", nil, "want an integer epoch time"},
		{"days out of range", json.Number("99999999"), "close_date", colType{}, "days", nil, "epoch day out of range"},
		{"decimal", "AX14QA==", "amount", colType{name: ltDecimal, scale: 2}, "ms", json.Number("250000.00"), ""},
		{"negative decimal", "z8c=", "amount", colType{name: ltDecimal, scale: 3}, "ms", json.Number("-12.345"), ""},
		{"small decimal", "AQ==", "amount", colType{name: ltDecimal, scale: 4}, "ms", json.Number("0.0001"), ""},
		{"negative scale", "AQ==", "amount", colType{name: ltDecimal, scale: -3}, "ms", json.Number("1000"), ""},
		{"zero scale into int", "AQ==", "seats", colType{name: ltDecimal}, "ms", json.Number("1"), ""},
		{"bad base64", "!!", "amount", colType{name: ltDecimal, scale: 2}, "ms", nil, "want a base64 Connect decimal"},
		{"variable scale decimal", map[string]any{"scale": json.Number("2"), "value": "AX14QA=="}, "amount", colType{name: ltDbzVarDecimal}, "ms", json.Number("250000.00"), ""},
		{"numeric string", "250000.00", "amount", colType{}, "ms", json.Number("250000.00"), ""},
		{"non-numeric string is left to NewRecord", "Infinity", "amount", colType{}, "ms", "Infinity", ""},
		{"number into string", json.Number("42"), "name", colType{}, "ms", "42", ""},
		{"1 into bool", json.Number("1"), "is_priority", colType{}, "ms", true, ""},
		{"0 into bool", json.Number("0"), "is_priority", colType{}, "ms", false, ""},
		{"2 into bool is left to NewRecord", json.Number("2"), "is_priority", colType{}, "ms", json.Number("2"), ""},
		{"null", nil, "amount", colType{}, "ms", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := convert(c.v, field(c.field), c.ct, c.unit)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestDebeziumEventID(t *testing.T) {
	for _, c := range []struct {
		name string
		src  string
		want string
	}{
		{"postgres", `{"lsn":24023128,"txId":555,"ts_ms":1}`, "dbz:t:lsn=24023128:R"},
		{"mysql", `{"file":"mysql-bin.000003","pos":154,"row":2,"server_id":1,"ts_ms":1}`, "dbz:t:file=mysql-bin.000003,pos=154,row=2:R"},
		{"sql server", `{"change_lsn":"00000027:00000758:0003","commit_lsn":"00000027:00000758:0005","event_serial_no":1}`, "dbz:t:commit_lsn=00000027:00000758:0005,change_lsn=00000027:00000758:0003,event_serial_no=1:R"},
		{"oracle", `{"scn":"2122184","commit_scn":"2122185","rs_id":"0x0000a1.000000b2.0010","ssn":0}`, "dbz:t:scn=2122184,commit_scn=2122185,rs_id=0x0000a1.000000b2.0010,ssn=0:R"},
		{"no position", `{"ts_ms":1795514400000}`, "dbz:t:ts=1795514400000:R"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var src map[string]any
			dec := json.NewDecoder(strings.NewReader(c.src))
			dec.UseNumber()
			if err := dec.Decode(&src); err != nil {
				t.Fatal(err)
			}
			if got := eventID("t", src, nil, "R"); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
	long := eventID("t", map[string]any{}, map[string]any{"ts_ms": json.Number("1")}, strings.Repeat("r", 300))
	if !strings.HasPrefix(long, "dbz:sha256:") || len(long) != len("dbz:sha256:")+64 {
		t.Errorf("long id %s", long)
	}
	if again := eventID("t", map[string]any{}, map[string]any{"ts_ms": json.Number("1")}, strings.Repeat("r", 300)); again != long {
		t.Errorf("long id not deterministic")
	}
}

type dbzBadCase struct {
	name    string
	key     string
	in      string // "<nil>" for a Kafka null value
	reason  string
	msg     string
	secrets []string
}

func (c dbzBadCase) value() []byte {
	if c.in == "<nil>" {
		return nil
	}
	return []byte(c.in)
}

const dsrc = `"source":{"table":"leads","ts_ms":1795514400000}`

func debeziumBadCases() []dbzBadCase {
	return []dbzBadCase{
		{"tombstone", `{"id":42}`, "<nil>", ReasonEmpty, "tombstone", nil},
		{"null payload", "", `{"schema":null,"payload":null}`, ReasonEmpty, "payload is null", nil},
		{"string payload", "", `{"schema":{},"payload":"SECRET"}`, ReasonInvalidField, "payload: want object, got string", nil},
		{"too large", "", `{"op":"c","x":"` + strings.Repeat("x", 1<<20) + `"}`, ReasonTooLarge, "over the limit", nil},
		{"truncated", "", `{"op":"c","after":{"id":"SECRET"`, ReasonInvalidJSON, "truncated", nil},
		{"invalid UTF-8", "", `{"op":"c","after":{"id":"SECRET` + "\xff" + `"}}`, ReasonInvalidUTF8, "not valid UTF-8", nil},
		{"duplicate column", "", `{"op":"c","after":{"id":"SECRET","email":"SECRET1","email":"SECRET2"},` + dsrc + `}`, ReasonDuplicateKey, "key after.email appears twice", nil},
		{"too deep", "", `{"op":"c","after":{"id":"SECRET","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `},` + dsrc + `}`, ReasonTooDeep, "at after.x[]", nil},
		{"no op", "", `{"after":{"id":"SECRET"},` + dsrc + `}`, ReasonMissingField, "op is missing", nil},
		{"truncate op", "", `{"op":"t",` + dsrc + `}`, ReasonUnknownType, "op: not one of c, r, u, d", nil},
		{"message op", "", `{"op":"m","message":{"prefix":"SECRET"},` + dsrc + `}`, ReasonUnknownType, "op: not one of", nil},
		{"no source", "", `{"op":"c","after":{"id":"SECRET"}}`, ReasonMissingField, "source is missing", nil},
		{"no table", "", `{"op":"c","after":{"id":"SECRET"},"source":{"db":"SECRET"}}`, ReasonMissingField, "source.table is missing", nil},
		{"unknown table", "", `{"op":"c","after":{"id":"SECRET"},"source":{"table":"SECRET_table","db":"SECRET_db","ts_ms":1}}`, ReasonUnknownTable, "no table mapping", nil},
		{"table of another schema", "", `{"op":"c","after":{"id":"SECRET"},"source":{"table":"opportunities","schema":"SECRET","ts_ms":1}}`, ReasonUnknownTable, "no table mapping", nil},
		{"no time", "", `{"op":"c","after":{"id":"SECRET"},"source":{"table":"leads"}}`, ReasonMissingField, "source.ts_ms and ts_ms are missing", nil},
		{"string time", "", `{"op":"c","after":{"id":"SECRET"},"source":{"table":"leads","ts_ms":"SECRET"}}`, ReasonInvalidField, "source.ts_ms: want number, got string", nil},
		{"fractional time", "", `{"op":"c","after":{"id":"SECRET"},"source":{"table":"leads","ts_ms":1.5}}`, ReasonInvalidField, "source.ts_ms: want an integer epoch time", []string{"1.5"}},
		{"create without after", "", `{"op":"c","after":null,` + dsrc + `}`, ReasonMissingField, "after is missing", nil},
		{"update without after", "", `{"op":"u","before":{"id":"SECRET"},` + dsrc + `}`, ReasonMissingField, "after is missing", nil},
		{"string after", "", `{"op":"c","after":"SECRET",` + dsrc + `}`, ReasonInvalidField, "after: want object, got string", nil},
		{"delete without before or key", "", `{"op":"d","before":null,` + dsrc + `}`, ReasonMissingField, "before is missing, and the message key holds no id", nil},
		{"delete with a useless key", `{"SECRET":1}`, `{"op":"d",` + dsrc + `}`, ReasonMissingField, "before is missing", nil},
		{"no id column", "", `{"op":"c","after":{"email":"SECRET"},` + dsrc + `}`, ReasonMissingField, "after.id is missing", nil},
		{"empty id", "", `{"op":"c","after":{"id":""},` + dsrc + `}`, ReasonMissingField, "after.id is empty", nil},
		{"bool id", "", `{"op":"c","after":{"id":true},` + dsrc + `}`, ReasonInvalidField, "after.id: want string, got bool", nil},
		{"no workspace column", "", `{"op":"c","after":{"account_id":"SECRET"},"source":{"db":"crm","table":"accounts","ts_ms":1}}`, ReasonMissingField, "after.tenant is missing", nil},
		{"bad workspace column", "", `{"op":"c","after":{"account_id":"SECRET","tenant":"SECRET tenant"},"source":{"db":"crm","table":"accounts","ts_ms":1}}`, ReasonInvalidField, "after.tenant: want 1 to 128 of", nil},
		{"wrong column type", "", `{"op":"c","after":{"id":"SECRET","score":"SECRET"},` + dsrc + `}`, ReasonInvalidField, "after.score: want int, got string", nil},
		{"1e400", "", `{"op":"c","after":{"id":"SECRET","score":1e400},` + dsrc + `}`, ReasonInvalidField, "after.score: want int", []string{"1e400"}},
		{"bad epoch", "", `{"op":"c","after":{"id":"SECRET","created_at":1.5},` + dsrc + `}`, ReasonInvalidField, "after.created_at (field created_at): want an integer epoch time", []string{"1.5"}},
		{"bad timestamp string", "", `{"op":"c","after":{"id":"SECRET","created_at":"SECRET-time"},` + dsrc + `}`, ReasonInvalidField, "after.created_at: want an RFC 3339 timestamp", nil},
		{"bad decimal", "", `{"schema":{"fields":[{"field":"after","fields":[{"field":"amount_usd","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}]}]},"payload":{"op":"c","after":{"id":1,"amount_usd":"SECRET!"},"source":{"schema":"public","table":"opportunities","ts_ms":1}}}`, ReasonInvalidField, "after.amount_usd (field amount): want a base64 Connect decimal", nil},
		{"case-variant op", "", `{"op":"c","OP":"d","after":{"id":"SECRET"},` + dsrc + `}`, ReasonDuplicateKey, `envelope key "op"`, nil},
		{"case variant of payload", "", `{"schema":{},"Payload":{"op":"c","after":{"id":"SECRET"},` + dsrc + `}}`, ReasonDuplicateKey, `envelope key "payload"`, nil},
		{"bad before field", "", `{"op":"u","before":{"id":"SECRET","score":"SECRET"},"after":{"id":"SECRET","score":1},` + dsrc + `}`, ReasonInvalidField, "before.score: want int, got string", nil},
	}
}

func TestDebeziumDecodeBad(t *testing.T) {
	d := newDebezium(t)
	for _, c := range debeziumBadCases() {
		t.Run(c.name, func(t *testing.T) {
			ev, err := d.Decode([]byte(c.key), c.value())
			if err == nil {
				t.Fatalf("decoded %+v, want reason %s", ev, c.reason)
			}
			checkReject(t, err, c.reason, c.msg, c.secrets...)
		})
	}
}

func TestDebeziumOptions(t *testing.T) {
	s := crm.DefaultSchema()
	for _, c := range []struct {
		name string
		opts DebeziumOptions
		err  string
	}{
		{"no schema", DebeziumOptions{Tables: map[string]TableMapping{"t": {Object: "lead"}}}, "Schema is required"},
		{"no tables", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}}, "Tables is empty"},
		{"unknown object", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}, Tables: map[string]TableMapping{"t": {Object: "deal"}}}, `table t: object "deal" is not one of`},
		{"unknown field", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}, Tables: map[string]TableMapping{"t": {Object: "lead", Columns: map[string]string{"c": "nope"}}}}, `column c: lead has no field "nope"`},
		{"id in columns", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}, Tables: map[string]TableMapping{"t": {Object: "lead", Columns: map[string]string{"lead_id": "id"}}}}, "the id comes from IDColumn"},
		{"two columns, one field", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}, Tables: map[string]TableMapping{"t": {Object: "lead", Columns: map[string]string{"a": "email", "b": "email"}}}}, "column b: field email is the target of another column"},
		{"both workspaces", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}, Tables: map[string]TableMapping{"t": {Object: "lead", Workspace: "a", WorkspaceColumn: "b"}}}, "not both"},
		{"bad workspace", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}, Tables: map[string]TableMapping{"t": {Object: "lead", Workspace: "a b"}}}, `workspace "a b"`},
		{"bad time unit", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}, Tables: map[string]TableMapping{"t": {Object: "lead", TimeUnit: "s"}}}, `TimeUnit "s" is not one of ms, us, ns, days`},
		{"every table's errors", DebeziumOptions{DecoderOptions: DecoderOptions{Schema: s}, Tables: map[string]TableMapping{"a": {Object: "x"}, "b": {Object: "y"}}}, "table a: object \"x\" is not one of account, opportunity, lead, contact\ningest: table b:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewDebeziumDecoder(c.opts)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

// TestDebeziumRedelivery: the same change decodes to the same event id,
// whatever the processing time; different changes of a row differ.
func TestDebeziumRedelivery(t *testing.T) {
	d := newDebezium(t)
	a, err := d.Decode(nil, []byte(`{"op":"u","after":{"id":"L1","score":2},"ts_ms":1000,"source":{"table":"leads","ts_ms":1,"lsn":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Decode(nil, []byte(`{"op":"u","after":{"id":"L1","score":2},"ts_ms":2000,"source":{"table":"leads","ts_ms":1,"lsn":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Decode(nil, []byte(`{"op":"u","after":{"id":"L1","score":3},"ts_ms":2000,"source":{"table":"leads","ts_ms":1,"lsn":11}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.ID == c.ID {
		t.Errorf("ids %s %s %s", a.ID, b.ID, c.ID)
	}
	if !a.Time.Equal(time.UnixMilli(1)) {
		t.Errorf("time %v, want source.ts_ms", a.Time)
	}
}

func FuzzDebeziumDecode(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "debezium"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add([]byte(`{"id":42}`), readFixture(f, e.Name()))
	}
	for _, c := range debeziumBadCases() {
		if len(c.in) < 4096 {
			f.Add([]byte(c.key), c.value())
		}
	}
	for _, s := range schemaCases {
		f.Add([]byte(`{"id":42}`), []byte(`{"schema":`+s+`,"payload":{"op":"c","after":{"id":"L1","created_at":1795514400000},"source":{"table":"leads","ts_ms":1}}}`))
	}
	d := newDebezium(f)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		dbzSameAsReference(t, d, key, value)
		ev, err := d.Decode(key, value)
		if err != nil {
			if Reason(err) == ReasonInternal {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		if !strings.HasPrefix(ev.ID, "dbz:") || len(ev.ID) > MaxEventIDBytes {
			t.Fatalf("event id %q", ev.ID)
		}
		switch ev.Type {
		case engine.TypeRecordCreated, engine.TypeRecordUpdated, engine.TypeRecordDeleted:
		default:
			t.Fatalf("type %q", ev.Type)
		}
		if ev.Record == nil || ev.RecordID() == "" || ev.Object == "" {
			t.Fatalf("event without object or record id")
		}
		if ev.Before != nil && ev.Type != engine.TypeRecordUpdated {
			t.Fatalf("before on a %s", ev.Type)
		}
	})
}

func BenchmarkDebeziumDecode(b *testing.B) {
	for _, file := range []string{"pg_update.json", "pg_update_wrapped.json"} {
		b.Run(file, func(b *testing.B) {
			data := readFixture(b, file)
			d := newDebezium(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := d.Decode(nil, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
