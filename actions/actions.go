// Package actions owns whenthen's output records: what every consumer of
// the output topics needs, and nothing of Kafka.
//
// An [Action] asks a downstream system to do something (send a brief, enroll
// a person in a flow); a [Run] records what one automation did with one event
// (completed, skipped and why, or failed); an [Outcome] is what `whenthen
// deliver` did with an action (outcome.go); a [DeadLetter] is input that
// could not be processed. Actions and runs carry deterministic ids ([ActionID],
// [RunID]) so that a record written twice, after a retry or a redelivery,
// can be recognised downstream. The default topic names, the message keys
// ([Action.Key], [Run.Key]) and the header names (HeaderActionID, ...) are
// the rest of the topics' format; package actions/writer writes the records
// to Kafka.
//
// The JSON form of both records is written by hand ([Action.AppendJSON],
// [Run.AppendJSON]) for speed; it decodes with encoding/json into the same
// types, and [Action.MarshalJSON] and [Run.MarshalJSON] make encoding/json
// produce the same bytes.
package actions

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Action types: the Type field of an [Action].
const (
	TypeBrief = "brief"
	TypeFlow  = "flow"
)

// Run outcomes: the Outcome field of a [Run].
const (
	OutcomeCompleted = "completed"
	OutcomeSkipped   = "skipped"
	OutcomeError     = "error"
)

// Skip reasons: the Reason field of a [Run] whose outcome is [OutcomeSkipped].
const (
	ReasonDuplicate       = "duplicate"
	ReasonCooldown        = "cooldown"
	ReasonAlreadyEnrolled = "already_enrolled"
	ReasonNoRecipients    = "no_recipients"
	ReasonNoPerson        = "no_person"
	// ReasonNoRecord: a call's brief, and the call names no record of the
	// brief's kind (account_id or opportunity_id).
	ReasonNoRecord = "no_record"
	ReasonDisabled = "disabled"
)

// Error reasons: the Reason field of a [Run] whose outcome is [OutcomeError].
// They are a short, fixed set because they are used as metric labels; the
// message goes in Run.Error.
const (
	ReasonEvalError  = "eval_error"
	ReasonStateError = "state_error"
)

// Brief is the payload of a brief action.
type Brief struct {
	Kind       string   `json:"kind"`
	Recipients []string `json:"recipients"` // encoded as [] when empty
}

// Flow is the payload of a flow action: one person enrolled in one flow.
type Flow struct {
	ID       string `json:"id"`
	PersonID string `json:"person_id"`
}

// Action is an action record, written to the actions topic.
type Action struct {
	ActionID     string    `json:"action_id"`
	Workspace    string    `json:"workspace"`
	AutomationID string    `json:"automation_id"`
	Type         string    `json:"type"`
	Brief        *Brief    `json:"brief,omitempty"`
	Flow         *Flow     `json:"flow,omitempty"`
	Object       string    `json:"object,omitempty"`
	RecordID     string    `json:"record_id,omitempty"`
	EventID      string    `json:"event_id"`
	EventTime    time.Time `json:"event_time"`
	FiredAt      time.Time `json:"fired_at"`
	// RunID is the run that emitted the action (extension).
	RunID string `json:"run_id,omitempty"`
}

// Run is a run-history record, written to the runs topic.
type Run struct {
	RunID        string    `json:"run_id"`
	Workspace    string    `json:"workspace"`
	AutomationID string    `json:"automation_id"`
	Trigger      string    `json:"trigger"` // record | date | tracker | schedule (extension)
	EventID      string    `json:"event_id"`
	Object       string    `json:"object,omitempty"`
	RecordID     string    `json:"record_id,omitempty"`
	RanAt        time.Time `json:"ran_at"`
	Outcome      string    `json:"outcome"`
	Reason       string    `json:"reason"`
	Error        string    `json:"error,omitempty"`   // message for outcome "error" (extension)
	LateMS       int64     `json:"late_ms,omitempty"` // date timers fired late (extension)
	ActionIDs    []string  `json:"action_ids"`        // never null: [] when empty
	// Extensions (docs/outputs.md): why the condition held (or failed),
	// each person of a flow run, and the trigger's own context.
	Why     *Why     `json:"why,omitempty"`
	Persons []Person `json:"persons,omitempty"`
	Context *Context `json:"context,omitempty"`
}

// Why is what a run's condition saw when the engine decided: the result
// of each top-level clause and the values of the fields the clauses read.
type Why struct {
	Clauses []Clause `json:"clauses"` // never null: [] when empty
	Values  []Value  `json:"values"`  // never null: [] when empty
	// HeldBefore, on an on_enter run, is whether the condition held for
	// the record as it was before the change (false: it entered).
	HeldBefore *bool `json:"held_before,omitempty"`
	// Truncated is set when values (or clause texts) were left out or cut
	// to keep the why within MaxWhyBytes.
	Truncated bool `json:"truncated,omitempty"`
}

// Clause is one top-level clause of a condition (a conjunct of its top
// &&, or the whole condition when it is not a conjunction).
type Clause struct {
	Text   string `json:"text"`
	Result *bool  `json:"result,omitempty"` // nil when it failed: Error says why
	Error  string `json:"error,omitempty"`
}

// Value is a field a condition read, as JSON: "record.stage" →
// "Closed Won". Value is null when the record does not have the field
// (the condition read its type's zero value).
type Value struct {
	Field     string          `json:"field"`
	Value     json.RawMessage `json:"value"`               // compact JSON
	Truncated bool            `json:"truncated,omitempty"` // the value was cut to MaxValueBytes
}

// Caps of a run's why: a value's JSON is cut at MaxValueBytes (strings
// shortened, lists cut) and the whole why kept under MaxWhyBytes.
const (
	MaxValueBytes = 256
	MaxWhyBytes   = 4096
)

// Person statuses of a flow run.
const (
	PersonEnrolled = "enrolled"
	PersonSkipped  = "skipped"
)

// Person is what a flow run did for one person: enrolled (ActionID is
// the action) or skipped (Reason: already_enrolled, duplicate).
type Person struct {
	PersonID string `json:"person_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	ActionID string `json:"action_id,omitempty"`
}

// Context is the trigger's own context of a run: one of its fields is set.
type Context struct {
	Tracker  *TrackerContext  `json:"tracker,omitempty"`
	Call     *CallContext     `json:"call,omitempty"`
	Timer    *TimerContext    `json:"timer,omitempty"`
	Schedule *ScheduleContext `json:"schedule,omitempty"`
}

// TrackerContext is the detection a tracker run ran on.
type TrackerContext struct {
	Name          string  `json:"name"`
	CallID        string  `json:"call_id,omitempty"`
	Confidence    float64 `json:"confidence"`
	AccountID     string  `json:"account_id,omitempty"`
	OpportunityID string  `json:"opportunity_id,omitempty"`
}

// CallContext is the processed call a call run ran on.
type CallContext struct {
	ID            string `json:"id"`
	Title         string `json:"title,omitempty"`
	AccountID     string `json:"account_id,omitempty"`
	OpportunityID string `json:"opportunity_id,omitempty"`
}

// TimerContext is the date timer a date run fired on.
type TimerContext struct {
	Field  string    `json:"field"`
	Date   time.Time `json:"date"`
	Due    time.Time `json:"due"`
	LateMS int64     `json:"late_ms"`
}

// ScheduleContext is the schedule a schedule run ran for: its name
// (schedule.fired events) or its cron and the tick (built-in schedules).
type ScheduleContext struct {
	Name   string    `json:"name,omitempty"`
	Cron   string    `json:"cron,omitempty"`
	Tick   time.Time `json:"tick,omitzero"`
	LateMS int64     `json:"late_ms,omitempty"`
}

// Key returns the Kafka message key of the action: the person id for a flow,
// the record id for a brief (and for anything else), so that all actions
// about one person, or one record, stay in order on one partition.
func (a *Action) Key() string {
	if a.Type == TypeFlow && a.Flow != nil {
		return a.Flow.PersonID
	}
	return a.RecordID
}

// Key returns the Kafka message key of the run: the record id, or the event
// id when the run has no record.
func (r *Run) Key() string {
	if r.RecordID != "" {
		return r.RecordID
	}
	return r.EventID
}

// ActionID returns the deterministic id of the action that automation
// automationID of workspace takes on event eventID for target: "a-" and 32
// lowercase hex digits (the first 16 bytes of a SHA-256).
//
// target is what makes two actions of one automation and one event
// different: the caller passes [TypeBrief] ("brief") for a brief, and the
// person id for a flow, since a flow action is written once per person.
//
// The hash input is the string "action" and then the four arguments, each
// of them preceded by its length in bytes as an 8-byte big-endian integer,
// so no two different argument lists give the same input. The result never
// changes between releases: consumers deduplicate on it.
func ActionID(workspace, automationID, eventID, target string) string {
	return hashID("a-", "action", workspace, automationID, eventID, target)
}

// RunID returns the deterministic id of the run of automation automationID
// of workspace on event eventID: "r-" and 32 lowercase hex digits, computed
// as [ActionID] computes its, from the string "run" and the three arguments.
func RunID(workspace, automationID, eventID string) string {
	return hashID("r-", "run", workspace, automationID, eventID)
}

// hashID hashes domain and parts, each preceded by its length as 8 bytes
// big-endian, and returns prefix + hex of the first 16 bytes of the digest.
func hashID(prefix string, domain string, parts ...string) string {
	var stack [256]byte
	buf := stack[:0]
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(domain)))
	buf = append(buf, domain...)
	for _, p := range parts {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(p)))
		buf = append(buf, p...)
	}
	sum := sha256.Sum256(buf)
	var out [2 + 32]byte
	copy(out[:], prefix)
	hex.Encode(out[len(prefix):], sum[:16])
	return string(out[:len(prefix)+32])
}
