package engine

import (
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/rules"
)

// activation binds the CEL variables of one evaluation. It is built once
// per event and reused by every candidate automation; for on_enter the
// record is swapped for the before image.
type activation struct {
	record, before, account, opportunity, tracker, call, event ref.Val
	changed                                                    ref.Val
	now                                                        ref.Val
	// lazy and lazyChanged build the event and changed variables on first
	// use: most conditions read neither.
	lazy, lazyChanged func() ref.Val
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	var v ref.Val
	switch name {
	case rules.VarRecord:
		v = a.record
	case rules.VarBefore:
		v = a.before
	case rules.VarChanged:
		if a.changed == nil {
			a.changed = emptyStrings
			if a.lazyChanged != nil {
				a.changed = a.lazyChanged()
			}
		}
		v = a.changed
	case rules.VarAccount:
		v = a.account
	case rules.VarOpportunity:
		v = a.opportunity
	case rules.VarTracker:
		v = a.tracker
	case rules.VarCall:
		v = a.call
	case rules.VarEvent:
		if a.event == nil && a.lazy != nil {
			a.event = a.lazy()
		}
		v = a.event
	case rules.VarNow:
		v = a.now
	}
	return v, v != nil
}

func (a *activation) Parent() interpreter.Activation { return nil }

var emptyStrings = types.NewStringList(types.DefaultTypeAdapter, nil)

func orEmpty(r *crm.Record, o *crm.Object) ref.Val {
	if r == nil {
		return o.Empty()
	}
	return r
}
