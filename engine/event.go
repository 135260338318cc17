package engine

import (
	"time"

	"github.com/whenthen/whenthen/crm"
)

// Event types of the input envelope (docs/events.md).
const (
	TypeRecordCreated   = "record.created"
	TypeRecordUpdated   = "record.updated"
	TypeRecordDeleted   = "record.deleted"
	TypeTrackerDetected = "tracker.detected"
	TypeScheduleFired   = "schedule.fired"
	TypeCallProcessed   = "call.processed"
)

// Event is a decoded, validated input event. Decoders (package ingest)
// build it; the engine never sees raw bytes.
type Event struct {
	ID        string
	Type      string
	Time      time.Time
	Workspace string // "" for events that carry none

	// Object and Record are set for record.* and schedule.fired events.
	Object string
	Record *crm.Record
	// Before holds the previous values of the fields that changed (it may
	// hold them all); nil when the event carries none.
	Before *crm.Record
	// Partial means Record holds only the changed fields (CDC style).
	Partial bool

	// Tracker is set for tracker.detected events.
	Tracker *crm.Record
	// Call is set for call.processed events.
	Call *crm.Record
	// Account and Opportunity are related records, where the event carries them.
	Account     *crm.Record
	Opportunity *crm.Record

	// Schedule is the schedule name of a schedule.fired event.
	Schedule string

	// tick is set on the event of a built-in schedule's tick.
	tick *tickInfo
}

// RecordID is the id of the event's record, "" when it has none.
func (e *Event) RecordID() string {
	if e.Record == nil {
		return ""
	}
	return e.Record.ID()
}
