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

// benchActivation resolves names as the engine's activation does: a
// switch over fields, no map.
type benchActivation struct {
	record, before, account, opportunity, event, changed, now ref.Val
}

func (a *benchActivation) ResolveName(name string) (any, bool) {
	var v ref.Val
	switch name {
	case VarRecord:
		v = a.record
	case VarBefore:
		v = a.before
	case VarChanged:
		v = a.changed
	case VarAccount:
		v = a.account
	case VarOpportunity:
		v = a.opportunity
	case VarEvent:
		v = a.event
	case VarNow:
		v = a.now
	}
	return v, v != nil
}

func (a *benchActivation) Parent() interpreter.Activation { return nil }

// BenchmarkEval evaluates the bench workload's typical conditions with
// the fast evaluator (Eval) and with cel-go (EvalCEL), on records for
// which the condition is true (every clause is evaluated).
func BenchmarkEval(b *testing.B) {
	c, err := NewCompiler(CompilerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s := c.Schema()
	rec := func(obj, js string) *crm.Record {
		o, _ := s.Object(obj)
		return jsonRecord(b, o, js)
	}
	tests := []struct {
		name, object, cond string
		record, before     *crm.Record
	}{
		{"owner-stage-amount", crm.ObjOpportunity, `record.owner_id == "u-12" && record.stage == "Closed Won" && record.amount > 200000`,
			rec(crm.ObjOpportunity, `{"id":"006-1","owner_id":"u-12","stage":"Closed Won","amount":250000,"account_id":"acc-1"}`), nil},
		{"source-country-score", crm.ObjLead, `record.source == "web" && record.country == "C7" && record.score >= 70`,
			rec(crm.ObjLead, `{"id":"00Q-1","source":"web","country":"C7","score":80}`), nil},
		{"changed-before", crm.ObjOpportunity, `"stage" in changed && before.stage != "Closed Lost"`,
			rec(crm.ObjOpportunity, `{"id":"006-1","stage":"Closed Won"}`), rec(crm.ObjOpportunity, `{"id":"006-1","stage":"Negotiation"}`)},
		{"startsWith", crm.ObjContact, `record.title.startsWith("VP")`,
			rec(crm.ObjContact, `{"id":"003-1","title":"VP Sales"}`), nil},
		{"industry-region-tier-in", crm.ObjAccount, `record.industry == "Industry3" && record.region == "R4" && record.tier in ["SMB", "Enterprise"] && record.employee_count > 1000`,
			rec(crm.ObjAccount, `{"id":"001-1","industry":"Industry3","region":"R4","tier":"Enterprise","employee_count":4000}`), nil},
	}
	for _, tt := range tests {
		key := envKey(TriggerRecord, tt.object)
		p, _, iss := c.compile(key, tt.cond, func(*types.Type) string { return "" })
		if iss != nil {
			b.Fatal(iss[0].msg)
		}
		if !p.Fast() {
			b.Fatalf("%s is not fast", tt.cond)
		}
		before := tt.before
		if before == nil {
			before = tt.record.Object().Empty()
		}
		act := &benchActivation{record: tt.record, before: before,
			changed:     types.NewStringList(types.DefaultTypeAdapter, before.Changed(tt.record)),
			account:     stdObject(s, crm.ObjAccount).Empty(),
			opportunity: stdObject(s, crm.ObjOpportunity).Empty(), event: s.Event.Empty(),
			now: types.Timestamp{Time: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}}
		ctx := context.Background()
		for _, mode := range []struct {
			name string
			eval func(context.Context, interpreter.Activation) (ref.Val, error)
		}{{"fast", p.Eval}, {"cel-go", p.EvalCEL}} {
			b.Run(tt.name+"/"+mode.name, func(b *testing.B) {
				if v, err := mode.eval(ctx, act); err != nil || v != types.True {
					b.Fatalf("%s = %v, %v; want true", tt.cond, v, err)
				}
				b.ReportAllocs()
				for b.Loop() {
					mode.eval(ctx, act)
				}
			})
		}
	}
}

// BenchmarkPredicateHolds tests an index predicate, as the engine does
// per candidate.
func BenchmarkPredicateHolds(b *testing.B) {
	c, err := NewCompiler(CompilerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	opp, _ := c.Schema().Object(crm.ObjOpportunity)
	r := jsonRecord(b, opp, `{"stage":"Closed Won","amount":250000}`)
	for _, cond := range []string{`record.stage == "Closed Won"`, `record.stage in ["Negotiation", "Closed Won"]`, `record.amount == 250000`} {
		p, a, iss := c.compile(envKey(TriggerRecord, crm.ObjOpportunity), cond, func(*types.Type) string { return "" })
		if iss != nil {
			b.Fatal(iss[0].msg)
		}
		pr := &analyze(p, a, c.Schema(), crm.ObjOpportunity).Index[0]
		b.Run(cond, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !pr.Holds(r) {
					b.Fatal("does not hold")
				}
			}
		})
	}
}

func jsonRecord(tb testing.TB, o *crm.Object, js string) *crm.Record {
	tb.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(js))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		tb.Fatal(err)
	}
	r, err := o.NewRecord(m, crm.Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
