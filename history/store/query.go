package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/whenthen/whenthen/actions"
)

// Limits of a runs query.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// MaxIDBytes is the longest id (run, action, automation, event, record,
// object, workspace, destination) the history stores or takes in a
// query: it keeps every index entry well under PostgreSQL's limit.
const MaxIDBytes = 512

// Outcomes a run can have (docs/outputs.md).
var Outcomes = []string{actions.OutcomeCompleted, actions.OutcomeSkipped, actions.OutcomeError}

// RunQuery selects runs of one workspace. Empty fields do not filter.
// Runs come newest first by (ran_at, run_id); After continues a page.
type RunQuery struct {
	Workspace    string
	AutomationID string
	// Object and RecordID select one record's runs; RecordID needs Object.
	Object   string
	RecordID string
	Outcome  string
	Reason   string
	EventID  string
	// Since and Until bound ran_at: Since <= ran_at < Until.
	Since, Until time.Time
	// Limit is the page size: default DefaultLimit, at most MaxLimit.
	Limit int
	// After is the cursor of the previous page: runs strictly older.
	After *Cursor
}

// ParamError is a query parameter the store does not accept. The API
// answers it with a 400 naming the parameter.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

func paramErr(param, format string, args ...any) error {
	return &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// Validate fills in the defaults of q and reports its first invalid
// field as a *ParamError naming the query parameter.
func (q *RunQuery) Validate() error {
	for _, f := range []struct {
		param, v string
	}{{"workspace", q.Workspace}, {"automation", q.AutomationID}, {"object", q.Object}, {"record", q.RecordID},
		{"event", q.EventID}, {"reason", q.Reason}} {
		if err := CheckID(f.param, f.v); err != nil {
			return err
		}
	}
	if q.RecordID != "" && q.Object == "" {
		return paramErr("object", "required with record")
	}
	if q.Outcome != "" && !isOutcome(q.Outcome) {
		return paramErr("outcome", "%q is not one of %s", q.Outcome, strings.Join(Outcomes, ", "))
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit < 0 || q.Limit > MaxLimit:
		return paramErr("limit", "want 1 to %d, got %d", MaxLimit, q.Limit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return paramErr("since", "must be before until")
	}
	if q.Since.IsZero() {
		q.Since = MinTime
	}
	if q.Until.IsZero() {
		q.Until = MaxTime
	}
	q.Since, q.Until = q.Since.UTC().Truncate(time.Microsecond), q.Until.UTC().Truncate(time.Microsecond)
	if q.Since.Before(MinTime) || q.Until.After(MaxTime) {
		return paramErr("since", "times must lie between years 1970 and 9999")
	}
	return nil
}

// The bounds of stored times: a query without since or until uses them,
// so that every query has the same shape.
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// CheckID reports an id that the history cannot hold: longer than
// MaxIDBytes, invalid UTF-8 or holding a NUL or control character.
func CheckID(param, v string) error {
	if len(v) > MaxIDBytes {
		return paramErr(param, "longer than %d bytes", MaxIDBytes)
	}
	if !utf8.ValidString(v) {
		return paramErr(param, "not valid UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return paramErr(param, "holds a control character")
		}
	}
	return nil
}

func isOutcome(s string) bool {
	for _, o := range Outcomes {
		if s == o {
			return true
		}
	}
	return false
}

// Upper is the exclusive upper bound of the page in (ran_at, run_id)
// order: the cursor, or (Until, "") when Until comes first. Folding Until
// into the one bound lets the database start its index scan there
// instead of filtering newer runs out.
func (q *RunQuery) Upper() Cursor {
	u := Cursor{RanAt: q.Until}
	if q.After != nil && q.After.RanAt.Before(q.Until) {
		u = *q.After
	}
	return u
}

// Cursor is where a page of runs ends: the (ran_at, run_id) of its last
// run. Its text form is opaque to clients.
type Cursor struct {
	RanAt time.Time
	RunID string
}

// String encodes the cursor: base64url of "MICROS:RUN_ID".
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.RanAt.UnixMicro(), 10) + ":" + c.RunID))
}

// ParseCursor decodes a cursor from [Cursor.String].
func ParseCursor(s string) (*Cursor, error) {
	bad := paramErr("cursor", "not a cursor this server gave out")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	us, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return nil, bad
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return nil, bad
	}
	if err := CheckID("cursor", id); err != nil {
		return nil, bad
	}
	t := time.UnixMicro(n).UTC()
	if t.Before(MinTime) || t.After(MaxTime) {
		return nil, bad
	}
	return &Cursor{RanAt: t, RunID: id}, nil
}

// RunPage is one page of runs, and the cursor of the next one ("" on
// the last page).
type RunPage struct {
	Runs       []Run  `json:"runs"`
	NextCursor string `json:"next_cursor"`
}

// Runs returns a page of the runs q selects, each with its effective
// status. q is validated first (a *ParamError when it is not valid).
func (s *Store) Runs(ctx context.Context, q RunQuery) (*RunPage, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	defer s.m.observe("runs", start)
	rows, err := s.d.ListRuns(ctx, &q)
	if err != nil {
		return nil, s.counted(fmt.Errorf("store: list runs: %w", err))
	}
	page := &RunPage{Runs: make([]Run, 0, min(len(rows), q.Limit))}
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		page.NextCursor = Cursor{RanAt: last.RanAt, RunID: last.RunID}.String()
	}
	for i := range rows {
		r, err := decodeRun(&rows[i])
		if err != nil {
			return nil, s.counted(err)
		}
		page.Runs = append(page.Runs, r)
	}
	if err := s.deliveries(ctx, q.Workspace, page.Runs); err != nil {
		return nil, err
	}
	return page, nil
}

// Run returns one run of ws with its actions and their outcomes, or
// ErrNotFound.
func (s *Store) Run(ctx context.Context, ws, runID string) (*RunDetail, error) {
	if err := errors.Join(CheckID("workspace", ws), CheckID("run_id", runID)); err != nil {
		return nil, ErrNotFound
	}
	start := time.Now()
	defer s.m.observe("run", start)
	row, err := s.d.GetRun(ctx, ws, runID)
	if err != nil {
		return nil, s.counted(fmt.Errorf("store: get run: %w", err))
	}
	if row == nil {
		return nil, ErrNotFound
	}
	r, err := decodeRun(row)
	if err != nil {
		return nil, s.counted(err)
	}
	acts, err := s.d.Actions(ctx, ws, r.ActionIDs)
	if err != nil {
		return nil, s.counted(fmt.Errorf("store: actions of run: %w", err))
	}
	outs, err := s.d.Outcomes(ctx, ws, r.ActionIDs)
	if err != nil {
		return nil, s.counted(fmt.Errorf("store: outcomes of run: %w", err))
	}
	byID := map[string]*ActionRow{}
	for i := range acts {
		byID[acts[i].ActionID] = &acts[i]
	}
	outsOf := map[string][]actions.Outcome{}
	for i := range outs {
		var o actions.Outcome
		if err := json.Unmarshal(outs[i].Doc, &o); err != nil {
			return nil, s.counted(fmt.Errorf("store: outcome %s/%s: %w", outs[i].ActionID, outs[i].Destination, err))
		}
		outsOf[o.ActionID] = append(outsOf[o.ActionID], o)
	}
	d := &RunDetail{Run: r, Actions: make([]Action, 0, len(r.ActionIDs))}
	for _, id := range r.ActionIDs {
		a := Action{ActionID: id, Outcomes: outsOf[id]}
		if a.Outcomes == nil {
			a.Outcomes = []actions.Outcome{}
		}
		if row := byID[id]; row != nil {
			var rec actions.Action
			if err := json.Unmarshal(row.Doc, &rec); err != nil {
				return nil, s.counted(fmt.Errorf("store: action %s: %w", id, err))
			}
			fired := rec.FiredAt
			a.Type, a.AutomationID, a.Brief, a.Flow = rec.Type, rec.AutomationID, rec.Brief, rec.Flow
			a.Object, a.RecordID, a.EventID, a.FiredAt, a.RunID = rec.Object, rec.RecordID, rec.EventID, &fired, rec.RunID
		} else {
			a.Missing = true
		}
		a.Delivery = actionDelivery(a.Outcomes)
		d.Actions = append(d.Actions, a)
	}
	d.Status, d.Delivery = status(&d.Run, d.Actions)
	return d, nil
}

// deliveries sets the status and delivery summary of runs from the
// outcomes of their actions, read in one query.
func (s *Store) deliveries(ctx context.Context, ws string, runs []Run) error {
	var ids []string
	for i := range runs {
		if runs[i].Outcome == actions.OutcomeCompleted {
			ids = append(ids, runs[i].ActionIDs...)
		}
	}
	outsOf := map[string][]actions.Outcome{}
	if len(ids) > 0 {
		outs, err := s.d.Outcomes(ctx, ws, ids)
		if err != nil {
			return s.counted(fmt.Errorf("store: outcomes of runs: %w", err))
		}
		for i := range outs {
			var o actions.Outcome
			if err := json.Unmarshal(outs[i].Doc, &o); err != nil {
				return s.counted(fmt.Errorf("store: outcome %s/%s: %w", outs[i].ActionID, outs[i].Destination, err))
			}
			outsOf[o.ActionID] = append(outsOf[o.ActionID], o)
		}
	}
	for i := range runs {
		r := &runs[i]
		acts := make([]Action, len(r.ActionIDs))
		for j, id := range r.ActionIDs {
			acts[j] = Action{ActionID: id, Delivery: actionDelivery(outsOf[id])}
		}
		r.Status, r.Delivery = status(r, acts)
	}
	return nil
}

// decodeRun reads a stored run record.
func decodeRun(row *RunRow) (Run, error) {
	var rec actions.Run
	if err := json.Unmarshal(row.Doc, &rec); err != nil {
		return Run{}, fmt.Errorf("store: run %s: %w", row.RunID, err)
	}
	r := Run{RunID: rec.RunID, Workspace: rec.Workspace, AutomationID: rec.AutomationID, Trigger: rec.Trigger,
		EventID: rec.EventID, Object: rec.Object, RecordID: rec.RecordID, RanAt: rec.RanAt.UTC(), Outcome: rec.Outcome,
		Reason: rec.Reason, Error: rec.Error, LateMS: rec.LateMS, ActionIDs: rec.ActionIDs, Why: rec.Why,
		Persons: rec.Persons, Context: rec.Context}
	if r.ActionIDs == nil {
		r.ActionIDs = []string{}
	}
	return r, nil
}
