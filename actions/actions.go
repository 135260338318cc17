// Package actions owns whenthen's output records: what every consumer of
// the output topics needs, and nothing of Kafka.
//
// An [Action] asks a downstream system to do something (send a brief, enroll
// a person in a flow); a [Run] records what one automation did with one event
// (completed, skipped and why, or failed); a [DeadLetter] is input that could
// not be processed. Actions and runs carry deterministic ids ([ActionID],
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
	ReasonDisabled        = "disabled"
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
