package rules

import (
	"context"
	"encoding/json"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
	"github.com/whenthen/whenthen/crm"
)

// fuzzTemplates are expressions with placeholders for the fuzzed values:
// $S a string literal, $I an int, $U a uint, $D a double.
var fuzzTemplates = []string{
	`record.stage == $S`,
	`record.stage != $S && record.name < $S`,
	`record.name.startsWith($S) || record.name.endsWith($S) || record.name.contains($S)`,
	`size(record.name) > $I`,
	`record.seats > $I && record.seats <= $D`,
	`record.seats < $U || record.seats >= $D`,
	`record.amount > $I && record.amount != $D`,
	`record.amount < $U`,
	`record.amount == $D`,
	`record.seats == $I`,
	`record.amount in [$D, $I, $U]`,
	`record.seats in [$I, $D, $S]`,
	`$S in record.competitors && $S in changed`,
	`record.stage in [$S, "Closed Won"]`,
	`(record.strategic ? record.seats : $I) >= $D`,
	`has(record.stage) && !(record.discount < $D)`,
	`record.close_date < now && record.signed_at == timestamp("2026-11-01T00:00:00Z")`,
	`before.stage != $S && "stage" in changed`,
	`record.stage.matches($S)`,
}

func fuzzDouble(d float64) string {
	switch {
	case math.IsNaN(d), math.IsInf(d, 0):
		return "1e308" // not a CEL literal; values carry them
	}
	s := strconv.FormatFloat(d, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// FuzzFastEval compares the fast evaluator with cel-go on expressions
// made from templates (or given whole, when tmpl is past the templates)
// and records made from the same values.
func FuzzFastEval(f *testing.F) {
	c := diffCompiler(f, CompilerOptions{})
	r := rand.New(rand.NewSource(7))
	env := diffEnvs(c.schema)[1] // opportunity record trigger
	for i := range fuzzTemplates {
		f.Add(uint8(i), "", poolStrings[r.Intn(len(poolStrings))], int64(r.Intn(300)-100), r.NormFloat64()*100, uint8(r.Intn(256)))
	}
	for _, v := range []struct {
		i int64
		d float64
	}{{math.MaxInt64, 9.223372036854775807e18}, {math.MinInt64, -9.223372036854775808e18}, {1 << 53, 1 << 53}, {0, math.NaN()}, {0, math.Inf(1)}, {-1, math.Copysign(0, -1)}} {
		f.Add(uint8(4), "", "", v.i, v.d, uint8(0))
		f.Add(uint8(10), "", "x", v.i, v.d, uint8(1))
	}
	for i := 0; i < 20; i++ {
		g := &exprGen{r: r, env: env}
		f.Add(uint8(255), g.boolean(2), poolStrings[r.Intn(len(poolStrings))], int64(r.Intn(100)), float64(r.Intn(100))/2, uint8(r.Intn(256)))
	}
	opp := stdObject(c.schema, crm.ObjOpportunity)
	key := envKey(TriggerRecord, crm.ObjOpportunity)
	f.Fuzz(func(t *testing.T, tmpl uint8, expr, s string, i int64, d float64, flags uint8) {
		if int(tmpl) < len(fuzzTemplates) {
			u := uint64(i)
			expr = strings.NewReplacer("$S", strconv.Quote(s), "$I", strconv.FormatInt(i, 10),
				"$U", strconv.FormatUint(u, 10)+"u", "$D", fuzzDouble(d)).Replace(fuzzTemplates[tmpl])
		}
		if len(expr) > 1000 || len(s) > 1000 {
			return
		}
		p, _, iss := c.compile(key, expr, func(*types.Type) string { return "" })
		if iss != nil {
			return
		}
		fields := map[string]any{}
		set := func(name string, v any, bit uint8) {
			if flags&bit == 0 {
				fields[name] = v
			}
		}
		dv := json.Number(strconv.FormatFloat(d, 'g', -1, 64))
		set("stage", s, 1)
		set("name", s+s, 2)
		set("seats", json.Number(strconv.FormatInt(i, 10)), 4)
		set("amount", dv, 8)
		set("discount", dv, 16)
		set("competitors", []any{s, "acme"}, 32)
		set("strategic", flags&64 != 0, 0)
		set("signed_at", "2026-11-01T00:00:00Z", 128)
		set("close_date", time.Unix(i%(1<<34), 0).UTC().Format(time.RFC3339), 0)
		rec, err := opp.NewRecord(fields, crm.Limits{})
		if err != nil {
			return
		}
		before := opp.Empty()
		if flags&1 != 0 {
			before = rec.Merge(mustRecord(t, opp, `{"stage":"Closed Lost"}`))
		}
		act, err := interpreter.NewActivation(map[string]any{
			VarRecord: rec, VarBefore: before, VarChanged: types.NewStringList(types.DefaultTypeAdapter, rec.Changed(before)),
			VarAccount: stdObject(c.schema, crm.ObjAccount).Empty(), VarOpportunity: rec, VarEvent: c.schema.Event.Empty(),
			VarNow: types.Timestamp{Time: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		cv, cerr := p.EvalCEL(ctx, act)
		ev, eerr := p.Eval(ctx, act)
		if (cerr == nil) != (eerr == nil) || (cerr != nil && cerr.Error() != eerr.Error()) || (cerr == nil && !sameVal(ev, cv)) {
			t.Fatalf("%s: Eval %v, %v; cel-go %v, %v", expr, ev, eerr, cv, cerr)
		}
		if p.fast != nil {
			if fv, ok := p.fast(act); ok && (cerr != nil || !sameVal(fv, cv)) {
				t.Fatalf("%s: fast %v; cel-go %v, %v", expr, fv, cv, cerr)
			}
		}
	})
}
