package engine

import (
	"fmt"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/rules"
)

// Trigger acceptance: the one place that decides whether an automation's
// trigger takes an event. The index narrows an event's candidates by
// workspace, trigger group (object, tracker or schedule name); Accepts
// decides for each candidate, and the authoring tools (whenthen explain,
// test coverage) ask it too and explain its answer with Refusal.Explain.

// Refusal is why a trigger does not take an event; Accepted when it does.
type Refusal uint8

// Refusals.
const (
	Accepted          Refusal = iota
	RefusedWorkspace          // the automation belongs to another workspace
	RefusedType               // the trigger takes other event types
	RefusedObject             // the trigger is on another object
	RefusedCreated            // a record trigger on updates only, and a created event
	RefusedUpdated            // a record trigger on creates only, and an updated event
	RefusedTracker            // another tracker
	RefusedConfidence         // the tracker's confidence is below min_confidence
	RefusedSchedule           // another schedule
	RefusedDate               // a date trigger takes no event: its timer fires
)

// Accepts tells whether a's trigger takes ev. It does not allocate.
func Accepts(a *rules.Automation, ev *Event) Refusal {
	if a.Workspace != ev.Workspace {
		return RefusedWorkspace
	}
	t := &a.Trigger
	switch t.Kind {
	case rules.TriggerRecord:
		switch {
		case ev.Type != TypeRecordCreated && ev.Type != TypeRecordUpdated:
			return RefusedType
		case ev.Object != t.Object:
			return RefusedObject
		case ev.Type == TypeRecordCreated && !t.OnCreate:
			return RefusedCreated
		case ev.Type == TypeRecordUpdated && !t.OnUpdate:
			return RefusedUpdated
		}
	case rules.TriggerTracker:
		switch {
		case ev.Type != TypeTrackerDetected || ev.Tracker == nil:
			return RefusedType
		case ev.Tracker.String("name") != t.Tracker:
			return RefusedTracker
		case confidence(ev) < t.MinConfidence:
			return RefusedConfidence
		}
	case rules.TriggerSchedule:
		switch {
		case ev.Type != TypeScheduleFired:
			return RefusedType
		case ev.Schedule != t.Schedule:
			return RefusedSchedule
		case ev.Object != t.Object:
			return RefusedObject
		}
	case rules.TriggerCall:
		if ev.Type != TypeCallProcessed || ev.Call == nil {
			return RefusedType
		}
	case rules.TriggerDate:
		return RefusedDate
	}
	return Accepted
}

// confidence is a tracker event's confidence, 0 when it has none.
func confidence(ev *Event) float64 {
	f, ok := ev.Tracker.Object().Field("confidence")
	if !ok {
		return 0
	}
	c, _ := ev.Tracker.FieldValue(f).(types.Double)
	return float64(c)
}

// Explain says in words why a's trigger does not take ev ("" when it does).
func (r Refusal) Explain(a *rules.Automation, ev *Event) string {
	t := a.Trigger
	switch r {
	case RefusedWorkspace:
		return fmt.Sprintf("the automation belongs to %s, the event to %s", WorkspaceName(a.Workspace), WorkspaceName(ev.Workspace))
	case RefusedType:
		switch t.Kind {
		case rules.TriggerRecord:
			return fmt.Sprintf("a record trigger takes record.created and record.updated events, not %s", ev.Type)
		case rules.TriggerTracker:
			return fmt.Sprintf("a tracker trigger takes tracker.detected events, not %s", ev.Type)
		case rules.TriggerCall:
			return fmt.Sprintf("a call trigger takes call.processed events, not %s", ev.Type)
		default:
			return fmt.Sprintf("a schedule trigger takes schedule.fired events, not %s", ev.Type)
		}
	case RefusedObject:
		if t.Kind == rules.TriggerSchedule {
			return fmt.Sprintf("the trigger is for %s records, the schedule fired for a %s", t.Object, ev.Object)
		}
		return fmt.Sprintf("the trigger is on %s records, the event is about a %s", t.Object, ev.Object)
	case RefusedCreated:
		return "the trigger takes updates only (on: [updated])"
	case RefusedUpdated:
		return "the trigger takes creates only (on: [created])"
	case RefusedTracker:
		return fmt.Sprintf("the event's tracker is %q, the trigger's %q", ev.Tracker.String("name"), t.Tracker)
	case RefusedConfidence:
		return fmt.Sprintf("confidence %g is below min_confidence %g", confidence(ev), t.MinConfidence)
	case RefusedSchedule:
		return fmt.Sprintf("the event's schedule is %q, the trigger's %q", ev.Schedule, t.Schedule)
	case RefusedDate:
		return fmt.Sprintf("a date trigger fires when %s.%s%s comes due, not on events", t.Object, t.Date.Field.Name, t.Date.OffsetText())
	}
	return ""
}

// WorkspaceName names a workspace in messages: "workspace acme", or "no
// workspace" for events and automations without one.
func WorkspaceName(ws string) string {
	if ws == "" {
		return "no workspace"
	}
	return "workspace " + ws
}
