package rules

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/crm"
)

func TestShapeOf(t *testing.T) {
	for _, c := range []struct {
		expr, shape string
		toks        int
		ok          bool
	}{
		{`record.owner_id == "u-17" && record.amount > 50000`, `record.owner_id == "xxxx" && record.amount > 00000`, 2, true},
		{`record.tier in ['SMB', "Mid"] && record.p >= 0.5`, `record.tier in ['xxx', "xxx"] && record.p >= 0.0`, 3, true},
		{`record.n2 == 1u && record.x < 1e5`, `record.n2 == 0u && record.x < 0e0`, 2, true},
		{`record.name == "日本"`, `record.name == "xx"`, 1, true},
		{`"stage" in changed`, `"xxxxx" in changed`, 1, true},
		{`record.name == "a\"b"`, "", 0, false},
		{`record.name == r"a"`, "", 0, false},
		{`record.name == """a"""`, "", 0, false},
		{`record.amount > -5`, "", 0, false},
		{`record.amount > 0x10`, "", 0, false},
		{`record.amount > .5`, "", 0, false},
		{`record.close_date < timestamp("2026-01-01T00:00:00Z")`, "", 0, false},
		{"record.amount > 5 // big", "", 0, false},
		{`record.name == ""`, `record.name == ""`, 1, true},
	} {
		shape, toks, ok := shapeOf(c.expr)
		if ok != c.ok || (ok && (shape != c.shape || len(toks) != c.toks)) {
			t.Errorf("shapeOf(%s) = %q, %d tokens, %v; want %q, %d, %v", c.expr, shape, len(toks), ok, c.shape, c.toks, c.ok)
		}
	}
}

// variant rewrites each literal of expr with a random value of the same
// kind and length: the same shape.
func variant(r *rand.Rand, expr string, toks []litToken) string {
	rs := []rune(expr)
	letters := []rune("abcXYZ üé日😀-_ ")
	for _, tok := range toks {
		switch tok.kind {
		case 's':
			for i := tok.start + 1; i < tok.end-1; i++ {
				rs[i] = letters[r.Intn(len(letters))]
			}
		default:
			first := true
			for i := tok.start; i < tok.end; i++ {
				if rs[i] >= '0' && rs[i] <= '9' {
					d := rune('0' + r.Intn(10))
					if first && d == '0' && i+1 < tok.end && rs[i+1] >= '0' && rs[i+1] <= '9' {
						d = '1'
					}
					rs[i] = d
				}
				first = rs[i] == 'e' || rs[i] == 'E' || rs[i] == '+' || rs[i] == '-' || rs[i] == '.'
			}
		}
	}
	return string(rs)
}

// describe is what the compiler derives from a condition, for comparing
// one built from a template with one parsed in full.
func describe(e *cacheEntry) string {
	if e.err != nil {
		var msgs []string
		for _, is := range e.err {
			msgs = append(msgs, fmt.Sprintf("%d:%d %s", is.line, is.col, is.msg))
		}
		return "errors: " + strings.Join(msgs, "; ")
	}
	c := e.cond
	var preds []string
	for _, p := range c.Index {
		preds = append(preds, fmt.Sprintf("%s %v %v", p.Field.Name, p.Values, p.Keys))
	}
	return fmt.Sprintf("type %s cost %d fast %v before %v changed %v rest %v index %v clauses %v",
		c.Type, c.Cost, c.Fast(), c.ReadsBefore, c.ReadsChanged, c.RestTrue, preds, c.Clauses)
}

// TestShapeDifferential compiles generated conditions and same-shape
// variants of them with templates and in full: what the compiler derives
// and what the programs evaluate to must be identical.
func TestShapeDifferential(t *testing.T) {
	shaped := diffCompiler(t, CompilerOptions{})
	full := diffCompiler(t, CompilerOptions{})
	full.shapes.off = true
	r := rand.New(rand.NewSource(7))
	envs := diffEnvs(shaped.schema)
	rg := &recGen{r: r, lim: crm.DefaultLimits}
	st := &diffStats{}
	compared := 0
	for i := 0; i < 1500; i++ {
		env := envs[r.Intn(len(envs))]
		g := &exprGen{r: r, env: env}
		expr := g.boolean(1 + r.Intn(3))
		_, toks, ok := shapeOf(expr)
		if !ok || len(toks) == 0 {
			continue
		}
		recordObj := ""
		if k, obj, _ := strings.Cut(env.key, ":"); k == "record" || k == "state" {
			recordObj = obj
		}
		for v := 0; v < 4; v++ {
			x := expr
			if v > 0 {
				x = variant(r, expr, toks)
			}
			a := shaped.conditionEntry(env.key, x, recordObj)
			b := full.conditionEntry(env.key, x, recordObj)
			if da, db := describe(a), describe(b); da != db {
				t.Fatalf("%s\n template: %s\n full:     %s", x, da, db)
			}
			if a.err != nil {
				continue
			}
			compared++
			for j := 0; j < 5; j++ {
				act := rg.activation(t, shaped.schema, env)
				va, ea := a.cond.Eval(t.Context(), act)
				vb, eb := b.cond.Eval(t.Context(), act)
				if (ea == nil) != (eb == nil) || (ea == nil && !sameVal(va, vb)) {
					t.Fatalf("%s: template gives %v, %v; full gives %v, %v", x, va, ea, vb, eb)
				}
				st.evals++
			}
		}
	}
	t.Logf("%d conditions compared, %d evaluations; %d built from a template, %d shapes", compared, st.evals, shaped.shapes.hits.Load(), len(shaped.shapes.m))
	if shaped.shapes.hits.Load() < int64(compared/3) {
		t.Errorf("only %d of %d conditions were built from a template", shaped.shapes.hits.Load(), compared)
	}
}

func TestShapeIntWidening(t *testing.T) {
	// An int literal compared with a double field is widened: a variant
	// whose int is not exactly a double must not take the template.
	c := diffCompiler(t, CompilerOptions{})
	for _, x := range []string{`record.amount == 9007199254740990`, `record.amount == 9007199254740993`} {
		e := c.conditionEntry(envKey(TriggerRecord, crm.ObjOpportunity), x, crm.ObjOpportunity)
		full := diffCompiler(t, CompilerOptions{})
		full.shapes.off = true
		f := full.conditionEntry(envKey(TriggerRecord, crm.ObjOpportunity), x, crm.ObjOpportunity)
		if describe(e) != describe(f) {
			t.Errorf("%s:\n template: %s\n full:     %s", x, describe(e), describe(f))
		}
	}
}

func TestShapeOnlyForCostStableFunctions(t *testing.T) {
	// substring's estimated cost can read its int argument: such shapes
	// are always parsed in full, so each expression gets its own estimate.
	c := diffCompiler(t, CompilerOptions{})
	key := envKey(TriggerRecord, crm.ObjOpportunity)
	for _, x := range []string{`record.name.substring(1) == "ab"`, `record.name.substring(2) == "cd"`,
		`record.amount > 5 && record.name == "a"`, `record.amount > 6 && record.name == "b"`} {
		if e := c.conditionEntry(key, x, crm.ObjOpportunity); e.err != nil {
			t.Fatalf("%s: %v", x, e.err[0].msg)
		}
	}
	if c.shapes.hits.Load() != 1 {
		t.Errorf("%d expressions built from a template, want 1 (the second amount/name condition)", c.shapes.hits.Load())
	}
}
