package rules

import (
	"fmt"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/internal/suggest"
)

// A field with a picklist (crm.Field.Values) compared with a constant
// outside its values is a load error: `record.stage == "Closed-Won"`
// type-checks, and silently never matches. picklistIssues finds such
// constants in a checked expression:
//
//   - either side of == and != on a field with values, through any
//     variable of a record type (record, before, account, opportunity);
//   - each constant of the list of `field in [...]`;
//   - each constant of a list a comprehension ranges over, when its
//     variable is compared with the field (`["a", "b"].exists(s,
//     record.stage == s)`).
//
// "" is always allowed: it is the value of an absent field, and
// `record.stage != ""` is how a condition asks that it be set.

// picklistIssues reports each constant of a checked expression that a
// field with values is compared with and that is not one of them, at the
// constant's position.
func picklistIssues(a *ast.AST, s *crm.Schema) []*celIssue {
	if !s.HasValues() {
		return nil
	}
	c := &picklistChecker{a: a, schema: s, ranges: map[string][]ast.Expr{}, seen: map[int64]bool{}}
	c.walk(a.Expr())
	return c.iss
}

type picklistChecker struct {
	a      *ast.AST
	schema *crm.Schema
	// ranges are the comprehension variables in scope that range over a
	// list of constants: the list's elements.
	ranges map[string][]ast.Expr
	seen   map[int64]bool // constants already reported
	iss    []*celIssue
}

func (c *picklistChecker) walk(e ast.Expr) {
	switch e.Kind() {
	case ast.CallKind:
		call := e.AsCall()
		args := call.Args()
		switch call.FunctionName() {
		case operators.Equals, operators.NotEquals:
			if len(args) == 2 {
				c.compare(args[0], args[1])
				c.compare(args[1], args[0])
			}
		case operators.In:
			if len(args) == 2 && args[1].Kind() == ast.ListKind {
				if obj, f := c.field(args[0]); f != nil {
					for _, el := range args[1].AsList().Elements() {
						c.constant(obj, f, el)
					}
				}
			}
		}
		if call.IsMemberFunction() {
			c.walk(call.Target())
		}
		for _, arg := range args {
			c.walk(arg)
		}
	case ast.SelectKind:
		c.walk(e.AsSelect().Operand())
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			c.walk(el)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			c.walk(en.AsMapEntry().Key())
			c.walk(en.AsMapEntry().Value())
		}
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			c.walk(f.AsStructField().Value())
		}
	case ast.ComprehensionKind:
		comp := e.AsComprehension()
		c.walk(comp.IterRange())
		c.walk(comp.AccuInit())
		// The body sees the iteration variables, which hide any outer
		// variable of the same name.
		saved := map[string][]ast.Expr{}
		bind := func(name string, elems []ast.Expr) {
			if name == "" {
				return
			}
			if _, done := saved[name]; !done {
				saved[name] = c.ranges[name]
			}
			if elems == nil {
				delete(c.ranges, name)
			} else {
				c.ranges[name] = elems
			}
		}
		var elems []ast.Expr
		if r := comp.IterRange(); r.Kind() == ast.ListKind && !comp.HasIterVar2() {
			elems = r.AsList().Elements()
		}
		bind(comp.IterVar(), elems)
		if comp.HasIterVar2() {
			bind(comp.IterVar2(), nil)
		}
		bind(comp.AccuVar(), nil)
		c.walk(comp.LoopCondition())
		c.walk(comp.LoopStep())
		c.walk(comp.Result())
		for name, prev := range saved {
			if prev == nil {
				delete(c.ranges, name)
			} else {
				c.ranges[name] = prev
			}
		}
	}
}

// compare checks x == y (or !=) when x is a field with values and y a
// constant, or a comprehension variable ranging over constants.
func (c *picklistChecker) compare(x, y ast.Expr) {
	obj, f := c.field(x)
	if f == nil {
		return
	}
	switch y.Kind() {
	case ast.LiteralKind:
		c.constant(obj, f, y)
	case ast.IdentKind:
		for _, el := range c.ranges[y.AsIdent()] {
			c.constant(obj, f, el)
		}
	}
}

// field returns the field e selects, when it has values, and its object.
func (c *picklistChecker) field(e ast.Expr) (*crm.Object, *crm.Field) {
	if e.Kind() != ast.SelectKind || e.AsSelect().IsTestOnly() {
		return nil, nil
	}
	sel := e.AsSelect()
	t := c.a.GetType(sel.Operand().ID())
	if t == nil || t.Kind() != types.StructKind {
		return nil, nil
	}
	obj, ok := c.schema.ObjectOfType(t.TypeName())
	if !ok {
		return nil, nil
	}
	f, ok := obj.Field(sel.FieldName())
	if !ok || f.Values == nil {
		return nil, nil
	}
	return obj, f
}

// constant reports e, a constant compared with field f of obj, when it
// is a string that is not one of f's values.
func (c *picklistChecker) constant(obj *crm.Object, f *crm.Field, e ast.Expr) {
	if e.Kind() != ast.LiteralKind || c.seen[e.ID()] {
		return
	}
	s, ok := e.AsLiteral().(types.String)
	if !ok || s == "" {
		return
	}
	for _, v := range f.Values {
		if string(s) == v {
			return
		}
	}
	c.seen[e.ID()] = true
	msg := fmt.Sprintf("%q is not a value of %s.%s (%s)", string(s), obj.Name, f.Name, f.ValuesText())
	if near, ok := suggest.Nearest(string(s), f.Values); ok {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	loc := c.a.SourceInfo().GetStartLocation(e.ID())
	c.iss = append(c.iss, &celIssue{line: loc.Line(), col: loc.Column(), msg: msg})
}
