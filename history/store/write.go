package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/utf8x"
)

// Batch is what one write stores, in one transaction.
type Batch struct {
	Runs     []RunRow
	Actions  []ActionRow
	Outcomes []OutcomeRow
}

// Len is the number of records in the batch.
func (b *Batch) Len() int { return len(b.Runs) + len(b.Actions) + len(b.Outcomes) }

// Written counts the rows one write stored; records already stored (a
// redelivery) are not counted.
type Written struct {
	Runs, Actions, Outcomes int64
}

// Write stores b in one transaction: runs, actions and outcomes not yet
// stored are inserted (a record stored already is left as it is, so a
// redelivered record never makes a second row; an outcome is replaced
// only by a final one when it is not final), and the hourly counts and
// the last run and error of each automation are updated from the runs
// actually inserted. Nothing is written if it fails.
func (s *Store) Write(ctx context.Context, b *Batch) (Written, error) {
	var w Written
	if b.Len() == 0 {
		return w, nil
	}
	start := time.Now()
	defer func() { s.m.writeDuration.Observe(time.Since(start).Seconds()) }()
	tx, err := s.d.Begin(ctx)
	if err != nil {
		return w, s.counted(fmt.Errorf("store: begin: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if len(b.Runs) > 0 {
		runs := dedupRuns(b.Runs)
		ins, err := tx.InsertRuns(ctx, runs)
		if err != nil {
			return w, s.counted(fmt.Errorf("store: insert runs: %w", err))
		}
		var fresh []RunRow
		for i, ok := range ins {
			if ok {
				fresh = append(fresh, runs[i])
			}
		}
		w.Runs = int64(len(fresh))
		if len(fresh) > 0 {
			if err := tx.AddCounts(ctx, countsOf(fresh)); err != nil {
				return w, s.counted(fmt.Errorf("store: add counts: %w", err))
			}
			latest, err := latestOf(fresh)
			if err != nil {
				return w, s.counted(err)
			}
			if err := tx.SetLatest(ctx, latest); err != nil {
				return w, s.counted(fmt.Errorf("store: last runs: %w", err))
			}
		}
	}
	if len(b.Actions) > 0 {
		if w.Actions, err = tx.InsertActions(ctx, dedupActions(b.Actions)); err != nil {
			return Written{}, s.counted(fmt.Errorf("store: insert actions: %w", err))
		}
	}
	if len(b.Outcomes) > 0 {
		if w.Outcomes, err = tx.UpsertOutcomes(ctx, dedupOutcomes(b.Outcomes)); err != nil {
			return Written{}, s.counted(fmt.Errorf("store: upsert outcomes: %w", err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Written{}, s.counted(fmt.Errorf("store: commit: %w", err))
	}
	s.m.rows.WithLabelValues(string(TableRuns)).Add(float64(w.Runs))
	s.m.rows.WithLabelValues(string(TableActions)).Add(float64(w.Actions))
	s.m.rows.WithLabelValues(string(TableOutcomes)).Add(float64(w.Outcomes))
	return w, nil
}

// dedupRuns keeps the first of the rows with one run_id: a statement
// must not insert one key twice.
func dedupRuns(rows []RunRow) []RunRow {
	seen := make(map[string]bool, len(rows))
	out := rows[:0:0]
	for _, r := range rows {
		if !seen[r.RunID] {
			seen[r.RunID] = true
			out = append(out, r)
		}
	}
	return out
}

func dedupActions(rows []ActionRow) []ActionRow {
	seen := make(map[string]bool, len(rows))
	out := rows[:0:0]
	for _, r := range rows {
		if !seen[r.ActionID] {
			seen[r.ActionID] = true
			out = append(out, r)
		}
	}
	return out
}

// dedupOutcomes keeps, of the rows with one (action_id, destination),
// the one that would win in the table: the first final one, else the
// latest.
func dedupOutcomes(rows []OutcomeRow) []OutcomeRow {
	type key struct{ a, d string }
	idx := make(map[key]int, len(rows))
	out := rows[:0:0]
	for _, r := range rows {
		k := key{r.ActionID, r.Destination}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			out = append(out, r)
			continue
		}
		if cur := out[i]; !cur.Final && (r.Final || r.At.After(cur.At)) {
			out[i] = r
		}
	}
	return out
}

// countsOf adds up runs by workspace, automation, hour, outcome and
// reason, sorted by that key.
func countsOf(runs []RunRow) []Count {
	type key struct {
		ws, a string
		h     int64
		o, r  string
	}
	sum := map[key]int64{}
	for _, r := range runs {
		sum[key{r.Workspace, r.AutomationID, r.RanAt.Truncate(time.Hour).Unix(), r.Outcome, r.Reason}]++
	}
	out := make([]Count, 0, len(sum))
	for k, n := range sum {
		out = append(out, Count{Workspace: k.ws, AutomationID: k.a, Hour: time.Unix(k.h, 0).UTC(), Outcome: k.o, Reason: k.r, Runs: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmpJoin(cmpString(a.Workspace, b.Workspace), cmpString(a.AutomationID, b.AutomationID),
			a.Hour.Compare(b.Hour), cmpString(a.Outcome, b.Outcome), cmpString(a.Reason, b.Reason))
	})
	return out
}

// latestOf returns the last run and the last error of each automation
// among runs, sorted by key.
func latestOf(runs []RunRow) ([]Latest, error) {
	type key struct{ ws, a, kind string }
	best := map[key]*RunRow{}
	later := func(a, b *RunRow) bool {
		if c := a.RanAt.Compare(b.RanAt); c != 0 {
			return c > 0
		}
		return a.RunID > b.RunID
	}
	for i := range runs {
		r := &runs[i]
		kinds := []string{LatestRun}
		if r.Outcome == actions.OutcomeError {
			kinds = append(kinds, LatestError)
		}
		for _, kind := range kinds {
			k := key{r.Workspace, r.AutomationID, kind}
			if cur := best[k]; cur == nil || later(r, cur) {
				best[k] = r
			}
		}
	}
	out := make([]Latest, 0, len(best))
	for k, r := range best {
		l := Latest{Workspace: k.ws, AutomationID: k.a, Kind: k.kind, RunID: r.RunID, RanAt: r.RanAt, Outcome: r.Outcome, Reason: r.Reason}
		if r.Outcome == actions.OutcomeError {
			var rec struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(r.Doc, &rec); err != nil {
				return nil, fmt.Errorf("store: run %s: %w", r.RunID, err)
			}
			l.Error = utf8x.Cut(rec.Error, maxErrorBytes)
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Latest) int {
		return cmpJoin(cmpString(a.Workspace, b.Workspace), cmpString(a.AutomationID, b.AutomationID), cmpString(a.Kind, b.Kind))
	})
	return out, nil
}

// maxErrorBytes caps the error message kept with an automation's last
// error (the run keeps all of it).
const maxErrorBytes = 1024

func cmpJoin(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

// DecodeError is a record the history cannot store: not JSON, or without
// the ids and times it needs. The consumer dead-letters it with Reason.
type DecodeError struct {
	Reason string // invalid_json, missing_field, invalid_field
	Detail string // names fields, never their values
}

func (e *DecodeError) Error() string { return e.Reason + ": " + e.Detail }

// Dead-letter reasons of a DecodeError.
const (
	ReasonInvalidJSON  = "invalid_json"
	ReasonMissingField = "missing_field"
	ReasonInvalidField = "invalid_field"
)

func decodeErr(reason, format string, args ...any) error {
	return &DecodeError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// decodeJSON decodes one JSON object into v and re-encodes it with
// encode, so that what is stored is the record's own format, valid UTF-8
// (invalid bytes become U+FFFD) and without NUL characters, which
// PostgreSQL's text and json types refuse.
func decodeJSON(what string, b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return decodeErr(ReasonInvalidJSON, "%s: not a JSON object", what)
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return decodeErr(ReasonInvalidField, "%s: field %s: wrong type %s", what, te.Field, te.Value)
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return decodeErr(ReasonInvalidField, "%s: a time is not RFC 3339", what)
		}
		return decodeErr(ReasonInvalidJSON, "%s: %s", what, jsonErrorText(err))
	}
	return nil
}

// jsonErrorText is a JSON error without quoting the input.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	msg := err.Error()
	if strings.Contains(msg, "unexpected end of JSON input") {
		return "unexpected end of JSON input (truncated message?)"
	}
	return "cannot be decoded"
}

// checkFields reports the first missing required field or invalid id.
func checkFields(what string, required [][2]string, ids [][2]string) error {
	for _, f := range required {
		if f[1] == "" {
			return decodeErr(ReasonMissingField, "%s: %s is missing or empty", what, f[0])
		}
	}
	for _, f := range ids {
		if err := CheckID(f[0], f[1]); err != nil {
			return decodeErr(ReasonInvalidField, "%s: %v", what, err)
		}
	}
	return nil
}

func checkTime(what, field string, t time.Time) error {
	if t.IsZero() {
		return decodeErr(ReasonMissingField, "%s: %s is missing", what, field)
	}
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return decodeErr(ReasonInvalidField, "%s: %s is outside 1970 to 9999", what, field)
	}
	return nil
}

// clean replaces NUL characters, which PostgreSQL cannot store in text,
// with U+FFFD.
func clean(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// DecodeRun decodes a run record (docs/outputs.md) into the row that
// stores it, or returns a *DecodeError.
func DecodeRun(b []byte) (RunRow, error) {
	var r actions.Run
	if err := decodeJSON("run", b, &r); err != nil {
		return RunRow{}, err
	}
	if err := checkFields("run",
		[][2]string{{"run_id", r.RunID}, {"automation_id", r.AutomationID}, {"event_id", r.EventID}, {"outcome", r.Outcome}},
		[][2]string{{"run_id", r.RunID}, {"workspace", r.Workspace}, {"automation_id", r.AutomationID}, {"event_id", r.EventID},
			{"object", r.Object}, {"record_id", r.RecordID}, {"outcome", r.Outcome}, {"reason", r.Reason}}); err != nil {
		return RunRow{}, err
	}
	for _, id := range r.ActionIDs {
		if id == "" || CheckID("action_ids", id) != nil {
			return RunRow{}, decodeErr(ReasonInvalidField, "run: action_ids holds an empty or invalid id")
		}
	}
	if err := checkTime("run", "ran_at", r.RanAt); err != nil {
		return RunRow{}, err
	}
	r.RanAt = r.RanAt.UTC().Truncate(time.Microsecond)
	r.Error = clean(r.Error)
	// The engine's own encoder: its times are in range (checked above).
	doc := r.AppendJSON(make([]byte, 0, 512))
	return RunRow{RunID: r.RunID, Workspace: r.Workspace, AutomationID: r.AutomationID, EventID: r.EventID, Object: r.Object,
		RecordID: r.RecordID, RanAt: r.RanAt, Outcome: r.Outcome, Reason: r.Reason, Doc: cleanDoc(doc)}, nil
}

// DecodeAction decodes an action record into its row, or returns a
// *DecodeError.
func DecodeAction(b []byte) (ActionRow, error) {
	var a actions.Action
	if err := decodeJSON("action", b, &a); err != nil {
		return ActionRow{}, err
	}
	if err := checkFields("action",
		[][2]string{{"action_id", a.ActionID}, {"automation_id", a.AutomationID}, {"type", a.Type}},
		[][2]string{{"action_id", a.ActionID}, {"workspace", a.Workspace}, {"automation_id", a.AutomationID},
			{"run_id", a.RunID}, {"type", a.Type}}); err != nil {
		return ActionRow{}, err
	}
	if err := checkTime("action", "fired_at", a.FiredAt); err != nil {
		return ActionRow{}, err
	}
	a.FiredAt = a.FiredAt.UTC().Truncate(time.Microsecond)
	doc := a.AppendJSON(make([]byte, 0, 384))
	return ActionRow{ActionID: a.ActionID, Workspace: a.Workspace, RunID: a.RunID, AutomationID: a.AutomationID,
		FiredAt: a.FiredAt, Doc: cleanDoc(doc)}, nil
}

// finalStatuses are the outcome statuses after which nothing changes.
var finalStatuses = map[string]bool{actions.StatusDelivered: true, actions.StatusFailed: true,
	actions.StatusSkipped: true, actions.StatusDryRun: true}

// DecodeOutcome decodes a delivery outcome into its row, or returns a
// *DecodeError.
func DecodeOutcome(b []byte) (OutcomeRow, error) {
	var o actions.Outcome
	if err := decodeJSON("outcome", b, &o); err != nil {
		return OutcomeRow{}, err
	}
	if err := checkFields("outcome",
		[][2]string{{"action_id", o.ActionID}, {"destination", o.Destination}, {"status", o.Status}},
		[][2]string{{"action_id", o.ActionID}, {"destination", o.Destination}, {"workspace", o.Workspace},
			{"run_id", o.RunID}, {"status", o.Status}, {"automation_id", o.AutomationID}}); err != nil {
		return OutcomeRow{}, err
	}
	if err := checkTime("outcome", "at", o.At); err != nil {
		return OutcomeRow{}, err
	}
	o.At = o.At.UTC().Truncate(time.Microsecond)
	o.Error, o.Detail = clean(o.Error), clean(o.Detail)
	for i := range o.AttemptLog {
		o.AttemptLog[i].Error = clean(o.AttemptLog[i].Error)
	}
	doc, err := json.Marshal(o)
	if err != nil {
		return OutcomeRow{}, decodeErr(ReasonInvalidField, "outcome: %v", err)
	}
	return OutcomeRow{ActionID: o.ActionID, Destination: o.Destination, Workspace: o.Workspace, RunID: o.RunID,
		Status: o.Status, Final: finalStatuses[o.Status], At: o.At, Doc: cleanDoc(doc)}, nil
}

// cleanDoc replaces the JSON escape \u0000, which PostgreSQL refuses in
// text, with \ufffd: encoding/json writes a NUL character only so.
// Escapes are read in pairs, so an escaped backslash followed by
// "u0000" is left alone.
func cleanDoc(doc []byte) []byte {
	nul := []byte(`\u0000`)
	if !bytes.Contains(doc, nul) {
		return doc
	}
	out := make([]byte, 0, len(doc))
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		switch {
		case c != '\\' || i+1 == len(doc):
			out = append(out, c)
		case bytes.HasPrefix(doc[i:], nul):
			out = append(out, `\ufffd`...)
			i += len(nul) - 1
		default:
			out = append(out, c, doc[i+1])
			i++
		}
	}
	return out
}
