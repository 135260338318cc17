package rules

import (
	"errors"
	"sort"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/crm"
)

// recordVars are the variables that hold records.
var recordVars = map[string]bool{VarRecord: true, VarBefore: true, VarAccount: true, VarOpportunity: true, VarTracker: true, VarCall: true, VarEvent: true}

// FieldRef is a field of a record variable that a condition reads:
// record.stage is {Var: "record", Field: stage}.
type FieldRef struct {
	Var   string
	Field *crm.Field
}

// String is the reference as written: "record.stage".
func (f FieldRef) String() string { return f.Var + "." + f.Field.Name }

// Reads returns, for each of the condition's Clauses, the record fields
// it reads (selected, or tested with has()), in source order, each once
// per clause. Fields of comprehension variables (p.role in
// tracker.participants.filter(p, ...)) are not record fields; the list
// they come from is. Programs keep no AST, so Reads checks the
// expression again: callers cache its result.
func (c *Condition) Reads(s *crm.Schema) ([][]FieldRef, error) {
	a := c.Program.AST()
	if a == nil {
		return nil, errors.New("rules: the condition does not check again")
	}
	conj := conjuncts(a.Expr(), nil)
	if len(conj) != len(c.Clauses) {
		// One clause for the whole condition (clauses could not be cut).
		conj = []ast.Expr{a.Expr()}
	}
	info := a.SourceInfo()
	out := make([][]FieldRef, len(conj))
	for i, e := range conj {
		type read struct {
			at  int32
			ref FieldRef
		}
		var reads []read
		seen := map[FieldRef]bool{}
		ast.PostOrderVisit(e, ast.NewExprVisitor(func(x ast.Expr) {
			if x.Kind() != ast.SelectKind {
				return
			}
			sel := x.AsSelect()
			op := sel.Operand()
			if op.Kind() != ast.IdentKind {
				return
			}
			r, ok := a.ReferenceMap()[op.ID()]
			if !ok || r.Value != nil || r.Name != op.AsIdent() || !recordVars[r.Name] {
				return // not a record variable of the environment
			}
			t := a.GetType(op.ID())
			if t == nil || t.Kind() != types.StructKind {
				return
			}
			obj, ok := s.ObjectOfType(t.TypeName())
			if !ok {
				return
			}
			f, ok := obj.Field(sel.FieldName())
			if !ok {
				return
			}
			fr := FieldRef{Var: r.Name, Field: f}
			if seen[fr] {
				return
			}
			seen[fr] = true
			at := int32(0)
			if rg, ok := info.GetOffsetRange(x.ID()); ok {
				at = rg.Start
			}
			reads = append(reads, read{at, fr})
		}))
		sort.SliceStable(reads, func(i, j int) bool { return reads[i].at < reads[j].at })
		for _, r := range reads {
			out[i] = append(out[i], r.ref)
		}
	}
	return out, nil
}
