package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/rules"
)

// This file holds the engine's hooks for rule authoring tools (package
// authoring: `whenthen explain` and the clause coverage of `whenthen
// test`). They bind the CEL variables of an event as Process and FireDue
// bind them, from the engine's state, without changing that state.

// Bindings are the CEL variables an event binds for the conditions of the
// automations it can trigger.
type Bindings struct {
	// Vars binds every condition variable, with the record as it is after
	// the change: what a condition is evaluated with.
	Vars interpreter.Activation
	// Record is the record after the change (for a partial event, merged
	// into its stored state); nil for a tracker event.
	Record *crm.Record
	// Before is the record as it was before the change; nil on create and
	// when the prior state is unknown.
	Before *crm.Record
	// BeforeVars binds the variables with the record swapped for Before,
	// as an on_enter automation evaluates its condition to tell whether it
	// already held; nil when on_enter does not look back (a create, a
	// partial update of a record never seen, or a trigger without record).
	BeforeVars interpreter.Activation
	// BeforeFrom tells where Before comes from: BeforeFromEvent (the
	// event's before laid over the record), BeforeFromState (the stored
	// state of the record), BeforeUnchanged (a full record with neither:
	// taken as unchanged), or "" when there is no Before.
	BeforeFrom string
	// Stale is set when the event is older than the stored state of its
	// record: Process ignores it.
	Stale bool
}

// Sources of Bindings.Before.
const (
	BeforeFromEvent = "event"
	BeforeFromState = "state"
	BeforeUnchanged = "unchanged"
)

// Bind returns the variables ev binds, reading (not writing) the stored
// state of its record. With Options.SimulatedTime, `now` is the event's
// time, as in a Replay; otherwise the engine's clock.
func (e *Engine) Bind(ctx context.Context, ev *Event) (*Bindings, error) {
	b := e.newBatch(e.ix.Load(), "")
	b.now = e.clock()
	if e.opts.SimulatedTime {
		b.now = ev.Time
	}
	var need rules.Related
	if w := b.ix.byWS[ev.Workspace]; w != nil {
		need = w.relatedNeed(ev)
	}
	if err := b.loadState(ctx, []*Event{ev}); err != nil {
		return nil, err
	}
	if err := b.loadRelated(ctx, []*Event{ev}); err != nil {
		return nil, err
	}
	if ev.Type == TypeTrackerDetected || ev.Record == nil {
		act := b.activation(ev, nil, nil, nil)
		b.bindRelated(act, ev, nil, need)
		return &Bindings{Vars: act}, nil
	}
	stored := b.state[store.RecordRef{Workspace: ev.Workspace, Object: ev.Object, ID: ev.RecordID()}]
	bd := &Bindings{Stale: stored != nil && ev.Time.Before(stored.Time)}
	after, before, known := images(ev, stored)
	var changed ref.Val = emptyStrings
	if before != nil {
		changed = types.NewStringList(types.DefaultTypeAdapter, before.Changed(after))
	} else if ev.Type == TypeRecordCreated {
		changed = types.NewStringList(types.DefaultTypeAdapter, after.Changed(after.Object().Empty()))
	}
	act := b.activation(ev, after, before, changed)
	b.bindRelated(act, ev, after, need)
	bd.Vars, bd.Record = act, after
	if ev.Type != TypeRecordCreated && known {
		bd.Before = before
		switch {
		case ev.Before != nil:
			bd.BeforeFrom = BeforeFromEvent
		case stored != nil:
			bd.BeforeFrom = BeforeFromState
		default:
			bd.BeforeFrom = BeforeUnchanged
		}
		swapped := *act
		swapped.record = before
		bd.BeforeVars = &swapped
	}
	return bd, nil
}

// DueBinding is a date timer due to fire, and the variables its
// automation's condition will be evaluated with.
type DueBinding struct {
	Automation *rules.Automation
	RecordID   string
	Due        time.Time
	// EventID is the timer firing's event id (event_id of its run).
	EventID string
	Vars    interpreter.Activation
}

// BindDue returns the date automations that FireDue would fire for the
// timers due at or before upTo, earliest first, without claiming them.
// Timers that FireDue would drop (automation gone, record deleted, date
// moved) are left out.
func (e *Engine) BindDue(ctx context.Context, upTo time.Time) ([]DueBinding, error) {
	due, err := e.store.PeekDue(ctx, upTo)
	if err != nil {
		return nil, fmt.Errorf("read due timers: %w", err)
	}
	b := e.newBatch(e.ix.Load(), "")
	if err := b.loadTimers(ctx, due); err != nil {
		return nil, err
	}
	var out []DueBinding
	for i := range due {
		t := &due[i]
		snap, fire := b.plan(t, upTo)
		// In simulated time plan gives one due time per call, as FireDue
		// fires them; list every due time up to upTo.
		for e.opts.SimulatedTime && len(fire) > 0 {
			next := *t
			next.Fired = t.NewFired
			_, more := b.plan(&next, upTo)
			if len(more) == 0 {
				break
			}
			fire = append(fire, more...)
			*t = next
		}
		for _, f := range fire {
			b.now = e.clock()
			if e.opts.SimulatedTime {
				b.now = f.due
			}
			id := timerEventID(t.Workspace, f.a.ID, t.RecordID, f.due)
			ev := &Event{ID: id, Type: TypeDateDue, Time: f.due, Workspace: t.Workspace, Object: t.Object}
			act := b.activation(ev, snap.Record, nil, nil)
			if g := b.dateGroupOf(t.TimerRef); g != nil {
				b.bindRelated(act, ev, snap.Record, g.related)
			}
			out = append(out, DueBinding{Automation: f.a, RecordID: t.RecordID, Due: f.due, EventID: id, Vars: act})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Due.Before(out[j].Due) })
	return out, nil
}

// StateSource is a store whose state CopyState reads.
type StateSource interface {
	// Export reads the settled state of sel (pending claims left out).
	Export(ctx context.Context, sel store.Selection) (*store.State, error)
}

// StateSink is a store CopyState writes to.
type StateSink interface {
	// Import writes exported state.
	Import(ctx context.Context, st *store.State) error
}

var (
	_ StateSource = (*store.Redis)(nil)
	_ StateSink   = (*store.Redis)(nil)
	_ StateSource = (*store.Memory)(nil)
	_ StateSink   = (*store.Memory)(nil)
)

// CopyState copies from src into dst what processing ev can read of the
// state, reading src only: the stored snapshot of the event's record and,
// for each run in outs (the outputs of a dry run of ev against dst), the
// cooldown of its automation and record and the dedup and enrollment
// entries of its actions. Processing ev against dst then decides as it
// would against src, and src is never written: `whenthen explain
// --redis-url` explains against live state this way. Claims still pending
// in src (an instance producing them right now) are not copied, nor is
// time to live: windows are decided by the values.
func CopyState(ctx context.Context, src StateSource, dst StateSink, ev *Event, outs []*Output) error {
	var sel store.Selection
	if ev.Record != nil && ev.Type != TypeTrackerDetected {
		sel.Records = append(sel.Records, store.RecordRef{Workspace: ev.Workspace, Object: ev.Object, ID: ev.RecordID()})
	}
	for _, out := range outs {
		for _, r := range out.Runs {
			if r.RecordID != "" {
				sel.Cooldowns = append(sel.Cooldowns, store.CooldownRef{Workspace: r.Workspace, AutomationID: r.AutomationID, RecordID: r.RecordID})
			}
		}
		for _, a := range out.Actions {
			sel.Actions = append(sel.Actions, store.ActionRef{Workspace: a.Workspace, ActionID: a.ActionID})
			if a.Flow != nil {
				sel.Enrollments = append(sel.Enrollments, store.EnrollmentRef{Workspace: a.Workspace, Flow: a.Flow.ID, Person: a.Flow.PersonID})
			}
		}
	}
	st, err := src.Export(ctx, sel)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if err := dst.Import(ctx, st); err != nil {
		return fmt.Errorf("copy state: %w", err)
	}
	return nil
}
