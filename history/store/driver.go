package store

import (
	"context"
	"time"
)

// Driver is one database's implementation of the history's SQL: package
// history/store/postgres and package history/store/sqlite. The [Store]
// validates what it passes; a driver runs its constant statements with
// those values as bind parameters.
type Driver interface {
	// Name is "postgres" or "sqlite" (a metric label).
	Name() string
	// Migrate applies the driver's pending migrations, each in a
	// transaction of its own, and returns the versions it applied. It
	// refuses a database whose schema is newer than the driver knows.
	Migrate(ctx context.Context) ([]int, error)
	// SchemaVersion returns the highest migration applied, 0 for none.
	SchemaVersion(ctx context.Context) (int, error)
	// Begin starts a write transaction.
	Begin(ctx context.Context) (Tx, error)

	// ListRuns returns up to q.Limit+1 runs matching q, newest first by
	// (ran_at, run_id), after q.After when it is set.
	ListRuns(ctx context.Context, q *RunQuery) ([]RunRow, error)
	// GetRun returns the run of ws with that id; nil when there is none.
	GetRun(ctx context.Context, ws, runID string) (*RunRow, error)
	// Actions returns the actions of ws with those ids that are stored.
	Actions(ctx context.Context, ws string, actionIDs []string) ([]ActionRow, error)
	// Outcomes returns the outcomes of ws of those actions.
	Outcomes(ctx context.Context, ws string, actionIDs []string) ([]OutcomeRow, error)
	// Totals returns the runs of each automation of ws (of automationID
	// alone when it is not "") by outcome and reason with an hour in
	// [from, to) (Hour left zero).
	Totals(ctx context.Context, ws, automationID string, from, to time.Time) ([]Count, error)
	// Series returns the runs of each of automationIDs by hour and
	// outcome in [from, to) (Reason left empty).
	Series(ctx context.Context, ws string, automationIDs []string, from, to time.Time) ([]Count, error)
	// Latest returns the last run and last error of each automation of
	// ws (of automationID alone when it is not "").
	Latest(ctx context.Context, ws, automationID string) ([]Latest, error)
	// Workspaces returns the workspaces that have runs, in any order.
	Workspaces(ctx context.Context) ([]string, error)

	// Delete removes up to limit rows of one kind older than before, in
	// one statement of its own, and returns how many it removed. Runs are
	// deleted per workspace (ws), the rest across workspaces.
	Delete(ctx context.Context, kind Table, ws string, before time.Time, limit int) (int64, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error
}

// Tx is a write transaction. The [Store] calls InsertRuns, then
// AddCounts and SetLatest with what it derived from the rows inserted,
// then InsertActions and UpsertOutcomes, then Commit.
type Tx interface {
	// InsertRuns inserts the runs whose run_id is not stored yet and
	// reports, for each row, whether it was inserted.
	InsertRuns(ctx context.Context, rows []RunRow) ([]bool, error)
	// InsertActions inserts the actions whose action_id is not stored yet
	// and returns how many it inserted.
	InsertActions(ctx context.Context, rows []ActionRow) (int64, error)
	// UpsertOutcomes inserts the outcomes whose (action_id, destination)
	// is not stored yet; a stored one is replaced only when it is not
	// final and the new one is final, or both are not final and the new
	// one is later. It returns how many rows it wrote.
	UpsertOutcomes(ctx context.Context, rows []OutcomeRow) (int64, error)
	// AddCounts adds to the hourly counts; rows are sorted by key, so
	// that concurrent transactions lock them in one order.
	AddCounts(ctx context.Context, rows []Count) error
	// SetLatest keeps, for each automation, the later of the stored and
	// the given last run (or last error); rows are sorted by key.
	SetLatest(ctx context.Context, rows []Latest) error
	Commit(ctx context.Context) error
	// Rollback ends the transaction if it is still open; after Commit it
	// does nothing.
	Rollback(ctx context.Context) error
}

// Table names what Delete removes.
type Table string

// Tables of the history.
const (
	TableRuns     Table = "runs"
	TableActions  Table = "actions"
	TableOutcomes Table = "outcomes"
	TableCounts   Table = "run_counts"
	TableLatest   Table = "automation_latest"
)

// RunRow is a run as stored: the columns the queries filter on, and the
// record itself as JSON (the run record of docs/outputs.md, re-encoded).
type RunRow struct {
	RunID        string
	Workspace    string
	AutomationID string
	EventID      string
	Object       string
	RecordID     string
	RanAt        time.Time // to the microsecond
	Outcome      string
	Reason       string
	Doc          []byte
}

// ActionRow is an action as stored.
type ActionRow struct {
	ActionID     string
	Workspace    string
	RunID        string
	AutomationID string
	FiredAt      time.Time
	Doc          []byte
}

// OutcomeRow is a delivery outcome as stored.
type OutcomeRow struct {
	ActionID    string
	Destination string
	Workspace   string
	RunID       string
	Status      string
	Final       bool
	At          time.Time
	Doc         []byte
}

// Count is the number of runs of one automation, hour, outcome and
// reason.
type Count struct {
	Workspace    string
	AutomationID string
	Hour         time.Time
	Outcome      string
	Reason       string
	Runs         int64
}

// Kinds of Latest.
const (
	LatestRun   = "run"
	LatestError = "error"
)

// Latest is the last run (Kind "run") or last error ("error") of one
// automation.
type Latest struct {
	Workspace    string
	AutomationID string
	Kind         string
	RunID        string
	RanAt        time.Time
	Outcome      string
	Reason       string
	Error        string
}
