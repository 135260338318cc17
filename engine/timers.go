package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/rules"
)

// TypeDateDue is the event type of a date timer firing (event.type in
// conditions of date triggers).
const TypeDateDue = "date.due"

// dateGroup is the date automations of one workspace on one date field
// of an object: they share the record's timer for that field.
type dateGroup struct {
	workspace, object string
	field             *crm.Field
	autos             []*rules.Automation
	// maxOffset is the largest offset of autos; anyAt tells whether one
	// moves its due time to a time of day (at most a day later).
	maxOffset time.Duration
	anyAt     bool
	// maxCatchUp is the largest catch_up of autos: a timer armed at t
	// counts its dues after t - maxCatchUp, each automation's after t -
	// its own catch_up.
	maxCatchUp time.Duration
	// related is what the group's automations read of related records.
	related rules.Related
	// sig is the signature of the automations' timing: when it changes,
	// the timers of the group's records are re-armed (walks.go); settled
	// once the store says they are armed for it.
	sig     string
	settled atomic.Bool
}

// nextDue is the earliest due time of the group's automations for date
// that is after `after` and, for the date first seen at seen, within the
// automation's catch_up; zero when there is none.
func (g *dateGroup) nextDue(date, after, seen time.Time) time.Time {
	var next time.Time
	for _, a := range g.autos {
		due := a.Trigger.Date.Due(date).Truncate(time.Millisecond)
		if due.After(after) && caughtUp(a, due, seen) && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	return next
}

// caughtUp tells whether a's due is within its catch_up of when the
// timer's date was first seen: a due older than that never fires. A timer
// armed before catch_up existed (seen zero) fires every due after its
// fired mark.
func caughtUp(a *rules.Automation, due, seen time.Time) bool {
	return seen.IsZero() || due.After(seen.Add(-a.Trigger.Date.CatchUp))
}

func (w *wsIndex) dateGroup(object, field string) *dateGroup {
	for _, g := range w.dates[object] {
		if g.field.Name == field {
			return g
		}
	}
	return nil
}

// armTimers arms, re-arms or cancels the record's timers after an event,
// one per date field that date automations use: armed for the date's due
// times after the event, cancelled when the field is cleared. A field
// whose stored state (prior) already holds the same date is left alone.
func (b *batch) armTimers(w *wsIndex, ev *Event, after, prior *crm.Record) {
	for _, g := range w.dates[ev.Object] {
		v, set := after.Get(g.field).(types.Timestamp)
		if prior != nil {
			pv, pset := prior.Get(g.field).(types.Timestamp)
			if set == pset && (!set || pv.Time.UnixMilli() == v.Time.UnixMilli()) {
				continue
			}
		}
		ref := store.TimerRef{Workspace: ev.Workspace, Object: ev.Object, Field: g.field.Name, RecordID: after.ID()}
		if !set {
			b.cancelTimerRef(ref)
			continue
		}
		arm := g.arm(ref, v.Time, ev.Time)
		if latest := latestDue(w, ev.Object, after); latest.After(b.now) {
			arm.Keep = latest.Sub(b.now)
		}
		b.out.writes.Arms = append(b.out.writes.Arms, arm)
		if !arm.Next.IsZero() {
			b.e.m.timers.WithLabelValues("armed").Inc()
		}
	}
}

// arm is the timer of a record's date first seen at seen: its dues after
// seen, and those before it within each automation's catch_up.
func (g *dateGroup) arm(ref store.TimerRef, date, seen time.Time) store.Arm {
	date = date.Truncate(time.Millisecond)
	fired := seen.Add(-g.maxCatchUp)
	return store.Arm{TimerRef: ref, Date: date, Fired: fired, Seen: seen, Next: g.nextDue(date, fired, seen), Sig: g.sig}
}

// latestDue bounds the latest due time of the record's date timers in the
// workspace from above: its snapshot and timers must outlive them. It is
// exact for automations without `at`, and at most a day and an hour late
// for those with one (a time of day on the due date's local day).
func latestDue(w *wsIndex, object string, rec *crm.Record) time.Time {
	var latest time.Time
	if w == nil {
		return latest
	}
	for _, g := range w.dates[object] {
		v, ok := rec.Get(g.field).(types.Timestamp)
		if !ok {
			continue
		}
		due := v.Time.Add(g.maxOffset)
		if g.anyAt {
			due = due.Add(25 * time.Hour)
		}
		if due.After(latest) {
			latest = due
		}
	}
	return latest
}

func (b *batch) cancelTimers(w *wsIndex, ev *Event) {
	for _, g := range w.dates[ev.Object] {
		b.cancelTimerRef(store.TimerRef{Workspace: ev.Workspace, Object: ev.Object, Field: g.field.Name, RecordID: ev.RecordID()})
	}
}

func (b *batch) cancelTimerRef(ref store.TimerRef) {
	w := &b.out.writes
	// An arm of this batch is undone (store.Writes).
	w.Arms = slices.DeleteFunc(w.Arms, func(a store.Arm) bool { return a.TimerRef == ref })
	w.Cancels = append(w.Cancels, ref)
	b.e.m.timers.WithLabelValues("cancelled").Inc()
}

// timerEventID is the deterministic event id of a timer firing: every
// instance that fires the same timer produces the same action ids.
func timerEventID(ws, automation, record string, due time.Time) string {
	h := sha256.New()
	for _, s := range []string{ws, automation, record, strconv.FormatInt(due.UnixMilli(), 10)} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return "timer-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// firing is one date automation due to fire on a timer.
type firing struct {
	a   *rules.Automation
	due time.Time
}

// plan decides what a claimed timer fires: the group's automations due
// after the timer's fired mark and at or before the horizon (upTo; in
// simulated time, the earliest such due alone, so that timers fire in
// time order). It sets the timer's new fired mark and next due. A timer
// whose automations are gone, whose record is gone or whose date moved
// fires nothing and leaves the queue (a re-armed one keeps its new entry).
func (b *batch) plan(t *store.DueTimer, upTo time.Time) (*store.Snapshot, []firing) {
	t.NewFired, t.Next = t.Fired, time.Time{}
	w := b.ix.byWS[t.Workspace]
	if w == nil {
		return nil, nil
	}
	g := w.dateGroup(t.Object, t.Field)
	snap := b.state[store.RecordRef{Workspace: t.Workspace, Object: t.Object, ID: t.RecordID}]
	if g == nil || snap == nil {
		return nil, nil
	}
	v, set := snap.Record.Get(g.field).(types.Timestamp)
	if !set || v.Time.UnixMilli() != t.Date.UnixMilli() {
		return nil, nil
	}
	horizon := upTo
	if b.e.opts.SimulatedTime {
		horizon = g.nextDue(t.Date, t.Fired, t.Seen)
		if horizon.IsZero() || horizon.After(upTo) {
			t.Next = horizon
			return snap, nil
		}
	}
	var fire []firing
	for _, a := range g.autos {
		due := a.Trigger.Date.Due(t.Date).Truncate(time.Millisecond)
		if due.After(t.Fired) && !due.After(horizon) && caughtUp(a, due, t.Seen) {
			fire = append(fire, firing{a, due})
		}
	}
	sort.SliceStable(fire, func(i, j int) bool { return fire[i].due.Before(fire[j].due) })
	t.NewFired = horizon
	t.Next = g.nextDue(t.Date, horizon, t.Seen)
	return snap, fire
}

// FireDue does the work due at or before upTo: it fires the date timers
// due, at most limit of them, re-evaluating each automation's condition
// against the latest record state, then walks the next chunk of a due
// walk (walks.go: a built-in schedule's tick, re-armed timers) within
// what is left of limit. In simulated time it does the one thing due
// first: one timer, or one chunk of a walk. Timers and walks are leased:
// the output's Commit acknowledges them (and queues a timer's next due,
// advances a walk), and a crash before it lets another instance do them
// after the lease. A firing after its due time records the lateness in
// late_ms; Output.Work tells whether anything was due.
func (e *Engine) FireDue(ctx context.Context, upTo time.Time, limit int) (*Output, error) {
	if limit <= 0 {
		limit = 1000
	}
	b := e.newBatch(e.ix.Load(), "")
	walks, err := b.dueWalks(ctx, upTo, e.clock())
	if err != nil {
		return nil, err
	}
	timers := limit
	if e.opts.SimulatedTime {
		timers = 1
		if len(walks) > 0 {
			first, err := b.firstTimer(ctx, upTo)
			if err != nil {
				return nil, fmt.Errorf("read due timers: %w", err)
			}
			if first.IsZero() || walks[0].at.Before(first) {
				timers = 0 // the walk comes first
			} else {
				walks = nil
			}
		}
	}
	if timers > 0 {
		if err := b.fireTimers(ctx, upTo, timers); err != nil {
			return nil, err
		}
	}
	if budget := limit - b.out.work; len(walks) > 0 && budget > 0 {
		if e.opts.SimulatedTime {
			budget = walkChunk
		}
		if _, err := b.walkOne(ctx, walks, budget); err != nil {
			return nil, err
		}
	}
	if err := b.finish(ctx); err != nil {
		return nil, err
	}
	return b.out, nil
}

// fireTimers fires the date timers due at or before upTo, at most limit.
func (b *batch) fireTimers(ctx context.Context, upTo time.Time, limit int) error {
	e := b.e
	due, err := e.store.ClaimDue(ctx, upTo, e.clock(), limit)
	if err != nil {
		e.m.storeErrors.WithLabelValues("claim_timers").Inc()
		return fmt.Errorf("claim due timers: %w", err)
	}
	if err := b.loadTimers(ctx, due); err != nil {
		return err
	}
	for i := range due {
		t := &due[i]
		snap, fire := b.plan(t, upTo)
		if snap == nil {
			e.m.timers.WithLabelValues("dropped").Inc()
			continue
		}
		for _, f := range fire {
			a := f.a
			b.now = e.clock()
			if e.opts.SimulatedTime {
				// At its due time, or, caught up, when its date was first seen.
				b.now = f.due
				if t.Seen.After(f.due) {
					b.now = t.Seen
				}
			}
			fire := &timerFiring{field: t.Field, date: t.Date, due: f.due, late: max(b.now.Sub(f.due), 0)}
			e.m.timers.WithLabelValues("fired").Inc()
			ev := &Event{ID: timerEventID(t.Workspace, a.ID, t.RecordID, f.due), Type: TypeDateDue, Time: f.due, Workspace: t.Workspace, Object: t.Object}
			act := b.activation(ev, snap.Record, nil, nil)
			if g := b.dateGroupOf(t.TimerRef); g != nil {
				b.bindRelated(act, ev, snap.Record, g.related)
			}
			e.m.evaluated.Inc()
			if a.If != nil {
				ok, err := b.holds(ctx, a, snap.Record, act)
				if err != nil {
					b.evalError(ctx, a, act, ev, snap.Record, fire, err)
					continue
				}
				if !ok {
					continue
				}
			}
			b.matched(ctx, a, act, ev, snap.Record, fire, nil)
		}
	}
	b.out.acks = due
	b.out.work += len(due)
	return nil
}

// dateGroupOf is the live date group a timer serves, nil when its
// automations are gone.
func (b *batch) dateGroupOf(t store.TimerRef) *dateGroup {
	if w := b.ix.byWS[t.Workspace]; w != nil {
		return w.dateGroup(t.Object, t.Field)
	}
	return nil
}

// loadTimers loads the records of due timers, then the related records
// their automations read.
func (b *batch) loadTimers(ctx context.Context, due []store.DueTimer) error {
	var refs []store.RecordRef
	for _, t := range due {
		refs = b.unloaded(append(refs, store.RecordRef{Workspace: t.Workspace, Object: t.Object, ID: t.RecordID}), len(refs))
	}
	if err := b.load(ctx, refs); err != nil {
		return err
	}
	refs = refs[:0]
	for _, t := range due {
		if g := b.dateGroupOf(t.TimerRef); g != nil {
			if s := b.state[store.RecordRef{Workspace: t.Workspace, Object: t.Object, ID: t.RecordID}]; s != nil {
				refs = b.unloaded(relatedRefs(&Event{Workspace: t.Workspace}, s.Record, g.related, refs), len(refs))
			}
		}
	}
	return b.load(ctx, refs)
}
