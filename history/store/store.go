// Package store keeps whenthen's run history in a database: the run,
// action and delivery outcome records of docs/outputs.md, written
// idempotently, and the queries the history API and page answer from.
//
// The SQL lives in the drivers, one per database, behind the small
// [Driver] interface, as River does it: package history/store/postgres
// (PostgreSQL through pgx) and package history/store/sqlite (an embedded
// file through modernc.org/sqlite, without cgo). Each embeds its numbered
// migrations and applies them at start ([ParseMigrations] reads them),
// tracking the version in a schema_migrations table. Every query is a
// constant string with bind parameters; the drivers choose among a fixed
// set of them by which filters are set, never by building SQL from input.
//
// A [Store] wraps a driver with what both share: validation of queries
// ([RunQuery.Validate]), keyset cursors ([Cursor]), the aggregation a
// write does (hourly counts and the last run and error of each
// automation, from the rows actually inserted), the effective status of
// a run with its deliveries ([Status]), and metrics. Package
// history/store/storetest is the conformance suite both drivers pass.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/whenthen/whenthen/actions"
)

// ErrNotFound is returned when a run does not exist in the workspace
// asked for (or has been deleted by retention).
var ErrNotFound = errors.New("store: not found")

// Options configure a [Store].
type Options struct {
	// Registerer receives the store metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives warnings; nil discards them. It never holds record
	// contents: ids and counts only.
	Logger *slog.Logger
	// Clock is the time source; default time.Now.
	Clock func() time.Time
}

// Store is the run history: writes from the consumer, queries from the
// API and the page. It is safe for concurrent use.
type Store struct {
	d     Driver
	m     *metrics
	log   *slog.Logger
	clock func() time.Time
}

// New returns a store over d, whose migrations must have been applied
// (see [Driver.Migrate]). Close closes d.
func New(d Driver, opts Options) (*Store, error) {
	if d == nil {
		return nil, errors.New("store: nil driver")
	}
	m, err := newMetrics(opts.Registerer, d.Name())
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	return &Store{d: d, m: m, log: log, clock: clock}, nil
}

// Driver returns the store's driver.
func (s *Store) Driver() Driver { return s.d }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.counted(s.d.Ping(ctx)) }

// Close closes the driver.
func (s *Store) Close() error { return s.d.Close() }

// counted counts err, unless it is nil or a context error of the caller.
func (s *Store) counted(err error) error {
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		s.m.errors.Inc()
	}
	return err
}

// Run is a run as the history serves it: the run record of
// docs/outputs.md and its effective status.
type Run struct {
	RunID        string           `json:"run_id"`
	Workspace    string           `json:"workspace"`
	AutomationID string           `json:"automation_id"`
	Trigger      string           `json:"trigger,omitempty"`
	EventID      string           `json:"event_id"`
	Object       string           `json:"object,omitempty"`
	RecordID     string           `json:"record_id,omitempty"`
	RanAt        time.Time        `json:"ran_at"`
	Outcome      string           `json:"outcome"`
	Reason       string           `json:"reason"`
	Error        string           `json:"error,omitempty"`
	LateMS       int64            `json:"late_ms,omitempty"`
	ActionIDs    []string         `json:"action_ids"`
	Why          *actions.Why     `json:"why"`
	Persons      []actions.Person `json:"persons,omitempty"`
	Context      *actions.Context `json:"context,omitempty"`
	Status       string           `json:"status"`
	Delivery     *DeliverySummary `json:"delivery,omitempty"`
}

// DeliverySummary counts a completed run's actions by what their
// delivery came to.
type DeliverySummary struct {
	Actions   int `json:"actions"`
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"`
	Pending   int `json:"pending"`
}

// RunDetail is one run with its actions and their delivery outcomes.
type RunDetail struct {
	Run
	Actions []Action `json:"actions"`
}

// Action is an action record with its delivery outcomes, one per
// destination. Missing is set when the run names the action but the
// action record has not (yet) been stored.
type Action struct {
	ActionID     string         `json:"action_id"`
	Type         string         `json:"type,omitempty"`
	AutomationID string         `json:"automation_id,omitempty"`
	Brief        *actions.Brief `json:"brief,omitempty"`
	Flow         *actions.Flow  `json:"flow,omitempty"`
	Object       string         `json:"object,omitempty"`
	RecordID     string         `json:"record_id,omitempty"`
	EventID      string         `json:"event_id,omitempty"`
	FiredAt      *time.Time     `json:"fired_at,omitempty"`
	RunID        string         `json:"run_id,omitempty"`
	Missing      bool           `json:"missing,omitempty"`
	// Delivery is the action's delivery status: delivered, failed,
	// skipped or pending (no outcome yet).
	Delivery string            `json:"delivery"`
	Outcomes []actions.Outcome `json:"outcomes"`
}

// AutomationStats are one automation's runs in a window, as the store
// knows them: counts by outcome and reason, its last run and last error.
type AutomationStats struct {
	AutomationID string           `json:"automation_id"`
	Total        int64            `json:"total"`
	ByOutcome    map[string]int64 `json:"by_outcome"`
	ByReason     []ReasonCount    `json:"by_reason"`
	LastRun      *LastRun         `json:"last_run,omitempty"`
	LastError    *LastRun         `json:"last_error,omitempty"`
}

// ReasonCount is the number of runs of one outcome and reason.
type ReasonCount struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	Runs    int64  `json:"runs"`
}

// LastRun names a run: the last one of an automation, or its last error.
type LastRun struct {
	RunID   string    `json:"run_id"`
	RanAt   time.Time `json:"ran_at"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// Bucket is the number of runs of one outcome in one hour.
type Bucket struct {
	Hour    time.Time `json:"hour"`
	Outcome string    `json:"outcome"`
	Runs    int64     `json:"runs"`
}

// Automations returns the stats of every automation of workspace ws
// (of automationID alone when it is not "") that has runs in [from, to)
// or a last run, keyed by automation id. Counts are kept by hour: from is
// rounded down and to up to whole hours.
func (s *Store) Automations(ctx context.Context, ws, automationID string, from, to time.Time) (map[string]*AutomationStats, error) {
	start := time.Now()
	defer s.m.observe("automations", start)
	counts, err := s.d.Totals(ctx, ws, automationID, from.UTC().Truncate(time.Hour), ceilHour(to))
	if err != nil {
		return nil, s.counted(fmt.Errorf("store: counts: %w", err))
	}
	last, err := s.d.Latest(ctx, ws, automationID)
	if err != nil {
		return nil, s.counted(fmt.Errorf("store: last runs: %w", err))
	}
	out := map[string]*AutomationStats{}
	get := func(id string) *AutomationStats {
		st := out[id]
		if st == nil {
			st = &AutomationStats{AutomationID: id, ByOutcome: map[string]int64{}, ByReason: []ReasonCount{}}
			out[id] = st
		}
		return st
	}
	reasons := map[string]map[[2]string]int64{}
	for _, c := range counts {
		st := get(c.AutomationID)
		st.Total += c.Runs
		st.ByOutcome[c.Outcome] += c.Runs
		if reasons[c.AutomationID] == nil {
			reasons[c.AutomationID] = map[[2]string]int64{}
		}
		reasons[c.AutomationID][[2]string{c.Outcome, c.Reason}] += c.Runs
	}
	for id, rs := range reasons {
		st := out[id]
		for k, n := range rs {
			st.ByReason = append(st.ByReason, ReasonCount{Outcome: k[0], Reason: k[1], Runs: n})
		}
		slices.SortFunc(st.ByReason, func(a, b ReasonCount) int {
			switch {
			case a.Runs != b.Runs:
				return int(min(max(b.Runs-a.Runs, -1), 1))
			case a.Outcome != b.Outcome:
				return cmpString(a.Outcome, b.Outcome)
			}
			return cmpString(a.Reason, b.Reason)
		})
	}
	for _, l := range last {
		st := get(l.AutomationID)
		lr := &LastRun{RunID: l.RunID, RanAt: l.RanAt, Outcome: l.Outcome, Reason: l.Reason, Error: l.Error}
		if l.Kind == LatestError {
			st.LastError = lr
		} else {
			st.LastRun = lr
		}
	}
	return out, nil
}

// Hourly returns the runs of each of automationIDs per hour and outcome
// in [from, to), rounded to whole hours, oldest first.
func (s *Store) Hourly(ctx context.Context, ws string, automationIDs []string, from, to time.Time) (map[string][]Bucket, error) {
	out := map[string][]Bucket{}
	if len(automationIDs) == 0 {
		return out, nil
	}
	start := time.Now()
	defer s.m.observe("hourly", start)
	counts, err := s.d.Series(ctx, ws, automationIDs, from.UTC().Truncate(time.Hour), ceilHour(to))
	if err != nil {
		return nil, s.counted(fmt.Errorf("store: hourly counts: %w", err))
	}
	for _, c := range counts {
		out[c.AutomationID] = append(out[c.AutomationID], Bucket{Hour: c.Hour.UTC(), Outcome: c.Outcome, Runs: c.Runs})
	}
	for _, bs := range out {
		slices.SortFunc(bs, func(a, b Bucket) int {
			if c := a.Hour.Compare(b.Hour); c != 0 {
				return c
			}
			return cmpString(a.Outcome, b.Outcome)
		})
	}
	return out, nil
}

// Workspaces returns the workspaces that have runs, sorted.
func (s *Store) Workspaces(ctx context.Context) ([]string, error) {
	ws, err := s.d.Workspaces(ctx)
	if err != nil {
		return nil, s.counted(fmt.Errorf("store: workspaces: %w", err))
	}
	slices.Sort(ws)
	return ws, nil
}

func ceilHour(t time.Time) time.Time {
	t = t.UTC()
	h := t.Truncate(time.Hour)
	if h.Equal(t) {
		return h
	}
	return h.Add(time.Hour)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
