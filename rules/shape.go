package rules

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Rule sets are written from templates: thousands of conditions differ
// only in their literals (`record.owner_id == "u-17" && record.amount >
// 50000`). Parsing (ANTLR) and type-checking are most of the cost of
// loading them, yet two expressions that differ only in the values of
// their literals, each literal keeping its kind and its length, have the
// same checked AST but for those literal nodes: same node ids, same types,
// same source offsets. So the compiler keeps, per environment and shape,
// the checked AST of the first such expression that checked cleanly, and
// builds the next ones from a copy of it with their own literal values.
// Everything that depends on the values (cost estimate, fast evaluator,
// index facts) is still computed per expression. Anything the shape
// reader is unsure of (escapes, raw or byte strings, hex or negative
// numbers, comments, literals checked at compile time) takes the full
// parse.

// maxShapes bounds the templates a compiler keeps.
const maxShapes = 10_000

// litToken is a literal token of an expression: its rune offsets and kind.
type litToken struct {
	start, end int  // rune offsets, end exclusive
	kind       byte // 's' string, 'i' int, 'u' uint, 'd' double
	text       string
}

// shapeOf returns the expression with the content of each literal masked
// (strings to 'x', digits to '0', length kept) and its literal tokens; ok
// is false when the expression has a form the reader does not handle.
func shapeOf(expr string) (shape string, toks []litToken, ok bool) {
	for _, fn := range []string{"timestamp(", "duration(", "matches(", "format(", "//"} {
		if strings.Contains(expr, fn) {
			return "", nil, false
		}
	}
	rs := []rune(expr)
	out := make([]rune, len(rs))
	copy(out, rs)
	isIdent := func(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
	prevSignificant := func(i int) rune {
		for i--; i >= 0; i-- {
			if !unicode.IsSpace(rs[i]) {
				return rs[i]
			}
		}
		return 0
	}
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == '"' || r == '\'':
			if i > 0 && isIdent(rs[i-1]) {
				return "", nil, false // r"…", b"…"
			}
			if i+1 < len(rs) && rs[i+1] == r {
				// "" is an empty string; """ opens a triple-quoted one.
				if i+2 < len(rs) && rs[i+2] == r {
					return "", nil, false
				}
			}
			j := i + 1
			for j < len(rs) && rs[j] != r {
				if rs[j] == '\\' || rs[j] == '\n' || rs[j] == '\r' {
					return "", nil, false
				}
				out[j] = 'x'
				j++
			}
			if j >= len(rs) {
				return "", nil, false
			}
			toks = append(toks, litToken{start: i, end: j + 1, kind: 's', text: string(rs[i+1 : j])})
			i = j + 1
		case isIdent(r) && !unicode.IsDigit(r):
			for i < len(rs) && isIdent(rs[i]) {
				i++
			}
		case unicode.IsDigit(r):
			if r == '0' && i+1 < len(rs) && (rs[i+1] == 'x' || rs[i+1] == 'X') {
				return "", nil, false
			}
			if p := prevSignificant(i); p == '-' || p == '.' {
				return "", nil, false // a negative literal, or .5
			}
			j, kind := i, byte('i')
			digits := func() {
				for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
					out[j] = '0'
					j++
				}
			}
			digits()
			if j+1 < len(rs) && rs[j] == '.' && rs[j+1] >= '0' && rs[j+1] <= '9' {
				kind = 'd'
				j++
				digits()
			}
			if j < len(rs) && (rs[j] == 'e' || rs[j] == 'E') {
				kind = 'd'
				j++
				if j < len(rs) && (rs[j] == '+' || rs[j] == '-') {
					j++
				}
				if j >= len(rs) || rs[j] < '0' || rs[j] > '9' {
					return "", nil, false
				}
				digits()
			}
			if kind == 'i' && j < len(rs) && (rs[j] == 'u' || rs[j] == 'U') {
				kind = 'u'
				j++
			}
			if j < len(rs) && (isIdent(rs[j]) || rs[j] == '.') {
				return "", nil, false
			}
			toks = append(toks, litToken{start: i, end: j, kind: kind, text: string(rs[i:j])})
			i = j
		case r == '.' && i+1 < len(rs) && unicode.IsDigit(rs[i+1]):
			return "", nil, false
		default:
			i++
		}
	}
	return string(out), toks, true
}

// value is the CEL value of a literal token as the parser reads it.
func (t litToken) value() (ref.Val, bool) {
	switch t.kind {
	case 's':
		return types.String(t.text), true
	case 'i':
		v, err := strconv.ParseInt(t.text, 10, 64)
		return types.Int(v), err == nil
	case 'u':
		v, err := strconv.ParseUint(strings.TrimRight(t.text, "uU"), 10, 64)
		return types.Uint(v), err == nil
	case 'd':
		v, err := strconv.ParseFloat(t.text, 64)
		return types.Double(v), err == nil
	}
	return nil, false
}

// shapeTemplate is the checked AST of an expression, and which of its
// literal nodes hold which literal token.
type shapeTemplate struct {
	checked *ast.AST
	nodes   map[int64]int // literal node id -> token index
	// est is the cost estimate of every expression of the shape: the
	// template only serves shapes whose functions' costs depend on their
	// literals' kinds and lengths, never on their values (costStable).
	est cost.Estimate
}

// costStable lists the functions whose estimated cost depends on their
// arguments' types and sizes only. A literal's size is its kind's (1) or,
// for a string, its length in code points: the same for every expression
// of a shape. Other functions (substring, lists.range, …) may read an
// int literal's value when estimating.
var costStable = map[string]bool{
	operators.LogicalAnd: true, operators.LogicalOr: true, operators.LogicalNot: true,
	operators.Equals: true, operators.NotEquals: true, operators.Less: true, operators.LessEquals: true,
	operators.Greater: true, operators.GreaterEquals: true, operators.In: true, operators.Conditional: true,
	operators.NotStrictlyFalse: true, "startsWith": true, "endsWith": true, "contains": true, "size": true,
}

type shapeKey struct{ env, shape string }

// shapes are a compiler's templates; nil entries mark shapes that cannot
// be templated.
type shapes struct {
	mu   sync.Mutex
	m    map[shapeKey]*shapeTemplate
	off  bool         // every expression is parsed in full (tests)
	hits atomic.Int64 // expressions built from a template
}

func (s *shapes) get(k shapeKey) (*shapeTemplate, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off {
		return nil, true
	}
	t, ok := s.m[k]
	return t, ok
}

// put keeps t for k unless k already has a template (or a nil mark).
func (s *shapes) put(k shapeKey, t *shapeTemplate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[shapeKey]*shapeTemplate{}
	}
	if _, seen := s.m[k]; !seen && len(s.m) < maxShapes {
		s.m[k] = t
	}
}

// newShapeTemplate pairs each literal token of a cleanly checked
// expression with the literal node at its offset. It returns nil when
// that pairing is not exact: every token held by exactly one node, of
// the token's value (an int widened to double in a double comparison
// counts), and no int left unwidened that could have been widened.
func newShapeTemplate(checked *ast.AST, toks []litToken, est cost.Estimate) *shapeTemplate {
	byStart := make(map[int32]int, len(toks))
	for i, t := range toks {
		byStart[int32(t.start)] = i
	}
	t := &shapeTemplate{checked: checked, nodes: map[int64]int{}, est: est}
	held := make([]int, len(toks))
	ok := true
	info := checked.SourceInfo()
	ast.PostOrderVisit(checked.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if ok && e.Kind() == ast.CallKind && !costStable[e.AsCall().FunctionName()] {
			ok = false
		}
		if ok && e.Kind() == ast.ComprehensionKind {
			ok = false
		}
		if !ok || e.Kind() != ast.LiteralKind {
			return
		}
		r, found := info.GetOffsetRange(e.ID())
		if !found {
			return
		}
		i, isTok := byStart[r.Start]
		if !isTok {
			return // a literal a macro made
		}
		want, valid := toks[i].value()
		v, widened := instanceValue(e.AsLiteral(), want, valid)
		if !widened || v.Equal(e.AsLiteral()) != types.True || v.Type() != e.AsLiteral().Type() {
			ok = false
			return
		}
		if toks[i].kind == 'i' {
			if n, isInt := e.AsLiteral().(types.Int); isInt && int64(n) != int64(float64(n)) {
				ok = false // an int the compiler would not widen here, but might elsewhere
				return
			}
		}
		t.nodes[e.ID()] = i
		held[i]++
	}))
	for _, n := range held {
		if n != 1 {
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return t
}

// instanceValue converts a token's value to the kind of the template's
// literal node: as is, or an int widened to double as widenIntLiterals
// does (exactly representable ints only). ok is false when it cannot.
func instanceValue(node ref.Val, v ref.Val, valid bool) (ref.Val, bool) {
	if !valid {
		return nil, false
	}
	if node.Type() == v.Type() {
		return v, true
	}
	if i, isInt := v.(types.Int); isInt && node.Type() == types.DoubleType && int64(i) == int64(float64(i)) {
		return types.Double(float64(i)), true
	}
	return nil, false
}

// instance builds the checked AST of an expression of the template's
// shape, toks being its literal tokens.
func (t *shapeTemplate) instance(toks []litToken) (*ast.AST, bool) {
	vals := make([]ref.Val, len(toks))
	for i, tok := range toks {
		v, ok := tok.value()
		if !ok {
			return nil, false
		}
		vals[i] = v
	}
	cp := ast.Copy(t.checked)
	fac := ast.NewExprFactory()
	ok := true
	ast.PostOrderVisit(cp.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		i, isTok := t.nodes[e.ID()]
		if !ok || !isTok || e.Kind() != ast.LiteralKind {
			return
		}
		v, conv := instanceValue(e.AsLiteral(), vals[i], true)
		if !conv {
			ok = false
			return
		}
		e.SetKindCase(fac.NewLiteral(e.ID(), v))
	}))
	return cp, ok
}
