package rules

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"github.com/whenthen/whenthen/crm"
)

// widenIntLiterals lets `record.amount == 250000` and
// `record.amount in [10, 20]` type-check on a double field: CEL orders
// numbers across int and double but has no equality between them, so an
// integer literal compared for equality with a double field of a record
// variable is rewritten to the same value as a double before checking.
// Positions and expression ids are kept.
func (c *Compiler) widenIntLiterals(parsed *cel.Ast, key string) {
	fac := ast.NewExprFactory()
	vars := c.varObjects(key)
	isDouble := func(e ast.Expr) bool {
		if e.Kind() != ast.SelectKind || e.AsSelect().IsTestOnly() {
			return false
		}
		op := e.AsSelect().Operand()
		if op.Kind() != ast.IdentKind {
			return false
		}
		o, ok := vars[op.AsIdent()]
		if !ok {
			return false
		}
		f, ok := o.Field(e.AsSelect().FieldName())
		return ok && f.Kind == crm.KindDouble
	}
	widen := func(e ast.Expr) {
		if e.Kind() != ast.LiteralKind {
			return
		}
		if i, ok := e.AsLiteral().(types.Int); ok && int64(i) == int64(float64(i)) {
			e.SetKindCase(fac.NewLiteral(e.ID(), types.Double(float64(i))))
		}
	}
	ast.PostOrderVisit(parsed.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		args := call.Args()
		if len(args) != 2 {
			return
		}
		switch call.FunctionName() {
		case operators.Equals, operators.NotEquals:
			if isDouble(args[0]) {
				widen(args[1])
			} else if isDouble(args[1]) {
				widen(args[0])
			}
		case operators.In:
			if isDouble(args[0]) && args[1].Kind() == ast.ListKind {
				for _, el := range args[1].AsList().Elements() {
					widen(el)
				}
			}
		}
	}))
}

// varObjects maps the record-typed variables of an environment to their
// objects.
func (c *Compiler) varObjects(key string) map[string]*crm.Object {
	s := c.schema
	m := map[string]*crm.Object{VarAccount: stdObject(s, crm.ObjAccount), VarOpportunity: stdObject(s, crm.ObjOpportunity), VarTracker: s.Tracker}
	for _, name := range crm.CRMObjects {
		if key == envKey(TriggerRecord, name) {
			m[VarRecord], m[VarBefore] = stdObject(s, name), stdObject(s, name)
		}
		if key == envKey(TriggerDate, name) {
			m[VarRecord] = stdObject(s, name)
		}
	}
	return m
}
