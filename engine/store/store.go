// Package store keeps the engine's state: dedup claims, flow enrollments,
// cooldowns, record snapshots and date timers.
//
// The engine asks for decisions in terms of its domain (workspaces,
// automations, actions, records, persons, windows), and a store derives
// how it keeps them. Every window is decided on the `now` the engine
// passes, never on a server's clock, so that simulated time (`whenthen
// eval`) decides as production does.
//
// The files: store.go holds the values the engine and a store exchange;
// redis.go is Redis, the production store (each atomic decision one Lua
// script, keys hash-tagged by workspace; keys.go derives them, in the
// one-server or the Redis Cluster layout); memory.go is Memory, an
// in-process store with the same semantics for the offline tools
// (`whenthen eval`, `test`, `explain`, `backtest`); snapshot.go is the
// stored form of a record snapshot, shared by both; walk.go declares the
// walks over the records a store knows (schedule ticks, timer re-arming),
// which redis_walk.go and memory_walk.go keep. Package storetest is the
// conformance suite both stores pass.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/whenthen/whenthen/crm"
)

// Options configure a store.
type Options struct {
	// Schema reads stored record snapshots (required: the schema the
	// rules were compiled with).
	Schema *crm.Schema
	// Limits cap values decoded from stored snapshots; default
	// crm.DefaultLimits.
	Limits crm.Limits
	// TTLs say how long state lives; Memory uses only the lease.
	TTLs TTLs
	// Logger receives warnings about snapshots that cannot be read or
	// written (ids only, never field values); default slog.Default().
	Logger *slog.Logger
	// ClusterLayout (Redis only) keeps keys in the cluster layout
	// (keys.go) on any client; default: the cluster layout when the
	// client is a *redis.ClusterClient, the single-Redis one otherwise.
	// The two layouts do not read each other's data.
	ClusterLayout bool
	// SnapshotEncoding is the form record snapshots are written in:
	// EncodingBinary (the default, compact) or EncodingJSON (the only form
	// versions before the binary one read: for a rolling upgrade from
	// them). Both forms are read whatever it says.
	SnapshotEncoding string
}

func (o Options) withDefaults() (Options, error) {
	if o.Schema == nil {
		return o, errors.New("store: Options.Schema is required")
	}
	switch o.SnapshotEncoding {
	case "":
		o.SnapshotEncoding = EncodingBinary
	case EncodingBinary, EncodingJSON:
	default:
		return o, fmt.Errorf("store: snapshot encoding %q (want %s or %s)", o.SnapshotEncoding, EncodingBinary, EncodingJSON)
	}
	o.Limits = o.Limits.WithDefaults()
	o.TTLs = o.TTLs.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// TTLs are how long state lives.
type TTLs struct {
	// Dedup is how long an action id is remembered; it must be at least the
	// input topic's retention (a redelivery older than it is not caught).
	// Default 7 days.
	Dedup time.Duration
	// Snapshot is how long a record's last known state is kept after its
	// last event. Default 90 days.
	Snapshot time.Duration
	// Lease is how long an instance's unconfirmed claim (or a claimed timer)
	// holds before another instance may take it over. Default 30 s.
	Lease time.Duration
}

func (t TTLs) withDefaults() TTLs {
	if t.Dedup <= 0 {
		t.Dedup = 7 * 24 * time.Hour
	}
	if t.Snapshot <= 0 {
		t.Snapshot = 90 * 24 * time.Hour
	}
	if t.Lease <= 0 {
		t.Lease = 30 * time.Second
	}
	return t
}

// Status is what a claim found for one action.
type Status uint8

// Claim results.
const (
	// StatusNew: nobody had it; it is now ours, pending until confirmed.
	StatusNew Status = iota + 1
	// StatusOurs: our own pending claim (a retried command).
	StatusOurs
	// StatusDone: already produced; a duplicate.
	StatusDone
	// StatusEnrolled: the person is enrolled in the flow by another action
	// within the re-enrollment window.
	StatusEnrolled
)

func (s Status) String() string {
	switch s {
	case StatusNew:
		return "new"
	case StatusOurs:
		return "ours"
	case StatusDone:
		return "done"
	case StatusEnrolled:
		return "enrolled"
	}
	return "unknown"
}

// Claim asks for the right to emit one run's actions. A claim is atomic:
// either every action not done or enrolled elsewhere becomes ours
// (pending until confirmed, leased until now + TTLs.Lease), or the claim
// is refused whole (Busy or Cooldown) and nothing is written.
type Claim struct {
	Workspace    string
	AutomationID string
	EventID      string
	// RecordID is the record the run is about ("" for a tracker event).
	RecordID string
	// CooldownUntil is set when the automation has a cooldown (and the
	// run a record): the run is refused if another event of the
	// automation claimed the record and its window has not ended; a run
	// that emits sets the window of its event up to CooldownUntil.
	CooldownUntil time.Time
	Targets       []Target

	// Results.
	Busy     bool // another token holds a live claim on an action: retry later
	Cooldown bool // refused by the cooldown
}

// Target is one action of a run.
type Target struct {
	ActionID string
	// Flow and Person are set for a flow action: the person's enrollment
	// in the flow, held until EnrollUntil (zero: forever). An action
	// enrolls the person unless another action holds a live enrollment.
	Flow, Person string
	EnrollUntil  time.Time

	// Status is the result.
	Status Status
}

// ActionRef names an action to confirm.
type ActionRef struct {
	Workspace, ActionID string
}

// RecordRef names a record whose state is kept.
type RecordRef struct {
	Workspace, Object, ID string
}

// Snapshot is a record's last known state and the time of the event that
// set it, to the millisecond. Loaded snapshots are shared: never modify
// one.
type Snapshot struct {
	Record *crm.Record
	Time   time.Time
}

// AsNewAs tells whether the snapshot is at least as new as an event at t.
// Stored snapshots keep their time in milliseconds, events to the
// nanosecond: an event at 12:00:00.123456 set a snapshot of 12:00:00.123,
// which is as new.
func (s *Snapshot) AsNewAs(t time.Time) bool { return s.Time.UnixMilli() >= t.UnixMilli() }

// TimerRef names a record's timer for one date field: one timer serves
// every date automation on that field, due at the earliest of their due
// times not yet fired.
type TimerRef struct {
	Workspace, Object, Field, RecordID string
}

// Writes are the snapshot and timer changes of a batch, applied together
// in this order: deletes, saves, cancels, arms. A batch that deletes a
// record and creates it again is thus a delete and a save; the engine
// leaves out a save (an arm) that a later delete (cancel) of the same
// record (timer) undoes, so that the order within the batch is kept.
//
// A saved record becomes known to the store (KnownRecords lists it for
// walks) and a deleted one unknown; Forget drops records whose snapshots
// are gone (expired) from what is known.
type Writes struct {
	Saves    []Save
	Deletes  []RecordRef
	Arms     []Arm
	Cancels  []TimerRef
	Forget   []RecordRef
	Advances []WalkAdvance
	// Encoded asks Apply to set each Save's Data to the stored form it
	// wrote (a copy), for a cache of its own (DecodeSnapshot reads it).
	Encoded bool
}

// Empty tells whether there is nothing to write.
func (w *Writes) Empty() bool {
	return len(w.Saves)+len(w.Deletes)+len(w.Arms)+len(w.Cancels)+len(w.Forget)+len(w.Advances) == 0
}

// Save stores a record's snapshot.
type Save struct {
	Ref RecordRef
	Snapshot
	// KeepUntil is the latest due time of the record's armed timers: the
	// snapshot outlives it, so that the timers find it.
	KeepUntil time.Time
	// Data is set by Apply when Writes.Encoded is: the stored form, nil
	// when the record could not be encoded (nothing was written).
	Data []byte
}

// Arm sets a timer for a date value, unless it is already armed for the
// same date (a record's later events with an unchanged date leave it,
// fired or not) and Force is not set: its automations fire for dues after
// Fired; Next is the first of them (zero: none left, the timer is not
// queued). Seen is when the date was first seen: an automation's catch_up
// counts from it.
type Arm struct {
	TimerRef
	Date, Fired, Next, Seen time.Time
	// Sig is the signature of the date automations the timer is armed
	// for. Force arms the timer even when it is armed for the same date
	// (the date automations of its field changed), unless it is armed for
	// Sig already.
	Sig   string
	Force bool
	// Keep is how long the timer's value must live (beyond the snapshot
	// TTL).
	Keep time.Duration
}

// DueTimer is a timer claimed (leased) for firing, or listed by PeekDue.
type DueTimer struct {
	TimerRef
	// Date is the date value it was armed for; Fired the time up to which
	// its automations have fired; Seen when the date was first seen (zero
	// for a timer armed before catch_up existed); Score its next due when
	// it was claimed; Sig the signature of the automations it was armed for.
	Date, Fired, Seen, Score time.Time
	Sig                      string

	// NewFired and Next are set by the engine once it fired the timer,
	// for AckTimers: the new fired mark, and the next due (zero: none,
	// the timer leaves the queue).
	NewFired, Next time.Time

	// member is the timer's queue member (its Redis key); leased the
	// queue score while claimed, in milliseconds: the ack touches the
	// entry only if it still has it (it was not re-armed meanwhile).
	member string
	leased int64
}

// Selection names the state entries an event can read, for Export.
type Selection struct {
	Records     []RecordRef
	Cooldowns   []CooldownRef
	Actions     []ActionRef
	Enrollments []EnrollmentRef
}

// CooldownRef names the cooldown of an automation on a record.
type CooldownRef struct {
	Workspace, AutomationID, RecordID string
}

// EnrollmentRef names a person's enrollment in a flow.
type EnrollmentRef struct {
	Workspace, Flow, Person string
}

// State is settled state exported from a store, to import into another:
// claims still pending (an instance producing them right now) are left
// out, and time to live is not carried (windows are decided by the
// values).
type State struct {
	// Snapshots hold records in their stored form (snapshot.go).
	Snapshots   []StoredSnapshot
	Cooldowns   []Cooldown
	Done        []ActionRef
	Enrollments []Enrollment
}

// StoredSnapshot is a record snapshot in its stored form.
type StoredSnapshot struct {
	Ref  RecordRef
	Data []byte
}

// Cooldown is the window an event set on an automation and record.
type Cooldown struct {
	CooldownRef
	EventID string
	Until   time.Time
}

// Enrollment is a person's enrollment in a flow by an action, until Until
// (zero: forever).
type Enrollment struct {
	EnrollmentRef
	ActionID string
	Until    time.Time
}

// ms is t in Unix milliseconds, the unit every window is decided in.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS is the time of Unix milliseconds, in UTC.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// msOrZero is ms, with 0 for the zero time (a value the store does not
// have).
func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// fromMSOrZero is fromMS, with the zero time for 0.
func fromMSOrZero(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMS(v)
}
