package engine

import (
	"context"
	"time"

	"github.com/whenthen/whenthen/engine/store"
)

// Store keeps the engine's state: dedup claims, flow enrollments,
// cooldowns, record snapshots, date timers, the records known of each
// object and the walks over them (schedule ticks, re-armed timers). The engine asks in terms of
// workspaces, automations, actions, records, persons and windows, deciding
// every window on the `now` it passes; the store derives how it keeps
// them. store.Redis is the production store, store.Memory the offline
// tools'; package store/storetest is what both must pass.
type Store interface {
	// Claim asks, as token, for the right to emit each claim's actions,
	// and sets the claims' results (store.Claim).
	Claim(ctx context.Context, claims []*store.Claim, token string, now time.Time) error
	// Confirm marks produced actions done: a redelivery is then a
	// duplicate.
	Confirm(ctx context.Context, actions []store.ActionRef, token string) error
	// LoadSnapshots returns the records' snapshots, nil for a record
	// without one (or with one the schema cannot read).
	LoadSnapshots(ctx context.Context, refs []store.RecordRef) ([]*store.Snapshot, error)
	// DecodeSnapshot reads a snapshot in its stored form, as Apply gives it
	// back with Writes.Encoded: the engine's per-partition cache keeps that.
	DecodeSnapshot(ref store.RecordRef, data []byte) *store.Snapshot
	// Apply writes a batch's snapshots and timers.
	Apply(ctx context.Context, w *store.Writes, now time.Time) error
	// ClaimDue leases up to limit timers due at or before upTo, earliest
	// first; AckTimers settles them once fired.
	ClaimDue(ctx context.Context, upTo, now time.Time, limit int) ([]store.DueTimer, error)
	AckTimers(ctx context.Context, due []store.DueTimer) error
	// PeekDue lists the timers due at or before upTo as ClaimDue would
	// lease them, without leasing them.
	PeekDue(ctx context.Context, upTo time.Time) ([]store.DueTimer, error)
	// KnownRecords lists, in chunks of at most count from cursor, the
	// records of a workspace's object the store keeps a snapshot of (the
	// records schedules and re-armed date timers walk).
	KnownRecords(ctx context.Context, workspace, object, cursor string, count int) (ids []string, next string, err error)
	// WalkMarks reads the marks of walks (store.WalkRef), setting init as
	// the mark of those without one; StartWalks starts or resumes walks.
	// A walk advances with store.Writes.Advances.
	WalkMarks(ctx context.Context, refs []store.WalkRef, init []string) ([]string, error)
	StartWalks(ctx context.Context, starts []store.WalkStart, token string, now time.Time) ([]store.WalkState, error)
}

var (
	_ Store = (*store.Redis)(nil)
	_ Store = (*store.Memory)(nil)
)
