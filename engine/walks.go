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

	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/rules"
)

// Walks over the records the store knows of a workspace's object (package
// store, walk.go), run by FireDue after the date timers, one chunk a call:
//
//   - a built-in schedule's tick: at each tick of its cron, the
//     automation's condition is evaluated over every known record of its
//     object (its stored snapshot), and it runs for those that hold. After
//     downtime the latest missed tick runs, once, late; a schedule first
//     seen starts with its next tick. In simulated time every tick runs.
//   - the re-arming of a date field's timers after the date automations of
//     the field changed (added, removed, another offset, at, time zone or
//     catch_up): each known record's timer is armed again as if its date
//     were first seen now, so that a new or moved due time fires, late by
//     at most its catch_up.
//
// A walk goes on across calls and instances: the store holds its cursor
// and a lease, and a chunk advances it only once its outputs are
// acknowledged (Commit).

// TypeScheduleTick is the event type of a built-in schedule's tick
// (event.type in its conditions).
const TypeScheduleTick = "schedule.tick"

// walkChunk is the most records one call walks in simulated time.
const walkChunk = 1000

// cronSchedule is a built-in schedule of a workspace.
type cronSchedule struct {
	a       *rules.Automation
	ref     store.WalkRef
	related rules.Related
	// next caches the next tick after the mark last read, at checked
	// (Unix ms): the store is not asked again before that tick, or before
	// markRecheck has passed (a tool may have moved the mark: SetWalkMark).
	next, checked atomic.Int64
}

// markRecheck is how long a schedule's cached next tick is trusted.
const markRecheck = 10 * time.Second

func newCronSchedule(a *rules.Automation) *cronSchedule {
	return &cronSchedule{a: a, ref: ScheduleWalk(a), related: related(a)}
}

// ScheduleWalk names the walk of a built-in schedule's ticks in the store,
// whose mark is the last tick done (Unix ms).
func ScheduleWalk(a *rules.Automation) store.WalkRef {
	return store.WalkRef{Workspace: a.Workspace, Object: a.Trigger.Object, Name: "s:" + a.ID}
}

// tickInfo is the tick a schedule's run ran on.
type tickInfo struct {
	cron string
	at   time.Time
	late time.Duration
}

// walk is a walk that is due.
type walk struct {
	kind   string
	ref    store.WalkRef
	cron   *cronSchedule // a tick
	group  *dateGroup    // a re-arm
	at     time.Time     // the tick; zero for a re-arm (due at once)
	target string
}

// signature is the timing of a date group's automations: ids, offsets,
// at, time zones and catch_up.
func (g *dateGroup) signature() string {
	parts := make([]string, 0, len(g.autos))
	for _, a := range g.autos {
		d := a.Trigger.Date
		at := ""
		if d.HasAt {
			at = fmt.Sprintf("%02d:%02d@%s", d.AtHour, d.AtMinute, d.Location)
		}
		parts = append(parts, fmt.Sprintf("%s|%d|%s|%d", a.ID, d.Offset, at, d.CatchUp))
	}
	sort.Strings(parts)
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p)) + ":" + p))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// dueWalks lists the walks due by upTo: re-arms first, then ticks in time
// order.
func (b *batch) dueWalks(ctx context.Context, upTo, now time.Time) ([]walk, error) {
	var cands []walk
	var refs []store.WalkRef
	var init []string
	sim := b.e.opts.SimulatedTime
	// In simulated time (the offline tools' replay) this engine alone
	// moves the marks, so a cached next tick holds until it is due.
	upToMS, nowMS := upTo.UnixMilli(), now.UnixMilli()
	for _, c := range b.ix.crons {
		if n := c.next.Load(); n != 0 && n > upToMS && (sim || nowMS-c.checked.Load() < markRecheck.Milliseconds()) {
			continue
		}
		cands = append(cands, walk{kind: walkTick, ref: c.ref, cron: c})
		refs, init = append(refs, c.ref), append(init, strconv.FormatInt(nowMS, 10))
	}
	for _, g := range b.ix.dateGroups {
		if g.settled.Load() {
			continue
		}
		ref := store.WalkRef{Workspace: g.workspace, Object: g.object, Name: "d:" + g.field.Name}
		cands = append(cands, walk{kind: walkRearm, ref: ref, group: g, target: g.sig})
		refs, init = append(refs, ref), append(init, "")
	}
	if len(cands) == 0 {
		return nil, nil
	}
	marks, err := b.e.store.WalkMarks(ctx, refs, init)
	if err != nil {
		b.e.m.storeErrors.WithLabelValues("walks").Inc()
		return nil, fmt.Errorf("read walks: %w", err)
	}
	due := cands[:0]
	for i, c := range cands {
		switch c.kind {
		case walkRearm:
			if marks[i] == c.target {
				c.group.settled.Store(true)
				continue
			}
		case walkTick:
			ms, err := strconv.ParseInt(marks[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("schedule %s: unreadable mark %q", c.cron.a.ID, marks[i])
			}
			mark := time.UnixMilli(ms).UTC()
			cr := c.cron.a.Trigger.Cron
			next := cr.Next(mark)
			c.cron.next.Store(next.UnixMilli())
			c.cron.checked.Store(now.UnixMilli())
			if sim {
				c.at = next
			} else {
				c.at = cr.Latest(mark, upTo)
			}
			if c.at.IsZero() || c.at.After(upTo) {
				continue
			}
			c.target = strconv.FormatInt(c.at.UnixMilli(), 10)
		}
		due = append(due, c)
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	return due, nil
}

// walkOne walks the next chunk, of at most budget records, of the first of
// walks this instance can start, and then of the re-arm walks after it
// while the budget lasts (re-arms come first and have no time of their
// own: after a reload, those of many workspaces, most of them with few
// records, finish in one call instead of one call each); it reports
// whether it walked one.
func (b *batch) walkOne(ctx context.Context, walks []walk, budget int) (bool, error) {
	start := b.out.work
	walked := false
	for _, w := range walks {
		left := budget - (b.out.work - start)
		if walked && (w.kind != walkRearm || left <= 0) {
			break
		}
		st, err := b.e.store.StartWalks(ctx, []store.WalkStart{{Ref: w.ref, Target: w.target, Ordered: w.kind == walkTick}}, b.out.token, b.e.clock())
		if err != nil {
			b.e.m.storeErrors.WithLabelValues("walks").Inc()
			return false, fmt.Errorf("start walk: %w", err)
		}
		switch st[0].Status {
		case store.WalkDone:
			if w.kind == walkRearm {
				w.group.settled.Store(true)
			}
			continue
		case store.WalkBusy:
			continue
		}
		if w.kind == walkTick && st[0].Cursor == "" {
			b.e.m.tickLate.Observe(max(b.e.clock().Sub(w.at), 0).Seconds())
		}
		if err := b.chunk(ctx, w, st[0].Cursor, left); err != nil {
			return true, err
		}
		if w.kind != walkRearm {
			return true, nil
		}
		walked = true
	}
	return walked, nil
}

// chunk walks the next known records of w from cursor.
func (b *batch) chunk(ctx context.Context, w walk, cursor string, budget int) error {
	ids, next, err := b.e.store.KnownRecords(ctx, w.ref.Workspace, w.ref.Object, cursor, budget)
	if err != nil {
		b.e.m.storeErrors.WithLabelValues("known_records").Inc()
		return fmt.Errorf("known records: %w", err)
	}
	refs := make([]store.RecordRef, 0, len(ids))
	for _, id := range ids {
		refs = b.unloaded(append(refs, store.RecordRef{Workspace: w.ref.Workspace, Object: w.ref.Object, ID: id}), len(refs))
	}
	if err := b.load(ctx, refs); err != nil {
		return err
	}
	if w.kind == walkTick && w.cron.related != 0 {
		var rel []store.RecordRef
		for _, r := range refs {
			if s := b.state[r]; s != nil {
				rel = b.unloaded(relatedRefs(&Event{Workspace: r.Workspace}, s.Record, w.cron.related, rel), len(rel))
			}
		}
		if err := b.load(ctx, rel); err != nil {
			return err
		}
	}
	b.out.work += max(len(ids), 1)
	b.e.m.walkRecords.WithLabelValues(w.kind).Add(float64(len(ids)))
	for _, id := range ids {
		ref := store.RecordRef{Workspace: w.ref.Workspace, Object: w.ref.Object, ID: id}
		snap := b.state[ref]
		if snap == nil {
			// Its snapshot expired or was never readable: not known any more.
			b.out.writes.Forget = append(b.out.writes.Forget, ref)
			continue
		}
		if w.kind == walkTick {
			b.tick(ctx, w, snap)
		} else {
			b.rearm(w.group, ref, snap)
		}
	}
	b.out.writes.Advances = append(b.out.writes.Advances, store.WalkAdvance{Ref: w.ref, Target: w.target, Token: b.out.token, Cursor: next, Done: next == ""})
	if next == "" {
		b.out.walksDone = append(b.out.walksDone, w)
	}
	return nil
}

// tick runs a schedule's automation on one record at the walk's tick.
func (b *batch) tick(ctx context.Context, w walk, snap *store.Snapshot) {
	a, rec := w.cron.a, snap.Record
	b.now = b.e.clock()
	if b.e.opts.SimulatedTime {
		b.now = w.at
	}
	ev := &Event{ID: tickEventID(a.Workspace, a.ID, rec.ID(), w.at), Type: TypeScheduleTick, Time: w.at, Workspace: a.Workspace,
		Object: a.Trigger.Object, tick: &tickInfo{cron: a.Trigger.Cron.Spec, at: w.at, late: max(b.now.Sub(w.at), 0)}}
	act := b.activation(ev, rec, nil, nil)
	b.bindRelated(act, ev, rec, w.cron.related)
	b.evaluated++
	if a.If != nil {
		ok, err := b.holds(ctx, a, rec, act)
		if err != nil {
			b.evalError(ctx, a, act, ev, rec, nil, err)
			return
		}
		if !ok {
			return
		}
	}
	b.matched(ctx, a, act, ev, rec, nil, nil)
}

// rearm arms a record's timer again as if its date were first seen now.
func (b *batch) rearm(g *dateGroup, ref store.RecordRef, snap *store.Snapshot) {
	tref := store.TimerRef{Workspace: ref.Workspace, Object: ref.Object, Field: g.field.Name, RecordID: ref.ID}
	v, set := snap.Record.Get(g.field).(types.Timestamp)
	if !set {
		return
	}
	now := b.e.clock()
	arm := g.arm(tref, v.Time, now)
	arm.Force = true
	if w := b.ix.byWS[ref.Workspace]; w != nil {
		if latest := latestDue(w, ref.Object, snap.Record); latest.After(now) {
			arm.Keep = latest.Sub(now)
		}
	}
	b.out.writes.Arms = append(b.out.writes.Arms, arm)
}

// tickEventID is the deterministic event id of a schedule's tick for a
// record: every instance walking the same tick produces the same action
// ids.
func tickEventID(ws, automation, record string, tick time.Time) string {
	h := sha256.New()
	for _, s := range []string{"tick", ws, automation, record, strconv.FormatInt(tick.UnixMilli(), 10)} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return "tick-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// firstTimer is the due time of the earliest timer due by upTo, zero when
// there is none.
func (b *batch) firstTimer(ctx context.Context, upTo time.Time) (time.Time, error) {
	due, err := b.e.store.PeekDue(ctx, upTo)
	if err != nil || len(due) == 0 {
		return time.Time{}, err
	}
	first := slices.MinFunc(due, func(x, y store.DueTimer) int { return x.Score.Compare(y.Score) })
	return first.Score, nil
}

// BindTicks returns the bindings of the built-in schedules' ticks due at
// or before upTo over the known records of their objects, earliest
// first, without doing them: every tick after a schedule's mark (in
// simulated time FireDue does them all), for the clause coverage of
// `whenthen test`. A schedule not seen yet (no mark) has none. It reads
// the state, never writes it.
func (e *Engine) BindTicks(ctx context.Context, upTo time.Time) ([]DueBinding, error) {
	b := e.newBatch(e.ix.Load(), "")
	var out []DueBinding
	for _, c := range b.ix.crons {
		marks, err := e.store.WalkMarks(ctx, []store.WalkRef{c.ref}, nil)
		if err != nil {
			return nil, fmt.Errorf("read walks: %w", err)
		}
		ms, err := strconv.ParseInt(marks[0], 10, 64)
		if err != nil {
			continue // not seen yet
		}
		cr := c.a.Trigger.Cron
		var ticks []time.Time
		for t := cr.Next(time.UnixMilli(ms)); !t.IsZero() && !t.After(upTo) && len(ticks) < 1000; t = cr.Next(t) {
			ticks = append(ticks, t)
		}
		if len(ticks) == 0 {
			continue
		}
		var refs []store.RecordRef
		for cursor := ""; ; {
			ids, next, err := e.store.KnownRecords(ctx, c.ref.Workspace, c.ref.Object, cursor, walkChunk)
			if err != nil {
				return nil, fmt.Errorf("known records: %w", err)
			}
			for _, id := range ids {
				refs = b.unloaded(append(refs, store.RecordRef{Workspace: c.ref.Workspace, Object: c.ref.Object, ID: id}), len(refs))
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if err := b.load(ctx, refs); err != nil {
			return nil, err
		}
		var rel []store.RecordRef
		for _, r := range refs {
			if s := b.state[r]; s != nil {
				rel = b.unloaded(relatedRefs(&Event{Workspace: r.Workspace}, s.Record, c.related, rel), len(rel))
			}
		}
		if err := b.load(ctx, rel); err != nil {
			return nil, err
		}
		for _, tick := range ticks {
			b.now = tick
			for _, r := range refs {
				s := b.state[r]
				if s == nil {
					continue
				}
				id := tickEventID(c.a.Workspace, c.a.ID, r.ID, tick)
				ev := &Event{ID: id, Type: TypeScheduleTick, Time: tick, Workspace: c.a.Workspace, Object: c.ref.Object}
				act := b.activation(ev, s.Record, nil, nil)
				b.bindRelated(act, ev, s.Record, c.related)
				out = append(out, DueBinding{Automation: c.a, RecordID: r.ID, Due: tick, EventID: id, Vars: act})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Due.Before(out[j].Due) })
	return out, nil
}
