package engine

import (
	"context"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/rules"
)

// Related records: a condition or who of an opportunity, contact, call or
// date automation may read `account` and `opportunity`. When the event
// carries them (a tracker or call event may), they are the event's; else
// they are the stored snapshots of the records the event names by id
// (account_id, opportunity_id), as of the last event of those records the
// engine processed. A workspace whose automations read a related record
// keeps the snapshots of that object; one never seen reads as an empty
// record (every field its zero value, has() false). Lookups cost a Redis
// round trip per batch, and only for events whose trigger group has an
// automation that reads the related record.

// related is what an automation reads of related records: its condition,
// its who, and a call's brief (its record is the call's account or
// opportunity). An account automation's `account` is its own record, and
// an opportunity's `opportunity`: no lookup.
func related(a *rules.Automation) rules.Related {
	r := relatedRead(a)
	switch a.Trigger.Object {
	case crm.ObjAccount:
		r &^= rules.RelatedAccount
	case crm.ObjOpportunity:
		r &^= rules.RelatedOpportunity
	}
	return r
}

func relatedRead(a *rules.Automation) rules.Related {
	var r rules.Related
	if a.If != nil {
		r |= a.If.Related()
	}
	if a.Flow != nil && a.Flow.Who != nil {
		r |= a.Flow.Who.Related()
	}
	if a.Brief != nil && a.Trigger.Kind == rules.TriggerCall {
		r |= briefRelated(a.Brief.Kind)
	}
	return r
}

func briefRelated(kind string) rules.Related {
	if kind == crm.ObjAccount {
		return rules.RelatedAccount
	}
	return rules.RelatedOpportunity
}

// relatedIDs are the ids of the related records an event (or a timer's
// record) names: a call's account_id and opportunity_id, a record's
// account_id and opportunity_id fields when its object has them. A
// record is not its own related record.
func relatedIDs(ev *Event, rec *crm.Record) (account, opportunity string) {
	src := rec
	if ev.Call != nil {
		src = ev.Call
	}
	if src == nil {
		return "", ""
	}
	o := src.Object()
	if o.Name != crm.ObjAccount {
		if _, ok := o.Field("account_id"); ok {
			account = src.String("account_id")
		}
	}
	if o.Name != crm.ObjOpportunity {
		if _, ok := o.Field("opportunity_id"); ok {
			opportunity = src.String("opportunity_id")
		}
	}
	return account, opportunity
}

// relatedRefs are the stored records ev's automations need and the event
// does not carry: need is its trigger group's, rec its record (after the
// change).
func relatedRefs(ev *Event, rec *crm.Record, need rules.Related, refs []store.RecordRef) []store.RecordRef {
	if need == 0 {
		return refs
	}
	acc, opp := relatedIDs(ev, rec)
	if need&rules.RelatedAccount != 0 && ev.Account == nil && acc != "" {
		refs = append(refs, store.RecordRef{Workspace: ev.Workspace, Object: crm.ObjAccount, ID: acc})
	}
	if need&rules.RelatedOpportunity != 0 && ev.Opportunity == nil && opp != "" {
		refs = append(refs, store.RecordRef{Workspace: ev.Workspace, Object: crm.ObjOpportunity, ID: opp})
	}
	return refs
}

// loadRelated loads, after the records' own snapshots, the related
// records the batch's events need (a partial event names them through its
// stored state).
func (b *batch) loadRelated(ctx context.Context, events []*Event) error {
	var refs []store.RecordRef
	for _, ev := range events {
		w := b.ix.byWS[ev.Workspace]
		if w == nil {
			continue
		}
		need := w.relatedNeed(ev)
		if need == 0 {
			continue
		}
		rec := ev.Record
		if rec != nil && ev.Partial {
			if s := b.state[store.RecordRef{Workspace: ev.Workspace, Object: ev.Object, ID: ev.RecordID()}]; s != nil {
				rec = s.Record.Merge(rec)
			}
		}
		refs = b.unloaded(relatedRefs(ev, rec, need, refs[:len(refs):len(refs)]), len(refs))
	}
	return b.load(ctx, refs)
}

// unloaded keeps, of refs[from:], those not loaded yet, and marks them.
func (b *batch) unloaded(refs []store.RecordRef, from int) []store.RecordRef {
	out := refs[:from]
	for _, r := range refs[from:] {
		if !b.loaded[r] {
			b.loaded[r] = true
			out = append(out, r)
		}
	}
	return out
}

// bindRelated sets the related records the event does not carry from the
// batch's state, for an activation whose group reads them.
func (b *batch) bindRelated(act *activation, ev *Event, rec *crm.Record, need rules.Related) {
	if need == 0 {
		return
	}
	acc, opp := relatedIDs(ev, rec)
	if need&rules.RelatedAccount != 0 && ev.Account == nil && acc != "" {
		if s := b.state[store.RecordRef{Workspace: ev.Workspace, Object: crm.ObjAccount, ID: acc}]; s != nil {
			act.account = s.Record
		}
	}
	if need&rules.RelatedOpportunity != 0 && ev.Opportunity == nil && opp != "" {
		if s := b.state[store.RecordRef{Workspace: ev.Workspace, Object: crm.ObjOpportunity, ID: opp}]; s != nil {
			act.opportunity = s.Record
		}
	}
}
