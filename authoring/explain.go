package authoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/suggest"
	"github.com/whenthen/whenthen/rules"
)

// ExplainOptions configures Explain.
type ExplainOptions struct {
	// Compiler is the compiler Set was loaded with (required): clause
	// programs come from its cache.
	Compiler *rules.Compiler
	// Set is the rule set (required).
	Set *rules.Set
	// Automation, if set, explains that automation only, whatever its
	// workspace or trigger.
	Automation string
	// Live, if set, is the engine state to explain against (a
	// store.Redis). It is only read: what the event can read of it (the
	// record's snapshot, the cooldowns, dedup and enrollment entries it
	// would touch) is copied into the in-memory state first. Default:
	// fresh in-memory state.
	Live engine.StateSource
	// Logger receives the engine's warnings; default: discarded.
	Logger *slog.Logger
}

// Not-run reasons of an AutomationExplanation (Reason when Outcome is
// OutcomeNotRun).
const (
	OutcomeNotRun = "not_run"

	WhyDisabled       = "disabled"
	WhyWorkspace      = "workspace"
	WhyTrigger        = "trigger"
	WhyDateTrigger    = "date_trigger"
	WhyStale          = "stale"
	WhyConditionFalse = "condition_false"
	WhyAlreadyTrue    = "already_true"
)

// Explanation is what one event does to each candidate automation.
type Explanation struct {
	Event EventSummary `json:"event"`
	// State is "memory" (fresh in-memory state) or "live" (a read-only
	// copy of the live state the event reads).
	State       string                   `json:"state"`
	Automations []*AutomationExplanation `json:"automations"`
	// Note says why no automation is a candidate, when none is: the
	// event's workspace has no automations (Workspaces then lists those
	// that have, "" for automations without one), or none of its
	// automations has a trigger for the event.
	Note       string   `json:"note,omitempty"`
	Workspaces []string `json:"workspaces,omitempty"`
}

// EventSummary identifies the event explained.
type EventSummary struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Time      string `json:"time"`
	Workspace string `json:"workspace"`
	Object    string `json:"object,omitempty"`
	RecordID  string `json:"record_id,omitempty"`
	Tracker   string `json:"tracker,omitempty"`
	Call      string `json:"call,omitempty"`
	Schedule  string `json:"schedule,omitempty"`
}

// AutomationExplanation is one candidate automation's fate.
type AutomationExplanation struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Workspace string `json:"workspace"`
	Trigger   struct {
		Kind    string `json:"kind"`
		Text    string `json:"text"`
		Matched bool   `json:"matched"`
		Why     string `json:"why,omitempty"`
	} `json:"trigger"`
	// Condition is the value of the condition and of each top-level
	// clause; nil when the automation has none or it was not evaluated.
	Condition *ConditionValue `json:"condition,omitempty"`
	Fire      string          `json:"fire"`
	// HeldBefore is, for on_enter, the condition's value on the record as
	// it was before the change; BeforeFrom where that record comes from
	// (event, state, unchanged).
	HeldBefore *bool  `json:"held_before,omitempty"`
	BeforeFrom string `json:"before_from,omitempty"`
	// Outcome is the run's outcome (completed, skipped, error), or not_run.
	Outcome string `json:"outcome"`
	// Reason is the run's reason, or why it did not run (Why...).
	Reason string `json:"reason,omitempty"`
	// Detail says it in words.
	Detail  string            `json:"detail,omitempty"`
	Error   string            `json:"error,omitempty"`
	Actions []json.RawMessage `json:"actions,omitempty"`
	// TimerDue is when a date trigger's timer is due for the record.
	TimerDue string `json:"timer_due,omitempty"`

	actionText []string
}

// ConditionValue is a condition's value and its clauses' values.
type ConditionValue struct {
	Expr    string        `json:"expr"`
	Value   *bool         `json:"value"` // null on an evaluation error
	Error   string        `json:"error,omitempty"`
	Clauses []ClauseValue `json:"clauses"`
}

// ClauseValue is one top-level clause's value, evaluated on its own.
type ClauseValue struct {
	Text  string `json:"clause"`
	Value *bool  `json:"value"`
	Error string `json:"error,omitempty"`
}

// Explain runs ev through a fresh engine and explains, for each candidate
// automation, whether its trigger matched, the value of each clause of its
// condition, and the outcome it has or why it does not fire. Candidates
// are the automations of the event's workspace whose trigger kind takes
// its type (record and date triggers on the event's object for record
// events, tracker triggers for tracker events, call triggers for call
// events, schedule triggers for schedule events), or only opts.Automation.
func Explain(ctx context.Context, opts ExplainOptions, ev *engine.Event) (*Explanation, error) {
	if opts.Compiler == nil || opts.Set == nil {
		return nil, fmt.Errorf("authoring: ExplainOptions.Compiler and Set are required")
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	var cands []*rules.Automation
	if opts.Automation != "" {
		a, ok := opts.Set.Automation(opts.Automation)
		if !ok {
			return nil, fmt.Errorf("no automation %q in the rules", opts.Automation)
		}
		cands = []*rules.Automation{a}
	} else {
		for _, a := range opts.Set.Automations {
			if a.Workspace == ev.Workspace && candidate(a, ev) {
				cands = append(cands, a)
			}
		}
	}
	schema := opts.Compiler.Schema()
	x := &Explanation{Event: summarize(ev), State: "memory", Automations: []*AutomationExplanation{}}
	if opts.Automation == "" && len(cands) == 0 {
		x.Note, x.Workspaces = noCandidates(opts.Set, ev)
	}
	var mem *store.Memory
	var err error
	if opts.Live != nil {
		x.State = "live"
		mem, err = copyLive(ctx, opts, ev)
	} else {
		mem, err = newMemory(schema, opts.Logger)
	}
	if err != nil {
		return nil, err
	}
	replay, err := engine.NewReplay(engine.Options{Rules: opts.Set, Schema: schema, Store: mem, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	bd, err := replay.Engine().Bind(ctx, ev)
	if err != nil {
		return nil, err
	}
	outs, err := replay.Event(ctx, ev)
	if err != nil {
		return nil, err
	}
	runs := map[string]*actions.Run{}
	acts := map[string]*actions.Action{}
	for _, o := range outs {
		for i := range o.Runs {
			if o.Runs[i].EventID == ev.ID {
				runs[o.Runs[i].AutomationID] = &o.Runs[i]
			}
		}
		for i := range o.Actions {
			acts[o.Actions[i].ActionID] = &o.Actions[i]
		}
	}
	cc := newClauseCache(opts.Compiler)
	for _, a := range cands {
		x.Automations = append(x.Automations, explainOne(ctx, a, ev, bd, cc, runs[a.ID], acts))
	}
	return x, nil
}

// noCandidates says why no automation of set is a candidate for ev: its
// workspace has none (and which workspaces have, with a did-you-mean), or
// none of them has a trigger that takes the event.
func noCandidates(set *rules.Set, ev *engine.Event) (string, []string) {
	n := 0
	seen := map[string]bool{}
	var workspaces []string
	for _, a := range set.Automations {
		if a.Workspace == ev.Workspace {
			n++
		}
		if !seen[a.Workspace] {
			seen[a.Workspace] = true
			workspaces = append(workspaces, a.Workspace)
		}
	}
	sort.Strings(workspaces)
	if n > 0 && ev.Workspace == "" {
		return fmt.Sprintf("the event names no workspace; of the %d %s without one, none has a %s", n, plural(n, "automation"), wantedTrigger(ev)), nil
	}
	if n > 0 {
		return fmt.Sprintf("workspace %q has %d %s, and none has a %s", ev.Workspace, n, plural(n, "automation"), wantedTrigger(ev)), nil
	}
	if len(workspaces) == 0 {
		return "the rules have no automations", nil
	}
	var named []string
	for _, w := range workspaces {
		if w != "" {
			named = append(named, w)
		}
	}
	var b strings.Builder
	if ev.Workspace == "" {
		b.WriteString("the event names no workspace, and no automation without a workspace takes it")
	} else {
		fmt.Fprintf(&b, "no automation of workspace %q takes this event", ev.Workspace)
	}
	b.WriteString("; the rules have automations ")
	switch {
	case len(named) == 0:
		b.WriteString("without a workspace only")
	default:
		fmt.Fprintf(&b, "for %s %s", plural(len(named), "workspace"), strings.Join(named, ", "))
		if seen[""] {
			b.WriteString(", and without a workspace")
		}
	}
	if ev.Workspace != "" {
		if near, ok := suggest.Nearest(ev.Workspace, named); ok {
			fmt.Fprintf(&b, " (did you mean %q?)", near)
		}
	}
	return b.String(), workspaces
}

// wantedTrigger names the triggers that take ev, as candidate chooses them.
func wantedTrigger(ev *engine.Event) string {
	switch ev.Type {
	case engine.TypeTrackerDetected:
		return "tracker trigger"
	case engine.TypeScheduleFired:
		return "schedule trigger"
	}
	return "record or date trigger on " + ev.Object
}

// copyLive copies what ev reads of the live state into fresh in-memory
// state: the record's snapshot, then, after a dry run names the
// automations and people the event touches, their cooldowns, dedup and
// enrollment entries.
func copyLive(ctx context.Context, opts ExplainOptions, ev *engine.Event) (*store.Memory, error) {
	schema := opts.Compiler.Schema()
	dryState, err := newMemory(schema, opts.Logger)
	if err != nil {
		return nil, err
	}
	if err := engine.CopyState(ctx, opts.Live, dryState, ev, nil); err != nil {
		return nil, err
	}
	dry, err := engine.NewReplay(engine.Options{Rules: opts.Set, Schema: schema, Store: dryState, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	outs, err := dry.Event(ctx, ev)
	if err != nil {
		return nil, err
	}
	mem, err := newMemory(schema, opts.Logger)
	if err != nil {
		return nil, err
	}
	return mem, engine.CopyState(ctx, opts.Live, mem, ev, outs)
}

// candidate tells whether explain lists a for ev: its trigger kind takes
// events of ev's type (and object). It is wider than engine.Accepts on
// purpose: an automation whose trigger then refuses the event (another
// tracker, creates only, a date trigger on the record's object) is listed
// with engine.Accepts's reason, so that the author sees why it did not run.
func candidate(a *rules.Automation, ev *engine.Event) bool {
	switch ev.Type {
	case engine.TypeRecordCreated, engine.TypeRecordUpdated, engine.TypeRecordDeleted:
		return (a.Trigger.Kind == rules.TriggerRecord || a.Trigger.Kind == rules.TriggerDate) && a.Trigger.Object == ev.Object
	case engine.TypeTrackerDetected:
		return a.Trigger.Kind == rules.TriggerTracker
	case engine.TypeScheduleFired:
		return a.Trigger.Kind == rules.TriggerSchedule
	case engine.TypeCallProcessed:
		return a.Trigger.Kind == rules.TriggerCall
	}
	return false
}

func summarize(ev *engine.Event) EventSummary {
	s := EventSummary{ID: ev.ID, Type: ev.Type, Time: ev.Time.UTC().Format(time.RFC3339Nano), Workspace: ev.Workspace,
		Object: ev.Object, RecordID: ev.RecordID(), Schedule: ev.Schedule}
	if ev.Tracker != nil {
		s.Tracker = ev.Tracker.String("name")
	}
	if ev.Call != nil {
		s.Call = ev.Call.ID()
	}
	return s
}

// triggerText describes a trigger as its YAML says it.
func triggerText(t rules.Trigger) string {
	switch t.Kind {
	case rules.TriggerRecord:
		var on []string
		if t.OnCreate {
			on = append(on, "created")
		}
		if t.OnUpdate {
			on = append(on, "updated")
		}
		return fmt.Sprintf("record %s on [%s]", t.Object, strings.Join(on, ", "))
	case rules.TriggerTracker:
		s := fmt.Sprintf("tracker %q", t.Tracker)
		if t.MinConfidence > 0 {
			s += fmt.Sprintf(" min_confidence %g", t.MinConfidence)
		}
		return s
	case rules.TriggerSchedule:
		return fmt.Sprintf("schedule %q for %s", t.Schedule, t.Object)
	case rules.TriggerCall:
		return "call processed"
	case rules.TriggerDate:
		d := t.Date
		s := fmt.Sprintf("date %s.%s%s", t.Object, d.Field.Name, d.OffsetText())
		if d.HasAt {
			s += fmt.Sprintf(" at %02d:%02d %s", d.AtHour, d.AtMinute, d.Location)
		}
		return s
	}
	return t.Kind.String()
}

func boolPtr(b bool) *bool { return &b }

func explainOne(ctx context.Context, a *rules.Automation, ev *engine.Event, bd *engine.Bindings, cc *clauseCache, run *actions.Run, acts map[string]*actions.Action) *AutomationExplanation {
	x := &AutomationExplanation{ID: a.ID, Name: a.Name, Workspace: a.Workspace, Fire: a.Fire.String(), Outcome: OutcomeNotRun}
	x.Trigger.Kind, x.Trigger.Text = a.Trigger.Kind.String(), triggerText(a.Trigger)
	notRun := func(reason, format string, args ...any) *AutomationExplanation {
		x.Reason, x.Detail = reason, fmt.Sprintf(format, args...)
		return x
	}
	matched, why := triggerMatch(a, ev)
	x.Trigger.Matched, x.Trigger.Why = matched, why
	if !a.Enabled {
		return notRun(WhyDisabled, "the automation is disabled (enabled: false)")
	}
	if a.Workspace != ev.Workspace {
		return notRun(WhyWorkspace, "%s", why)
	}
	if a.Trigger.Kind == rules.TriggerDate {
		x.Trigger.Why = ""
		return explainDate(ctx, x, a, ev, bd, cc)
	}
	if !matched {
		return notRun(WhyTrigger, "the trigger does not take this event: %s", why)
	}
	if bd.Stale {
		return notRun(WhyStale, "the event is older than the stored state of its record: the engine ignores it")
	}
	if a.If != nil {
		x.Condition = evalCondition(ctx, a, bd, cc)
		if x.Condition.Value != nil && !*x.Condition.Value {
			var falses []string
			for _, c := range x.Condition.Clauses {
				if c.Value != nil && !*c.Value {
					falses = append(falses, "`"+c.Text+"`")
				}
			}
			if len(falses) > 0 && len(x.Condition.Clauses) > 1 {
				return notRun(WhyConditionFalse, "the condition is false: %s %s false", strings.Join(falses, " and "), map[bool]string{true: "is", false: "are"}[len(falses) == 1])
			}
			return notRun(WhyConditionFalse, "the condition is false")
		}
		if x.Condition.Value != nil && a.Fire == rules.FireOnEnter && ev.Type == engine.TypeRecordUpdated {
			if bd.BeforeVars == nil {
				x.Detail = "on_enter: the record's state before this partial update is unknown, so the update counts as entering the condition"
			} else {
				x.BeforeFrom = bd.BeforeFrom
				held, err := evalBool(ctx, a.If.Program, bd.BeforeVars)
				if err == nil {
					x.HeldBefore = boolPtr(held)
				}
				if err == nil && held {
					switch bd.BeforeFrom {
					case engine.BeforeUnchanged:
						return notRun(WhyAlreadyTrue, "on_enter: the event carries no before and no state of the record is stored, so the record is taken as unchanged and the condition as already true")
					case engine.BeforeFromState:
						return notRun(WhyAlreadyTrue, "on_enter: the condition already held on the record's stored state before this change")
					}
					return notRun(WhyAlreadyTrue, "on_enter: the condition already held before this change (record with the event's before laid over it)")
				}
			}
		}
	}
	if run == nil {
		return notRun(WhyTrigger, "the engine did not run it")
	}
	x.Outcome, x.Reason, x.Error = run.Outcome, run.Reason, run.Error
	for _, id := range run.ActionIDs {
		if act := acts[id]; act != nil {
			x.Actions = append(x.Actions, act.AppendJSON(nil))
			x.actionText = append(x.actionText, actionText(act))
		}
	}
	switch run.Reason {
	case actions.ReasonCooldown:
		x.Detail = fmt.Sprintf("cooldown: it already ran for this record within %s", a.Cooldown)
	case actions.ReasonAlreadyEnrolled:
		x.Detail = "re-enrollment: every person is already enrolled in flow " + a.Flow.ID
		if a.Flow.ReenrollAfter > 0 {
			x.Detail += fmt.Sprintf(" within reenroll_after (%s)", a.Flow.ReenrollAfter)
		}
	case actions.ReasonDuplicate:
		x.Detail = "duplicate: this event's actions were already produced"
	case actions.ReasonNoRecipients:
		x.Detail = "no recipients: the record has no owner_id and the brief lists no other recipient"
	case actions.ReasonNoPerson:
		x.Detail = "no person: the flow's who gave no person id"
	}
	return x
}

// explainDate explains a date trigger on a record event: it does not run
// now; its timer comes due at the record's date, and the condition is
// shown as it is on the record now.
func explainDate(ctx context.Context, x *AutomationExplanation, a *rules.Automation, ev *engine.Event, bd *engine.Bindings, cc *clauseCache) *AutomationExplanation {
	x.Reason = WhyDateTrigger
	d := a.Trigger.Date
	if ev.Type == engine.TypeRecordDeleted || bd.Record == nil {
		x.Detail = "a date trigger does not run on events; the record is deleted, so its timer is cancelled"
		return x
	}
	if a.If != nil {
		x.Condition = evalCondition(ctx, a, bd, cc)
	}
	v, set := bd.Record.Get(d.Field).(types.Timestamp)
	switch due := d.Due(v.Time); {
	case !set:
		x.Detail = fmt.Sprintf("a date trigger does not run on events; %s is not set, so no timer is armed", d.Field.Name)
	case !due.After(ev.Time.Add(-d.CatchUp)):
		x.Detail = fmt.Sprintf("a date trigger does not run on events; its due time %s is more than its catch_up (%s) before the event, so it does not fire", due.UTC().Format(time.RFC3339), d.CatchUp)
	case !due.After(ev.Time):
		x.TimerDue = due.UTC().Format(time.RFC3339)
		x.Detail = fmt.Sprintf("a date trigger does not run on events; its due time %s has passed, within its catch_up (%s): if this event is the first to set the date, the timer fires at once, late, when the condition is evaluated on the record as it is then (shown: as it is now)", x.TimerDue, d.CatchUp)
	default:
		x.TimerDue = due.UTC().Format(time.RFC3339)
		x.Detail = fmt.Sprintf("a date trigger does not run on events; its timer is due at %s, when the condition is evaluated on the record as it is then (shown: as it is now)", x.TimerDue)
	}
	return x
}

func evalCondition(ctx context.Context, a *rules.Automation, bd *engine.Bindings, cc *clauseCache) *ConditionValue {
	cv := &ConditionValue{Expr: a.If.Expr, Clauses: []ClauseValue{}}
	if v, err := evalBool(ctx, a.If.Program, bd.Vars); err != nil {
		cv.Error = err.Error()
	} else {
		cv.Value = boolPtr(v)
	}
	progs, err := cc.of(a)
	if err != nil {
		cv.Error = strings.TrimSpace(cv.Error + " (clauses: " + err.Error() + ")")
		return cv
	}
	for _, p := range progs {
		c := ClauseValue{Text: p.Expr}
		if v, err := evalBool(ctx, p, bd.Vars); err != nil {
			c.Error = err.Error()
		} else {
			c.Value = boolPtr(v)
		}
		cv.Clauses = append(cv.Clauses, c)
	}
	return cv
}

// WriteText prints the explanation for people.
func (x *Explanation) WriteText(w io.Writer) {
	e := x.Event
	fmt.Fprintf(w, "event %s: %s", e.ID, e.Type)
	switch {
	case e.Object != "":
		fmt.Fprintf(w, " %s %s", e.Object, e.RecordID)
	case e.Tracker != "":
		fmt.Fprintf(w, " %q", e.Tracker)
	case e.Call != "":
		fmt.Fprintf(w, " call %s", e.Call)
	}
	if e.Schedule != "" {
		fmt.Fprintf(w, " (schedule %q)", e.Schedule)
	}
	fmt.Fprintf(w, " in %s at %s\n", engine.WorkspaceName(e.Workspace), e.Time)
	if x.State == "live" {
		fmt.Fprintln(w, "state: a read-only copy of the live state this event reads (record snapshot, cooldowns, dedup, enrollments)")
	} else {
		fmt.Fprintln(w, "state: fresh and in memory: the rule logic alone, as if nothing happened before (no stored record, cooldown or enrollment)")
	}
	fires := 0
	for _, a := range x.Automations {
		if a.Outcome == actions.OutcomeCompleted {
			fires++
		}
	}
	fmt.Fprintf(w, "%d candidate %s, %d completed\n", len(x.Automations), plural(len(x.Automations), "automation"), fires)
	if x.Note != "" {
		fmt.Fprintln(w, x.Note)
	}
	for _, a := range x.Automations {
		fmt.Fprintln(w)
		status := a.Outcome
		switch {
		case a.Outcome == OutcomeNotRun:
			status = "not run (" + a.Reason + ")"
		case a.Reason != "":
			status += " (" + a.Reason + ")"
		}
		fmt.Fprintf(w, "%s: %s\n", a.ID, status)
		if a.Name != "" {
			fmt.Fprintf(w, "  %s\n", a.Name)
		}
		trig := "matched"
		if !a.Trigger.Matched {
			trig = "not matched"
			if a.Trigger.Why != "" {
				trig += ": " + a.Trigger.Why
			}
		}
		if a.Trigger.Kind == rules.TriggerDate.String() {
			trig = "timer"
			if a.TimerDue != "" {
				trig += " due " + a.TimerDue
			}
		}
		fmt.Fprintf(w, "  trigger    %s: %s\n", a.Trigger.Text, trig)
		if c := a.Condition; c != nil {
			fmt.Fprintf(w, "  condition  %s\n", valueText(c.Value, c.Error))
			if len(c.Clauses) > 1 {
				for _, cl := range c.Clauses {
					fmt.Fprintf(w, "    %-6s %s\n", valueText(cl.Value, ""), cl.Text)
					if cl.Error != "" {
						fmt.Fprintf(w, "           error: %s\n", cl.Error)
					}
				}
			}
		}
		if a.HeldBefore != nil {
			fmt.Fprintf(w, "  before     %s (%s); fire: %s\n", valueText(a.HeldBefore, ""), beforeFromText(a.BeforeFrom), a.Fire)
		}
		if a.Error != "" {
			fmt.Fprintf(w, "  error      %s\n", a.Error)
		}
		for _, t := range a.actionText {
			fmt.Fprintf(w, "  action     %s\n", t)
		}
		if a.Detail != "" && a.Reason != WhyTrigger {
			fmt.Fprintf(w, "  why        %s\n", a.Detail)
		}
	}
}

func valueText(v *bool, err string) string {
	switch {
	case v == nil && err != "":
		return "error: " + err
	case v == nil:
		return "error"
	case *v:
		return "true"
	}
	return "false"
}

func beforeFromText(s string) string {
	switch s {
	case engine.BeforeFromEvent:
		return "the record with the event's before laid over it"
	case engine.BeforeFromState:
		return "the record's stored state"
	case engine.BeforeUnchanged:
		return "no before and no stored state: taken as unchanged"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
