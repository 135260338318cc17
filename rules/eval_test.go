package rules

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"github.com/whenthen/whenthen/crm"
)

func mustRecord(t *testing.T, o *crm.Object, js string) *crm.Record {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(js))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	r, err := o.NewRecord(m, crm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func loadOne(t *testing.T, c *Compiler, yaml string) *Automation {
	t.Helper()
	set, err := c.Compile([]Source{{Name: "t.yaml", Data: []byte(yaml)}})
	if err != nil {
		t.Fatal(err)
	}
	return set.Automations[0]
}

func oppAutomation(cond string) string {
	return "automations:\n  - id: a\n    when: {record: opportunity}\n    if: '" + strings.ReplaceAll(cond, "'", "''") + "'\n    fire: every_time\n    then: {brief: {}}\n"
}

// TestEvalSemantics checks the typed-record behaviour rule authors rely on:
// zero values for absent fields, has(), int/double comparison, timestamps.
func TestEvalSemantics(t *testing.T) {
	c := testCompiler(t)
	opp, _ := c.Schema().Object(crm.ObjOpportunity)
	rec := mustRecord(t, opp, `{"id":"o1","stage":"Closed Won","amount":250000,"seats":12,
		"close_date":"2026-11-01T00:00:00Z","competitors":["acme","globex"],"notes_meta":{"a":{"b":[1,2.5,"x"]}}}`)
	empty := opp.Empty()
	tests := []struct {
		cond string
		rec  *crm.Record
		want bool
	}{
		{`record.stage == "Closed Won"`, rec, true},
		{`record.amount > 200000`, rec, true},
		{`record.amount == 250000.0`, rec, true},
		{`record.amount == 250000`, rec, true},
		{`250000 == record.amount && record.amount != 1`, rec, true},
		{`record.amount in [10, 250000]`, rec, true},
		{`record.probability == 0`, rec, true},
		{`record.seats > 10.5`, rec, true},
		{`record.seats == 12`, rec, true},
		{`has(record.stage)`, rec, true},
		{`has(record.probability)`, rec, false},
		{`record.probability == 0.0`, rec, true},
		{`record.stage == ""`, empty, true},
		{`record.competitors.size() == 0`, empty, true},
		{`"acme" in record.competitors`, rec, true},
		{`record.close_date < timestamp("2026-12-01T00:00:00Z")`, rec, true},
		{`now - record.close_date > duration("24h")`, rec, true},
		{`record.notes_meta.a.b[1] == 2.5`, rec, true},
		{`has(record.notes_meta.a)`, rec, true},
		{`record.stage.lowerAscii() == "closed won"`, rec, true},
		{`event.type == "record.updated" && account.tier == ""`, rec, true},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			a := loadOne(t, c, oppAutomation(tt.cond))
			act, _ := interpreter.NewActivation(map[string]any{
				VarRecord: tt.rec, VarBefore: opp.Empty(), VarChanged: types.NewStringList(types.DefaultTypeAdapter, nil),
				VarAccount: stdObject(c.Schema(), crm.ObjAccount).Empty(), VarOpportunity: tt.rec,
				VarEvent: mustRecord(t, c.Schema().Event, `{"id":"e","type":"record.updated"}`),
				VarNow:   types.Timestamp{Time: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)},
			})
			v, err := a.If.Eval(context.Background(), act)
			if err != nil {
				t.Fatal(err)
			}
			if v != types.Bool(tt.want) {
				t.Fatalf("got %v, want %v", v, tt.want)
			}
		})
	}
}

// TestEvalErrors: runtime failures are errors, never a silent false.
func TestEvalErrors(t *testing.T) {
	c := testCompiler(t)
	opp, _ := c.Schema().Object(crm.ObjOpportunity)
	rec := mustRecord(t, opp, `{"id":"o1","seats":0,"notes_meta":{}}`)
	for _, cond := range []string{
		`100 / record.seats > 1`,
		`record.seats - 9223372036854775807 - 2 > 0`,
		`record.notes_meta.missing == 1`,
	} {
		t.Run(cond, func(t *testing.T) {
			a := loadOne(t, c, oppAutomation(cond))
			act, _ := interpreter.NewActivation(map[string]any{VarRecord: rec})
			if v, err := a.If.Eval(context.Background(), act); err == nil {
				t.Fatalf("want an error, got %v", v)
			}
		})
	}
}

// TestRuntimeCostLimit: an expression under the estimate's budget that
// still runs long is stopped by the runtime limit.
func TestRuntimeCostLimit(t *testing.T) {
	c, err := NewCompiler(CompilerOptions{Schema: testCompiler(t).Schema(), CostLimit: 2000})
	if err != nil {
		t.Fatal(err)
	}
	opp, _ := c.Schema().Object(crm.ObjOpportunity)
	// Estimated worst case is over 2000 when competitors may hold 1000
	// elements, so load with a small list limit and evaluate a big list.
	c.limits.MaxListLen, c.limits.MaxStringBytes = 10, 100
	a := loadOne(t, c, oppAutomation(`record.competitors.exists(x, x.contains("zzz"))`))
	big := make([]any, 1000)
	for i := range big {
		big[i] = strings.Repeat("a", 50)
	}
	rec, err := opp.NewRecord(map[string]any{"competitors": big}, crm.Limits{MaxListLen: 1000})
	if err != nil {
		t.Fatal(err)
	}
	act, _ := interpreter.NewActivation(map[string]any{VarRecord: rec})
	_, err = a.If.Eval(context.Background(), act)
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("want a cost limit error, got %v", err)
	}
}

func TestIndexFacts(t *testing.T) {
	c := testCompiler(t)
	tests := []struct {
		cond     string
		fields   []string
		keys     [][]string
		restTrue bool
	}{
		{`record.stage == "Closed Won"`, []string{"stage"}, [][]string{{"sClosed Won"}}, true},
		{`"Closed Won" == record.stage && record.amount > 5`, []string{"stage"}, [][]string{{"sClosed Won"}}, false},
		{`record.stage in ["A", "B"] && record.seats == 3 && record.amount == 2.5`, []string{"stage", "seats", "amount"}, [][]string{{"sA", "sB"}, {"n3"}, {"f2.5"}}, true},
		{`record.amount == 100.0`, []string{"amount"}, [][]string{{"n100"}}, true},
		{`record.stage == "A" || record.stage == "B"`, nil, nil, false},
		{`record.competitors == ["x"]`, nil, nil, false},
		{`record.stage in record.competitors`, nil, nil, false},
		{`before.stage == "A"`, nil, nil, false},
		{`!(record.stage == "A")`, nil, nil, false},
		{`[1].exists(record, record == 1) && record.stage == "A"`, []string{"stage"}, [][]string{{"sA"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			a := loadOne(t, c, oppAutomation(tt.cond))
			var fields []string
			var keys [][]string
			for _, p := range a.If.Index {
				fields = append(fields, p.Field.Name)
				keys = append(keys, p.Keys)
			}
			if strings.Join(fields, ",") != strings.Join(tt.fields, ",") || !sameKeys(keys, tt.keys) {
				t.Fatalf("index: got %v %v, want %v %v", fields, keys, tt.fields, tt.keys)
			}
			if a.If.RestTrue != tt.restTrue {
				t.Fatalf("RestTrue: got %v, want %v", a.If.RestTrue, tt.restTrue)
			}
		})
	}
}

func sameKeys(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "|") != strings.Join(b[i], "|") {
			return false
		}
	}
	return true
}

func TestIndexKeyMatchesCELEquality(t *testing.T) {
	vals := []ref.Val{types.Int(3), types.Double(3), types.Uint(3), types.Double(3.5), types.String("3"),
		types.Bool(true), types.Int(-1 << 62), types.Double(-(1 << 62)), types.Double(1e300), types.String("")}
	for _, a := range vals {
		for _, b := range vals {
			ka, oka := IndexKey(a)
			kb, okb := IndexKey(b)
			if !oka || !okb {
				t.Fatalf("IndexKey(%v) or IndexKey(%v) not indexable", a, b)
			}
			if (ka == kb) != (a.Equal(b) == types.True) {
				t.Errorf("%v (%T) vs %v (%T): keys equal %v, CEL equal %v", a, a, b, b, ka == kb, a.Equal(b))
			}
		}
	}
}

func TestIdenticalExpressionsShareProgram(t *testing.T) {
	c := testCompiler(t)
	src := func(ids ...string) []Source {
		var b strings.Builder
		b.WriteString("automations:\n")
		for _, id := range ids {
			b.WriteString("  - id: " + id + "\n    when: {record: opportunity}\n    if: record.amount > 5\n    then: {brief: {}}\n")
		}
		return []Source{{Name: "x.yaml", Data: []byte(b.String())}}
	}
	set, err := c.Compile(src("a", "b", "c"))
	if err != nil {
		t.Fatal(err)
	}
	if set.Automations[0].If != set.Automations[1].If || set.Automations[1].If != set.Automations[2].If {
		t.Fatal("identical conditions compiled twice")
	}
	if got := set.Summary().Programs; got != 1 {
		t.Fatalf("programs: got %d, want 1", got)
	}
	// A reload reuses the program.
	set2, err := c.Compile(src("d"))
	if err != nil {
		t.Fatal(err)
	}
	if set2.Automations[0].If != set.Automations[0].If {
		t.Fatal("reload did not reuse the compiled program")
	}
}

func TestDuplicateIDsAcrossFiles(t *testing.T) {
	c := testCompiler(t)
	a := "automations:\n  - id: same\n    when: {record: lead}\n    then: {flow: {id: f}}\n"
	_, err := c.Compile([]Source{{Name: "one.yaml", Data: []byte(a)}, {Name: "two.yaml", Data: []byte(a)}})
	want := `two.yaml:2:9: automation same: id "same" is already used at one.yaml:2:5`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestErrorPositionsInQuotedAndFoldedExpressions(t *testing.T) {
	c := testCompiler(t)
	tests := []struct{ name, ifLine, want string }{
		{"plain", `    if: record.stage == "x" && record.nope`, "t.yaml:4:38"},
		{"double-quoted", `    if: "record.stage == 'x' && record.nope"`, "t.yaml:4:39"},
		{"single-quoted", `    if: 'record.stage == "x" && record.nope'`, "t.yaml:4:39"},
		{"folded", "    if: >\n      record.stage == \"x\"\n      && record.nope", "t.yaml:6:16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := "automations:\n  - id: a\n    when: {record: opportunity}\n" + tt.ifLine + "\n    then: {brief: {}}\n"
			_, err := c.Compile([]Source{{Name: "t.yaml", Data: []byte(y)}})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want+":") {
				t.Fatalf("got %v, want position %s", err, tt.want)
			}
		})
	}
}

func TestDateDue(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	d := &DateTrigger{Offset: -720 * time.Hour, HasAt: true, AtHour: 9, Location: ny}
	renewal := time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)
	got := d.Due(renewal)
	want := time.Date(2026, 12, 15, 9, 0, 0, 0, ny) // 30 days earlier is Dec 16 00:00 UTC = Dec 15 19:00 in New York
	if !got.Equal(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	plain := (&DateTrigger{Offset: time.Hour, Location: time.UTC}).Due(renewal)
	if !plain.Equal(renewal.Add(time.Hour)) {
		t.Fatalf("got %v", plain)
	}
}

func TestSchemaErrors(t *testing.T) {
	_, err := crm.ParseSchema("s.yaml", []byte("objects:\n  deal:\n    fields: {x: int}\n  account:\n    fields:\n      tier: string\n      Bad: int\n      score: float\n"))
	want := strings.Join([]string{
		`s.yaml:2:3: unknown object "deal" (want one of account, opportunity, lead, contact)`,
		`s.yaml:7:7: invalid field name "Bad" (want [a-z_][a-z0-9_]*)`,
		`s.yaml:8:14: field account.score: unknown type "float" (want string, int, double, bool, timestamp, list(string) or map(string, dyn))`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	_, err = crm.ParseSchema("s.yaml", []byte("objects:\n  account:\n    fields:\n      in: string\n"))
	if err == nil || err.Error() != `s.yaml:4:7: field name "in" is a keyword or reserved word of CEL` {
		t.Fatalf("got %v", err)
	}
	_, err = crm.ParseSchema("s.yaml", []byte("objects:\n  account:\n    fields:\n      tier: string\n"))
	if err == nil || err.Error() != `s.yaml:4:7: field account.tier is a standard field` {
		t.Fatalf("got %v", err)
	}
}

func TestRecordValues(t *testing.T) {
	s := crm.DefaultSchema()
	acc, _ := s.Object(crm.ObjAccount)
	tests := []struct {
		name, js, wantErr string
	}{
		{"big int exact", `{"employee_count": 9007199254740993}`, ""},
		{"int with fraction", `{"employee_count": 1.5}`, "account.employee_count: want int, got a number with a fraction or out of the int64 range"},
		{"double overflow", `{"annual_revenue": 1e400}`, "account.annual_revenue: number is out of the double range"},
		{"wrong type", `{"tier": 5}`, "account.tier: want string, got number"},
		{"bad time", `{"renewal_date": "soon"}`, `account.renewal_date: want an RFC 3339 timestamp or a YYYY-MM-DD date`},
		{"date only", `{"renewal_date": "2027-01-15"}`, ""},
		{"year 1 and 9999", `{"created_at": "0001-01-01T00:00:00Z", "updated_at": "9999-12-31T23:59:59Z"}`, ""},
		{"null clears", `{"tier": null}`, ""},
		{"unknown dropped", `{"colour": "red"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			d := json.NewDecoder(strings.NewReader(tt.js))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			r, err := acc.NewRecord(m, crm.Limits{})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "big int exact" {
				f, _ := acc.Field("employee_count")
				if r.FieldValue(f) != types.Int(9007199254740993) {
					t.Fatalf("got %v", r.FieldValue(f))
				}
			}
		})
	}
	// Merge: cleared fields go, set fields overlay.
	base := mustRecord(t, acc, `{"id":"a","tier":"Gold","region":"EU"}`)
	patch := mustRecord(t, acc, `{"id":"a","tier":null,"region":"US","industry":"x"}`)
	m := base.Merge(patch)
	if m.String("tier") != "" || m.String("region") != "US" || m.String("industry") != "x" || m.ID() != "a" {
		t.Fatalf("merge: got tier=%q region=%q industry=%q", m.String("tier"), m.String("region"), m.String("industry"))
	}
	if got := strings.Join(base.Changed(m), ","); got != "tier,industry,region" {
		t.Fatalf("changed: got %s", got)
	}
}

func TestRecordJSONRoundTrip(t *testing.T) {
	c := testCompiler(t)
	opp, _ := c.Schema().Object(crm.ObjOpportunity)
	in := mustRecord(t, opp, `{"id":"o\"1","stage":"Closed Won","amount":250000.5,"seats":9007199254740993,
		"close_date":"2026-11-01T10:00:00.123Z","competitors":["a","b"],"notes_meta":{"k":[1,"x",{"y":true}]}}`)
	data, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	out, err := opp.DecodeRecord(data, crm.Limits{})
	if err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	if in.Equal(out) != types.True {
		t.Fatalf("round trip differs: %s", data)
	}
	if len(in.Changed(out)) != 0 {
		t.Fatalf("changed after round trip: %v", in.Changed(out))
	}
}
