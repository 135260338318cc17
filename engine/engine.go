package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/syncx"
	"github.com/whenthen/whenthen/rules"
)

// Options configures an Engine.
type Options struct {
	// Rules is the initial rule set (required); SetRules swaps it.
	Rules *rules.Set
	// Schema is the schema the rules were compiled with (required).
	Schema *crm.Schema
	// Store keeps dedup state, snapshots and timers (required):
	// store.Redis in production, store.Memory offline.
	Store Store
	// Clock is the time source: `now` in conditions, fired_at, windows.
	// Default time.Now. The engine never reads the wall clock otherwise.
	Clock func() time.Time
	// SimulatedTime makes a timer fire at its due time (now = due), as
	// `whenthen eval` and `whenthen test` need; the service leaves it off.
	SimulatedTime bool
	// NoIndex makes the naive engine, the baseline of benchmarks and the
	// oracle of the index property test: every automation of the trigger
	// is a candidate, and its whole condition is evaluated by cel-go (no
	// index, no predicate pre-check, no specialised evaluator).
	NoIndex bool
	// MaxPersons caps the people one flow run enrolls; default 1,000.
	MaxPersons int
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Engine decides which automations an event runs, what they do, and
// records every run. It is safe for concurrent use; events of one record
// must be processed in order, each batch committed before the next batch
// of the same partition is processed.
type Engine struct {
	opts  Options
	ix    atomic.Pointer[index]
	store Store
	clock func() time.Time
	m     *metrics
	log   *slog.Logger
}

// New builds an engine.
func New(opts Options) (*Engine, error) {
	if opts.Rules == nil {
		return nil, errors.New("engine: Options.Rules is required")
	}
	if opts.Schema == nil {
		return nil, errors.New("engine: Options.Schema is required")
	}
	if opts.Store == nil {
		return nil, errors.New("engine: Options.Store is required")
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxPersons <= 0 {
		opts.MaxPersons = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, store: opts.Store, clock: opts.Clock, m: m, log: opts.Logger}
	e.SetRules(opts.Rules)
	return e, nil
}

// SetRules swaps the live rule set atomically; batches in flight finish
// with the set they started with.
func (e *Engine) SetRules(set *rules.Set) {
	e.ix.Store(buildIndex(set, e.opts.Schema))
	e.m.rules.Set(float64(set.Summary().Enabled))
}

// Rules is the live rule set.
func (e *Engine) Rules() *rules.Set { return e.ix.Load().set }

// Output is what a batch produced: actions and runs in event order, and
// the state changes to commit once Kafka has acknowledged them.
type Output struct {
	Actions []actions.Action
	Runs    []actions.Run

	token   string
	confirm []store.ActionRef // actions to mark done
	writes  store.Writes
	acks    []store.DueTimer
	// work counts the timers claimed and the known records walked (at
	// least one a walk chunk): there may be more due while it is not 0.
	work int
	// walksDone are the walks this output completes.
	walksDone []walk
	// cache is the partition's state cache, updated at Commit.
	cache *StateCache
}

// Work tells how much due work FireDue claimed (timers, and known records
// walked by schedules and re-armed timers): while it is not 0, more may be
// due at once.
func (o *Output) Work() int { return o.work }

// NewClaimToken returns a random claim token for Process.
func NewClaimToken() string { return newToken() }

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// pendingRun is a matched automation waiting for its claim.
type pendingRun struct {
	run   actions.Run
	acts  []actions.Action
	claim *store.Claim
}

// batch is the working state of one Process or FireDue call.
type batch struct {
	e       *Engine
	ix      *index
	now     time.Time
	out     *Output
	runs    []*pendingRun
	state   map[store.RecordRef]*store.Snapshot
	loaded  map[store.RecordRef]bool
	emitted map[string]bool // action ids emitted in this batch
	cands   []*candidate
	spare   []*candidate // scratch of candidates
	// evaluated counts candidates considered, added to the metric once
	// per batch.
	evaluated int
	// cache is the partition's state cache (nil: none); saved indexes the
	// batch's saves by record, so that a record saved twice is saved once.
	cache *StateCache
	saved map[store.RecordRef]int
	// snaps is where the batch's new snapshots are allocated, a slab at
	// a time.
	snaps []store.Snapshot
	// sizeHint is how many events the batch has: what its per-record
	// tables are sized for.
	sizeHint int
}

// newBatch starts a batch that claims with token ("": a fresh random one).
func (e *Engine) newBatch(ix *index, token string) *batch {
	if token == "" {
		token = newToken()
	}
	return &batch{e: e, ix: ix, out: &Output{token: token}, state: map[store.RecordRef]*store.Snapshot{},
		loaded: map[store.RecordRef]bool{}, emitted: map[string]bool{}}
}

// Process runs a batch of events through the rules. The outputs are in
// event order. Nothing is written to Kafka; state is claimed in the store
// (pending) and committed by Commit after the outputs are acknowledged.
//
// The batch claims its actions with token, or a fresh random token when
// it is "". A caller that retries Process for the same batch passes the
// same token every time (NewClaimToken makes one): when an attempt failed
// after the store applied its claims but before the reply arrived, the
// retry then finds the claims its own (ours) instead of waiting for their
// lease to run out.
func (e *Engine) Process(ctx context.Context, events []*Event, token string) (*Output, error) {
	return e.ProcessCached(ctx, events, token, nil)
}

// ProcessCached is Process for the events of one input partition, whose
// record snapshots it reads from cache when it has them (cache.go) and
// keeps there once committed; nil is Process.
func (e *Engine) ProcessCached(ctx context.Context, events []*Event, token string, cache *StateCache) (*Output, error) {
	start := time.Now()
	b := e.newBatch(e.ix.Load(), token)
	b.cache, b.out.cache = cache, cache
	b.sizeHint = len(events)
	b.state = make(map[store.RecordRef]*store.Snapshot, len(events))
	b.out.writes.Encoded = cache != nil
	if err := b.loadState(ctx, events); err != nil {
		return nil, err
	}
	if err := b.loadRelated(ctx, events); err != nil {
		return nil, err
	}
	for _, ev := range events {
		b.now = e.clock()
		e.m.event(ev.Type)
		b.event(ctx, ev)
	}
	e.m.evaluated.Add(float64(b.evaluated))
	if err := b.finish(ctx); err != nil {
		return nil, err
	}
	e.m.batchDuration.Observe(time.Since(start).Seconds())
	return b.out, nil
}

// needsState tells whether an event's record state is loaded and kept; w
// is the event's workspace index (nil when it has no automations).
func needsState(w *wsIndex, ev *Event) bool {
	if ev.Record == nil || ev.Type == TypeTrackerDetected || w == nil {
		return false
	}
	// A partial event is merged into the stored state whenever an
	// automation of the workspace reads records of its object; with none,
	// nothing reads the state and none is kept.
	return w.stateful[ev.Object] || ev.Partial && w.reads[ev.Object]
}

// needsLoad tells whether an event's decisions read its record's stored
// state: to merge a partial event, as the state before an update that
// carries no before, or to compare date fields for timers. An event that
// carries its before needs none: its stored state is written, not read,
// and it is not checked for staleness.
func needsLoad(w *wsIndex, ev *Event) bool {
	if !needsState(w, ev) {
		return false
	}
	if ev.Partial || (ev.Before == nil && ev.Type != TypeRecordCreated) {
		return true
	}
	return len(w.dates[ev.Object]) > 0
}

func (b *batch) loadState(ctx context.Context, events []*Event) error {
	var refs []store.RecordRef
	hits := 0
	for _, ev := range events {
		if !needsLoad(b.ix.byWS[ev.Workspace], ev) {
			continue
		}
		r := store.RecordRef{Workspace: ev.Workspace, Object: ev.Object, ID: ev.RecordID()}
		if b.loaded[r] {
			continue
		}
		b.loaded[r] = true
		if b.cache != nil {
			if data, ok := b.cache.get(r); ok {
				if s := b.e.store.DecodeSnapshot(r, data); s != nil {
					b.state[r] = s
					hits++
					continue
				}
			}
		}
		refs = append(refs, r)
	}
	if b.cache != nil {
		b.e.m.cacheHits.Add(float64(hits))
		b.e.m.cacheMisses.Add(float64(len(refs)))
	}
	return b.load(ctx, refs)
}

// load reads the stored snapshots of refs into the batch's state. One the
// schema cannot read is absent (the store logs it).
func (b *batch) load(ctx context.Context, refs []store.RecordRef) error {
	snaps, err := b.e.store.LoadSnapshots(ctx, refs)
	if err != nil {
		b.e.m.storeErrors.WithLabelValues("load_state").Inc()
		return fmt.Errorf("load record state: %w", err)
	}
	for i, s := range snaps {
		if s != nil {
			b.state[refs[i]] = s
		}
	}
	return nil
}

// event evaluates one event.
func (b *batch) event(ctx context.Context, ev *Event) {
	w := b.ix.byWS[ev.Workspace]
	switch ev.Type {
	case TypeTrackerDetected:
		if w == nil || ev.Tracker == nil {
			return
		}
		g := w.groups[trackerGroup(ev.Tracker.String("name"))]
		if g == nil {
			return
		}
		act := b.activation(ev, nil, nil, nil)
		b.match(ctx, ev, g, nil, nil, act)
		return
	case TypeCallProcessed:
		if w == nil || ev.Call == nil {
			return
		}
		g := w.groups[callGroup()]
		if g == nil {
			return
		}
		act := b.activation(ev, nil, nil, nil)
		b.bindRelated(act, ev, nil, g.related)
		b.match(ctx, ev, g, nil, nil, act)
		return
	}
	if ev.Record == nil {
		return
	}
	sref := store.RecordRef{Workspace: ev.Workspace, Object: ev.Object, ID: ev.RecordID()}
	stored := b.state[sref]
	keep := needsState(w, ev)
	if stored != nil && ev.Time.Before(stored.Time) {
		b.e.m.stale.Inc()
		return
	}
	if ev.Type == TypeRecordDeleted {
		if keep || stored != nil {
			delete(b.state, sref)
			b.unsave(sref)
			b.out.writes.Deletes = append(b.out.writes.Deletes, sref)
		}
		if w != nil {
			b.cancelTimers(w, ev)
		}
		return
	}
	// The record after the change, and before it (images, shared with
	// the authoring tools' Bind).
	after, before, known := images(ev, stored)
	// Timers compare with the stored state only: it proves the record was
	// seen (and its timers armed) before. A before image alone does not.
	var prior *crm.Record
	if stored != nil {
		prior = stored.Record
	}
	if keep {
		snap := b.newSnapshot(after, ev.Time)
		b.state[sref] = snap
		b.save(store.Save{Ref: sref, Snapshot: *snap, KeepUntil: latestDue(w, ev.Object, after)})
	}
	if w == nil {
		return
	}
	b.armTimers(w, ev, after, prior)
	var g *group
	switch ev.Type {
	case TypeRecordCreated, TypeRecordUpdated:
		g = w.groups[recordGroup(ev.Object)]
	case TypeScheduleFired:
		g = w.groups[scheduleGroup(ev.Schedule, ev.Object)]
	}
	if g == nil {
		return
	}
	act := b.activation(ev, after, before, nil)
	b.bindRelated(act, ev, after, g.related)
	// changed is computed when a condition first reads it.
	act.lazyChanged, act.after, act.prior, act.createdByChange = true, after, before, ev.Type == TypeRecordCreated
	created := ev.Type == TypeRecordCreated
	b.match(ctx, ev, g, after, func(a *rules.Automation, act *activation) (held, looked bool, err error) {
		// on_enter: the condition must not have held before the change.
		if a.Trigger.Kind != rules.TriggerRecord || a.Fire != rules.FireOnEnter || created || !known {
			return false, false, nil
		}
		held, err = b.holds(ctx, a, before, act)
		return held, true, err
	}, act)
}

// images are the record after an event and before it, as batch.event
// computes them, and whether the state before is known.
func images(ev *Event, stored *store.Snapshot) (after, before *crm.Record, known bool) {
	after = ev.Record
	if ev.Partial && stored != nil {
		after = stored.Record.Merge(ev.Record)
	}
	switch {
	case ev.Type == TypeRecordCreated:
		return after, nil, true
	case ev.Before != nil:
		return after, after.Merge(ev.Before), true
	case stored != nil:
		return after, stored.Record, true
	case ev.Partial:
		return after, nil, false
	}
	// A full record without before or stored state: no change is known.
	return after, after, true
}

func (b *batch) activation(ev *Event, after, before *crm.Record, changed ref.Val) *activation {
	s := b.e.opts.Schema
	acc, _ := s.Object(crm.ObjAccount)
	opp, _ := s.Object(crm.ObjOpportunity)
	act := &activation{
		account:     orEmpty(ev.Account, acc),
		opportunity: orEmpty(ev.Opportunity, opp),
		tracker:     orEmpty(ev.Tracker, s.Tracker),
		call:        orEmpty(ev.Call, s.Call),
		changed:     changed,
		b:           b,
		ev:          ev,
	}
	if after != nil {
		act.record = after
		act.before = orEmpty(before, after.Object())
		// The record is its own related account or opportunity.
		switch after.Object().Name {
		case crm.ObjAccount:
			act.account = after
		case crm.ObjOpportunity:
			act.opportunity = after
		}
	}

	return act
}

func (b *batch) eventValue(id, typ string, t time.Time, object, ws string) ref.Val {
	r, err := b.e.opts.Schema.Event.NewRecord(map[string]any{
		"id": id, "type": typ, "time": t.UTC().Format(time.RFC3339Nano), "object": object, "workspace": ws,
	}, crm.Limits{})
	if err != nil {
		return b.e.opts.Schema.Event.Empty()
	}
	return r
}

// holds evaluates a's condition with the record swapped for rec.
func (b *batch) holds(ctx context.Context, a *rules.Automation, rec *crm.Record, act *activation) (bool, error) {
	cond := a.If
	eval := cond.Eval
	switch {
	case b.e.opts.NoIndex:
		// The naive baseline: cel-go evaluates every condition in full.
		eval = cond.EvalCEL
	case cond.Fast():
		// The specialised evaluator checks the indexed predicates itself,
		// as cheaply as Predicate.Holds.
	default:
		for i := range cond.Index {
			if !cond.Index[i].Holds(rec) {
				return false, nil
			}
		}
		if cond.RestTrue {
			return true, nil
		}
	}
	if rec != nil && act.record != ref.Val(rec) {
		swapped := *act
		swapped.record = rec
		act = &swapped
	}
	v, err := eval(ctx, act)
	if err != nil {
		return false, err
	}
	return v == types.True, nil
}

var (
	held    = true
	notHeld = false
)

// enteredBefore reports whether an on_enter condition already held before
// the change; looked is false when it did not look (not on_enter, a
// create, or no state before the change is known).
type enteredBefore func(a *rules.Automation, act *activation) (held, looked bool, err error)

// match evaluates the group's candidates for the event and starts a run
// for each that matches.
func (b *batch) match(ctx context.Context, ev *Event, g *group, rec *crm.Record, wasTrue enteredBefore, act *activation) {
	start := time.Now()
	cands := g.all
	if !b.e.opts.NoIndex {
		b.cands, b.spare = g.candidates(rec, b.cands[:0], b.spare)
		cands = b.cands
	}
	for _, c := range cands {
		a := c.a
		if Accepts(a, ev) != Accepted {
			continue
		}
		b.evaluated++
		var heldBefore *bool
		if a.If != nil {
			ok, err := b.holds(ctx, a, orRecord(rec, act), act)
			if err == nil && ok && wasTrue != nil {
				var before, looked bool
				before, looked, err = wasTrue(a, act)
				ok = !before
				if looked {
					heldBefore = &notHeld
				}
			}
			if err != nil {
				b.evalError(ctx, a, act, ev, rec, nil, err)
				continue
			}
			if !ok {
				continue
			}
		}
		b.matched(ctx, a, act, ev, rec, nil, heldBefore)
	}
	b.e.m.evalDuration.Observe(time.Since(start).Seconds())
}

// recordOf is v as a record, nil when it is none.
func recordOf(v ref.Val) *crm.Record {
	r, _ := v.(*crm.Record)
	return r
}

func orRecord(rec *crm.Record, act *activation) *crm.Record {
	if rec != nil {
		return rec
	}
	if r, ok := act.record.(*crm.Record); ok {
		return r
	}
	return nil
}

// evalError records the error run of an automation whose condition failed
// on ev (or on the timer fire) for rec.
func (b *batch) evalError(ctx context.Context, a *rules.Automation, act *activation, ev *Event, rec *crm.Record, fire *timerFiring, err error) {
	b.e.m.evalErrors.Inc()
	b.e.log.Warn("condition evaluation failed", "automation", a.ID, "event", ev.ID, "err", crm.Redact(err))
	run := b.newRun(a, ev, rec, fire)
	run.Outcome, run.Reason, run.Error = actions.OutcomeError, actions.ReasonEvalError, err.Error()
	if a.If != nil {
		run.Why = b.whyError(ctx, a, act)
	}
	b.runs = append(b.runs, &pendingRun{run: run})
}

// timerFiring is the date timer a run fired on.
type timerFiring struct {
	field     string
	date, due time.Time
	late      time.Duration
}

// newRun starts the run of a on ev (or on the timer fire) for rec (nil for
// a tracker).
func (b *batch) newRun(a *rules.Automation, ev *Event, rec *crm.Record, fire *timerFiring) actions.Run {
	r := actions.Run{
		RunID: actions.RunID(ev.Workspace, a.ID, ev.ID), Workspace: ev.Workspace, AutomationID: a.ID, Trigger: a.Trigger.Kind.String(),
		EventID: ev.ID, Object: ev.Object, RanAt: b.now, ActionIDs: []string{}, Context: runContext(ev, fire),
	}
	if rec != nil {
		r.RecordID = rec.ID()
	}
	switch {
	case fire != nil:
		r.LateMS = fire.late.Milliseconds()
	case ev.tick != nil:
		r.LateMS = ev.tick.late.Milliseconds()
	}
	return r
}

// runContext is the trigger's own context of a run on ev (or on a timer).
func runContext(ev *Event, fire *timerFiring) *actions.Context {
	switch {
	case fire != nil:
		return &actions.Context{Timer: &actions.TimerContext{Field: fire.field, Date: fire.date, Due: fire.due, LateMS: fire.late.Milliseconds()}}
	case ev.Type == TypeTrackerDetected && ev.Tracker != nil:
		t := &actions.TrackerContext{Name: ev.Tracker.String("name"), CallID: ev.Tracker.String("call_id"), Confidence: confidence(ev)}
		if ev.Account != nil {
			t.AccountID = ev.Account.ID()
		}
		if ev.Opportunity != nil {
			t.OpportunityID = ev.Opportunity.ID()
		}
		return &actions.Context{Tracker: t}
	case ev.Type == TypeCallProcessed && ev.Call != nil:
		acc, opp := relatedIDs(ev, nil)
		return &actions.Context{Call: &actions.CallContext{ID: ev.Call.ID(), Title: ev.Call.String("title"), AccountID: acc, OpportunityID: opp}}
	case ev.tick != nil:
		return &actions.Context{Schedule: &actions.ScheduleContext{Cron: ev.tick.cron, Tick: ev.tick.at, LateMS: ev.tick.late.Milliseconds()}}
	case ev.Type == TypeScheduleFired:
		return &actions.Context{Schedule: &actions.ScheduleContext{Name: ev.Schedule}}
	}
	return nil
}

// matched builds the run and actions of an automation whose trigger and
// condition matched on ev (or on the timer fire) for rec, and its claim.
func (b *batch) matched(ctx context.Context, a *rules.Automation, act *activation, ev *Event, rec *crm.Record, fire *timerFiring, heldBefore *bool) {
	b.e.m.matched.Inc()
	pr := &pendingRun{run: b.newRun(a, ev, rec, fire)}
	if a.If != nil {
		pr.run.Why = b.why(a, act, heldBefore)
	}
	b.runs = append(b.runs, pr)
	ws, eventID, recordID := ev.Workspace, ev.ID, pr.run.RecordID
	base := actions.Action{Workspace: ws, AutomationID: a.ID, Type: a.ActionType(), Object: ev.Object, RecordID: recordID,
		EventID: eventID, EventTime: ev.Time, FiredAt: b.now, RunID: pr.run.RunID}
	claim := &store.Claim{Workspace: ws, AutomationID: a.ID, EventID: eventID, RecordID: recordID}
	if a.Cooldown > 0 && recordID != "" {
		claim.CooldownUntil = b.now.Add(a.Cooldown)
	}
	switch {
	case a.Brief != nil:
		subject := rec // the record the brief is about
		if a.Trigger.Kind == rules.TriggerCall {
			// A call's brief is about its account or opportunity.
			acc, opp := relatedIDs(ev, nil)
			base.Object, base.RecordID, subject = a.Brief.Kind, acc, recordOf(act.account)
			if a.Brief.Kind == crm.ObjOpportunity {
				base.RecordID, subject = opp, recordOf(act.opportunity)
			}
			if base.RecordID == "" {
				pr.run.Outcome, pr.run.Reason = actions.OutcomeSkipped, actions.ReasonNoRecord
				return
			}
		}
		recips := resolveRecipients(a.Brief.Recipients, subject)
		if len(recips) == 0 {
			pr.run.Outcome, pr.run.Reason = actions.OutcomeSkipped, actions.ReasonNoRecipients
			return
		}
		act := base
		act.ActionID = actions.ActionID(ws, a.ID, eventID, "brief")
		act.Brief = &actions.Brief{Kind: a.Brief.Kind, Recipients: recips}
		pr.acts = append(pr.acts, act)
		claim.Targets = append(claim.Targets, store.Target{ActionID: act.ActionID})
	case a.Flow != nil:
		persons, err := b.persons(ctx, a, act, rec)
		if err != nil {
			pr.run.Outcome, pr.run.Reason, pr.run.Error = actions.OutcomeError, actions.ReasonEvalError, err.Error()
			b.e.m.evalErrors.Inc()
			b.e.log.Warn("flow who evaluation failed", "automation", a.ID, "event", eventID, "err", crm.Redact(err))
			return
		}
		if len(persons) == 0 {
			pr.run.Outcome, pr.run.Reason = actions.OutcomeSkipped, actions.ReasonNoPerson
			return
		}
		for _, p := range persons {
			act := base
			act.ActionID = actions.ActionID(ws, a.ID, eventID, p)
			act.Flow = &actions.Flow{ID: a.Flow.ID, PersonID: p}
			pr.acts = append(pr.acts, act)
			t := store.Target{ActionID: act.ActionID, Flow: a.Flow.ID, Person: p}
			if a.Flow.ReenrollAfter > 0 {
				t.EnrollUntil = b.now.Add(a.Flow.ReenrollAfter)
			}
			claim.Targets = append(claim.Targets, t)
		}
	}
	pr.claim = claim
}

// resolveRecipients turns brief recipients into user:ID and email:ADDR
// strings; owner is the record's owner_id, dropped when it is empty.
func resolveRecipients(rs []rules.Recipient, rec *crm.Record) []string {
	out := make([]string, 0, len(rs))
	seen := map[string]bool{}
	for _, r := range rs {
		var s string
		switch r.Kind {
		case rules.RecipientOwner:
			if rec == nil || rec.String("owner_id") == "" {
				continue
			}
			s = "user:" + rec.String("owner_id")
		case rules.RecipientUser:
			s = "user:" + r.Value
		case rules.RecipientEmail:
			s = "email:" + r.Value
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var stringSliceType = reflect.TypeOf([]string{})

// persons evaluates a flow's who: one person id or a list; empty ids are
// dropped and duplicates removed.
func (b *batch) persons(ctx context.Context, a *rules.Automation, act *activation, rec *crm.Record) ([]string, error) {
	if a.Flow.Who == nil {
		if rec == nil || rec.ID() == "" {
			return nil, nil
		}
		return []string{rec.ID()}, nil
	}
	v, err := a.Flow.Who.Eval(ctx, act)
	if err != nil {
		return nil, err
	}
	var ids []string
	switch x := v.(type) {
	case types.String:
		ids = []string{string(x)}
	default:
		native, err := v.ConvertToNative(stringSliceType)
		if err != nil {
			return nil, fmt.Errorf("who gave %s, want a string or a list of strings", v.Type().TypeName())
		}
		ids = native.([]string)
	}
	out := ids[:0:0]
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) > b.e.opts.MaxPersons {
		return nil, fmt.Errorf("who gave %d people, over the limit of %d", len(out), b.e.opts.MaxPersons)
	}
	return out, nil
}

// finish claims the batch's runs in the store and settles their outcomes.
func (b *batch) finish(ctx context.Context) error {
	var claims []*store.Claim
	for _, pr := range b.runs {
		if pr.claim == nil {
			continue
		}
		// An action already emitted in this batch (the same event twice) is
		// a duplicate without asking the store.
		dup := false
		for _, t := range pr.claim.Targets {
			if b.emitted[t.ActionID] {
				dup = true
			}
		}
		if dup {
			pr.claim = nil
			pr.run.Outcome, pr.run.Reason = actions.OutcomeSkipped, actions.ReasonDuplicate
			for _, a := range pr.acts {
				if a.Flow != nil {
					pr.run.Persons = append(pr.run.Persons, actions.Person{PersonID: a.Flow.PersonID, Status: actions.PersonSkipped, Reason: actions.ReasonDuplicate})
				}
			}
			b.e.m.dedupHits.WithLabelValues(actions.ReasonDuplicate).Inc()
			continue
		}
		for _, t := range pr.claim.Targets {
			b.emitted[t.ActionID] = true
		}
		claims = append(claims, pr.claim)
	}
	if err := b.claimAll(ctx, claims); err != nil {
		return err
	}
	for _, pr := range b.runs {
		if pr.claim != nil {
			b.settle(pr)
		}
		b.e.m.runs.WithLabelValues(pr.run.Outcome, pr.run.Reason).Inc()
		b.out.Runs = append(b.out.Runs, pr.run)
	}
	return nil
}

// claimAll claims, waiting while another instance holds a live claim on
// one of the actions (it may be producing them right now).
//
// The busy claims are asked for again alone, with backoff, the others
// left as they are: their leases are not renewed while the batch waits,
// so that two batches waiting for each other's claims (the same events
// met by two instances across a rebalance) are freed by a lease running
// out rather than waiting for ever. Once none is busy, every claim is
// asked for again in one call: a wait can last a whole lease (the claims
// of an instance that died), and a claim won before it may have run out
// and been taken over by another instance, which then produces it; that
// claim is now the other's (busy, then done), so the batch does not
// produce it a second time. The claims it still holds come back ours,
// their leases renewed.
func (b *batch) claimAll(ctx context.Context, claims []*store.Claim) error {
	backoff := 50 * time.Millisecond
	ask := claims
	for {
		if err := b.e.store.Claim(ctx, ask, b.out.token, b.e.clock()); err != nil {
			b.e.m.storeErrors.WithLabelValues("claim").Inc()
			return fmt.Errorf("claim actions: %w", err)
		}
		var busy []*store.Claim
		for _, c := range ask {
			if c.Busy {
				busy = append(busy, c)
			}
		}
		switch {
		case len(busy) > 0:
			ask = busy
		case len(ask) == len(claims):
			return nil // all decided in one call: none ran out meanwhile
		default:
			ask = claims // the wait is over: ask for all again, at once
			continue
		}
		if !syncx.Sleep(ctx, syncx.Jitter(backoff)) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// settle turns a run's claim results into its outcome (decide, the pure
// decision) and emits the actions it won.
func (b *batch) settle(pr *pendingRun) {
	outcome, reason, emit := decide(pr.claim)
	pr.run.Outcome, pr.run.Reason = outcome, reason
	if reason != "" {
		b.e.m.dedupHits.WithLabelValues(reason).Inc()
	}
	for i, ok := range emit {
		a := pr.acts[i]
		if a.Flow != nil {
			p := actions.Person{PersonID: a.Flow.PersonID, Status: actions.PersonEnrolled}
			switch {
			case ok:
				p.ActionID = a.ActionID
			case pr.claim.Targets[i].Status == store.StatusDone:
				p.Status, p.Reason = actions.PersonSkipped, actions.ReasonDuplicate
			default:
				p.Status, p.Reason = actions.PersonSkipped, actions.ReasonAlreadyEnrolled
			}
			pr.run.Persons = append(pr.run.Persons, p)
		}
		if !ok {
			continue
		}
		pr.run.ActionIDs = append(pr.run.ActionIDs, a.ActionID)
		b.out.Actions = append(b.out.Actions, a)
		b.out.confirm = append(b.out.confirm, store.ActionRef{Workspace: a.Workspace, ActionID: a.ActionID})
		b.e.m.actions.WithLabelValues(a.Type).Inc()
	}
}

// decide is the outcome of a claimed run: which actions to emit, and why
// the others were not.
func decide(c *store.Claim) (outcome, reason string, emit []bool) {
	if c.Cooldown {
		return actions.OutcomeSkipped, actions.ReasonCooldown, nil
	}
	emit = make([]bool, len(c.Targets))
	n, done, enrolled := 0, 0, 0
	for i, t := range c.Targets {
		switch t.Status {
		case store.StatusNew, store.StatusOurs:
			emit[i] = true
			n++
		case store.StatusDone:
			done++
		case store.StatusEnrolled:
			enrolled++
		}
	}
	switch {
	case n > 0:
		return actions.OutcomeCompleted, "", emit
	case done > 0:
		return actions.OutcomeSkipped, actions.ReasonDuplicate, emit
	default:
		return actions.OutcomeSkipped, actions.ReasonAlreadyEnrolled, emit
	}
}

// Commit records the state of a batch whose outputs Kafka acknowledged:
// actions become done (a redelivery is then a duplicate), record
// snapshots and timers are saved, fired timers are acknowledged.
func (e *Engine) Commit(ctx context.Context, out *Output) error {
	if out == nil {
		return nil
	}
	if err := e.store.Confirm(ctx, out.confirm, out.token); err != nil {
		e.m.storeErrors.WithLabelValues("confirm").Inc()
		return fmt.Errorf("confirm actions: %w", err)
	}
	if err := e.store.Apply(ctx, &out.writes, e.clock()); err != nil {
		e.m.storeErrors.WithLabelValues("save_state").Inc()
		return fmt.Errorf("save record state: %w", err)
	}
	if c := out.cache; c != nil {
		for _, d := range out.writes.Deletes {
			c.remove(d)
		}
		for _, sv := range out.writes.Saves {
			if sv.Data != nil {
				c.put(sv.Ref, sv.Data)
			} else {
				c.remove(sv.Ref)
			}
		}
	}
	if err := e.store.AckTimers(ctx, out.acks); err != nil {
		e.m.storeErrors.WithLabelValues("ack_timers").Inc()
		return fmt.Errorf("acknowledge timers: %w", err)
	}
	for _, w := range out.walksDone {
		e.m.walksDone.WithLabelValues(w.kind).Inc()
	}
	out.walksDone = nil
	out.confirm, out.acks = nil, nil
	out.writes = store.Writes{}
	return nil
}

// newSnapshot allocates a snapshot from the batch's slab.
func (b *batch) newSnapshot(r *crm.Record, t time.Time) *store.Snapshot {
	if len(b.snaps) == cap(b.snaps) {
		b.snaps = make([]store.Snapshot, 0, 64)
	}
	b.snaps = append(b.snaps, store.Snapshot{Record: r, Time: t})
	return &b.snaps[len(b.snaps)-1]
}

// save queues a record's snapshot for Commit; a record saved earlier in
// the batch is saved once, with its latest state.
func (b *batch) save(sv store.Save) {
	if b.saved == nil {
		b.saved = make(map[store.RecordRef]int, b.sizeHint)
		b.out.writes.Saves = make([]store.Save, 0, b.sizeHint)
	}
	w := &b.out.writes
	if i, ok := b.saved[sv.Ref]; ok {
		w.Saves[i] = sv
		return
	}
	b.saved[sv.Ref] = len(w.Saves)
	w.Saves = append(w.Saves, sv)
}

// unsave drops the batch's save of a record a later delete undoes
// (store.Writes).
func (b *batch) unsave(ref store.RecordRef) {
	i, ok := b.saved[ref]
	if !ok {
		return
	}
	w := &b.out.writes
	w.Saves = slices.Delete(w.Saves, i, i+1)
	delete(b.saved, ref)
	for r, j := range b.saved {
		if j > i {
			b.saved[r] = j - 1
		}
	}
}
