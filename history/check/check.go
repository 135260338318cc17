// Package check is the history's "Why not?" check: it tells a rule
// author whether an automation would run for a record now, and why not.
//
// A condition that is false leaves no run record, so the run history
// alone cannot say why an automation did not run. The check reads the
// record's latest state as the engine stored it (its snapshot in Redis,
// through package engine/store), builds the event that state would be
// seen in — a record.updated of the record as it is (record.created for
// an automation that only takes creates; a schedule.fired of the
// automation's schedule for a schedule trigger) — and explains it with
// authoring.Explain against a read-only copy of the live state, as
// `whenthen explain --redis-url` does: each clause's result, the values
// of the fields the clauses read, and the outcome, or why it would not
// run (condition false, on_enter already held, cooldown, disabled, ...).
// Nothing is written to Redis, and no run is recorded.
package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/parser"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/authoring"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	historystore "github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/rules"
)

// ErrUnavailable is returned when the checker has no engine state to
// read (the history service was started without --redis-url).
var ErrUnavailable = errors.New("the Why not? check needs the engine's Redis: start whenthen history with --redis-url (and --redis-prefix if the engine uses another prefix)")

// ErrNoAutomation is returned for an automation that is not in the live
// rules of the workspace.
var ErrNoAutomation = errors.New("no such automation in the workspace's live rules")

// State is the engine's state the check reads: a record's snapshot, and
// what authoring.Explain copies (cooldowns, dedup, enrollments).
// *store.Redis is one.
type State interface {
	engine.StateSource
	LoadSnapshots(ctx context.Context, refs []store.RecordRef) ([]*store.Snapshot, error)
}

var _ State = (*store.Redis)(nil)

// Rules returns the live compiler and rule set.
type Rules func() (*rules.Compiler, *rules.Set)

// Checker runs checks. It is safe for concurrent use.
type Checker struct {
	rules Rules
	state State
	clock func() time.Time
	log   *slog.Logger
}

// New returns a checker of the rules rules returns against state; a nil
// state makes every check return ErrUnavailable. clock defaults to
// time.Now.
func New(rules Rules, state State, clock func() time.Time, log *slog.Logger) *Checker {
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{rules: rules, state: state, clock: clock, log: log}
}

// Available reports whether checks can run.
func (c *Checker) Available() bool { return c != nil && c.state != nil }

// Result is what the check found.
type Result struct {
	AutomationID string `json:"automation_id"`
	Workspace    string `json:"workspace"`
	Object       string `json:"object"`
	RecordID     string `json:"record_id"`
	Enabled      bool   `json:"enabled"`
	// Trigger is the automation's trigger as its file says it.
	Trigger string `json:"trigger"`
	// RecordFound is false when the engine keeps no state of the record
	// (never seen, deleted, or its snapshot expired).
	RecordFound bool `json:"record_found"`
	// StateTime is the time of the event that last set the record's
	// stored state.
	StateTime *time.Time `json:"state_time,omitempty"`
	// Event is the event the check evaluated.
	Event *Event `json:"event,omitempty"`
	// WouldRun tells whether that event would complete a run.
	WouldRun bool `json:"would_run"`
	// Outcome is completed, skipped, error, or not_run; Reason the run's
	// reason or why it would not run (condition_false, already_true,
	// disabled, trigger, date_trigger, no_record, ...).
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Detail says it in words.
	Detail    string     `json:"detail"`
	Condition *Condition `json:"condition,omitempty"`
	// HeldBefore, for on_enter, is whether the condition held on the
	// stored state (which, for this check, is the record as it is).
	HeldBefore *bool     `json:"held_before,omitempty"`
	Error      string    `json:"error,omitempty"`
	CheckedAt  time.Time `json:"checked_at"`
}

// Event is the event a check evaluated.
type Event struct {
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	Schedule string    `json:"schedule,omitempty"`
}

// Condition is the automation's condition and each top-level clause.
type Condition struct {
	Expr    string   `json:"expr"`
	Result  *bool    `json:"result"`
	Error   string   `json:"error,omitempty"`
	Clauses []Clause `json:"clauses"`
}

// Clause is one top-level clause: its result (nil on an error) and the
// values of the record fields it reads, as a run's why holds them.
type Clause struct {
	Text   string          `json:"text"`
	Result *bool           `json:"result"`
	Error  string          `json:"error,omitempty"`
	Values []actions.Value `json:"values"`
}

// Reasons the check adds to authoring's.
const (
	ReasonNoRecord       = "no_record"
	ReasonTrackerTrigger = "tracker_trigger"
)

// Check evaluates automation automationID of workspace ws on the stored
// state of record recordID of object (default: the automation's
// object). It returns ErrNoAutomation, ErrUnavailable, or a
// *historystore.ParamError naming a bad parameter.
func (c *Checker) Check(ctx context.Context, ws, automationID, object, recordID string) (*Result, error) {
	compiler, set := c.rules()
	if set == nil {
		return nil, ErrNoAutomation
	}
	a, ok := set.Automation(automationID)
	if !ok || a.Workspace != ws {
		return nil, ErrNoAutomation
	}
	if recordID == "" {
		return nil, &historystore.ParamError{Param: "record", Msg: "required: the id of the record to check"}
	}
	for _, p := range [][2]string{{"object", object}, {"record", recordID}} {
		if err := historystore.CheckID(p[0], p[1]); err != nil {
			return nil, err
		}
	}
	if object == "" {
		object = a.Trigger.Object
	}
	res := &Result{AutomationID: a.ID, Workspace: ws, Object: object, RecordID: recordID, Enabled: a.Enabled,
		Outcome: authoring.OutcomeNotRun, CheckedAt: c.clock().UTC()}
	res.Trigger = triggerText(a)
	if a.Trigger.Kind == rules.TriggerTracker {
		res.Reason = ReasonTrackerTrigger
		res.Detail = "a tracker automation runs on tracker detections, which no stored record state holds; " +
			"run `whenthen explain --automation " + a.ID + " --event FILE` with the tracker event instead"
		return res, nil
	}
	if object != a.Trigger.Object {
		return nil, &historystore.ParamError{Param: "object", Msg: fmt.Sprintf("automation %s runs on %s records, not %s", a.ID, a.Trigger.Object, object)}
	}
	if !c.Available() {
		return nil, ErrUnavailable
	}
	snaps, err := c.state.LoadSnapshots(ctx, []store.RecordRef{{Workspace: ws, Object: object, ID: recordID}})
	if err != nil {
		return nil, fmt.Errorf("check: read the record's state: %w", err)
	}
	if len(snaps) == 0 || snaps[0] == nil {
		res.Reason = ReasonNoRecord
		res.Detail = fmt.Sprintf("the engine keeps no state of %s %s in %s: it has not seen the record, the record was deleted, or its state expired (--snapshot-ttl)",
			object, recordID, engine.WorkspaceName(ws))
		return res, nil
	}
	snap := snaps[0]
	res.RecordFound = true
	st := snap.Time.UTC()
	res.StateTime = &st
	ev := &engine.Event{ID: "whenthen-history-check-" + strconv.FormatInt(c.clock().UnixNano(), 36), Type: engine.TypeRecordUpdated,
		Time: c.clock().UTC(), Workspace: ws, Object: object, Record: snap.Record}
	if ev.Time.Before(snap.Time) { // a clock behind the engine's: the event must not be stale
		ev.Time = snap.Time
	}
	switch {
	case a.Trigger.Kind == rules.TriggerSchedule:
		ev.Type, ev.Schedule = engine.TypeScheduleFired, a.Trigger.Schedule
	case a.Trigger.Kind == rules.TriggerRecord && !a.Trigger.OnUpdate:
		ev.Type = engine.TypeRecordCreated
	}
	res.Event = &Event{Type: ev.Type, Time: ev.Time, Schedule: ev.Schedule}
	x, err := authoring.Explain(ctx, authoring.ExplainOptions{Compiler: compiler, Set: set, Automation: a.ID, Live: c.state, Logger: c.log}, ev)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if len(x.Automations) != 1 {
		return nil, fmt.Errorf("check: explain returned %d automations", len(x.Automations))
	}
	ae := x.Automations[0]
	res.Outcome, res.Reason, res.Detail, res.Error, res.HeldBefore = ae.Outcome, ae.Reason, ae.Detail, ae.Error, ae.HeldBefore
	res.WouldRun = ae.Outcome == actions.OutcomeCompleted
	if res.Detail == "" {
		res.Detail = detail(ae)
	}
	if ae.Condition != nil {
		res.Condition = condition(ae.Condition, snap)
	}
	return res, nil
}

// detail words an outcome authoring.Explain leaves without one.
func detail(ae *authoring.AutomationExplanation) string {
	switch {
	case ae.Outcome == actions.OutcomeCompleted:
		return fmt.Sprintf("it would run: the condition holds and nothing holds it back (%d action(s))", len(ae.Actions))
	case ae.Outcome == actions.OutcomeError:
		return "the condition fails to evaluate: " + ae.Error
	case ae.Reason != "":
		return ae.Reason
	}
	return ae.Outcome
}

// condition turns an explained condition into the check's, with the
// values each clause reads from the record.
func condition(cv *authoring.ConditionValue, snap *store.Snapshot) *Condition {
	fields := map[string]json.RawMessage{}
	if b, err := snap.Record.AppendJSON(nil); err == nil {
		_ = json.Unmarshal(b, &fields)
	}
	out := &Condition{Expr: cv.Expr, Result: cv.Value, Error: cv.Error, Clauses: make([]Clause, 0, len(cv.Clauses))}
	clauses := cv.Clauses
	if len(clauses) == 0 { // a condition of one clause is its own
		clauses = []authoring.ClauseValue{{Text: cv.Expr, Value: cv.Value, Error: cv.Error}}
	}
	for _, cl := range clauses {
		c := Clause{Text: cl.Text, Result: cl.Value, Error: cl.Error, Values: []actions.Value{}}
		for _, f := range FieldsRead(cl.Text) {
			name, ok := strings.CutPrefix(f, "record.")
			if !ok {
				name, ok = strings.CutPrefix(f, "before.")
			}
			if !ok {
				continue
			}
			v := actions.Value{Field: f, Value: json.RawMessage("null")}
			if raw, found := fields[name]; found {
				v.Value, v.Truncated = capValue(raw)
			}
			c.Values = append(c.Values, v)
		}
		out.Clauses = append(out.Clauses, c)
	}
	return out
}

// capValue cuts a value's JSON to actions.MaxValueBytes, as a run's why
// does: a string is shortened and marked with …, anything else too long
// is left out (null) and marked truncated.
func capValue(raw json.RawMessage) (json.RawMessage, bool) {
	if len(raw) <= actions.MaxValueBytes {
		return raw, false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		n := actions.MaxValueBytes - 8
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		b, _ := json.Marshal(s[:n] + "…")
		return b, true
	}
	return json.RawMessage("null"), true
}

// variables are the CEL variables whose fields a clause can read.
var variables = map[string]bool{"record": true, "before": true, "account": true, "opportunity": true, "tracker": true, "event": true}

// FieldsRead returns the fields an expression reads, as "record.stage",
// in the order they appear (left to right): selections of a field of one of the
// condition variables (record, before, account, opportunity, tracker,
// event), including inside has(). It returns nil for an expression that
// does not parse.
func FieldsRead(expr string) []string {
	p, err := parser.NewParser(parser.Macros(parser.AllMacros...))
	if err != nil {
		return nil
	}
	tree, iss := p.Parse(common.NewTextSource(expr))
	if iss != nil && len(iss.GetErrors()) > 0 {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	ast.PreOrderVisit(tree.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.SelectKind {
			return
		}
		sel := e.AsSelect()
		op := sel.Operand()
		if op.Kind() != ast.IdentKind || !variables[op.AsIdent()] {
			return
		}
		if f := op.AsIdent() + "." + sel.FieldName(); !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}))
	return out
}

// triggerText describes an automation's trigger for people.
func triggerText(a *rules.Automation) string {
	t := a.Trigger
	switch t.Kind {
	case rules.TriggerRecord:
		var on []string
		if t.OnCreate {
			on = append(on, "created")
		}
		if t.OnUpdate {
			on = append(on, "updated")
		}
		return fmt.Sprintf("%s %s", t.Object, strings.Join(on, " or "))
	case rules.TriggerDate:
		return fmt.Sprintf("date %s.%s%s", t.Object, t.Date.Field.Name, t.Date.OffsetText())
	case rules.TriggerTracker:
		return fmt.Sprintf("tracker %q", t.Tracker)
	case rules.TriggerSchedule:
		return fmt.Sprintf("schedule %q for %s", t.Schedule, t.Object)
	}
	return t.Kind.String()
}
