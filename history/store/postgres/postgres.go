// Package postgres is the PostgreSQL driver of the run history (package
// history/store), through pgx. Its migrations are embedded
// (migrations/NNN_name.sql) and applied by Migrate under an advisory
// lock, so that instances starting together apply each once.
//
// Writes send each table's rows as arrays in one statement (INSERT …
// SELECT FROM unnest(…) ON CONFLICT …), a round trip per table and batch.
// The runs query is one constant statement whose optional filters read
// `($n = ” OR column = $n)`; it is sent unprepared (pgx
// QueryExecModeExec), so that PostgreSQL plans it with the values bound
// and picks the index of the filters actually given.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/whenthen/whenthen/history/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the advisory lock key Migrate holds: "wthist" in ASCII.
const migrationLock int64 = 0x777468697374

// Driver runs the history's SQL on a pgx pool.
type Driver struct {
	pool       *pgxpool.Pool
	migrations []store.Migration
	ownsPool   bool
}

var _ store.Driver = (*Driver)(nil)

// Open connects a pool to the database at url (postgres://…, or a
// key=value connection string), named whenthen-history in
// pg_stat_activity unless url names it. It does not wait for the
// server: the first statement does.
func Open(ctx context.Context, url string) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "whenthen-history"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	d, err := New(pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	d.ownsPool = true
	return d, nil
}

// New returns a driver on pool; Close leaves the pool open.
func New(pool *pgxpool.Pool) (*Driver, error) {
	ms, err := store.ParseMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	return &Driver{pool: pool, migrations: ms}, nil
}

// redact drops the connection string, which may hold a password, from a
// parse error.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return err
	}
	inner := pe.Unwrap()
	var ue *url.Error
	if errors.As(inner, &ue) {
		inner = ue.Err // url.Error quotes the URL
	}
	if inner == nil {
		return errors.New("invalid connection string")
	}
	return fmt.Errorf("invalid connection string: %v", inner)
}

// Name implements store.Driver.
func (d *Driver) Name() string { return "postgres" }

// Pool is the driver's connection pool.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Ping implements store.Driver.
func (d *Driver) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Close implements store.Driver.
func (d *Driver) Close() error {
	if d.ownsPool {
		d.pool.Close()
	}
	return nil
}

const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

const selectVersion = `SELECT coalesce(max(version), 0) FROM schema_migrations`

// SchemaVersion implements store.Driver.
func (d *Driver) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := d.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := d.pool.QueryRow(ctx, selectVersion).Scan(&v)
	return v, err
}

// Migrate implements store.Driver: each pending migration is applied in
// a transaction of its own that holds the advisory lock and reads the
// version again, so that concurrent instances apply each once.
func (d *Driver) Migrate(ctx context.Context) ([]int, error) {
	var applied []int
	for {
		done, v, err := d.migrateOne(ctx)
		if err != nil {
			return applied, err
		}
		if done {
			return applied, nil
		}
		applied = append(applied, v)
	}
}

func (d *Driver) migrateOne(ctx context.Context) (done bool, version int, err error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return false, 0, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, createMigrations); err != nil {
		return false, 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRow(ctx, selectVersion).Scan(&cur); err != nil {
		return false, 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	pending, err := store.Pending(d.migrations, cur)
	if err != nil {
		return false, 0, err
	}
	if len(pending) == 0 {
		return true, 0, nil
	}
	m := pending[0]
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, 0, fmt.Errorf("postgres: migration %03d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return false, 0, fmt.Errorf("postgres: migration %03d_%s: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, 0, fmt.Errorf("postgres: migration %03d_%s: commit: %w", m.Version, m.Name, err)
	}
	return false, m.Version, nil
}

// Begin implements store.Driver.
func (d *Driver) Begin(ctx context.Context) (store.Tx, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &pgTx{tx: tx}, nil
}

type pgTx struct{ tx pgx.Tx }

const insertRuns = `INSERT INTO runs (run_id, workspace, automation_id, event_id, object, record_id, ran_at, outcome, reason, doc)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::json[])
ON CONFLICT (run_id) DO NOTHING
RETURNING run_id`

func (t *pgTx) InsertRuns(ctx context.Context, rows []store.RunRow) ([]bool, error) {
	n := len(rows)
	ids, wss, autos, evs, objs, recs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats, outs, reasons, docs := make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		ids[i], wss[i], autos[i], evs[i], objs[i], recs[i] = r.RunID, r.Workspace, r.AutomationID, r.EventID, r.Object, r.RecordID
		ats[i], outs[i], reasons[i], docs[i] = r.RanAt, r.Outcome, r.Reason, string(r.Doc)
	}
	res, err := t.tx.Query(ctx, insertRuns, ids, wss, autos, evs, objs, recs, ats, outs, reasons, docs)
	if err != nil {
		return nil, err
	}
	inserted := map[string]bool{}
	var id string
	if _, err := pgx.ForEachRow(res, []any{&id}, func() error { inserted[id] = true; return nil }); err != nil {
		return nil, err
	}
	out := make([]bool, n)
	for i, r := range rows {
		out[i] = inserted[r.RunID]
	}
	return out, nil
}

const insertActions = `INSERT INTO actions (action_id, workspace, run_id, automation_id, fired_at, doc)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::json[])
ON CONFLICT (action_id) DO NOTHING`

func (t *pgTx) InsertActions(ctx context.Context, rows []store.ActionRow) (int64, error) {
	n := len(rows)
	ids, wss, runs, autos, ats, docs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n), make([]string, n)
	for i, r := range rows {
		ids[i], wss[i], runs[i], autos[i], ats[i], docs[i] = r.ActionID, r.Workspace, r.RunID, r.AutomationID, r.FiredAt, string(r.Doc)
	}
	tag, err := t.tx.Exec(ctx, insertActions, ids, wss, runs, autos, ats, docs)
	return tag.RowsAffected(), err
}

const upsertOutcomes = `INSERT INTO outcomes (action_id, destination, workspace, run_id, status, final, at, doc)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::timestamptz[], $8::json[])
ON CONFLICT (action_id, destination) DO UPDATE
SET workspace = excluded.workspace, run_id = excluded.run_id, status = excluded.status, final = excluded.final,
    at = excluded.at, doc = excluded.doc
WHERE NOT outcomes.final AND (excluded.final OR excluded.at > outcomes.at)`

func (t *pgTx) UpsertOutcomes(ctx context.Context, rows []store.OutcomeRow) (int64, error) {
	n := len(rows)
	ids, dests, wss, runs, sts := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	finals, ats, docs := make([]bool, n), make([]time.Time, n), make([]string, n)
	for i, r := range rows {
		ids[i], dests[i], wss[i], runs[i], sts[i] = r.ActionID, r.Destination, r.Workspace, r.RunID, r.Status
		finals[i], ats[i], docs[i] = r.Final, r.At, string(r.Doc)
	}
	tag, err := t.tx.Exec(ctx, upsertOutcomes, ids, dests, wss, runs, sts, finals, ats, docs)
	return tag.RowsAffected(), err
}

const addCounts = `INSERT INTO run_counts (workspace, automation_id, hour, outcome, reason, runs)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::bigint[])
ON CONFLICT (workspace, automation_id, hour, outcome, reason) DO UPDATE SET runs = run_counts.runs + excluded.runs`

func (t *pgTx) AddCounts(ctx context.Context, rows []store.Count) error {
	n := len(rows)
	wss, autos, hours, outs, reasons, runs := make([]string, n), make([]string, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]int64, n)
	for i, r := range rows {
		wss[i], autos[i], hours[i], outs[i], reasons[i], runs[i] = r.Workspace, r.AutomationID, r.Hour, r.Outcome, r.Reason, r.Runs
	}
	_, err := t.tx.Exec(ctx, addCounts, wss, autos, hours, outs, reasons, runs)
	return err
}

const setLatest = `INSERT INTO automation_latest (workspace, automation_id, kind, run_id, ran_at, outcome, reason, error)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[])
ON CONFLICT (workspace, automation_id, kind) DO UPDATE
SET run_id = excluded.run_id, ran_at = excluded.ran_at, outcome = excluded.outcome, reason = excluded.reason, error = excluded.error
WHERE (excluded.ran_at, excluded.run_id) > (automation_latest.ran_at, automation_latest.run_id)`

func (t *pgTx) SetLatest(ctx context.Context, rows []store.Latest) error {
	n := len(rows)
	wss, autos, kinds, ids, ats := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	outs, reasons, errs := make([]string, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		wss[i], autos[i], kinds[i], ids[i], ats[i] = r.Workspace, r.AutomationID, r.Kind, r.RunID, r.RanAt
		outs[i], reasons[i], errs[i] = r.Outcome, r.Reason, r.Error
	}
	_, err := t.tx.Exec(ctx, setLatest, wss, autos, kinds, ids, ats, outs, reasons, errs)
	return err
}

func (t *pgTx) Commit(ctx context.Context) error { return t.tx.Commit(ctx) }

func (t *pgTx) Rollback(ctx context.Context) error {
	if err := t.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}

// listRuns is the one runs query: every filter is a bind parameter, and
// an empty one matches everything. Sent unprepared, it is planned with
// its values, so ” = ” folds away and the planner sees only the
// filters given (and can prove the partial indexes' predicates).
const listRuns = `SELECT run_id, workspace, automation_id, event_id, object, record_id, ran_at, outcome, reason, doc
FROM runs
WHERE workspace = $1::text
  AND ($2::text = '' OR automation_id = $2::text)
  AND ($3::text = '' OR object = $3::text)
  AND ($4::text = '' OR record_id = $4::text)
  AND ($5::text = '' OR outcome = $5::text)
  AND ($6::text = '' OR reason = $6::text)
  AND ($7::text = '' OR event_id = $7::text)
  AND ran_at >= $8::timestamptz
  AND (ran_at, run_id) < ($9::timestamptz, $10::text)
ORDER BY ran_at DESC, run_id DESC
LIMIT $11::integer`

// ListRuns implements store.Driver.
func (d *Driver) ListRuns(ctx context.Context, q *store.RunQuery) ([]store.RunRow, error) {
	upper := q.Upper()
	rows, err := d.pool.Query(ctx, listRuns, pgx.QueryExecModeExec, q.Workspace, q.AutomationID, q.Object, q.RecordID,
		q.Outcome, q.Reason, q.EventID, q.Since, upper.RanAt, upper.RunID, q.Limit+1)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanRun)
}

func scanRun(row pgx.CollectableRow) (store.RunRow, error) {
	var r store.RunRow
	var doc string
	err := row.Scan(&r.RunID, &r.Workspace, &r.AutomationID, &r.EventID, &r.Object, &r.RecordID, &r.RanAt, &r.Outcome, &r.Reason, &doc)
	r.RanAt = r.RanAt.UTC()
	r.Doc = []byte(doc)
	return r, err
}

const getRun = `SELECT run_id, workspace, automation_id, event_id, object, record_id, ran_at, outcome, reason, doc
FROM runs WHERE run_id = $1 AND workspace = $2`

// GetRun implements store.Driver.
func (d *Driver) GetRun(ctx context.Context, ws, runID string) (*store.RunRow, error) {
	rows, err := d.pool.Query(ctx, getRun, runID, ws)
	if err != nil {
		return nil, err
	}
	r, err := pgx.CollectOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

const selectActions = `SELECT action_id, workspace, run_id, automation_id, fired_at, doc
FROM actions WHERE action_id = ANY($1::text[]) AND workspace = $2`

// Actions implements store.Driver.
func (d *Driver) Actions(ctx context.Context, ws string, ids []string) ([]store.ActionRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := d.pool.Query(ctx, selectActions, ids, ws)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.ActionRow, error) {
		var a store.ActionRow
		var doc string
		err := row.Scan(&a.ActionID, &a.Workspace, &a.RunID, &a.AutomationID, &a.FiredAt, &doc)
		a.Doc = []byte(doc)
		return a, err
	})
}

const selectOutcomes = `SELECT action_id, destination, workspace, run_id, status, final, at, doc
FROM outcomes WHERE action_id = ANY($1::text[]) AND workspace = $2
ORDER BY action_id, destination`

// Outcomes implements store.Driver.
func (d *Driver) Outcomes(ctx context.Context, ws string, ids []string) ([]store.OutcomeRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := d.pool.Query(ctx, selectOutcomes, ids, ws)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.OutcomeRow, error) {
		var o store.OutcomeRow
		var doc string
		err := row.Scan(&o.ActionID, &o.Destination, &o.Workspace, &o.RunID, &o.Status, &o.Final, &o.At, &doc)
		o.Doc = []byte(doc)
		return o, err
	})
}

// The totals of a workspace's automations, and of one of them (which
// reads the primary key's range of that automation only).
const (
	selectTotals = `SELECT automation_id, outcome, reason, sum(runs)::bigint
FROM run_counts WHERE workspace = $1 AND hour >= $2 AND hour < $3
GROUP BY automation_id, outcome, reason`
	selectTotalsOf = `SELECT automation_id, outcome, reason, sum(runs)::bigint
FROM run_counts WHERE workspace = $1 AND hour >= $2 AND hour < $3 AND automation_id = $4
GROUP BY automation_id, outcome, reason`
)

// Totals implements store.Driver.
func (d *Driver) Totals(ctx context.Context, ws, automationID string, from, to time.Time) ([]store.Count, error) {
	q, args := selectTotals, []any{ws, from, to}
	if automationID != "" {
		q, args = selectTotalsOf, append(args, automationID)
	}
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Count, error) {
		c := store.Count{Workspace: ws}
		return c, row.Scan(&c.AutomationID, &c.Outcome, &c.Reason, &c.Runs)
	})
}

const selectSeries = `SELECT automation_id, hour, outcome, sum(runs)::bigint
FROM run_counts WHERE workspace = $1 AND automation_id = ANY($2::text[]) AND hour >= $3 AND hour < $4
GROUP BY automation_id, hour, outcome`

// Series implements store.Driver.
func (d *Driver) Series(ctx context.Context, ws string, ids []string, from, to time.Time) ([]store.Count, error) {
	rows, err := d.pool.Query(ctx, selectSeries, ws, ids, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Count, error) {
		c := store.Count{Workspace: ws}
		err := row.Scan(&c.AutomationID, &c.Hour, &c.Outcome, &c.Runs)
		c.Hour = c.Hour.UTC()
		return c, err
	})
}

const (
	selectLatest = `SELECT automation_id, kind, run_id, ran_at, outcome, reason, error
FROM automation_latest WHERE workspace = $1`
	selectLatestOf = selectLatest + ` AND automation_id = $2`
)

// Latest implements store.Driver.
func (d *Driver) Latest(ctx context.Context, ws, automationID string) ([]store.Latest, error) {
	q, args := selectLatest, []any{ws}
	if automationID != "" {
		q, args = selectLatestOf, append(args, automationID)
	}
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Latest, error) {
		l := store.Latest{Workspace: ws}
		err := row.Scan(&l.AutomationID, &l.Kind, &l.RunID, &l.RanAt, &l.Outcome, &l.Reason, &l.Error)
		l.RanAt = l.RanAt.UTC()
		return l, err
	})
}

// Workspaces implements store.Driver.
func (d *Driver) Workspaces(ctx context.Context) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT workspace FROM automation_latest`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// deletes are the retention statements, each bounded by a LIMIT. The
// runs' take the workspace first (they use the runs_time index); the
// others take only the time and the limit.
var deletes = map[store.Table]string{
	store.TableRuns: `DELETE FROM runs WHERE run_id IN (
    SELECT run_id FROM runs WHERE workspace = $1 AND ran_at < $2 ORDER BY ran_at LIMIT $3)`,
	store.TableActions: `DELETE FROM actions WHERE action_id IN (
    SELECT action_id FROM actions WHERE fired_at < $1 ORDER BY fired_at LIMIT $2)`,
	store.TableOutcomes: `DELETE FROM outcomes WHERE (action_id, destination) IN (
    SELECT action_id, destination FROM outcomes WHERE at < $1 ORDER BY at LIMIT $2)`,
	store.TableCounts: `DELETE FROM run_counts WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM run_counts WHERE hour < $1 LIMIT $2))`,
	store.TableLatest: `DELETE FROM automation_latest WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM automation_latest WHERE ran_at < $1 LIMIT $2))`,
}

// Delete implements store.Driver.
func (d *Driver) Delete(ctx context.Context, t store.Table, ws string, before time.Time, limit int) (int64, error) {
	q, ok := deletes[t]
	if !ok {
		return 0, fmt.Errorf("postgres: no table %q", t)
	}
	args := []any{before, limit}
	if t == store.TableRuns {
		args = []any{ws, before, limit}
	}
	tag, err := d.pool.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}
