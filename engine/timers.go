package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/rules"
)

var stringSliceType = reflect.TypeOf([]string{})

// TypeDateDue is the event type of a date timer firing (event.type in
// conditions of date triggers).
const TypeDateDue = "date.due"

// encodeSnapshot stores a record and the time of the event that set it.
func (e *Engine) encodeSnapshot(r *rules.Record, t time.Time) ([]byte, error) {
	buf := make([]byte, 0, 256)
	buf = append(buf, `{"t":`...)
	buf = strconv.AppendInt(buf, t.UnixMilli(), 10)
	buf = append(buf, `,"r":`...)
	buf, err := r.AppendJSON(buf)
	if err != nil {
		return nil, err
	}
	return append(buf, '}'), nil
}

func (e *Engine) decodeSnapshot(object string, data []byte) (*snapshot, error) {
	var raw struct {
		T int64           `json:"t"`
		R json.RawMessage `json:"r"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	o, ok := e.opts.Schema.Object(object)
	if !ok {
		return nil, fmt.Errorf("unknown object %q", object)
	}
	rec, err := o.DecodeRecord(raw.R, e.opts.Limits)
	if err != nil {
		return nil, err
	}
	return &snapshot{rec: rec, time: time.UnixMilli(raw.T).UTC()}, nil
}

// armTimer arms, re-arms or cancels a's timer for the record after an
// event: armed when the date field is set and its due time is after the
// event, cancelled when the field is cleared or moved into the past.
func (b *batch) armTimer(a *rules.Automation, ev *Event, after, before *rules.Record) {
	d := a.Trigger.Date
	v, set := after.Get(d.Field).(types.Timestamp)
	if before != nil {
		// Unchanged field: nothing to do (the arm script would be a no-op).
		bv, bset := before.Get(d.Field).(types.Timestamp)
		if set == bset && (!set || bv.Time.Equal(v.Time)) {
			return
		}
	}
	ref := timerRef{ev.Workspace, a.ID, after.ID()}
	if !set {
		b.cancelTimerRef(ref)
		return
	}
	due := d.Due(v.Time).Truncate(time.Millisecond) // timers keep milliseconds
	if !due.After(ev.Time) {
		b.cancelTimerRef(ref)
		return
	}
	b.out.writes.arms = append(b.out.writes.arms, timerArm{timerRef: ref, Due: due})
	b.e.m.timers.WithLabelValues("armed").Inc()
}

// latestDue is the latest due time of the record's date timers in the
// workspace: its snapshot must outlive them.
func latestDue(w *wsIndex, object string, rec *rules.Record) time.Time {
	var latest time.Time
	if w == nil {
		return latest
	}
	for _, a := range w.dates[object] {
		if v, ok := rec.Get(a.Trigger.Date.Field).(types.Timestamp); ok {
			if due := a.Trigger.Date.Due(v.Time); due.After(latest) {
				latest = due
			}
		}
	}
	return latest
}

func (b *batch) cancelTimer(a *rules.Automation, ev *Event) {
	b.cancelTimerRef(timerRef{ev.Workspace, a.ID, ev.RecordID()})
}

func (b *batch) cancelTimerRef(ref timerRef) {
	b.out.writes.cancels = append(b.out.writes.cancels, ref)
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

// FireDue fires the date timers due at or before upTo, at most limit of
// them, re-evaluating each automation's condition against the latest
// record state. Timers are leased: the output's Commit acknowledges them,
// and a crash before it lets another instance fire them after the lease.
// A timer fired after its due time records the lateness in late_ms.
func (e *Engine) FireDue(ctx context.Context, upTo time.Time, limit int) (*Output, error) {
	if limit <= 0 {
		limit = 1000
	}
	b := e.newBatch(e.ix.Load())
	due, err := e.store.claimDue(ctx, upTo, e.clock(), limit)
	if err != nil {
		e.m.storeErrors.WithLabelValues("claim_timers").Inc()
		return nil, fmt.Errorf("claim due timers: %w", err)
	}
	b.out.acks = due
	var refs []snapshotRef
	autos := make([]*rules.Automation, len(due))
	for i, t := range due {
		a, ok := b.ix.set.Automation(t.Automation)
		if !ok || !a.Enabled || a.Workspace != t.Workspace || a.Trigger.Kind != rules.TriggerDate {
			continue // the automation is gone or changed: drop the timer
		}
		autos[i] = a
		r := snapshotRef{t.Workspace, a.Trigger.Object, t.RecordID}
		if !b.loaded[r] {
			b.loaded[r] = true
			refs = append(refs, r)
		}
	}
	if err := b.load(ctx, refs); err != nil {
		return nil, err
	}
	for i, t := range due {
		a := autos[i]
		if a == nil {
			e.m.timers.WithLabelValues("dropped").Inc()
			continue
		}
		snap := b.state[snapshotRef{t.Workspace, a.Trigger.Object, t.RecordID}]
		if snap == nil {
			e.m.timers.WithLabelValues("dropped").Inc()
			continue
		}
		// The record may have moved its date since the timer was armed.
		v, set := snap.rec.Get(a.Trigger.Date.Field).(types.Timestamp)
		if !set || a.Trigger.Date.Due(v.Time).UnixMilli() != t.Due.UnixMilli() {
			e.m.timers.WithLabelValues("dropped").Inc()
			continue
		}
		b.now = e.clock()
		if e.opts.SimulatedTime {
			b.now = t.Due
		}
		late := b.now.Sub(t.Due)
		if late < 0 {
			late = 0
		}
		e.m.timers.WithLabelValues("fired").Inc()
		eventID := timerEventID(t.Workspace, a.ID, t.RecordID, t.Due)
		act := b.activation(&Event{ID: eventID, Type: TypeDateDue, Time: t.Due, Workspace: t.Workspace, Object: a.Trigger.Object}, snap.rec, nil, nil)
		e.m.evaluated.Inc()
		if a.If != nil {
			ok, err := b.holds(ctx, a, snap.rec, act)
			if err != nil {
				b.evalError(t.Workspace, a, eventID, a.Trigger.Object, t.RecordID, err)
				continue
			}
			if !ok {
				continue
			}
		}
		b.matched(ctx, a, act, t.Workspace, eventID, t.Due, a.Trigger.Object, snap.rec, late)
	}
	if err := b.finish(ctx); err != nil {
		return nil, err
	}
	return b.out, nil
}
