// Package celfast is the specialised evaluator of rules' conditions: for
// a checked CEL expression of the common subset below, it builds a tree of
// typed Go closures that gives cel-go's answer without cel-go's
// interpreter, or reports that it cannot and leaves the evaluation to
// cel-go. Package rules builds one per compiled expression
// (rules.Program.Eval) and keeps the differential tests that hold it to
// cel-go's results.
package celfast

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"github.com/whenthen/whenthen/crm"
)

// Most conditions compare record fields with constants. For an expression
// whose every node is in the subset below, compile builds a tree of Go
// closures from the checked AST (the checker's types tell each node's
// kind), and Program.Eval runs it instead of cel-go:
//
//   - literals: string, int, uint, double, bool, null, and
//     timestamp("...") of a string literal (cel-go folds it too);
//   - `now`, `changed`, and fields of the record variables (record,
//     before, account, opportunity, tracker, event), has() of those fields;
//   - ==, != on scalars and timestamps; <, <=, >, >= on numbers (across
//     int, uint and double), strings, bools and timestamps;
//   - x in [constants], and a string in changed or in a list(string) field;
//   - &&, ||, !, ?:;
//   - startsWith, endsWith, contains; size() of strings and lists.
//
// Anything else leaves the whole expression to cel-go. The results are
// cel-go's, which is the oracle of the differential tests: every function
// here follows the cel-go code it replaces (cited), and whenever a closure
// meets something it does not expect at run time — a variable that does
// not resolve, a value of another type, a string or list longer than the
// limits the cost estimate assumed (cel-go would charge its cost) — it
// reports ok=false and Program.Eval evaluates with cel-go. An evaluation
// error is therefore always cel-go's: && and || need no error algebra here.

// Func evaluates an expression of the fast subset. ok is false when it
// met something it does not handle; the caller then evaluates with cel-go.
type Func func(act interpreter.Activation) (v ref.Val, ok bool)

// Options are what Build needs to know of the environment.
type Options struct {
	// Schema types the record variables.
	Schema *crm.Schema
	// MaxString and MaxList are the longest string and list values the
	// cost estimate assumed (crm.Limits): longer values go to cel-go.
	MaxString, MaxList int
	// Changed is the name of the variable holding the list of changed
	// field names, and MaxChanged its longest length.
	Changed    string
	MaxChanged int
	// FlipLess builds < as <=: a deliberate bug that the differential
	// tests must catch. Never set outside them.
	FlipLess bool
}

type (
	boolFn func(interpreter.Activation) (bool, bool)
	numFn  func(interpreter.Activation) (num, bool)
	strFn  func(interpreter.Activation) (string, bool)
	valFn  func(interpreter.Activation) (ref.Val, bool)
	timeFn func(interpreter.Activation) (time.Time, bool)
	listFn func(interpreter.Activation) (traits.Lister, bool)
)

// fkind is the kind of a fast node's value.
type fkind uint8

const (
	fkBool fkind = iota + 1
	fkInt
	fkUint
	fkDouble
	fkString
	fkTime
	fkNull
	fkList
)

func (k fkind) numeric() bool { return k == fkInt || k == fkUint || k == fkDouble }

// num is a CEL number: an int, a uint or a double.
type num struct {
	k fkind
	i int64
	u uint64
	d float64
}

// fnode is a node of the tree being built: its kind and the getter of
// that kind. It does not outlive the build; the closures capture only
// what they use.
type fnode struct {
	kind fkind
	elem fkind   // of a list: fkString for list(string)
	lit  ref.Val // the value of a constant
	b    boolFn  // fkBool
	n    numFn   // fkInt, fkUint, fkDouble
	s    strFn   // fkString
	sv   valFn   // fkString, as the CEL value
	t    timeFn  // fkTime
	l    listFn  // fkList
}

// fastBuilder builds the fast evaluator of one checked expression.
type fastBuilder struct {
	a          *ast.AST
	schema     *crm.Schema
	maxStr     int    // longest string value taken (Limits.MaxStringBytes)
	maxList    int    // longest list field taken (Limits.MaxListLen)
	changed    string // name of the changed variable
	maxChanged int    // longest changed list taken
	flipLess   bool
}

// Build returns the evaluator of a checked expression, or nil if the
// expression is outside the subset or of another result type than bool
// or string.
func Build(a *ast.AST, o Options) Func {
	b := &fastBuilder{a: a, schema: o.Schema, maxStr: o.MaxString, maxList: o.MaxList,
		changed: o.Changed, maxChanged: o.MaxChanged, flipLess: o.FlipLess}
	n := b.build(a.Expr())
	if n == nil {
		return nil
	}
	switch n.kind {
	case fkBool:
		if n.lit != nil {
			v := n.lit
			return func(interpreter.Activation) (ref.Val, bool) { return v, true }
		}
		f := n.b
		return func(act interpreter.Activation) (ref.Val, bool) {
			x, ok := f(act)
			if !ok {
				return nil, false
			}
			return types.Bool(x), true
		}
	case fkString:
		return Func(n.sv)
	}
	return nil
}

func (b *fastBuilder) build(e ast.Expr) *fnode {
	switch e.Kind() {
	case ast.LiteralKind:
		return literal(e.AsLiteral())
	case ast.IdentKind:
		return b.ident(e)
	case ast.SelectKind:
		return b.sel(e)
	case ast.CallKind:
		return b.call(e)
	}
	return nil
}

// literal is a constant node.
func literal(v ref.Val) *fnode {
	switch x := v.(type) {
	case types.Bool:
		c := bool(x)
		return &fnode{kind: fkBool, lit: v, b: func(interpreter.Activation) (bool, bool) { return c, true }}
	case types.Int:
		return constNum(v, num{k: fkInt, i: int64(x)})
	case types.Uint:
		return constNum(v, num{k: fkUint, u: uint64(x)})
	case types.Double:
		return constNum(v, num{k: fkDouble, d: float64(x)})
	case types.String:
		c := string(x)
		return &fnode{kind: fkString, lit: v,
			s:  func(interpreter.Activation) (string, bool) { return c, true },
			sv: func(interpreter.Activation) (ref.Val, bool) { return v, true }}
	case types.Timestamp:
		c := x.Time
		return &fnode{kind: fkTime, lit: v, t: func(interpreter.Activation) (time.Time, bool) { return c, true }}
	case types.Null:
		return &fnode{kind: fkNull, lit: v}
	}
	return nil
}

func constNum(v ref.Val, c num) *fnode {
	return &fnode{kind: c.k, lit: v, n: func(interpreter.Activation) (num, bool) { return c, true }}
}

// variable returns the name of a variable of the environment that e
// refers to.
func (b *fastBuilder) variable(e ast.Expr) (string, bool) {
	if e.Kind() != ast.IdentKind {
		return "", false
	}
	name := e.AsIdent()
	r, ok := b.a.ReferenceMap()[e.ID()]
	if !ok || r.Name != name || r.Value != nil {
		return "", false
	}
	return name, true
}

// ident is `now` or `changed` (record variables are read through their
// fields only).
func (b *fastBuilder) ident(e ast.Expr) *fnode {
	name, ok := b.variable(e)
	if !ok {
		return nil
	}
	t := b.a.GetType(e.ID())
	switch {
	case t.Kind() == types.TimestampKind:
		return &fnode{kind: fkTime, t: func(act interpreter.Activation) (time.Time, bool) {
			v, ok := act.ResolveName(name)
			if !ok {
				return time.Time{}, false
			}
			ts, ok := v.(types.Timestamp)
			return ts.Time, ok
		}}
	case name == b.changed && t.Kind() == types.ListKind && t.Parameters()[0].Kind() == types.StringKind:
		max := b.maxChanged
		return &fnode{kind: fkList, elem: fkString, l: func(act interpreter.Activation) (traits.Lister, bool) {
			v, ok := act.ResolveName(name)
			if !ok {
				return nil, false
			}
			return boundedList(v, max)
		}}
	}
	return nil
}

// boundedList returns v as a list of at most max elements.
func boundedList(v any, max int) (traits.Lister, bool) {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, false
	}
	n, ok := l.Size().(types.Int)
	if !ok || n < 0 || int64(n) > int64(max) {
		return nil, false
	}
	return l, true
}

// resolveRecord resolves the record variable name, which must be a record
// of obj.
func resolveRecord(act interpreter.Activation, name string, obj *crm.Object) (*crm.Record, bool) {
	v, ok := act.ResolveName(name)
	if !ok {
		return nil, false
	}
	r, ok := v.(*crm.Record)
	if !ok || r == nil || r.Object() != obj {
		return nil, false
	}
	return r, true
}

// sel is a field of a record variable, or has() of one. cel-go reads it
// with the provider's FieldType (provider.go): Record.FieldValue and
// Record.IsSet, as here.
func (b *fastBuilder) sel(e ast.Expr) *fnode {
	s := e.AsSelect()
	name, ok := b.variable(s.Operand())
	if !ok {
		return nil
	}
	if _, ok := b.a.ReferenceMap()[e.ID()]; ok {
		return nil // a qualified name, not a field selection
	}
	ot := b.a.GetType(s.Operand().ID())
	if ot.Kind() != types.StructKind {
		return nil
	}
	obj, ok := b.schema.ObjectOfType(ot.TypeName())
	if !ok {
		return nil
	}
	f, ok := obj.Field(s.FieldName())
	if !ok {
		return nil
	}
	if s.IsTestOnly() {
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			r, ok := resolveRecord(act, name, obj)
			if !ok {
				return false, false
			}
			return r.IsSet(f), true
		}}
	}
	maxStr, maxList := b.maxStr, b.maxList
	switch f.Kind {
	case crm.KindString:
		return &fnode{kind: fkString,
			s: func(act interpreter.Activation) (string, bool) {
				r, ok := resolveRecord(act, name, obj)
				if !ok {
					return "", false
				}
				x, ok := r.FieldValue(f).(types.String)
				if !ok || len(x) > maxStr {
					return "", false
				}
				return string(x), true
			},
			sv: func(act interpreter.Activation) (ref.Val, bool) {
				r, ok := resolveRecord(act, name, obj)
				if !ok {
					return nil, false
				}
				v := r.FieldValue(f)
				x, ok := v.(types.String)
				if !ok || len(x) > maxStr {
					return nil, false
				}
				return v, true
			}}
	case crm.KindInt:
		return &fnode{kind: fkInt, n: func(act interpreter.Activation) (num, bool) {
			r, ok := resolveRecord(act, name, obj)
			if !ok {
				return num{}, false
			}
			x, ok := r.FieldValue(f).(types.Int)
			return num{k: fkInt, i: int64(x)}, ok
		}}
	case crm.KindDouble:
		return &fnode{kind: fkDouble, n: func(act interpreter.Activation) (num, bool) {
			r, ok := resolveRecord(act, name, obj)
			if !ok {
				return num{}, false
			}
			x, ok := r.FieldValue(f).(types.Double)
			return num{k: fkDouble, d: float64(x)}, ok
		}}
	case crm.KindBool:
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			r, ok := resolveRecord(act, name, obj)
			if !ok {
				return false, false
			}
			x, ok := r.FieldValue(f).(types.Bool)
			return bool(x), ok
		}}
	case crm.KindTimestamp:
		return &fnode{kind: fkTime, t: func(act interpreter.Activation) (time.Time, bool) {
			r, ok := resolveRecord(act, name, obj)
			if !ok {
				return time.Time{}, false
			}
			x, ok := r.FieldValue(f).(types.Timestamp)
			return x.Time, ok
		}}
	case crm.KindStringList, crm.KindObjectList:
		elem := fkind(0)
		if f.Kind == crm.KindStringList {
			elem = fkString
		}
		return &fnode{kind: fkList, elem: elem, l: func(act interpreter.Activation) (traits.Lister, bool) {
			r, ok := resolveRecord(act, name, obj)
			if !ok {
				return nil, false
			}
			return boundedList(r.FieldValue(f), maxList)
		}}
	}
	return nil
}

// overload is the one overload the checker resolved for a call.
func (b *fastBuilder) overload(e ast.Expr) string {
	r, ok := b.a.ReferenceMap()[e.ID()]
	if !ok || len(r.OverloadIDs) != 1 {
		return ""
	}
	return r.OverloadIDs[0]
}

func (b *fastBuilder) call(e ast.Expr) *fnode {
	c := e.AsCall()
	args := c.Args()
	oid := b.overload(e)
	if oid == "" {
		return nil
	}
	if c.IsMemberFunction() {
		switch {
		case c.FunctionName() == overloads.Size && oid == overloads.SizeStringInst && len(args) == 0,
			c.FunctionName() == overloads.Size && oid == overloads.SizeListInst && len(args) == 0:
			return b.size(c.Target())
		case c.FunctionName() == overloads.StartsWith && oid == overloads.StartsWithString && len(args) == 1:
			return b.stringTest(c.Target(), args[0], strings.HasPrefix)
		case c.FunctionName() == overloads.EndsWith && oid == overloads.EndsWithString && len(args) == 1:
			return b.stringTest(c.Target(), args[0], strings.HasSuffix)
		case c.FunctionName() == overloads.Contains && oid == overloads.ContainsString && len(args) == 1:
			return b.stringTest(c.Target(), args[0], strings.Contains)
		}
		return nil
	}
	switch c.FunctionName() {
	case operators.LogicalAnd, operators.LogicalOr:
		if oid != overloads.LogicalAnd && oid != overloads.LogicalOr {
			return nil
		}
		return b.logical(e, c.FunctionName() == operators.LogicalAnd)
	case operators.LogicalNot:
		if oid != overloads.LogicalNot || len(args) != 1 {
			return nil
		}
		return b.not(args[0])
	case operators.Conditional:
		if oid != overloads.Conditional || len(args) != 3 {
			return nil
		}
		return b.conditional(args[0], args[1], args[2])
	case operators.Equals, operators.NotEquals:
		if (oid != overloads.Equals && oid != overloads.NotEquals) || len(args) != 2 {
			return nil
		}
		return b.equality(args[0], args[1], c.FunctionName() == operators.NotEquals)
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		if len(args) != 2 {
			return nil
		}
		return b.relation(c.FunctionName(), args[0], args[1])
	case operators.In:
		if oid != overloads.InList || len(args) != 2 {
			return nil
		}
		return b.in(args[0], args[1])
	case overloads.Size:
		if (oid != overloads.SizeString && oid != overloads.SizeList) || len(args) != 1 {
			return nil
		}
		return b.size(args[0])
	case overloads.TypeConvertTimestamp:
		if oid != overloads.StringToTimestamp || len(args) != 1 || args[0].Kind() != ast.LiteralKind {
			return nil
		}
		// The planner folds the conversion of a constant (decorators.go
		// maybeOptimizeConstUnary); so does this, and leaves an invalid
		// timestamp to cel-go.
		s, ok := args[0].AsLiteral().(types.String)
		if !ok {
			return nil
		}
		ts, ok := s.ConvertToType(types.TimestampType).(types.Timestamp)
		if !ok {
			return nil
		}
		return literal(ts)
	}
	return nil
}

// logical is a chain of && or || (interpretable.go evalAnd, evalOr). A
// term that is false (true for ||) decides; a term that is not a bool
// hands the whole expression to cel-go, whose result then depends on the
// other terms.
func (b *fastBuilder) logical(e ast.Expr, and bool) *fnode {
	fn := e.AsCall().FunctionName()
	var terms []boolFn
	var collect func(x ast.Expr) bool
	collect = func(x ast.Expr) bool {
		if x.Kind() == ast.CallKind && x.AsCall().FunctionName() == fn && !x.AsCall().IsMemberFunction() {
			if b.overload(x) == "" {
				return false
			}
			for _, arg := range x.AsCall().Args() {
				if !collect(arg) {
					return false
				}
			}
			return true
		}
		n := b.build(x)
		if n == nil || n.kind != fkBool {
			return false
		}
		terms = append(terms, n.b)
		return true
	}
	if !collect(e) || len(terms) < 2 {
		return nil
	}
	decisive := !and // && is decided by a false term, || by a true one
	if len(terms) == 2 {
		l, r := terms[0], terms[1]
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			x, ok := l(act)
			if !ok {
				return false, false
			}
			if x == decisive {
				return x, true
			}
			return r(act)
		}}
	}
	return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
		for _, t := range terms {
			x, ok := t(act)
			if !ok {
				return false, false
			}
			if x == decisive {
				return x, true
			}
		}
		return !decisive, true
	}}
}

func (b *fastBuilder) not(arg ast.Expr) *fnode {
	n := b.build(arg)
	if n == nil || n.kind != fkBool {
		return nil
	}
	f := n.b
	return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
		x, ok := f(act)
		return !x, ok
	}}
}

// conditional is c ? t : f; only the chosen branch is evaluated.
func (b *fastBuilder) conditional(ce, te, fe ast.Expr) *fnode {
	c, t, f := b.build(ce), b.build(te), b.build(fe)
	if c == nil || t == nil || f == nil || c.kind != fkBool || t.kind != f.kind {
		return nil
	}
	cf := c.b
	switch t.kind {
	case fkBool:
		tb, fb := t.b, f.b
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			x, ok := cf(act)
			if !ok {
				return false, false
			}
			if x {
				return tb(act)
			}
			return fb(act)
		}}
	case fkInt, fkUint, fkDouble:
		tn, fn := t.n, f.n
		return &fnode{kind: t.kind, n: func(act interpreter.Activation) (num, bool) {
			x, ok := cf(act)
			if !ok {
				return num{}, false
			}
			if x {
				return tn(act)
			}
			return fn(act)
		}}
	case fkString:
		ts, fs, tv, fv := t.s, f.s, t.sv, f.sv
		return &fnode{kind: fkString,
			s: func(act interpreter.Activation) (string, bool) {
				x, ok := cf(act)
				if !ok {
					return "", false
				}
				if x {
					return ts(act)
				}
				return fs(act)
			},
			sv: func(act interpreter.Activation) (ref.Val, bool) {
				x, ok := cf(act)
				if !ok {
					return nil, false
				}
				if x {
					return tv(act)
				}
				return fv(act)
			}}
	case fkTime:
		tt, ft := t.t, f.t
		return &fnode{kind: fkTime, t: func(act interpreter.Activation) (time.Time, bool) {
			x, ok := cf(act)
			if !ok {
				return time.Time{}, false
			}
			if x {
				return tt(act)
			}
			return ft(act)
		}}
	}
	return nil
}

// Comparison results as bits: less, equal, greater. An operator is the
// set of results it holds for.
const (
	cmpLess    = 1
	cmpEqual   = 2
	cmpGreater = 4
)

func cmpBit(c int) uint8 { return 1 << uint(c+1) }

func relationMask(op string) uint8 {
	switch op {
	case operators.Less:
		return cmpLess
	case operators.LessEquals:
		return cmpLess | cmpEqual
	case operators.Greater:
		return cmpGreater
	case operators.GreaterEquals:
		return cmpGreater | cmpEqual
	}
	return 0
}

// cmpFn compares two operands: -1, 0 or 1, and whether a NaN was met.
type cmpFn func(interpreter.Activation) (c int, nan bool, ok bool)

// comparer compares l and r, of the kinds given, by CEL's ordering.
func comparer(l, r *fnode) cmpFn {
	switch {
	case l.kind.numeric() && r.kind.numeric():
		ln, rn := l.n, r.n
		if r.lit != nil {
			rc, _ := rn(nil)
			return func(act interpreter.Activation) (int, bool, bool) {
				x, ok := ln(act)
				if !ok {
					return 0, false, false
				}
				c, nan := compareNum(x, rc)
				return c, nan, true
			}
		}
		return func(act interpreter.Activation) (int, bool, bool) {
			x, ok := ln(act)
			if !ok {
				return 0, false, false
			}
			y, ok := rn(act)
			if !ok {
				return 0, false, false
			}
			c, nan := compareNum(x, y)
			return c, nan, true
		}
	case l.kind == fkString && r.kind == fkString:
		ls, rs := l.s, r.s
		if r.lit != nil {
			rc, _ := rs(nil)
			return func(act interpreter.Activation) (int, bool, bool) {
				x, ok := ls(act)
				return strings.Compare(x, rc), false, ok
			}
		}
		return func(act interpreter.Activation) (int, bool, bool) {
			x, ok := ls(act)
			if !ok {
				return 0, false, false
			}
			y, ok := rs(act)
			return strings.Compare(x, y), false, ok
		}
	case l.kind == fkBool && r.kind == fkBool:
		lb, rb := l.b, r.b
		return func(act interpreter.Activation) (int, bool, bool) {
			x, ok := lb(act)
			if !ok {
				return 0, false, false
			}
			y, ok := rb(act)
			return compareBool(x, y), false, ok
		}
	case l.kind == fkTime && r.kind == fkTime:
		lt, rt := l.t, r.t
		return func(act interpreter.Activation) (int, bool, bool) {
			x, ok := lt(act)
			if !ok {
				return 0, false, false
			}
			y, ok := rt(act)
			return compareTime(x, y), false, ok
		}
	}
	return nil
}

// relation is <, <=, > or >= (standard.go: a NaN operand is false, else
// Compare).
func (b *fastBuilder) relation(op string, le, re ast.Expr) *fnode {
	l, r := b.build(le), b.build(re)
	if l == nil || r == nil {
		return nil
	}
	cmp := comparer(l, r)
	if cmp == nil {
		return nil
	}
	if b.flipLess && op == operators.Less {
		op = operators.LessEquals // a deliberately wrong evaluator, for the tests
	}
	mask := relationMask(op)
	return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
		c, nan, ok := cmp(act)
		if !ok {
			return false, false
		}
		return !nan && cmpBit(c)&mask != 0, true
	}}
}

// equality is == or != (interpretable.go evalEq, evalNe; types.Equal): a
// NaN equals nothing; numbers compare across kinds; values of other
// different kinds are unequal; null equals null only.
func (b *fastBuilder) equality(le, re ast.Expr, ne bool) *fnode {
	l, r := b.build(le), b.build(re)
	if l == nil || r == nil {
		return nil
	}
	if l.kind == fkNull || r.kind == fkNull {
		other := l
		if l.kind == fkNull {
			other = r
		}
		if other.kind == fkNull {
			return literal(types.Bool(!ne))
		}
		ev := evaluator(other)
		if ev == nil {
			return nil
		}
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			return ne, ev(act)
		}}
	}
	if l.kind == fkString && r.kind == fkString {
		ls, rs := l.s, r.s
		if r.lit != nil || l.lit != nil {
			if l.lit != nil {
				ls, rs = rs, ls
			}
			c, _ := rs(nil)
			return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
				x, ok := ls(act)
				return (x == c) != ne, ok
			}}
		}
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			x, ok := ls(act)
			if !ok {
				return false, false
			}
			y, ok := rs(act)
			return (x == y) != ne, ok
		}}
	}
	if l.kind != r.kind && !(l.kind.numeric() && r.kind.numeric()) {
		return nil // does not type-check
	}
	if l.kind == fkTime {
		lt, rt := l.t, r.t
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			x, ok := lt(act)
			if !ok {
				return false, false
			}
			y, ok := rt(act)
			return x.Equal(y) != ne, ok
		}}
	}
	if r.lit != nil && l.lit == nil {
		// keep the constant on the right, where comparer specialises it
	} else if l.lit != nil && r.lit == nil {
		l, r = r, l
	}
	cmp := comparer(l, r)
	if cmp == nil {
		return nil
	}
	return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
		c, nan, ok := cmp(act)
		if !ok {
			return false, false
		}
		return (!nan && c == 0) != ne, true
	}}
}

// evaluator evaluates a node for its errors only.
func evaluator(n *fnode) func(interpreter.Activation) bool {
	switch {
	case n.kind == fkBool:
		f := n.b
		return func(act interpreter.Activation) bool { _, ok := f(act); return ok }
	case n.kind.numeric():
		f := n.n
		return func(act interpreter.Activation) bool { _, ok := f(act); return ok }
	case n.kind == fkString:
		f := n.s
		return func(act interpreter.Activation) bool { _, ok := f(act); return ok }
	case n.kind == fkTime:
		f := n.t
		return func(act interpreter.Activation) bool { _, ok := f(act); return ok }
	}
	return nil
}

// in is `x in [constants]` or `x in list`.
func (b *fastBuilder) in(le, re ast.Expr) *fnode {
	if re.Kind() == ast.ListKind {
		return b.inConstants(le, re.AsList())
	}
	l, r := b.build(le), b.build(re)
	if l == nil || r == nil || l.kind != fkString || r.kind != fkList || r.elem != fkString {
		return nil
	}
	// standard.go inAggregate: the list's own Contains.
	lv, rl := l.sv, r.l
	return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
		x, ok := lv(act)
		if !ok {
			return false, false
		}
		lst, ok := rl(act)
		if !ok {
			return false, false
		}
		res, ok := lst.Contains(x).(types.Bool)
		return bool(res), ok
	}}
}

// inConstants is `x in [constants]`, which cel-go plans as a set
// membership test (decorators.go maybeOptimizeSetMembership): an empty
// list is false without evaluating x.
func (b *fastBuilder) inConstants(le ast.Expr, list ast.ListExpr) *fnode {
	if len(list.OptionalIndices()) > 0 {
		return nil
	}
	var vals []ref.Val
	for _, el := range list.Elements() {
		if el.Kind() != ast.LiteralKind {
			return nil
		}
		vals = append(vals, el.AsLiteral())
	}
	if len(vals) == 0 {
		return literal(types.False)
	}
	set, ok := NewConstSet(vals)
	if !ok {
		return nil
	}
	l := b.build(le)
	if l == nil {
		return nil
	}
	switch {
	case l.kind == fkString:
		ls := l.s
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			x, ok := ls(act)
			return set.hasString(x), ok
		}}
	case l.kind.numeric():
		ln := l.n
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			x, ok := ln(act)
			return set.hasNum(x), ok
		}}
	case l.kind == fkBool:
		lb := l.b
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			x, ok := lb(act)
			return set.bools[boolIndex(x)], ok
		}}
	}
	return nil
}

// size is the size of a string (code points) or of a list.
func (b *fastBuilder) size(arg ast.Expr) *fnode {
	n := b.build(arg)
	if n == nil {
		return nil
	}
	switch n.kind {
	case fkString:
		s := n.s
		return &fnode{kind: fkInt, n: func(act interpreter.Activation) (num, bool) {
			x, ok := s(act)
			// types.String.Size: len([]rune(s)), which counts an invalid
			// byte as one rune, as RuneCountInString does.
			return num{k: fkInt, i: int64(utf8.RuneCountInString(x))}, ok
		}}
	case fkList:
		l := n.l
		return &fnode{kind: fkInt, n: func(act interpreter.Activation) (num, bool) {
			x, ok := l(act)
			if !ok {
				return num{}, false
			}
			sz, ok := x.Size().(types.Int)
			return num{k: fkInt, i: int64(sz)}, ok
		}}
	}
	return nil
}

// stringTest is startsWith, endsWith or contains (types.StringStartsWith...).
func (b *fastBuilder) stringTest(te, ae ast.Expr, test func(s, sub string) bool) *fnode {
	t, a := b.build(te), b.build(ae)
	if t == nil || a == nil || t.kind != fkString || a.kind != fkString {
		return nil
	}
	ts, as := t.s, a.s
	if a.lit != nil {
		c, _ := as(nil)
		return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
			x, ok := ts(act)
			return test(x, c), ok
		}}
	}
	return &fnode{kind: fkBool, b: func(act interpreter.Activation) (bool, bool) {
		x, ok := ts(act)
		if !ok {
			return false, false
		}
		y, ok := as(act)
		return test(x, y), ok
	}}
}

// compareNum orders two numbers as cel-go does (types Int.Compare,
// Uint.Compare, Double.Compare, compare.go). nan tells that one of them is
// NaN: CEL's relations are then false, and == false.
func compareNum(a, b num) (c int, nan bool) {
	if (a.k == fkDouble && math.IsNaN(a.d)) || (b.k == fkDouble && math.IsNaN(b.d)) {
		return 0, true
	}
	switch a.k {
	case fkInt:
		switch b.k {
		case fkInt:
			return cmp3(a.i < b.i, a.i > b.i), false
		case fkUint:
			return compareIntUint(a.i, b.u), false
		case fkDouble:
			return -compareDoubleInt(b.d, a.i), false
		}
	case fkUint:
		switch b.k {
		case fkInt:
			return -compareIntUint(b.i, a.u), false
		case fkUint:
			return cmp3(a.u < b.u, a.u > b.u), false
		case fkDouble:
			return -compareDoubleUint(b.d, a.u), false
		}
	case fkDouble:
		switch b.k {
		case fkInt:
			return compareDoubleInt(a.d, b.i), false
		case fkUint:
			return compareDoubleUint(a.d, b.u), false
		case fkDouble:
			return cmp3(a.d < b.d, a.d > b.d), false
		}
	}
	return 0, true // unreachable: numbers have a kind
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// compareDoubleInt, compareDoubleUint and compareIntUint are those of
// cel-go's compare.go, on Go types.
func compareDoubleInt(d float64, i int64) int {
	if d < math.MinInt64 {
		return -1
	}
	if d > math.MaxInt64 {
		return 1
	}
	return cmp3(d < float64(i), d > float64(i))
}

func compareDoubleUint(d float64, u uint64) int {
	if d < 0 {
		return -1
	}
	if d > math.MaxUint64 {
		return 1
	}
	return cmp3(d < float64(u), d > float64(u))
}

func compareIntUint(i int64, u uint64) int {
	if i < 0 || u > math.MaxInt64 {
		return -1
	}
	return cmp3(i < int64(u), i > int64(u))
}

func compareBool(x, y bool) int {
	switch {
	case x == y:
		return 0
	case !x && y:
		return -1
	}
	return 1
}

func compareTime(x, y time.Time) int {
	switch {
	case x.Before(y):
		return -1
	case x.After(y):
		return 1
	}
	return 0
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ConstSet is the set cel-go tests `x in [constants]` against
// (decorators.go maybeOptimizeSetMembership), split by kind: a lookup in
// the map of x's kind is a lookup of x in cel-go's map[ref.Val]ref.Val,
// where keys of different kinds never match (and NaN matches nothing).
type ConstSet struct {
	strs  []string // few strings: a scan beats a hash
	strm  map[string]struct{}
	ints  map[int64]struct{}
	uints map[uint64]struct{}
	dbls  map[float64]struct{}
	bools [2]bool
}

const constSetScan = 8

// NewConstSet builds the set of constants. It reports false when cel-go
// would not plan a set (an element that is not a primitive value).
func NewConstSet(elems []ref.Val) (*ConstSet, bool) {
	valueSet := map[ref.Val]ref.Val{}
	for _, elem := range elems {
		if !types.IsPrimitiveType(elem) || elem.Type() == types.BytesType {
			return nil, false
		}
		valueSet[elem] = types.True
		switch ev := elem.(type) {
		case types.Double:
			iv := ev.ConvertToType(types.IntType)
			if !types.IsError(iv) && iv.Equal(ev) == types.True {
				valueSet[iv] = types.True
			}
			uv := ev.ConvertToType(types.UintType)
			if !types.IsError(uv) && uv.Equal(ev) == types.True {
				valueSet[uv] = types.True
			}
		case types.Int:
			dv := ev.ConvertToType(types.DoubleType)
			if !types.IsError(dv) {
				valueSet[dv] = types.True
			}
			uv := ev.ConvertToType(types.UintType)
			if !types.IsError(uv) {
				valueSet[uv] = types.True
			}
		case types.Uint:
			dv := ev.ConvertToType(types.DoubleType)
			if !types.IsError(dv) {
				valueSet[dv] = types.True
			}
			iv := ev.ConvertToType(types.IntType)
			if !types.IsError(iv) {
				valueSet[iv] = types.True
			}
		}
	}
	s := &ConstSet{}
	for k := range valueSet {
		switch x := k.(type) {
		case types.String:
			s.strs = append(s.strs, string(x))
		case types.Int:
			if s.ints == nil {
				s.ints = map[int64]struct{}{}
			}
			s.ints[int64(x)] = struct{}{}
		case types.Uint:
			if s.uints == nil {
				s.uints = map[uint64]struct{}{}
			}
			s.uints[uint64(x)] = struct{}{}
		case types.Double:
			if s.dbls == nil {
				s.dbls = map[float64]struct{}{}
			}
			s.dbls[float64(x)] = struct{}{}
		case types.Bool:
			s.bools[boolIndex(bool(x))] = true
		default:
			return nil, false
		}
	}
	if len(s.strs) > constSetScan {
		s.strm = make(map[string]struct{}, len(s.strs))
		for _, x := range s.strs {
			s.strm[x] = struct{}{}
		}
		s.strs = nil
	}
	return s, true
}

func (s *ConstSet) hasString(x string) bool {
	if s.strm != nil {
		_, ok := s.strm[x]
		return ok
	}
	for _, c := range s.strs {
		if c == x {
			return true
		}
	}
	return false
}

func (s *ConstSet) hasNum(x num) bool {
	var ok bool
	switch x.k {
	case fkInt:
		_, ok = s.ints[x.i]
	case fkUint:
		_, ok = s.uints[x.u]
	case fkDouble:
		_, ok = s.dbls[x.d]
	}
	return ok
}

// Has tells whether the CEL value v is in the set.
func (s *ConstSet) Has(v ref.Val) bool {
	switch x := v.(type) {
	case types.String:
		return s.hasString(string(x))
	case types.Int:
		_, ok := s.ints[int64(x)]
		return ok
	case types.Uint:
		_, ok := s.uints[uint64(x)]
		return ok
	case types.Double:
		_, ok := s.dbls[float64(x)]
		return ok
	case types.Bool:
		return s.bools[boolIndex(bool(x))]
	}
	return false
}
