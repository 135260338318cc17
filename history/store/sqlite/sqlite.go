// Package sqlite is the embedded driver of the run history (package
// history/store): one SQLite file through modernc.org/sqlite, pure Go
// without cgo. Its migrations are embedded (migrations/NNN_name.sql) and
// applied by Migrate.
//
// The file is in WAL mode with a busy timeout; all writes go through one
// connection (SQLite has one writer at a time), reads through a small
// pool of their own, so that pages are served while a batch is written.
// Times are INTEGER Unix microseconds. SQLite plans a statement once,
// before its parameters are bound, so the runs query is one of a fixed
// list of constant statements, chosen by which filters are set, each
// naming its leading filter so that the index of that filter is used.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/whenthen/whenthen/history/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Driver runs the history's SQL on one SQLite file.
type Driver struct {
	w, r       *sql.DB // the writer (one connection) and the readers
	path       string
	migrations []store.Migration
}

var _ store.Driver = (*Driver)(nil)

// readers is the size of the read pool.
const readers = 4

// Open opens (creating it if needed) the SQLite file at path.
func Open(path string) (*Driver, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	ms, err := store.ParseMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	dsn := func(txlock string) string {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(OFF)")
		q.Set("_txlock", txlock)
		return (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()
	}
	w, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	return &Driver{w: w, r: r, path: abs, migrations: ms}, nil
}

// Name implements store.Driver.
func (d *Driver) Name() string { return "sqlite" }

// Path is the file's absolute path.
func (d *Driver) Path() string { return d.path }

// Ping implements store.Driver: the writer's connection answers.
func (d *Driver) Ping(ctx context.Context) error { return d.w.PingContext(ctx) }

// Close implements store.Driver.
func (d *Driver) Close() error { return errors.Join(d.r.Close(), d.w.Close()) }

func us(t time.Time) int64     { return t.UnixMicro() }
func fromUS(v int64) time.Time { return time.UnixMicro(v).UTC() }

const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`

const selectVersion = `SELECT coalesce(max(version), 0) FROM schema_migrations`

// SchemaVersion implements store.Driver.
func (d *Driver) SchemaVersion(ctx context.Context) (int, error) {
	var n int
	if err := d.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	var v int
	err := d.r.QueryRowContext(ctx, selectVersion).Scan(&v)
	return v, err
}

// Migrate implements store.Driver. Each migration runs in an IMMEDIATE
// transaction, which holds the file's write lock: another process
// migrating the same file waits and then finds it done.
func (d *Driver) Migrate(ctx context.Context) ([]int, error) {
	var applied []int
	for {
		v, err := d.migrateOne(ctx)
		if err != nil || v == 0 {
			return applied, err
		}
		applied = append(applied, v)
	}
}

func (d *Driver) migrateOne(ctx context.Context) (int, error) {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, createMigrations); err != nil {
		return 0, fmt.Errorf("sqlite: migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, selectVersion).Scan(&cur); err != nil {
		return 0, fmt.Errorf("sqlite: migrate: %w", err)
	}
	pending, err := store.Pending(d.migrations, cur)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	m := pending[0]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return 0, fmt.Errorf("sqlite: migration %03d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
		return 0, fmt.Errorf("sqlite: migration %03d_%s: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: migration %03d_%s: commit: %w", m.Version, m.Name, err)
	}
	return m.Version, nil
}

// Begin implements store.Driver.
func (d *Driver) Begin(ctx context.Context) (store.Tx, error) {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &sqliteTx{tx: tx}, nil
}

type sqliteTx struct{ tx *sql.Tx }

// each runs stmt once per row in the transaction and returns the rows
// each changed.
func each[T any](ctx context.Context, tx *sql.Tx, stmt string, rows []T, args func(*T) []any) ([]int64, error) {
	st, err := tx.PrepareContext(ctx, stmt)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := make([]int64, len(rows))
	for i := range rows {
		res, err := st.ExecContext(ctx, args(&rows[i])...)
		if err != nil {
			return nil, err
		}
		if out[i], err = res.RowsAffected(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sum(ns []int64) int64 {
	var t int64
	for _, n := range ns {
		t += n
	}
	return t
}

const insertRun = `INSERT INTO runs (run_id, workspace, automation_id, event_id, object, record_id, ran_at, outcome, reason, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO NOTHING`

func (t *sqliteTx) InsertRuns(ctx context.Context, rows []store.RunRow) ([]bool, error) {
	ns, err := each(ctx, t.tx, insertRun, rows, func(r *store.RunRow) []any {
		return []any{r.RunID, r.Workspace, r.AutomationID, r.EventID, r.Object, r.RecordID, us(r.RanAt), r.Outcome, r.Reason, string(r.Doc)}
	})
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ns))
	for i, n := range ns {
		out[i] = n == 1
	}
	return out, nil
}

const insertAction = `INSERT INTO actions (action_id, workspace, run_id, automation_id, fired_at, doc)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (action_id) DO NOTHING`

func (t *sqliteTx) InsertActions(ctx context.Context, rows []store.ActionRow) (int64, error) {
	ns, err := each(ctx, t.tx, insertAction, rows, func(a *store.ActionRow) []any {
		return []any{a.ActionID, a.Workspace, a.RunID, a.AutomationID, us(a.FiredAt), string(a.Doc)}
	})
	return sum(ns), err
}

const upsertOutcome = `INSERT INTO outcomes (action_id, destination, workspace, run_id, status, final, at, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (action_id, destination) DO UPDATE
SET workspace = excluded.workspace, run_id = excluded.run_id, status = excluded.status, final = excluded.final,
    at = excluded.at, doc = excluded.doc
WHERE NOT outcomes.final AND (excluded.final OR excluded.at > outcomes.at)`

func (t *sqliteTx) UpsertOutcomes(ctx context.Context, rows []store.OutcomeRow) (int64, error) {
	ns, err := each(ctx, t.tx, upsertOutcome, rows, func(o *store.OutcomeRow) []any {
		return []any{o.ActionID, o.Destination, o.Workspace, o.RunID, o.Status, o.Final, us(o.At), string(o.Doc)}
	})
	return sum(ns), err
}

const addCount = `INSERT INTO run_counts (workspace, automation_id, hour, outcome, reason, runs)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (workspace, automation_id, hour, outcome, reason) DO UPDATE SET runs = run_counts.runs + excluded.runs`

func (t *sqliteTx) AddCounts(ctx context.Context, rows []store.Count) error {
	_, err := each(ctx, t.tx, addCount, rows, func(c *store.Count) []any {
		return []any{c.Workspace, c.AutomationID, us(c.Hour), c.Outcome, c.Reason, c.Runs}
	})
	return err
}

const setLatest = `INSERT INTO automation_latest (workspace, automation_id, kind, run_id, ran_at, outcome, reason, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (workspace, automation_id, kind) DO UPDATE
SET run_id = excluded.run_id, ran_at = excluded.ran_at, outcome = excluded.outcome, reason = excluded.reason, error = excluded.error
WHERE (excluded.ran_at, excluded.run_id) > (automation_latest.ran_at, automation_latest.run_id)`

func (t *sqliteTx) SetLatest(ctx context.Context, rows []store.Latest) error {
	_, err := each(ctx, t.tx, setLatest, rows, func(l *store.Latest) []any {
		return []any{l.Workspace, l.AutomationID, l.Kind, l.RunID, us(l.RanAt), l.Outcome, l.Reason, l.Error}
	})
	return err
}

func (t *sqliteTx) Commit(context.Context) error { return t.tx.Commit() }

func (t *sqliteTx) Rollback(context.Context) error {
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// The runs queries. Each takes the same twelve parameters:
// ?1 workspace, ?2 automation, ?3 object, ?4 record, ?5 outcome,
// ?6 reason, ?7 event, ?8 since, ?9 and ?10 the upper bound (ran_at,
// run_id) of the page (store.RunQuery.Upper), ?11 the limit; an empty
// filter matches everything.
// They differ only in their leading filter, written as a plain equality
// (with the partial indexes' predicates where they apply), since SQLite
// chooses an index before the values are bound.
const (
	runsColumns = `SELECT run_id, workspace, automation_id, event_id, object, record_id, ran_at, outcome, reason, doc FROM runs `
	runsFilters = `
  AND (?2 = '' OR automation_id = ?2) AND (?3 = '' OR object = ?3) AND (?4 = '' OR record_id = ?4)
  AND (?5 = '' OR outcome = ?5) AND (?6 = '' OR reason = ?6) AND (?7 = '' OR event_id = ?7)
  AND ran_at >= ?8 AND (ran_at, run_id) < (?9, ?10)
ORDER BY ran_at DESC, run_id DESC LIMIT ?11`

	runsByWorkspace         = runsColumns + `WHERE workspace = ?1` + runsFilters
	runsByEvent             = runsColumns + `WHERE workspace = ?1 AND event_id = ?7` + runsFilters
	runsByRecord            = runsColumns + `WHERE workspace = ?1 AND object = ?3 AND record_id = ?4 AND record_id <> ''` + runsFilters
	runsByAutomation        = runsColumns + `WHERE workspace = ?1 AND automation_id = ?2` + runsFilters
	runsByAutomationOutcome = runsColumns + `WHERE workspace = ?1 AND automation_id = ?2 AND outcome = ?5 AND outcome <> 'completed'` + runsFilters
	runsByReason            = runsColumns + `WHERE workspace = ?1 AND reason = ?6 AND reason <> ''` + runsFilters
	runsByOutcome           = runsColumns + `WHERE workspace = ?1 AND outcome = ?5 AND outcome <> 'completed'` + runsFilters
)

// runsQuery picks the statement whose leading filter selects fewest rows.
func runsQuery(q *store.RunQuery) string {
	unusual := q.Outcome != "" && q.Outcome != "completed"
	switch {
	case q.EventID != "":
		return runsByEvent
	case q.RecordID != "":
		return runsByRecord
	case q.AutomationID != "" && unusual:
		return runsByAutomationOutcome
	case q.AutomationID != "":
		return runsByAutomation
	case q.Reason != "":
		return runsByReason
	case unusual:
		return runsByOutcome
	}
	return runsByWorkspace
}

// ListRuns implements store.Driver.
func (d *Driver) ListRuns(ctx context.Context, q *store.RunQuery) ([]store.RunRow, error) {
	upper := q.Upper()
	rows, err := d.r.QueryContext(ctx, runsQuery(q), q.Workspace, q.AutomationID, q.Object, q.RecordID, q.Outcome, q.Reason,
		q.EventID, us(q.Since), us(upper.RanAt), upper.RunID, q.Limit+1)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanRun)
}

func scanRun(rows *sql.Rows) (store.RunRow, error) {
	var r store.RunRow
	var at int64
	var doc string
	err := rows.Scan(&r.RunID, &r.Workspace, &r.AutomationID, &r.EventID, &r.Object, &r.RecordID, &at, &r.Outcome, &r.Reason, &doc)
	r.RanAt, r.Doc = fromUS(at), []byte(doc)
	return r, err
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const getRun = runsColumns + `WHERE run_id = ? AND workspace = ?`

// GetRun implements store.Driver.
func (d *Driver) GetRun(ctx context.Context, ws, runID string) (*store.RunRow, error) {
	rows, err := d.r.QueryContext(ctx, getRun, runID, ws)
	if err != nil {
		return nil, err
	}
	rs, err := collect(rows, scanRun)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return &rs[0], nil
}

// jsonList is ids as a JSON array, for json_each.
func jsonList(ids []string) string {
	b, _ := json.Marshal(ids) // strings always encode
	return string(b)
}

const selectActions = `SELECT action_id, workspace, run_id, automation_id, fired_at, doc
FROM actions WHERE action_id IN (SELECT value FROM json_each(?1)) AND workspace = ?2`

// Actions implements store.Driver.
func (d *Driver) Actions(ctx context.Context, ws string, ids []string) ([]store.ActionRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := d.r.QueryContext(ctx, selectActions, jsonList(ids), ws)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (store.ActionRow, error) {
		var a store.ActionRow
		var at int64
		var doc string
		err := rows.Scan(&a.ActionID, &a.Workspace, &a.RunID, &a.AutomationID, &at, &doc)
		a.FiredAt, a.Doc = fromUS(at), []byte(doc)
		return a, err
	})
}

const selectOutcomes = `SELECT action_id, destination, workspace, run_id, status, final, at, doc
FROM outcomes WHERE action_id IN (SELECT value FROM json_each(?1)) AND workspace = ?2
ORDER BY action_id, destination`

// Outcomes implements store.Driver.
func (d *Driver) Outcomes(ctx context.Context, ws string, ids []string) ([]store.OutcomeRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := d.r.QueryContext(ctx, selectOutcomes, jsonList(ids), ws)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (store.OutcomeRow, error) {
		var o store.OutcomeRow
		var at int64
		var doc string
		err := rows.Scan(&o.ActionID, &o.Destination, &o.Workspace, &o.RunID, &o.Status, &o.Final, &at, &doc)
		o.At, o.Doc = fromUS(at), []byte(doc)
		return o, err
	})
}

const (
	selectTotals = `SELECT automation_id, outcome, reason, sum(runs)
FROM run_counts WHERE workspace = ?1 AND hour >= ?2 AND hour < ?3
GROUP BY automation_id, outcome, reason`
	selectTotalsOf = `SELECT automation_id, outcome, reason, sum(runs)
FROM run_counts WHERE workspace = ?1 AND automation_id = ?4 AND hour >= ?2 AND hour < ?3
GROUP BY automation_id, outcome, reason`
)

// Totals implements store.Driver.
func (d *Driver) Totals(ctx context.Context, ws, automationID string, from, to time.Time) ([]store.Count, error) {
	q, args := selectTotals, []any{ws, us(from), us(to)}
	if automationID != "" {
		q, args = selectTotalsOf, append(args, automationID)
	}
	rows, err := d.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (store.Count, error) {
		c := store.Count{Workspace: ws}
		return c, rows.Scan(&c.AutomationID, &c.Outcome, &c.Reason, &c.Runs)
	})
}

const selectSeries = `SELECT automation_id, hour, outcome, sum(runs)
FROM run_counts WHERE workspace = ?1 AND automation_id IN (SELECT value FROM json_each(?2)) AND hour >= ?3 AND hour < ?4
GROUP BY automation_id, hour, outcome`

// Series implements store.Driver.
func (d *Driver) Series(ctx context.Context, ws string, ids []string, from, to time.Time) ([]store.Count, error) {
	rows, err := d.r.QueryContext(ctx, selectSeries, ws, jsonList(ids), us(from), us(to))
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (store.Count, error) {
		c := store.Count{Workspace: ws}
		var h int64
		err := rows.Scan(&c.AutomationID, &h, &c.Outcome, &c.Runs)
		c.Hour = fromUS(h)
		return c, err
	})
}

const (
	selectLatest = `SELECT automation_id, kind, run_id, ran_at, outcome, reason, error
FROM automation_latest WHERE workspace = ?1`
	selectLatestOf = selectLatest + ` AND automation_id = ?2`
)

// Latest implements store.Driver.
func (d *Driver) Latest(ctx context.Context, ws, automationID string) ([]store.Latest, error) {
	q, args := selectLatest, []any{ws}
	if automationID != "" {
		q, args = selectLatestOf, append(args, automationID)
	}
	rows, err := d.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (store.Latest, error) {
		l := store.Latest{Workspace: ws}
		var at int64
		err := rows.Scan(&l.AutomationID, &l.Kind, &l.RunID, &at, &l.Outcome, &l.Reason, &l.Error)
		l.RanAt = fromUS(at)
		return l, err
	})
}

// Workspaces implements store.Driver.
func (d *Driver) Workspaces(ctx context.Context) ([]string, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT DISTINCT workspace FROM automation_latest`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (string, error) {
		var ws string
		return ws, rows.Scan(&ws)
	})
}

// deletes are the retention statements, each bounded by a LIMIT; the
// runs' takes the workspace first, the others the time and the limit.
var deletes = map[store.Table]string{
	store.TableRuns: `DELETE FROM runs WHERE rowid IN (
    SELECT rowid FROM runs WHERE workspace = ?1 AND ran_at < ?2 ORDER BY ran_at LIMIT ?3)`,
	store.TableActions: `DELETE FROM actions WHERE rowid IN (
    SELECT rowid FROM actions WHERE fired_at < ?1 ORDER BY fired_at LIMIT ?2)`,
	store.TableOutcomes: `DELETE FROM outcomes WHERE rowid IN (
    SELECT rowid FROM outcomes WHERE at < ?1 ORDER BY at LIMIT ?2)`,
	store.TableCounts: `DELETE FROM run_counts WHERE rowid IN (
    SELECT rowid FROM run_counts WHERE hour < ?1 LIMIT ?2)`,
	store.TableLatest: `DELETE FROM automation_latest WHERE rowid IN (
    SELECT rowid FROM automation_latest WHERE ran_at < ?1 LIMIT ?2)`,
}

// Delete implements store.Driver.
func (d *Driver) Delete(ctx context.Context, t store.Table, ws string, before time.Time, limit int) (int64, error) {
	q, ok := deletes[t]
	if !ok {
		return 0, fmt.Errorf("sqlite: no table %q", t)
	}
	args := []any{us(before), limit}
	if t == store.TableRuns {
		args = []any{ws, us(before), limit}
	}
	res, err := d.w.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
