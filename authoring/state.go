package authoring

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/rules"
)

// newMemory is fresh, isolated engine state in memory.
func newMemory(schema *rules.Schema, log *slog.Logger) (*store.Memory, error) {
	return store.NewMemory(store.Options{Schema: schema, Logger: log})
}

// newReplay runs set in simulated time on fresh in-memory state.
func newReplay(set *rules.Set, schema *rules.Schema, log *slog.Logger) (*engine.Replay, error) {
	st, err := newMemory(schema, log)
	if err != nil {
		return nil, err
	}
	return engine.NewReplay(engine.Options{Rules: set, Schema: schema, Store: st, Logger: log})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// triggerMatch tells whether an event is one that a's trigger takes, and
// if not, why: the workspace, the event type, the object, the tracker
// name or confidence, the schedule name. A date trigger never takes an
// event: its timer fires at the due time.
func triggerMatch(a *rules.Automation, ev *engine.Event) (bool, string) {
	if a.Workspace != ev.Workspace {
		return false, fmt.Sprintf("the automation belongs to %s, the event to %s", wsName(a.Workspace), wsName(ev.Workspace))
	}
	t := a.Trigger
	switch t.Kind {
	case rules.TriggerRecord:
		switch ev.Type {
		case engine.TypeRecordCreated, engine.TypeRecordUpdated:
		default:
			return false, fmt.Sprintf("a record trigger takes record.created and record.updated events, not %s", ev.Type)
		}
		if ev.Object != t.Object {
			return false, fmt.Sprintf("the trigger is on %s records, the event is about a %s", t.Object, ev.Object)
		}
		if ev.Type == engine.TypeRecordCreated && !t.OnCreate {
			return false, "the trigger takes updates only (on: [updated])"
		}
		if ev.Type == engine.TypeRecordUpdated && !t.OnUpdate {
			return false, "the trigger takes creates only (on: [created])"
		}
	case rules.TriggerTracker:
		if ev.Type != engine.TypeTrackerDetected || ev.Tracker == nil {
			return false, fmt.Sprintf("a tracker trigger takes tracker.detected events, not %s", ev.Type)
		}
		if name := ev.Tracker.String("name"); name != t.Tracker {
			return false, fmt.Sprintf("the event's tracker is %q, the trigger's %q", name, t.Tracker)
		}
		if f, ok := ev.Tracker.Object().Field("confidence"); ok {
			c, _ := ev.Tracker.FieldValue(f).(types.Double)
			if float64(c) < t.MinConfidence {
				return false, fmt.Sprintf("confidence %g is below min_confidence %g", float64(c), t.MinConfidence)
			}
		}
	case rules.TriggerSchedule:
		if ev.Type != engine.TypeScheduleFired {
			return false, fmt.Sprintf("a schedule trigger takes schedule.fired events, not %s", ev.Type)
		}
		if ev.Schedule != t.Schedule {
			return false, fmt.Sprintf("the event's schedule is %q, the trigger's %q", ev.Schedule, t.Schedule)
		}
		if ev.Object != t.Object {
			return false, fmt.Sprintf("the trigger is for %s records, the schedule fired for a %s", t.Object, ev.Object)
		}
	case rules.TriggerDate:
		return false, fmt.Sprintf("a date trigger fires when %s.%s%s comes due, not on events", t.Object, t.Date.Field.Name, offsetText(t.Date.Offset))
	}
	return true, ""
}

func wsName(ws string) string {
	if ws == "" {
		return "no workspace"
	}
	return "workspace " + ws
}

func offsetText(d time.Duration) string {
	switch {
	case d > 0:
		return " + " + d.String()
	case d < 0:
		return " - " + (-d).String()
	}
	return ""
}

// clauseCache compiles the clause programs of a set's automations once.
type clauseCache struct {
	c     *rules.Compiler
	progs map[*rules.Automation]clausePrograms
}

type clausePrograms struct {
	progs []*rules.Program
	err   error
}

func newClauseCache(c *rules.Compiler) *clauseCache {
	return &clauseCache{c: c, progs: map[*rules.Automation]clausePrograms{}}
}

// of returns the programs of a's top-level clauses, in order; the whole
// condition as one clause when they cannot be compiled on their own.
func (cc *clauseCache) of(a *rules.Automation) ([]*rules.Program, error) {
	p, ok := cc.progs[a]
	if !ok {
		p.progs, p.err = cc.c.ClausePrograms(a)
		if p.err != nil && a.If != nil {
			p.progs = []*rules.Program{a.If.Program}
		}
		cc.progs[a] = p
	}
	return p.progs, p.err
}

// evalBool evaluates a condition or clause: its value, or the
// evaluation error.
func evalBool(ctx context.Context, p *rules.Program, vars interpreter.Activation) (bool, error) {
	v, err := p.Eval(ctx, vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("gave a %s, not a bool", v.Type().TypeName())
	}
	return bool(b), nil
}
