package engine

import (
	"context"
	"sync"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/internal/utf8x"
	"github.com/whenthen/whenthen/rules"
)

// A run's why (docs/outputs.md): the condition's top-level clauses, each
// with its result, and the values of the fields they read. A run exists
// only when the condition held, so each clause of a conjunction held and
// nothing is evaluated again: the values are read from the activation.
// An error run evaluates each clause on its own to show which failed.

// whyPlan is what a condition's why needs, worked out once per automation
// and rule set: the clause texts and the fields read, in order, once each.
type whyPlan struct {
	clauses []string
	fields  []rules.FieldRef
}

// whyPlans caches the plans of a rule set's automations.
type whyPlans struct {
	schema *crm.Schema
	m      sync.Map // *rules.Automation → *whyPlan
}

func (p *whyPlans) of(a *rules.Automation) *whyPlan {
	if v, ok := p.m.Load(a); ok {
		return v.(*whyPlan)
	}
	c := a.If
	plan := &whyPlan{}
	for _, cl := range c.Clauses {
		plan.clauses = append(plan.clauses, utf8x.Cut(cl.Text, actions.MaxValueBytes))
	}
	reads, err := c.Reads(p.schema)
	if err != nil || len(reads) != len(c.Clauses) {
		// One clause: the whole condition.
		plan.clauses = []string{utf8x.Cut(c.Expr, actions.MaxValueBytes)}
	}
	seen := map[rules.FieldRef]bool{}
	for _, cl := range reads {
		for _, f := range cl {
			if !seen[f] {
				seen[f] = true
				plan.fields = append(plan.fields, f)
			}
		}
	}
	v, _ := p.m.LoadOrStore(a, plan)
	return v.(*whyPlan)
}

// why is the why of a matched run: every clause held. heldBefore is set
// for an on_enter run that looked at the state before the change.
func (b *batch) why(a *rules.Automation, act *activation, heldBefore *bool) *actions.Why {
	plan := b.ix.whys.of(a)
	w := &actions.Why{Clauses: make([]actions.Clause, len(plan.clauses)), HeldBefore: heldBefore}
	for i, text := range plan.clauses {
		w.Clauses[i] = actions.Clause{Text: text, Result: &held}
	}
	b.whyValues(w, plan, act)
	return w
}

// whyError is the why of a run whose condition failed: each clause
// evaluated on its own, its result or its error.
func (b *batch) whyError(ctx context.Context, a *rules.Automation, act *activation) *actions.Why {
	plan := b.ix.whys.of(a)
	w := &actions.Why{Clauses: make([]actions.Clause, len(plan.clauses))}
	progs, err := b.ix.set.ClausePrograms(a)
	if err != nil || len(progs) != len(plan.clauses) {
		progs = nil
	}
	for i, text := range plan.clauses {
		w.Clauses[i].Text = text
		if progs == nil {
			continue // cannot tell clause by clause: the run's error says it all
		}
		v, err := progs[i].Eval(ctx, act)
		switch {
		case err != nil:
			w.Clauses[i].Error = utf8x.Cut(err.Error(), actions.MaxValueBytes)
		case v == types.True:
			w.Clauses[i].Result = &held
		case v == types.False:
			w.Clauses[i].Result = &notHeld
		default:
			w.Clauses[i].Error = "gave a " + v.Type().TypeName() + ", not a bool"
		}
	}
	b.whyValues(w, plan, act)
	return w
}

// whyValues reads the plan's fields from the activation into w, within
// actions.MaxWhyBytes all told.
func (b *batch) whyValues(w *actions.Why, plan *whyPlan, act *activation) {
	size := 64 // the object's own keys
	for _, c := range w.Clauses {
		size += len(c.Text) + len(c.Error) + 32
	}
	w.Values = make([]actions.Value, 0, len(plan.fields))
	var buf []byte
	for _, f := range plan.fields {
		v, _ := act.ResolveName(f.Var)
		rec, ok := v.(*crm.Record)
		if !ok || rec == nil {
			continue
		}
		start := len(buf)
		truncated := false
		if rec.IsSet(f.Field) {
			var err error
			buf, truncated, err = crm.AppendValue(buf, rec.FieldValue(f.Field), actions.MaxValueBytes)
			if err != nil {
				buf = buf[:start]
				continue
			}
		}
		name := f.String()
		if size+len(name)+len(buf)-start+40 > actions.MaxWhyBytes {
			buf = buf[:start]
			w.Truncated = true
			continue
		}
		size += len(name) + len(buf) - start + 40
		w.Values = append(w.Values, actions.Value{Field: name, Truncated: truncated})
		if len(buf) > start {
			w.Values[len(w.Values)-1].Value = buf[start:len(buf):len(buf)]
		}
	}
}
