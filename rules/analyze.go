package rules

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/rules/internal/celfast"
)

// Condition is a compiled If, with the facts the engine's index needs.
type Condition struct {
	*Program
	// ReadsBefore and ReadsChanged tell whether the condition reads the
	// before record or the changed list: it describes a change itself.
	ReadsBefore, ReadsChanged bool
	// Index holds the equality and `in` predicates on record fields found
	// in the top-level conjunction: the condition can only be true for a
	// record whose field values satisfy every one of them.
	Index []Predicate
	// RestTrue tells that the condition is exactly the conjunction of Index:
	// when every predicate holds, the condition is true without evaluation.
	RestTrue bool
	// Clauses are the top-level conjuncts, in source order.
	Clauses []Clause
}

// Predicate is `record.<Field> == const` or `record.<Field> in [consts]`.
type Predicate struct {
	Field *crm.Field
	// Values are the constants; Keys their IndexKey forms, in the same order.
	Values []ref.Val
	Keys   []string
	// set is the set of an `in` predicate, nil for ==.
	set *celfast.ConstSet
	// str is the constant of == on a string field.
	str    string
	strCmp bool
}

// Holds tells whether r satisfies the predicate, as CEL evaluates it: ==
// by CEL equality (numbers compare across int and double), `in` by the
// set membership cel-go plans for a list of constants. It does not
// allocate.
func (p *Predicate) Holds(r *crm.Record) bool {
	v := r.FieldValue(p.Field)
	switch {
	case p.set != nil:
		return p.set.Has(v)
	case p.strCmp:
		s, ok := v.(types.String)
		return ok && string(s) == p.str
	}
	return len(p.Values) == 1 && types.Equal(v, p.Values[0]) == types.True
}

// Clause is one top-level conjunct of a condition.
type Clause struct {
	// Start and End are rune offsets of the clause in the expression.
	Start, End int
	// Text is the clause's source.
	Text string
}

// IndexKey is the canonical index form of a scalar value: two values have
// the same key exactly when CEL finds them equal (numbers compare across
// int and double). It reports false for values that cannot be indexed.
func IndexKey(v ref.Val) (string, bool) {
	switch x := v.(type) {
	case types.String:
		return "s" + string(x), true
	case types.Bool:
		if x {
			return "b1", true
		}
		return "b0", true
	case types.Int:
		return "n" + strconv.FormatInt(int64(x), 10), true
	case types.Uint:
		return "n" + strconv.FormatUint(uint64(x), 10), true
	case types.Double:
		f := float64(x)
		if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
			return "n" + strconv.FormatInt(int64(f), 10), true
		}
		if math.IsNaN(f) {
			return "", false
		}
		return "f" + strconv.FormatFloat(f, 'g', -1, 64), true
	}
	return "", false
}

// analyze finds the index facts of a condition, from its checked AST
// (which the program does not keep).
func analyze(p *Program, a *ast.AST, s *crm.Schema, recordObj string) *Condition {
	c := &Condition{Program: p}
	for _, ref := range a.ReferenceMap() {
		switch ref.Name {
		case VarBefore:
			c.ReadsBefore = true
		case VarChanged:
			c.ReadsChanged = true
		}
	}
	var obj *crm.Object
	if recordObj != "" {
		obj = stdObject(s, recordObj)
	}
	conj := conjuncts(a.Expr(), nil)
	c.Clauses = clauses(a, conj, []rune(p.Expr))
	rest := false
	for _, e := range conj {
		if obj == nil {
			rest = true
			continue
		}
		if pr, ok := predicate(a, e, obj); ok {
			c.Index = append(c.Index, pr)
		} else {
			rest = true
		}
	}
	c.RestTrue = !rest && len(c.Index) > 0
	return c
}

func conjuncts(e ast.Expr, out []ast.Expr) []ast.Expr {
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
		for _, arg := range e.AsCall().Args() {
			out = conjuncts(arg, out)
		}
		return out
	}
	return append(out, e)
}

// predicate recognises record.f == const, const == record.f and
// record.f in [consts] on a scalar field.
func predicate(a *ast.AST, e ast.Expr, obj *crm.Object) (Predicate, bool) {
	if e.Kind() != ast.CallKind {
		return Predicate{}, false
	}
	call := e.AsCall()
	args := call.Args()
	if len(args) != 2 {
		return Predicate{}, false
	}
	var fieldExpr ast.Expr
	var consts []ast.Expr
	in := false
	switch call.FunctionName() {
	case operators.Equals:
		switch {
		case args[1].Kind() == ast.LiteralKind:
			fieldExpr, consts = args[0], args[1:]
		case args[0].Kind() == ast.LiteralKind:
			fieldExpr, consts = args[1], args[:1]
		default:
			return Predicate{}, false
		}
	case operators.In:
		if args[1].Kind() != ast.ListKind {
			return Predicate{}, false
		}
		fieldExpr = args[0]
		consts = args[1].AsList().Elements()
		if len(consts) == 0 || len(args[1].AsList().OptionalIndices()) > 0 {
			return Predicate{}, false
		}
		in = true
	default:
		return Predicate{}, false
	}
	f, ok := recordField(a, fieldExpr, obj)
	if !ok {
		return Predicate{}, false
	}
	switch f.Kind {
	case crm.KindString, crm.KindInt, crm.KindDouble, crm.KindBool:
	default:
		return Predicate{}, false
	}
	p := Predicate{Field: f}
	for _, ce := range consts {
		if ce.Kind() != ast.LiteralKind {
			return Predicate{}, false
		}
		v := ce.AsLiteral()
		k, ok := IndexKey(v)
		if !ok || !exactNumber(v) {
			return Predicate{}, false
		}
		p.Values = append(p.Values, v)
		p.Keys = append(p.Keys, k)
	}
	if in {
		set, ok := celfast.NewConstSet(p.Values)
		if !ok {
			return Predicate{}, false
		}
		p.set = set
	} else if s, ok := p.Values[0].(types.String); ok {
		p.str, p.strCmp = string(s), true
	}
	return p, true
}

func recordField(a *ast.AST, e ast.Expr, obj *crm.Object) (*crm.Field, bool) {
	if e.Kind() != ast.SelectKind {
		return nil, false
	}
	sel := e.AsSelect()
	if sel.IsTestOnly() || sel.Operand().Kind() != ast.IdentKind || sel.Operand().AsIdent() != VarRecord {
		return nil, false
	}
	// The identifier must resolve to the variable, not a comprehension
	// variable of the same name.
	if r, ok := a.ReferenceMap()[sel.Operand().ID()]; !ok || r.Name != VarRecord {
		return nil, false
	}
	f, ok := obj.Field(sel.FieldName())
	return f, ok
}

// clauses cuts the source into its top-level conjuncts: each runs from
// its first token to the && that follows it.
func clauses(a *ast.AST, conj []ast.Expr, src []rune) []Clause {
	info := a.SourceInfo()
	var ands []int
	var collect func(e ast.Expr)
	collect = func(e ast.Expr) {
		if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
			if r, ok := info.GetOffsetRange(e.ID()); ok {
				ands = append(ands, int(r.Start))
			}
			for _, arg := range e.AsCall().Args() {
				collect(arg)
			}
		}
	}
	collect(a.Expr())
	sort.Ints(ands)
	out := make([]Clause, 0, len(conj))
	for _, e := range conj {
		start := math.MaxInt
		ast.PostOrderVisit(e, ast.NewExprVisitor(func(x ast.Expr) {
			if r, ok := info.GetOffsetRange(x.ID()); ok && int(r.Start) < start {
				start = int(r.Start)
			}
		}))
		if start > len(src) {
			return nil
		}
		end := len(src)
		for _, o := range ands {
			if o > start {
				end = o
				break
			}
		}
		// Widen the start over opening parentheses that belong to the clause.
		for start > 0 && (src[start-1] == '(' || src[start-1] == ' ' || src[start-1] == '!') {
			start--
		}
		text := balance(strings.TrimSpace(string(src[start:end])))
		out = append(out, Clause{Start: start, End: end, Text: text})
	}
	return out
}

// balance trims unmatched parentheses from the ends of a clause.
func balance(s string) string {
	for {
		depth, minDepth := 0, 0
		for _, r := range s {
			switch r {
			case '(':
				depth++
			case ')':
				depth--
				if depth < minDepth {
					minDepth = depth
				}
			}
		}
		switch {
		case strings.HasPrefix(s, "(") && depth > 0:
			s = strings.TrimSpace(s[1:])
		case strings.HasSuffix(s, ")") && depth < 0:
			s = strings.TrimSpace(s[:len(s)-1])
		default:
			return s
		}
	}
}

// exactNumber tells whether a constant is a string or bool, or a number
// of magnitude under 2^53: every number CEL finds equal to it has its
// IndexKey. Past 2^53, an int and a double can be equal to CEL with
// different keys, so such a predicate is left to evaluation.
func exactNumber(v ref.Val) bool {
	const limit = 1 << 53
	switch x := v.(type) {
	case types.Int:
		return x > -limit && x < limit
	case types.Uint:
		return x < limit
	case types.Double:
		return float64(x) > -limit && float64(x) < limit
	}
	return true
}
