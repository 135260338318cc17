package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"github.com/whenthen/whenthen/crm"
)

// diffSchema has custom fields of every kind a schema file can declare.
const diffSchema = `objects:
  opportunity:
    fields:
      seats: int
      discount: double
      strategic: bool
      signed_at: timestamp
      competitors: list(string)
      notes_meta: map(string, dyn)
  lead:
    fields:
      tags: list(string)
      vip: bool
`

func diffCompiler(t testing.TB, opts CompilerOptions) *Compiler {
	t.Helper()
	s, err := crm.ParseSchema("diff.yaml", []byte(diffSchema))
	if err != nil {
		t.Fatal(err)
	}
	opts.Schema = s
	c, err := NewCompiler(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Value pools: expressions and records draw from the same ones, so that
// comparisons meet equal values, boundaries and extremes.
var (
	poolStrings = []string{"", "a", "A", "ab", "b", "web", "VP", "VP Sales", "Closed Won", "Closed Lost",
		"ü", "u\u0308", "日本", "😀", "a😀b", "\u00e9t\u00e9", "x y", "stage", "amount", "name", "tags"}
	poolInts = []string{"0", "1", "-1", "42", "70", "255", "256", "200000", "-200000", "9007199254740992",
		"9007199254740993", "9223372036854775807", "-9223372036854775808", "4611686018427387904"}
	poolUints   = []string{"0u", "1u", "42u", "9223372036854775807u", "9223372036854775808u", "18446744073709551615u"}
	poolDoubles = []string{"0.0", "-0.0", "0.5", "1.0", "2.5", "-1.5", "42.0", "200000.0", "1e300", "-1e300",
		"9007199254740992.0", "9.223372036854775807e18", "-9.223372036854775808e18", "1.8446744073709552e19", "1e-300"}
	poolTimes = []string{"2026-11-01T00:00:00Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59Z", "2026-11-01T00:00:00.000000001Z", "2026-10-31T19:00:00-05:00"}
)

// genEnv is the CEL environment an expression is generated for.
type genEnv struct {
	key     string
	vars    map[string]*crm.Object // record-typed variables
	changed bool
}

func diffEnvs(s *crm.Schema) []genEnv {
	base := func() map[string]*crm.Object {
		return map[string]*crm.Object{VarAccount: stdObject(s, crm.ObjAccount), VarOpportunity: stdObject(s, crm.ObjOpportunity), VarEvent: s.Event}
	}
	var out []genEnv
	for _, name := range crm.CRMObjects {
		v := base()
		v[VarRecord], v[VarBefore] = stdObject(s, name), stdObject(s, name)
		out = append(out, genEnv{key: envKey(TriggerRecord, name), vars: v, changed: true})
	}
	v := base()
	v[VarRecord] = stdObject(s, crm.ObjOpportunity)
	out = append(out, genEnv{key: envKey(TriggerDate, crm.ObjOpportunity), vars: v})
	v = base()
	v[VarTracker] = s.Tracker
	out = append(out, genEnv{key: envKey(TriggerTracker, ""), vars: v})
	return out
}

// exprGen generates CEL expressions, mostly well typed, mostly inside the
// fast subset, some outside it.
type exprGen struct {
	r   *rand.Rand
	env genEnv
}

func (g *exprGen) pick(xs []string) string { return xs[g.r.Intn(len(xs))] }

// field returns `var.field` for a field of one of the kinds, or "".
func (g *exprGen) field(kinds ...crm.Kind) string {
	var opts []string
	for v, o := range g.env.vars {
		for _, f := range o.Fields {
			for _, k := range kinds {
				if f.Kind == k {
					opts = append(opts, v+"."+f.Name)
				}
			}
		}
	}
	if len(opts) == 0 {
		return ""
	}
	// Map iteration order is random: sort for a seeded generator.
	sortStrings(opts)
	return g.pick(opts)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func (g *exprGen) strLit() string { return strconv.Quote(g.pick(poolStrings)) }

func (g *exprGen) str(d int) string {
	switch n := g.r.Intn(10); {
	case n < 5:
		if f := g.field(crm.KindString); f != "" {
			return f
		}
		return g.strLit()
	case n < 8:
		return g.strLit()
	case n < 9 && d > 0:
		return fmt.Sprintf("(%s ? %s : %s)", g.boolean(d-1), g.str(d-1), g.str(d-1))
	default:
		if g.r.Intn(2) == 0 && d > 0 {
			return g.str(d-1) + ".lowerAscii()" // outside the subset
		}
		return g.strLit()
	}
}

func (g *exprGen) number(d int) string {
	switch n := g.r.Intn(14); {
	case n < 3:
		if f := g.field(crm.KindInt); f != "" {
			return f
		}
		return g.pick(poolInts)
	case n < 6:
		if f := g.field(crm.KindDouble); f != "" {
			return f
		}
		return g.pick(poolDoubles)
	case n < 8:
		return g.pick(poolInts)
	case n < 9:
		return g.pick(poolUints)
	case n < 11:
		return g.pick(poolDoubles)
	case n < 12:
		if f := g.field(crm.KindStringList, crm.KindObjectList); f != "" && g.r.Intn(2) == 0 {
			return "size(" + f + ")"
		}
		return g.str(d) + ".size()"
	case n < 13 && d > 0:
		return fmt.Sprintf("(%s ? %s : %s)", g.boolean(d-1), g.number(d-1), g.number(d-1))
	default:
		if d > 0 {
			return fmt.Sprintf("(%s + %s)", g.number(d-1), g.number(d-1)) // outside the subset
		}
		return g.pick(poolInts)
	}
}

func (g *exprGen) timestamp(d int) string {
	switch n := g.r.Intn(6); {
	case n < 3:
		if f := g.field(crm.KindTimestamp); f != "" {
			return f
		}
		return VarNow
	case n < 4:
		return VarNow
	case n < 5:
		return fmt.Sprintf("timestamp(%q)", g.pick(poolTimes))
	default:
		if d > 0 {
			return fmt.Sprintf("(%s ? %s : %s)", g.boolean(d-1), g.timestamp(d-1), g.timestamp(d-1))
		}
		return VarNow
	}
}

func (g *exprGen) op(ops ...string) string { return ops[g.r.Intn(len(ops))] }

var allOps = []string{"==", "!=", "<", "<=", ">", ">="}

func (g *exprGen) boolean(d int) string {
	n := g.r.Intn(22)
	if d <= 0 && n >= 14 {
		n = g.r.Intn(14)
	}
	switch n {
	case 0, 1, 2:
		return fmt.Sprintf("%s %s %s", g.number(d), g.op(allOps...), g.number(d))
	case 3, 4:
		return fmt.Sprintf("%s %s %s", g.str(d), g.op(allOps...), g.str(d))
	case 5:
		return fmt.Sprintf("%s %s %s", g.timestamp(d), g.op(allOps...), g.timestamp(d))
	case 6:
		if f := g.field(crm.KindBool); f != "" {
			return f
		}
		return g.op("true", "false")
	case 7:
		if f := g.field(crm.KindString, crm.KindInt, crm.KindDouble, crm.KindBool, crm.KindTimestamp, crm.KindStringList, crm.KindDynMap, crm.KindObjectList); f != "" {
			return "has(" + f + ")"
		}
		return "true"
	case 8, 9:
		var elems []string
		var lhs string
		switch g.r.Intn(4) {
		case 0, 1:
			lhs = g.str(d)
			for i := g.r.Intn(4); i >= 0; i-- {
				elems = append(elems, g.strLit())
			}
		case 2:
			lhs = g.number(d)
			for i := g.r.Intn(4); i >= 0; i-- {
				elems = append(elems, g.pick([][]string{poolInts, poolDoubles, poolUints}[g.r.Intn(3)]))
			}
		default:
			lhs = g.boolean(d - 1)
			elems = append(elems, g.op("true", "false"))
		}
		if g.r.Intn(8) == 0 {
			elems = append(elems, g.strLit(), g.pick(poolInts)) // a list(dyn)
		}
		if g.r.Intn(12) == 0 {
			elems = nil
		}
		return fmt.Sprintf("%s in [%s]", lhs, strings.Join(elems, ", "))
	case 10:
		lst := g.field(crm.KindStringList)
		if g.env.changed && (lst == "" || g.r.Intn(2) == 0) {
			lst = VarChanged
		}
		if lst == "" {
			return g.op("true", "false")
		}
		return fmt.Sprintf("%s in %s", g.str(d), lst)
	case 11, 12:
		return fmt.Sprintf("%s.%s(%s)", g.str(d), g.op("startsWith", "endsWith", "contains"), g.str(d))
	case 13:
		return fmt.Sprintf("%s %s %s", g.boolean(d-1), g.op("==", "!=", "<", ">="), g.boolean(d-1))
	case 14, 15:
		return fmt.Sprintf("(%s %s %s)", g.boolean(d-1), g.op("&&", "||"), g.boolean(d-1))
	case 16:
		return fmt.Sprintf("%s && %s && %s", g.boolean(d-1), g.boolean(d-1), g.boolean(d-1))
	case 17:
		return "!" + "(" + g.boolean(d-1) + ")"
	case 18:
		return fmt.Sprintf("(%s ? %s : %s)", g.boolean(d-1), g.boolean(d-1), g.boolean(d-1))
	case 19:
		return g.op("null == null", "null != null", "true", "false")
	default: // outside the subset; some fail at run time
		switch g.r.Intn(6) {
		case 0:
			return fmt.Sprintf("%s.matches(%q)", g.str(d), "^[a-z]+$")
		case 1:
			if f := g.field(crm.KindStringList); f != "" {
				return fmt.Sprintf("%s.exists(x, x == %s)", f, g.str(d-1))
			}
			return "[1, 2].exists(x, x > 1)"
		case 2:
			if f := g.field(crm.KindDynMap); f != "" {
				return fmt.Sprintf("%s.k == %s", f, g.pick(poolInts))
			}
			return "true"
		case 3:
			if f := g.field(crm.KindInt); f != "" {
				return fmt.Sprintf("100 / %s > 1", f)
			}
			return "false"
		case 4:
			return fmt.Sprintf("int(%s) == 1", g.number(d-1))
		default:
			return fmt.Sprintf("%s - duration(\"24h\") < %s", g.timestamp(d-1), g.timestamp(d-1))
		}
	}
}

// recGen generates records and activations.
type recGen struct {
	r   *rand.Rand
	lim crm.Limits // the limits records are built with; can exceed the compiler's
}

func (g *recGen) value(f *crm.Field) (any, bool) {
	switch g.r.Intn(10) {
	case 0:
		return nil, false // absent
	case 1:
		return nil, true // cleared
	}
	switch f.Kind {
	case crm.KindString:
		switch g.r.Intn(12) {
		case 0:
			return strings.Repeat("ab", 10+g.r.Intn(40)), true
		case 1:
			return "\xff\xfeVP", true // invalid UTF-8
		case 2:
			return "", true
		}
		return poolStrings[g.r.Intn(len(poolStrings))], true
	case crm.KindInt:
		if g.r.Intn(4) == 0 {
			return json.Number(strconv.Itoa(g.r.Intn(300) - 100)), true
		}
		return json.Number(poolInts[g.r.Intn(len(poolInts))]), true
	case crm.KindDouble:
		switch g.r.Intn(12) {
		case 0:
			return json.Number("NaN"), true
		case 1:
			return json.Number([]string{"Inf", "-Inf"}[g.r.Intn(2)]), true
		case 2:
			return json.Number(poolInts[g.r.Intn(len(poolInts))]), true
		case 3:
			return json.Number(strconv.FormatFloat(g.r.NormFloat64()*1e5, 'g', -1, 64)), true
		}
		d := strings.TrimSuffix(poolDoubles[g.r.Intn(len(poolDoubles))], "u")
		return json.Number(d), true
	case crm.KindBool:
		return g.r.Intn(2) == 0, true
	case crm.KindTimestamp:
		if g.r.Intn(3) == 0 {
			return time.Unix(g.r.Int63n(4e9), 0).UTC().Format(time.RFC3339), true
		}
		return poolTimes[g.r.Intn(len(poolTimes))], true
	case crm.KindStringList:
		n := g.r.Intn(5)
		if g.r.Intn(10) == 0 {
			n = 20
		}
		l := make([]any, n)
		for i := range l {
			l[i] = poolStrings[g.r.Intn(len(poolStrings))]
		}
		return l, true
	case crm.KindDynMap:
		if g.r.Intn(2) == 0 {
			return map[string]any{"k": json.Number(poolInts[g.r.Intn(len(poolInts))])}, true
		}
		return map[string]any{}, true
	case crm.KindObjectList:
		l := make([]any, g.r.Intn(4))
		for i := range l {
			l[i] = map[string]any{"contact_id": "c", "role": poolStrings[g.r.Intn(len(poolStrings))]}
		}
		return l, true
	}
	return nil, false
}

func (g *recGen) record(t testing.TB, o *crm.Object) *crm.Record {
	m := map[string]any{}
	for _, f := range o.Fields {
		if v, ok := g.value(f); ok {
			m[f.Name] = v
		}
	}
	r, err := o.NewRecord(m, g.lim)
	if err != nil {
		t.Fatalf("record %s: %v", o.Name, err)
	}
	return r
}

// activation binds every variable of env, with now and then a variable
// missing, of another object, or of a native Go type (which cel-go
// converts and the fast evaluator hands to cel-go).
func (g *recGen) activation(t testing.TB, s *crm.Schema, env genEnv) interpreter.Activation {
	vars := map[string]any{}
	names := make([]string, 0, len(env.vars))
	for name := range env.vars {
		names = append(names, name)
	}
	sortStrings(names) // map order is random: sort for a seeded generator
	for _, name := range names {
		vars[name] = g.record(t, env.vars[name])
	}
	if rec, ok := vars[VarRecord].(*crm.Record); ok && g.r.Intn(3) == 0 {
		// A before image sharing most values, so that changed is short.
		vars[VarBefore] = rec
		if b, ok := vars[VarBefore].(*crm.Record); ok && env.vars[VarBefore] != nil {
			vars[VarBefore] = b.Merge(g.record(t, b.Object()))
		}
	}
	if env.changed {
		rec, before := vars[VarRecord].(*crm.Record), vars[VarBefore].(*crm.Record)
		vars[VarChanged] = types.NewStringList(types.DefaultTypeAdapter, rec.Changed(before))
	}
	vars[VarNow] = types.Timestamp{Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	switch g.r.Intn(40) {
	case 0:
		names = names[:0]
		for n := range vars {
			names = append(names, n)
		}
		sortStrings(names)
		delete(vars, names[g.r.Intn(len(names))])
	case 1:
		vars[VarRecord] = stdObject(s, crm.ObjLead).Empty()
	case 2:
		vars[VarNow] = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	case 3:
		if env.changed {
			vars[VarChanged] = []string{"stage", "amount"}
		}
	}
	act, err := interpreter.NewActivation(vars)
	if err != nil {
		t.Fatal(err)
	}
	return act
}

// diffStats counts what a differential run saw.
type diffStats struct {
	exprs, compiled, fast   int
	evals, fastAnswered     int
	fastFalse, fastTrue     int
	errors, costErrors      int
	mismatches              int
	examples                []string
	fastExprs, slowExamples []string
}

func sameVal(a, b ref.Val) bool {
	return a.Type() == b.Type() && a.Equal(b) == types.True
}

// compare evaluates p on act three ways — its fast evaluator alone, Eval
// and EvalCEL — and records any difference.
func (st *diffStats) compare(p *Program, act interpreter.Activation) {
	ctx := context.Background()
	st.evals++
	cv, cerr := p.EvalCEL(ctx, act)
	ev, eerr := p.Eval(ctx, act)
	bad := ""
	switch {
	case (cerr == nil) != (eerr == nil):
		bad = fmt.Sprintf("Eval %v, %v; cel-go %v, %v", ev, eerr, cv, cerr)
	case cerr != nil:
		st.errors++
		if strings.Contains(cerr.Error(), "cost limit") {
			st.costErrors++
		}
		if cerr.Error() != eerr.Error() {
			bad = fmt.Sprintf("Eval error %q; cel-go error %q", eerr, cerr)
		}
	case !sameVal(ev, cv):
		bad = fmt.Sprintf("Eval %v; cel-go %v", ev, cv)
	}
	if p.fast != nil {
		if fv, ok := p.fast(act); ok {
			st.fastAnswered++
			if fv == types.True {
				st.fastTrue++
			} else if fv == types.False {
				st.fastFalse++
			}
			if cerr != nil || !sameVal(fv, cv) {
				bad = fmt.Sprintf("fast %v; cel-go %v, %v", fv, cv, cerr)
			}
		}
	}
	if bad != "" {
		st.mismatches++
		if len(st.examples) < 10 {
			st.examples = append(st.examples, fmt.Sprintf("%s: %s", p.Expr, bad))
		}
	}
}

// runDifferential generates nExpr expressions and evaluates each that
// compiles on nAct activations.
func runDifferential(t testing.TB, c *Compiler, seed int64, nExpr, nAct int, lim crm.Limits) *diffStats {
	r := rand.New(rand.NewSource(seed))
	envs := diffEnvs(c.schema)
	rg := &recGen{r: r, lim: lim}
	st := &diffStats{}
	boolCheck := func(out *types.Type) string {
		if out.Kind() != types.BoolKind {
			return "not bool"
		}
		return ""
	}
	strCheck := func(out *types.Type) string {
		if out.Kind() != types.StringKind {
			return "not string"
		}
		return ""
	}
	for i := 0; i < nExpr; i++ {
		env := envs[r.Intn(len(envs))]
		g := &exprGen{r: r, env: env}
		depth := 1 + r.Intn(3)
		expr, check := g.boolean(depth), boolCheck
		if r.Intn(10) == 0 {
			expr, check = g.str(depth), strCheck
		}
		st.exprs++
		p, _, iss := c.compile(env.key, expr, check)
		if iss != nil {
			continue
		}
		st.compiled++
		if p.Fast() {
			st.fast++
			if len(st.fastExprs) < 5 {
				st.fastExprs = append(st.fastExprs, expr)
			}
		} else if len(st.slowExamples) < 5 {
			st.slowExamples = append(st.slowExamples, expr)
		}
		for j := 0; j < nAct; j++ {
			st.compare(p, rg.activation(t, c.schema, env))
		}
	}
	return st
}

func (st *diffStats) String() string {
	return fmt.Sprintf("%d expressions, %d compiled, %d fast (%.0f%%); %d evaluations, %d answered by the fast evaluator (%d true, %d false), %d errors (%d over the cost limit), %d mismatches",
		st.exprs, st.compiled, st.fast, 100*float64(st.fast)/float64(max(st.compiled, 1)), st.evals, st.fastAnswered,
		st.fastTrue, st.fastFalse, st.errors, st.costErrors, st.mismatches)
}

// TestFastDifferential evaluates generated expressions on generated
// activations with the fast evaluator and with cel-go: the results must be
// the same value, or errors with the same message.
func TestFastDifferential(t *testing.T) {
	tests := []struct {
		name  string
		opts  CompilerOptions
		lim   crm.Limits // of the generated records
		seed  int64
		exprs int
	}{
		{"default limits", CompilerOptions{}, crm.Limits{}, 1, 3000},
		// Records over the limits the cost estimates assume, and a small
		// cost limit: the fast evaluator must hand them to cel-go, which
		// charges their cost.
		{"values over the limits", CompilerOptions{Limits: crm.Limits{MaxStringBytes: 24, MaxListLen: 3}, CostLimit: 40},
			crm.Limits{MaxStringBytes: 1 << 20, MaxListLen: 100}, 2, 1500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := diffCompiler(t, tt.opts)
			st := runDifferential(t, c, tt.seed, tt.exprs, 12, tt.lim)
			t.Log(st)
			for _, e := range st.examples {
				t.Error(e)
			}
			if st.compiled < tt.exprs/2 {
				t.Errorf("only %d of %d generated expressions compile", st.compiled, tt.exprs)
			}
			if st.fast < st.compiled/3 {
				t.Errorf("only %d of %d compiled expressions are fast; examples of slow ones: %q", st.fast, st.compiled, st.slowExamples)
			}
			if st.fastAnswered < st.evals/4 || st.fastTrue < st.fastAnswered/10 || st.fastFalse < st.fastAnswered/10 {
				t.Errorf("the fast evaluator answered %d of %d evaluations (%d true, %d false): the test is too weak", st.fastAnswered, st.evals, st.fastTrue, st.fastFalse)
			}
			if st.errors == 0 {
				t.Error("no evaluation errors: the error paths are not exercised")
			}
			if tt.opts.CostLimit != 0 && st.costErrors == 0 {
				t.Error("no cost limit errors: values over the limits are not exercised")
			}
		})
	}
}

// TestFastDifferentialCatchesAWrongEvaluator builds < as <= in the fast
// evaluator: the differential comparison must notice.
func TestFastDifferentialCatchesAWrongEvaluator(t *testing.T) {
	c := diffCompiler(t, CompilerOptions{})
	c.testFlipLess = true
	st := runDifferential(t, c, 1, 1000, 12, crm.Limits{})
	t.Log(st)
	if st.mismatches == 0 {
		t.Fatal("a fast evaluator with < built as <= went unnoticed")
	}
	t.Logf("caught, e.g. %s", st.examples[0])
}

// TestFastSubset tells which expressions take the fast path, and checks
// their values on a fixed record.
func TestFastSubset(t *testing.T) {
	c := diffCompiler(t, CompilerOptions{})
	opp := stdObject(c.schema, crm.ObjOpportunity)
	rec := mustRecord(t, opp, `{"id":"o1","owner_id":"u-12","stage":"Closed Won","amount":250000,"probability":0.5,
		"seats":12,"discount":-0.0,"strategic":true,"close_date":"2026-11-01T00:00:00Z","competitors":["acme","globex"],
		"name":"Acme 😀 renewal","notes_meta":{"k":1}}`)
	before := mustRecord(t, opp, `{"id":"o1","stage":"Negotiation","amount":250000}`)
	nan, err := opp.NewRecord(map[string]any{"id": "o2", "amount": json.Number("NaN"), "discount": json.Number("NaN")}, crm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	act := func(r *crm.Record) interpreter.Activation {
		a, _ := interpreter.NewActivation(map[string]any{
			VarRecord: r, VarBefore: before, VarChanged: types.NewStringList(types.DefaultTypeAdapter, r.Changed(before)),
			VarAccount: stdObject(c.schema, crm.ObjAccount).Empty(), VarOpportunity: r, VarEvent: c.schema.Event.Empty(),
			VarNow: types.Timestamp{Time: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)},
		})
		return a
	}
	tests := []struct {
		expr string
		fast bool
		want ref.Val // on rec
	}{
		{`record.owner_id == "u-12" && record.stage == "Closed Won" && record.amount > 200000`, true, types.True},
		{`"stage" in changed && before.stage != "Closed Lost"`, true, types.True},
		{`"amount" in changed`, true, types.False},
		{`record.amount == 250000`, true, types.True},
		{`record.amount in [10, 250000]`, true, types.True},
		{`record.seats > 11.5 && record.seats < 12u`, true, types.False},
		{`record.seats >= 12u && 12.0 <= record.seats`, true, types.True},
		{`record.probability == 0.5 && record.discount == 0.0`, true, types.True},
		{`has(record.stage) && !has(record.type)`, true, types.True},
		{`record.name.startsWith("Acme") && record.name.endsWith("renewal") && record.name.contains("😀")`, true, types.True},
		{`size(record.name) == 14 && record.name.size() == 14`, true, types.True},
		{`size(record.competitors) == 2 && "acme" in record.competitors`, true, types.True},
		{`record.close_date < now && record.close_date == timestamp("2026-11-01T00:00:00Z")`, true, types.True},
		{`(record.strategic ? record.seats : 0) > 10`, true, types.True},
		{`record.stage in ["Closed Won", "Closed Lost"] || record.amount < 0.0`, true, types.True},
		{`record.stage < "D" && record.stage >= "Closed"`, true, types.True},
		{`record.seats in [12.0, "x"]`, true, types.True},
		{`record.stage in []`, true, types.False},
		{`null == null`, true, types.True},
		{`true < record.strategic || false >= record.strategic`, true, types.False},
		{`record.notes_meta.k == 1`, false, types.True},
		{`record.competitors.exists(x, x == "acme")`, false, types.True},
		{`record.stage.lowerAscii() == "closed won"`, false, types.True},
		{`record.seats + 1 == 13`, false, types.True},
		{`now - record.close_date > duration("24h")`, false, types.True},
		{`record.stage.matches("^Closed")`, false, types.True},
		{`record.competitors == ["acme", "globex"]`, false, types.True},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			p, _, iss := c.compile(envKey(TriggerRecord, crm.ObjOpportunity), tt.expr, func(*types.Type) string { return "" })
			if iss != nil {
				t.Fatal(iss[0].msg)
			}
			if p.Fast() != tt.fast {
				t.Errorf("Fast() = %v, want %v", p.Fast(), tt.fast)
			}
			v, err := p.Eval(context.Background(), act(rec))
			if err != nil || v != tt.want {
				t.Errorf("Eval = %v, %v; want %v", v, err, tt.want)
			}
			if p.Fast() {
				if fv, ok := p.fast(act(rec)); !ok || fv != tt.want {
					t.Errorf("fast = %v, %v; want %v", fv, ok, tt.want)
				}
			}
			cv, cerr := p.EvalCEL(context.Background(), act(rec))
			if cerr != nil || cv != tt.want {
				t.Errorf("EvalCEL = %v, %v; want %v", cv, cerr, tt.want)
			}
			// NaN: relations are false, == false, != true; the same in both.
			nv, nerr := p.Eval(context.Background(), act(nan))
			cv, cerr = p.EvalCEL(context.Background(), act(nan))
			if (nerr == nil) != (cerr == nil) || (nerr == nil && nv != cv) {
				t.Errorf("NaN record: Eval %v, %v; EvalCEL %v, %v", nv, nerr, cv, cerr)
			}
		})
	}
}

// TestFastFallback: what the fast evaluator does not expect goes to
// cel-go, errors included.
func TestFastFallback(t *testing.T) {
	c := diffCompiler(t, CompilerOptions{})
	p, _, iss := c.compile(envKey(TriggerRecord, crm.ObjOpportunity), `record.stage == "x" || before.stage == "y"`, func(*types.Type) string { return "" })
	if iss != nil || !p.Fast() {
		t.Fatalf("want a fast program, got %v", iss)
	}
	opp := stdObject(c.schema, crm.ObjOpportunity)
	lead := stdObject(c.schema, crm.ObjLead)
	x := mustRecord(t, opp, `{"stage":"x"}`)
	tests := []struct {
		name    string
		vars    map[string]any
		fastOK  bool
		want    ref.Val
		wantErr string
	}{
		{"both bound", map[string]any{VarRecord: opp.Empty(), VarBefore: opp.Empty()}, true, types.False, ""},
		{"before missing, record decides", map[string]any{VarRecord: x}, true, types.True, ""},
		{"before missing", map[string]any{VarRecord: opp.Empty()}, false, nil, "no such attribute"},
		{"record missing, before decides", map[string]any{VarBefore: mustRecord(t, opp, `{"stage":"y"}`)}, false, types.True, ""},
		{"record of another object", map[string]any{VarRecord: lead.Empty(), VarBefore: opp.Empty()}, false, types.False, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			act, _ := interpreter.NewActivation(tt.vars)
			_, ok := p.fast(act)
			if ok != tt.fastOK {
				t.Errorf("fast ok = %v, want %v", ok, tt.fastOK)
			}
			v, err := p.Eval(context.Background(), act)
			cv, cerr := p.EvalCEL(context.Background(), act)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || cerr == nil || cerr.Error() != err.Error() {
					t.Fatalf("Eval %v, %v; EvalCEL %v, %v; want error %q", v, err, cv, cerr, tt.wantErr)
				}
				return
			}
			if err != nil || v != tt.want || cerr != nil || cv != tt.want {
				t.Fatalf("Eval %v, %v; EvalCEL %v, %v; want %v", v, err, cv, cerr, tt.want)
			}
		})
	}
}

// TestFastNumbersExhaustive compares every pair of the number pools, as
// an int or double field against a literal of each kind, with every
// relation, and in lists: the boundaries of CEL's cross-type ordering and
// equality are too narrow for random sampling to meet reliably.
func TestFastNumbersExhaustive(t *testing.T) {
	c := diffCompiler(t, CompilerOptions{})
	opp := stdObject(c.schema, crm.ObjOpportunity)
	var lits []string
	lits = append(append(append(lits, poolInts...), poolUints...), poolDoubles...)
	var exprs []string
	for _, l := range lits {
		for _, op := range allOps {
			exprs = append(exprs, "record.seats "+op+" "+l, l+" "+op+" record.seats",
				"record.discount "+op+" "+l, l+" "+op+" record.discount")
		}
		exprs = append(exprs, "record.seats in ["+l+"]", "record.discount in ["+l+"]",
			"record.seats in ["+l+`, "x"]`, "record.discount in ["+l+`, "x"]`)
	}
	for _, op := range allOps {
		exprs = append(exprs, "record.seats "+op+" record.discount")
	}
	var recs []*crm.Record
	for _, i := range poolInts {
		for _, d := range append(append(append([]string{}, poolDoubles...), poolInts...), "NaN", "Inf", "-Inf") {
			r, err := opp.NewRecord(map[string]any{"seats": json.Number(i), "discount": json.Number(d)}, crm.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	st := &diffStats{exprs: len(exprs)}
	for _, e := range exprs {
		p, _, iss := c.compile(envKey(TriggerDate, crm.ObjOpportunity), e, func(*types.Type) string { return "" })
		if iss != nil {
			continue // == across int and double does not type-check
		}
		st.compiled++
		if p.Fast() {
			st.fast++
		}
		for _, r := range recs {
			act, _ := interpreter.NewActivation(map[string]any{VarRecord: r})
			st.compare(p, act)
		}
	}
	t.Log(st)
	for _, e := range st.examples {
		t.Error(e)
	}
	if st.fast != st.compiled || st.fastAnswered != st.evals {
		t.Errorf("%d of %d expressions fast, %d of %d evaluations answered by the fast evaluator: want all", st.fast, st.compiled, st.fastAnswered, st.evals)
	}
}

// TestPredicateHolds: an index predicate holds exactly when cel-go finds
// its clause true, and testing it does not allocate.
func TestPredicateHolds(t *testing.T) {
	c := diffCompiler(t, CompilerOptions{})
	opp := stdObject(c.schema, crm.ObjOpportunity)
	var conds []string
	for _, s := range []string{`"Closed Won"`, `""`, `"ü"`} {
		conds = append(conds, "record.stage == "+s, s+" == record.stage", "record.stage in ["+s+`, "a", "b"]`)
	}
	for _, l := range append(append(append([]string{}, poolInts...), poolDoubles...), poolUints...) {
		conds = append(conds, "record.seats == "+l, "record.amount == "+l, "record.seats in ["+l+"]",
			"record.amount in ["+l+", 1]", "record.seats in ["+l+`, "x"]`, "record.amount in ["+l+`, "x"]`)
	}
	conds = append(conds, "record.strategic == true", "record.strategic in [false]")
	rg := &recGen{r: rand.New(rand.NewSource(3))}
	var recs []*crm.Record
	for i := 0; i < 200; i++ {
		recs = append(recs, rg.record(t, opp))
	}
	for _, i := range poolInts {
		for _, d := range poolDoubles {
			recs = append(recs, mustRecord(t, opp, `{"seats":`+i+`,"amount":`+d+`}`))
		}
	}
	key := envKey(TriggerRecord, crm.ObjOpportunity)
	var preds, holds int
	for _, cond := range conds {
		p, a, iss := c.compile(key, cond, func(*types.Type) string { return "" })
		if iss != nil {
			continue
		}
		ac := analyze(p, a, c.schema, crm.ObjOpportunity)
		if len(ac.Index) != 1 || !ac.RestTrue {
			continue
		}
		preds++
		pr := &ac.Index[0]
		for _, r := range recs {
			act, _ := interpreter.NewActivation(map[string]any{VarRecord: r})
			v, err := p.EvalCEL(context.Background(), act)
			if err != nil {
				t.Fatalf("%s: %v", cond, err)
			}
			if got := pr.Holds(r); got != (v == types.True) {
				t.Errorf("%s on %v: Holds %v, cel-go %v", cond, r.FieldValue(pr.Field), got, v)
			}
			if v == types.True {
				holds++
			}
		}
		r := recs[len(recs)-1]
		if n := testing.AllocsPerRun(100, func() { pr.Holds(r) }); n != 0 {
			t.Errorf("%s: Holds allocates %v times", cond, n)
		}
	}
	t.Logf("%d predicates on %d records, %d hold", preds, len(recs), holds)
	if preds < len(conds)/2 || holds == 0 {
		t.Fatalf("%d predicates of %d conditions, %d hold", preds, len(conds), holds)
	}
}

// TestLazyPlan: a fast program is planned by cel-go on first use only,
// once, from any number of goroutines; AST re-parses the expression.
func TestLazyPlan(t *testing.T) {
	c := diffCompiler(t, CompilerOptions{})
	key := envKey(TriggerRecord, crm.ObjOpportunity)
	p, _, iss := c.compile(key, `record.stage == "x" && record.amount > 5`, func(*types.Type) string { return "" })
	if iss != nil || !p.Fast() {
		t.Fatalf("want a fast program, got %v", iss)
	}
	slow, _, iss := c.compile(key, `record.stage.lowerAscii() == "x"`, func(*types.Type) string { return "" })
	if iss != nil || slow.Fast() {
		t.Fatalf("want a cel-go program, got %v", iss)
	}
	if p.prg != nil || slow.prg == nil {
		t.Fatalf("planned at load: fast %v, cel-go %v; want false, true", p.prg != nil, slow.prg != nil)
	}
	opp := stdObject(c.schema, crm.ObjOpportunity)
	act, _ := interpreter.NewActivation(map[string]any{VarRecord: mustRecord(t, opp, `{"stage":"x","amount":6}`)})
	done := make(chan ref.Val)
	for i := 0; i < 8; i++ {
		go func() {
			v, err := p.EvalCEL(context.Background(), act)
			if err != nil {
				v = types.WrapErr(err)
			}
			done <- v
		}()
	}
	for i := 0; i < 8; i++ {
		if v := <-done; v != types.True {
			t.Errorf("EvalCEL = %v, want true", v)
		}
	}
	if p.prg == nil {
		t.Fatal("EvalCEL did not plan the program")
	}
	a := p.AST()
	if a == nil || a.GetType(a.Expr().ID()) != types.BoolType {
		t.Fatalf("AST() = %v", a)
	}
}
