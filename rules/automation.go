package rules

import (
	"time"

	"github.com/whenthen/whenthen/crm"
)

// TriggerKind is what starts an automation.
type TriggerKind uint8

// Trigger kinds.
const (
	TriggerRecord TriggerKind = iota + 1
	TriggerDate
	TriggerTracker
	TriggerSchedule
	TriggerCall
)

// TriggerKinds lists the trigger kinds in a fixed order.
var TriggerKinds = []TriggerKind{TriggerRecord, TriggerDate, TriggerTracker, TriggerSchedule, TriggerCall}

func (k TriggerKind) String() string {
	switch k {
	case TriggerRecord:
		return "record"
	case TriggerDate:
		return "date"
	case TriggerTracker:
		return "tracker"
	case TriggerSchedule:
		return "schedule"
	case TriggerCall:
		return "call"
	}
	return "unknown"
}

// Fire is when a matching condition runs the action.
type Fire uint8

// Fire modes.
const (
	// FireOnEnter runs when the condition goes from false to true.
	FireOnEnter Fire = iota + 1
	// FireEveryTime runs on every matching event.
	FireEveryTime
)

func (f Fire) String() string {
	if f == FireOnEnter {
		return "on_enter"
	}
	return "every_time"
}

// Pos is a position in an automation file.
type Pos struct {
	File      string
	Line, Col int
}

// Trigger is an automation's When.
type Trigger struct {
	Kind TriggerKind
	// Object is the record object: of a record, date or schedule trigger.
	Object string
	// OnCreate and OnUpdate are the record events a record trigger takes.
	OnCreate, OnUpdate bool
	// Tracker is the tracker name of a tracker trigger; MinConfidence its
	// threshold (0 = any).
	Tracker       string
	MinConfidence float64
	// Schedule is the schedule name of a schedule trigger fired by
	// schedule.fired events; Cron is set instead for a built-in schedule.
	Schedule string
	Cron     *Cron
	// Date is set for date triggers.
	Date *DateTrigger
}

// DefaultCatchUp is a date trigger's catch_up when it gives none.
const DefaultCatchUp = 24 * time.Hour

// DateTrigger fires at a record's date field, shifted by Offset, and
// optionally moved to a local time of day.
type DateTrigger struct {
	Field  *crm.Field
	Offset time.Duration
	// CatchUp: a due time already past by less than CatchUp when the
	// record, its date or the automation is first seen fires at once
	// (late); 0 fires only due times still ahead.
	CatchUp  time.Duration
	HasAt    bool
	AtHour   int
	AtMinute int
	Location *time.Location // UTC when not set
}

// Due is when the trigger fires for a record whose field holds t.
func (d *DateTrigger) Due(t time.Time) time.Time {
	due := t.Add(d.Offset)
	if !d.HasAt {
		return due
	}
	local := due.In(d.Location)
	return time.Date(local.Year(), local.Month(), local.Day(), d.AtHour, d.AtMinute, 0, 0, d.Location)
}

// OffsetText is the offset as it reads after the date field: " + 2h",
// " - 720h0m0s", or "" for none.
func (d *DateTrigger) OffsetText() string {
	switch {
	case d.Offset > 0:
		return " + " + d.Offset.String()
	case d.Offset < 0:
		return " - " + (-d.Offset).String()
	}
	return ""
}

// Recipient kinds of a brief.
const (
	RecipientOwner = "owner"
	RecipientUser  = "user"
	RecipientEmail = "email"
)

// Recipient is one brief recipient: the record owner, a user or an email.
type Recipient struct {
	Kind  string // owner | user | email
	Value string // user id or address; "" for owner
}

// BriefAction sends an AI-generated brief.
type BriefAction struct {
	Kind       string // account | opportunity
	Recipients []Recipient
}

// FlowAction enrolls people into an outreach flow.
type FlowAction struct {
	ID string
	// Who gives the person ids; nil means the record itself (lead and
	// contact triggers).
	Who *Program
	// ReenrollAfter is how long after an enrollment the same person may be
	// enrolled again; 0 means never.
	ReenrollAfter time.Duration
}

// Automation is one compiled When / If / Then rule.
type Automation struct {
	ID        string
	Name      string
	Workspace string
	Enabled   bool
	Pos       Pos

	Trigger Trigger
	// If is the compiled condition; nil when the automation has none.
	If   *Condition
	Fire Fire
	// Brief or Flow is set.
	Brief *BriefAction
	Flow  *FlowAction
	// Cooldown allows at most one run per automation and record in the window; 0 = none.
	Cooldown time.Duration
}

// ActionType is "brief" or "flow".
func (a *Automation) ActionType() string {
	if a.Brief != nil {
		return "brief"
	}
	return "flow"
}
