package actions

import "time"

// DefaultOutcomesTopic receives delivery outcomes.
const DefaultOutcomesTopic = "automations.outcomes"

// Outcome statuses: the Status field of an [Outcome].
const (
	// StatusDelivered: the destination acknowledged the action (a 2xx, an
	// SMTP server's acceptance; a Flow destination's 409 "already
	// enrolled" counts as delivered, with Reason already_enrolled).
	StatusDelivered = "delivered"
	// StatusFailed: a permanent error, or no success within the
	// destination's max_age; the action is dead-lettered too.
	StatusFailed = "failed"
	// StatusSkipped: nothing was sent (Reason: no_destination,
	// no_recipients, already_delivered).
	StatusSkipped = "skipped"
	// StatusDryRun: the destination is dry_run; nothing was sent, and
	// the outcome holds what would have been.
	StatusDryRun = "dry_run"
)

// Outcome reasons.
const (
	ReasonNoDestination    = "no_destination"
	ReasonAlreadyDelivered = "already_delivered"
)

// MaxAttemptLog is the most attempts an Outcome lists (the last ones).
const MaxAttemptLog = 20

// Outcome is what delivering one action to one destination came to,
// written by `whenthen deliver` to the outcomes topic (docs/outputs.md):
// exactly one per action and destination once it is final, keyed by the
// action's record or person like the action. Its id is ActionID and
// Destination together.
type Outcome struct {
	ActionID     string `json:"action_id"`
	RunID        string `json:"run_id"`
	Workspace    string `json:"workspace"`
	AutomationID string `json:"automation_id"`
	Type         string `json:"type"` // brief | flow
	Destination  string `json:"destination"`
	Status       string `json:"status"`
	Reason       string `json:"reason,omitempty"`
	// Attempts is how many times the destination was tried (0 when nothing
	// was sent).
	Attempts int `json:"attempts"`
	// Error is the last attempt's error; HTTPStatus its HTTP status, 0 when
	// it had none (SMTP, a connection error).
	Error      string `json:"error,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	// DurationMS runs from the first attempt to the outcome.
	DurationMS int64     `json:"duration_ms"`
	At         time.Time `json:"at"`
	// Detail says what was sent, or would have been with dry_run: the
	// recipients of a brief, the URL called (never a secret).
	Detail string `json:"detail,omitempty"`
	// AttemptLog lists the attempts, the last MaxAttemptLog of them.
	AttemptLog []Attempt `json:"attempt_log,omitempty"`
}

// Attempt is one try of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	DurationMS int64     `json:"duration_ms"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"` // "" for the one that succeeded
}

// Key returns the Kafka message key of the outcome: its action id, so
// that both outcomes of one action and destination (never more than one
// is final) land on one partition.
func (o *Outcome) Key() string { return o.ActionID }
