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
	// The event, changed and now variables are built on first use from
	// these (most conditions read none): ev's fields and the time by b,
	// and the fields after changed from before (from the empty record if
	// created).
	b               *batch
	ev              *Event
	lazyChanged     bool
	after, prior    *crm.Record
	createdByChange bool
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
			a.changed = a.changedValue()
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
		if a.event == nil && a.ev != nil {
			a.event = a.b.eventValue(a.ev.ID, a.ev.Type, a.ev.Time, a.ev.Object, a.ev.Workspace)
		}
		v = a.event
	case rules.VarNow:
		if a.now == nil && a.b != nil {
			a.now = types.Timestamp{Time: a.b.now}
		}
		v = a.now
	}
	return v, v != nil
}

func (a *activation) Parent() interpreter.Activation { return nil }

// changedValue is the changed variable: the fields the change set.
func (a *activation) changedValue() ref.Val {
	switch {
	case !a.lazyChanged:
	case a.prior != nil:
		return types.NewStringList(types.DefaultTypeAdapter, a.prior.Changed(a.after))
	case a.createdByChange:
		return types.NewStringList(types.DefaultTypeAdapter, a.after.Changed(a.after.Object().Empty()))
	}
	return emptyStrings
}

var emptyStrings = types.NewStringList(types.DefaultTypeAdapter, nil)

func orEmpty(r *crm.Record, o *crm.Object) ref.Val {
	if r == nil {
		return o.Empty()
	}
	return r
}
