// Package storetest is the conformance suite of the run history's
// drivers (package history/store): the same writes and queries, run
// against PostgreSQL and SQLite, must give the same answers. Each driver
// package's tests call [Run] with a function that opens a fresh,
// migrated database.
//
// Records are built as `whenthen run` and `whenthen deliver` write them
// (docs/outputs.md), through package actions' types and encoders, and
// decoded with store.DecodeRun, DecodeAction and DecodeOutcome as the
// consumer decodes them.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/history/store"
)

// Open returns a fresh database's driver with its migrations applied;
// the suite closes it.
type Open func(t *testing.T) store.Driver

// Run runs the suite against the drivers open returns.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store, d store.Driver)
	}{
		{"Migrate", testMigrate},
		{"RedeliveryWritesNothing", testRedelivery},
		{"OutOfOrder", testOutOfOrder},
		{"Outcomes", testOutcomes},
		{"Filters", testFilters},
		{"Pagination", testPagination},
		{"PaginationUnderInserts", testPaginationUnderInserts},
		{"Injection", testInjection},
		{"Workspaces", testWorkspaces},
		{"Detail", testDetail},
		{"Automations", testAutomations},
		{"Expire", testExpire},
		{"ConcurrentWrites", testConcurrentWrites},
		{"RunsWithoutWhy", testWithoutWhy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t)
			s, err := store.New(d, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s, d)
		})
	}
}

var base = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func boolp(b bool) *bool { return &b }

// NewRun returns a run record as the engine writes it: run id from
// workspace, automation and event, one brief action when completed, a
// why of two clauses.
func NewRun(ws, automation, event, object, record string, at time.Time, outcome, reason string) actions.Run {
	r := actions.Run{
		RunID: actions.RunID(ws, automation, event), Workspace: ws, AutomationID: automation, Trigger: "record",
		EventID: event, Object: object, RecordID: record, RanAt: at, Outcome: outcome, Reason: reason,
		ActionIDs: []string{},
		Why: &actions.Why{
			Clauses: []actions.Clause{{Text: `record.stage == "Closed Won"`, Result: boolp(true)}, {Text: "record.amount > 200000", Result: boolp(true)}},
			Values:  []actions.Value{{Field: "record.stage", Value: json.RawMessage(`"Closed Won"`)}, {Field: "record.amount", Value: json.RawMessage(`250000`)}},
		},
	}
	if outcome == actions.OutcomeCompleted {
		r.ActionIDs = []string{actions.ActionID(ws, automation, event, actions.TypeBrief)}
	}
	if outcome == actions.OutcomeError {
		r.Error = "no such key: amount"
	}
	return r
}

// ActionOf returns the action record of a completed run's first action.
func ActionOf(r actions.Run) actions.Action {
	return actions.Action{ActionID: r.ActionIDs[0], Workspace: r.Workspace, AutomationID: r.AutomationID, Type: actions.TypeBrief,
		Brief:  &actions.Brief{Kind: "opportunity", Recipients: []string{"user:u-7"}},
		Object: r.Object, RecordID: r.RecordID, EventID: r.EventID, EventTime: r.RanAt, FiredAt: r.RanAt, RunID: r.RunID}
}

// OutcomeOf returns a delivery outcome of a.
func OutcomeOf(a actions.Action, dest, status string, at time.Time) actions.Outcome {
	o := actions.Outcome{ActionID: a.ActionID, RunID: a.RunID, Workspace: a.Workspace, AutomationID: a.AutomationID, Type: a.Type,
		Destination: dest, Status: status, Attempts: 1, DurationMS: 12, At: at}
	if status == actions.StatusFailed {
		o.Attempts, o.Error, o.HTTPStatus = 3, "503 Service Unavailable", 503
		o.AttemptLog = []actions.Attempt{{At: at.Add(-2 * time.Second), DurationMS: 10, HTTPStatus: 503, Error: "503 Service Unavailable"},
			{At: at.Add(-time.Second), DurationMS: 11, Error: "dial tcp: i/o timeout"}, {At: at, DurationMS: 12, HTTPStatus: 503, Error: "503 Service Unavailable"}}
	}
	return o
}

// Batch decodes records as the consumer does: actions.Run, actions.Action
// and actions.Outcome values, encoded to their JSON first.
func Batch(t testing.TB, recs ...any) *store.Batch {
	t.Helper()
	b := &store.Batch{}
	for _, rec := range recs {
		js, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		switch rec.(type) {
		case actions.Run:
			row, err := store.DecodeRun(js)
			if err != nil {
				t.Fatal(err)
			}
			b.Runs = append(b.Runs, row)
		case actions.Action:
			row, err := store.DecodeAction(js)
			if err != nil {
				t.Fatal(err)
			}
			b.Actions = append(b.Actions, row)
		case actions.Outcome:
			row, err := store.DecodeOutcome(js)
			if err != nil {
				t.Fatal(err)
			}
			b.Outcomes = append(b.Outcomes, row)
		default:
			t.Fatalf("storetest: no record type %T", rec)
		}
	}
	return b
}

func write(t *testing.T, s *store.Store, recs ...any) store.Written {
	t.Helper()
	w, err := s.Write(ctx(t), Batch(t, recs...))
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	return w
}

func ids(runs []store.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.RunID
	}
	return out
}

func list(t *testing.T, s *store.Store, q store.RunQuery) []store.Run {
	t.Helper()
	p, err := s.Runs(ctx(t), q)
	if err != nil {
		t.Fatalf("runs %+v: %v", q, err)
	}
	return p.Runs
}

func testMigrate(t *testing.T, s *store.Store, d store.Driver) {
	v, err := d.SchemaVersion(ctx(t))
	if err != nil || v < 1 {
		t.Fatalf("schema version %d, %v: want >= 1 after the migrations", v, err)
	}
	applied, err := d.Migrate(ctx(t))
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate applied %v, %v: want nothing", applied, err)
	}
	if v2, _ := d.SchemaVersion(ctx(t)); v2 != v {
		t.Fatalf("schema version moved from %d to %d", v, v2)
	}
}

func testRedelivery(t *testing.T, s *store.Store, _ store.Driver) {
	r := NewRun("acme", "closed-won-brief", "evt-1", "opportunity", "006A1", base, "completed", "")
	a := ActionOf(r)
	o := OutcomeOf(a, "revops-email", actions.StatusDelivered, base.Add(time.Second))
	if w := write(t, s, r, a, o); w != (store.Written{Runs: 1, Actions: 1, Outcomes: 1}) {
		t.Fatalf("first write: %+v, want one of each", w)
	}
	// The same records again, and twice within one batch.
	if w := write(t, s, r, r, a, a, o, o); w != (store.Written{}) {
		t.Fatalf("redelivery wrote %+v, want nothing", w)
	}
	st, err := s.Automations(ctx(t), "acme", "", base.Add(-time.Hour), base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := st["closed-won-brief"]; got == nil || got.Total != 1 || got.ByOutcome["completed"] != 1 {
		t.Fatalf("counts after a redelivery: %+v, want 1 completed", got)
	}
	if got := list(t, s, store.RunQuery{Workspace: "acme"}); len(got) != 1 {
		t.Fatalf("%d runs stored, want 1", len(got))
	}
}

func testOutOfOrder(t *testing.T, s *store.Store, _ store.Driver) {
	r := NewRun("acme", "closed-won-brief", "evt-1", "opportunity", "006A1", base, "completed", "")
	a := ActionOf(r)
	o := OutcomeOf(a, "webhook", actions.StatusDelivered, base.Add(time.Second))
	// Outcome first, then the action, then the run: each in its own batch.
	write(t, s, o)
	write(t, s, a)
	d, err := s.Run(ctx(t), "acme", r.RunID)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("run before its record: %v, %v; want ErrNotFound", d, err)
	}
	write(t, s, r)
	d, err = s.Run(ctx(t), "acme", r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Actions) != 1 || d.Actions[0].Missing || len(d.Actions[0].Outcomes) != 1 || d.Status != store.StatusDelivered {
		t.Fatalf("run after all three arrived out of order: %+v", d)
	}
}

func testOutcomes(t *testing.T, s *store.Store, _ store.Driver) {
	r := NewRun("acme", "closed-won-brief", "evt-1", "opportunity", "006A1", base, "completed", "")
	a := ActionOf(r)
	write(t, s, r, a)
	status := func() (string, []actions.Outcome) {
		t.Helper()
		d, err := s.Run(ctx(t), "acme", r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		return d.Status, d.Actions[0].Outcomes
	}
	if st, outs := status(); st != store.StatusDeliveryPending || len(outs) != 0 {
		t.Fatalf("no outcome yet: %s %v, want delivery_pending", st, outs)
	}
	// A status that is not final (a future "retrying") is kept until a
	// final one replaces it.
	pending := OutcomeOf(a, "webhook", "retrying", base.Add(time.Second))
	if w := write(t, s, pending); w.Outcomes != 1 {
		t.Fatalf("first outcome wrote %+v", w)
	}
	if st, _ := status(); st != store.StatusDeliveryPending {
		t.Fatalf("non-final outcome: %s, want delivery_pending", st)
	}
	older := OutcomeOf(a, "webhook", "retrying", base)
	if w := write(t, s, older); w.Outcomes != 0 {
		t.Fatalf("an older non-final outcome replaced a later one (%+v)", w)
	}
	failed := OutcomeOf(a, "webhook", actions.StatusFailed, base.Add(5*time.Second))
	if w := write(t, s, failed); w.Outcomes != 1 {
		t.Fatalf("final outcome after a non-final one wrote %+v, want it kept", w)
	}
	// The final outcome stays: another final one (a bug upstream) and a
	// redelivery replace nothing.
	delivered := OutcomeOf(a, "webhook", actions.StatusDelivered, base.Add(9*time.Second))
	if w := write(t, s, delivered, failed, pending); w.Outcomes != 0 {
		t.Fatalf("outcomes after the final one wrote %+v, want nothing", w)
	}
	st, outs := status()
	if st != store.StatusDeliveryFailed || len(outs) != 1 || outs[0].Status != actions.StatusFailed ||
		len(outs[0].AttemptLog) != 3 || outs[0].AttemptLog[1].Error != "dial tcp: i/o timeout" {
		t.Fatalf("after a failed delivery: %s %+v", st, outs)
	}
	// A second destination, delivered: the run stays delivery_failed.
	write(t, s, OutcomeOf(a, "revops-email", actions.StatusDelivered, base.Add(time.Second)))
	if st, outs := status(); st != store.StatusDeliveryFailed || len(outs) != 2 {
		t.Fatalf("two destinations, one failed: %s %d outcomes", st, len(outs))
	}
}

// fixture writes runs of two automations over two records, at
// increasing times a minute apart, and returns them oldest first.
func fixture(t *testing.T, s *store.Store) []actions.Run {
	t.Helper()
	var runs []actions.Run
	var recs []any
	for i := range 30 {
		auto, obj, rec := "closed-won-brief", "opportunity", fmt.Sprintf("006A%d", i%3)
		outcome, reason := "completed", ""
		switch {
		case i%5 == 0:
			outcome, reason = "skipped", "cooldown"
		case i%7 == 0:
			outcome, reason = "skipped", "duplicate"
		case i%11 == 0:
			outcome, reason = "error", "eval_error"
		}
		if i%2 == 1 {
			auto, obj, rec = "new-lead-nurture", "lead", fmt.Sprintf("L-%d", i%4)
		}
		r := NewRun("acme", auto, fmt.Sprintf("evt-%03d", i), obj, rec, base.Add(time.Duration(i)*time.Minute), outcome, reason)
		runs = append(runs, r)
		recs = append(recs, r)
	}
	write(t, s, recs...)
	return runs
}

// want returns the ids of runs matching keep, newest first.
func want(runs []actions.Run, keep func(r actions.Run) bool) []string {
	var out []string
	for i := len(runs) - 1; i >= 0; i-- {
		if keep(runs[i]) {
			out = append(out, runs[i].RunID)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func testFilters(t *testing.T, s *store.Store, _ store.Driver) {
	runs := fixture(t, s)
	for _, tc := range []struct {
		name string
		q    store.RunQuery
		keep func(r actions.Run) bool
	}{
		{"all", store.RunQuery{}, func(actions.Run) bool { return true }},
		{"automation", store.RunQuery{AutomationID: "new-lead-nurture"}, func(r actions.Run) bool { return r.AutomationID == "new-lead-nurture" }},
		{"record", store.RunQuery{Object: "opportunity", RecordID: "006A1"}, func(r actions.Run) bool { return r.RecordID == "006A1" }},
		{"object", store.RunQuery{Object: "lead"}, func(r actions.Run) bool { return r.Object == "lead" }},
		{"outcome completed", store.RunQuery{Outcome: "completed"}, func(r actions.Run) bool { return r.Outcome == "completed" }},
		{"outcome skipped", store.RunQuery{Outcome: "skipped"}, func(r actions.Run) bool { return r.Outcome == "skipped" }},
		{"outcome error", store.RunQuery{Outcome: "error"}, func(r actions.Run) bool { return r.Outcome == "error" }},
		{"reason", store.RunQuery{Reason: "cooldown"}, func(r actions.Run) bool { return r.Reason == "cooldown" }},
		{"automation and outcome", store.RunQuery{AutomationID: "closed-won-brief", Outcome: "skipped"},
			func(r actions.Run) bool { return r.AutomationID == "closed-won-brief" && r.Outcome == "skipped" }},
		{"automation and reason", store.RunQuery{AutomationID: "new-lead-nurture", Reason: "duplicate"},
			func(r actions.Run) bool { return r.AutomationID == "new-lead-nurture" && r.Reason == "duplicate" }},
		{"event", store.RunQuery{EventID: "evt-007"}, func(r actions.Run) bool { return r.EventID == "evt-007" }},
		{"since", store.RunQuery{Since: base.Add(20 * time.Minute)}, func(r actions.Run) bool { return !r.RanAt.Before(base.Add(20 * time.Minute)) }},
		{"until", store.RunQuery{Until: base.Add(5 * time.Minute)}, func(r actions.Run) bool { return r.RanAt.Before(base.Add(5 * time.Minute)) }},
		{"window and record", store.RunQuery{Object: "lead", RecordID: "L-1", Since: base.Add(3 * time.Minute), Until: base.Add(25 * time.Minute)},
			func(r actions.Run) bool {
				return r.RecordID == "L-1" && !r.RanAt.Before(base.Add(3*time.Minute)) && r.RanAt.Before(base.Add(25*time.Minute))
			}},
		{"no match", store.RunQuery{AutomationID: "nope"}, func(actions.Run) bool { return false }},
		{"record of another object", store.RunQuery{Object: "lead", RecordID: "006A1"}, func(actions.Run) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Workspace, q.Limit = "acme", store.MaxLimit
			if got, want := ids(list(t, s, q)), want(runs, tc.keep); !slices.Equal(got, want) {
				t.Fatalf("runs %v\nwant %v", got, want)
			}
		})
	}
	// Each run carries its record, its why and its status.
	got := list(t, s, store.RunQuery{Workspace: "acme", EventID: "evt-002"})
	if len(got) != 1 {
		t.Fatalf("event evt-002: %d runs", len(got))
	}
	r := got[0]
	if r.Why == nil || len(r.Why.Clauses) != 2 || string(r.Why.Values[1].Value) != "250000" || !r.RanAt.Equal(base.Add(2*time.Minute)) ||
		r.Status != store.StatusDeliveryPending || r.Delivery == nil || r.Delivery.Pending != 1 || len(r.ActionIDs) != 1 {
		t.Fatalf("run of evt-002: %+v", r)
	}
	for _, bad := range []store.RunQuery{
		{Workspace: "acme", Outcome: "done"}, {Workspace: "acme", RecordID: "006A1"}, {Workspace: "acme", Limit: store.MaxLimit + 1},
		{Workspace: "acme", Since: base, Until: base}, {Workspace: "acme", AutomationID: strings.Repeat("x", store.MaxIDBytes+1)},
		{Workspace: "acme", RecordID: "a\x00b", Object: "lead"},
	} {
		var pe *store.ParamError
		if _, err := s.Runs(ctx(t), bad); !errors.As(err, &pe) {
			t.Errorf("query %+v: %v, want a *store.ParamError", bad, err)
		}
	}
}

func testPagination(t *testing.T, s *store.Store, _ store.Driver) {
	runs := fixture(t, s)
	// Runs at the same time as others: the order falls back on run_id.
	var same []any
	for i := range 5 {
		r := NewRun("acme", "closed-won-brief", fmt.Sprintf("tie-%d", i), "opportunity", "006A9", base.Add(10*time.Minute), "completed", "")
		runs = append(runs, r)
		same = append(same, r)
	}
	write(t, s, same...)
	slices.SortStableFunc(runs, func(a, b actions.Run) int {
		if c := a.RanAt.Compare(b.RanAt); c != 0 {
			return c
		}
		return strings.Compare(a.RunID, b.RunID)
	})
	for _, size := range []int{1, 4, 7, 35, 100} {
		var got []string
		q := store.RunQuery{Workspace: "acme", Limit: size}
		for pages := 0; ; pages++ {
			if pages > len(runs)+1 {
				t.Fatalf("limit %d: pagination does not end", size)
			}
			p, err := s.Runs(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Runs) > size {
				t.Fatalf("limit %d: page of %d", size, len(p.Runs))
			}
			got = append(got, ids(p.Runs)...)
			if p.NextCursor == "" {
				break
			}
			if q.After, err = store.ParseCursor(p.NextCursor); err != nil {
				t.Fatal(err)
			}
		}
		if w := want(runs, func(actions.Run) bool { return true }); !slices.Equal(got, w) {
			t.Fatalf("limit %d: pages gave %v\nwant %v", size, got, w)
		}
	}
	if _, err := store.ParseCursor("not-a-cursor"); err == nil {
		t.Fatal("a bad cursor parsed")
	}
}

// testPaginationUnderInserts walks pages while newer and older runs are
// inserted between them: the walk returns exactly the runs older than
// the first page's start that existed, plus older ones inserted, never
// one twice.
func testPaginationUnderInserts(t *testing.T, s *store.Store, _ store.Driver) {
	runs := fixture(t, s)
	q := store.RunQuery{Workspace: "acme", Limit: 4}
	seen := map[string]bool{}
	var got []string
	extra := 0
	for {
		p, err := s.Runs(ctx(t), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Runs {
			if seen[r.RunID] {
				t.Fatalf("run %s twice", r.RunID)
			}
			seen[r.RunID] = true
			got = append(got, r.RunID)
		}
		// Newer runs (after the walk began) and a run older than every one.
		extra++
		write(t, s, NewRun("acme", "closed-won-brief", fmt.Sprintf("new-%d", extra), "opportunity", "006A1", base.Add(time.Hour+time.Duration(extra)*time.Minute), "completed", ""))
		if p.NextCursor == "" {
			break
		}
		if q.After, err = store.ParseCursor(p.NextCursor); err != nil {
			t.Fatal(err)
		}
	}
	if w := want(runs, func(actions.Run) bool { return true }); !slices.Equal(got, w) {
		t.Fatalf("walk under inserts gave %v\nwant %v", got, w)
	}
}

// testInjection puts SQL into every filter: it must match nothing, fail
// nothing and change nothing.
func testInjection(t *testing.T, s *store.Store, _ store.Driver) {
	runs := fixture(t, s)
	for _, inj := range []string{
		`' OR '1'='1`, `'; DROP TABLE runs; --`, `acme' --`, `" OR ""="`, `\'; DELETE FROM runs; --`,
		`1) OR (1=1`, `x' UNION SELECT run_id, workspace, automation_id, event_id, object, record_id, ran_at, outcome, reason, doc FROM runs --`,
	} {
		for _, q := range []store.RunQuery{
			{Workspace: inj}, {Workspace: "acme", AutomationID: inj}, {Workspace: "acme", Object: inj},
			{Workspace: "acme", Object: "lead", RecordID: inj}, {Workspace: "acme", Reason: inj}, {Workspace: "acme", EventID: inj},
		} {
			if got := list(t, s, q); len(got) != 0 {
				t.Fatalf("query %+v matched %d runs", q, len(got))
			}
		}
		if _, err := s.Run(ctx(t), "acme", inj); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("run %q: %v", inj, err)
		}
		if _, err := s.Run(ctx(t), inj, runs[0].RunID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("run of workspace %q: %v", inj, err)
		}
		st, err := s.Automations(ctx(t), inj, "", base.Add(-time.Hour), base.Add(time.Hour))
		if err != nil || len(st) != 0 {
			t.Fatalf("automations of workspace %q: %v, %v", inj, st, err)
		}
	}
	if got := list(t, s, store.RunQuery{Workspace: "acme", Limit: store.MaxLimit}); len(got) != len(runs) {
		t.Fatalf("%d runs left after the injections, want %d", len(got), len(runs))
	}
}

func testWorkspaces(t *testing.T, s *store.Store, _ store.Driver) {
	a := NewRun("acme", "closed-won-brief", "evt-1", "opportunity", "006A1", base, "completed", "")
	g := NewRun("globex", "closed-won-brief", "evt-1", "opportunity", "006A1", base, "completed", "")
	n := NewRun("", "closed-won-brief", "evt-1", "opportunity", "006A1", base, "completed", "")
	write(t, s, a, ActionOf(a), g, ActionOf(g), n, OutcomeOf(ActionOf(g), "webhook", actions.StatusFailed, base))
	for _, tc := range []struct {
		ws   string
		want actions.Run
	}{{"acme", a}, {"globex", g}, {"", n}} {
		got := list(t, s, store.RunQuery{Workspace: tc.ws})
		if !slices.Equal(ids(got), []string{tc.want.RunID}) {
			t.Fatalf("workspace %q lists %v, want only its own %s", tc.ws, ids(got), tc.want.RunID)
		}
		d, err := s.Run(ctx(t), tc.ws, tc.want.RunID)
		if err != nil || d.Workspace != tc.ws {
			t.Fatalf("workspace %q: its run: %+v, %v", tc.ws, d, err)
		}
	}
	if _, err := s.Run(ctx(t), "acme", g.RunID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("globex's run read as acme's: %v", err)
	}
	// Acme's run shows neither globex's outcome nor its action.
	d, err := s.Run(ctx(t), "acme", a.RunID)
	if err != nil || len(d.Actions[0].Outcomes) != 0 || d.Status != store.StatusDeliveryPending {
		t.Fatalf("acme's run: %+v, %v", d, err)
	}
	wss, err := s.Workspaces(ctx(t))
	if err != nil || !slices.Equal(wss, []string{"", "acme", "globex"}) {
		t.Fatalf("workspaces %q, %v", wss, err)
	}
}

func testDetail(t *testing.T, s *store.Store, _ store.Driver) {
	r := NewRun("acme", "upsell-flow", "evt-13", "", "", base, "completed", "")
	r.Trigger = "tracker"
	r.ActionIDs = []string{actions.ActionID("acme", "upsell-flow", "evt-13", "C-501"), actions.ActionID("acme", "upsell-flow", "evt-13", "C-502"),
		actions.ActionID("acme", "upsell-flow", "evt-13", "C-503")}
	r.Persons = []actions.Person{{PersonID: "C-501", Status: actions.PersonEnrolled, ActionID: r.ActionIDs[0]},
		{PersonID: "C-502", Status: actions.PersonEnrolled, ActionID: r.ActionIDs[1]}, {PersonID: "C-9", Status: actions.PersonSkipped, Reason: "already_enrolled"}}
	r.Context = &actions.Context{Tracker: &actions.TrackerContext{Name: "Upsell opportunity", CallID: "call-7781", Confidence: 0.91, AccountID: "A-100"}}
	var recs []any
	recs = append(recs, r)
	for i, id := range r.ActionIDs[:2] {
		a := actions.Action{ActionID: id, Workspace: "acme", AutomationID: "upsell-flow", Type: actions.TypeFlow,
			Flow: &actions.Flow{ID: "expansion-outreach", PersonID: r.Persons[i].PersonID}, EventID: "evt-13", EventTime: base, FiredAt: base, RunID: r.RunID}
		recs = append(recs, a, OutcomeOf(a, "flows", actions.StatusDelivered, base.Add(time.Second)))
	}
	write(t, s, recs...)
	d, err := s.Run(ctx(t), "acme", r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Trigger != "tracker" || d.Context == nil || d.Context.Tracker.CallID != "call-7781" || len(d.Persons) != 3 || d.Persons[2].Reason != "already_enrolled" {
		t.Fatalf("run detail lost its context or persons: %+v", d.Run)
	}
	if len(d.Actions) != 3 || d.Actions[0].Flow == nil || d.Actions[0].Flow.PersonID != "C-501" || d.Actions[0].Delivery != store.DeliveryDelivered ||
		!d.Actions[2].Missing || d.Actions[2].Delivery != store.DeliveryPending {
		t.Fatalf("actions: %+v", d.Actions)
	}
	if d.Status != store.StatusDeliveryPending || *d.Delivery != (store.DeliverySummary{Actions: 3, Delivered: 2, Pending: 1}) {
		t.Fatalf("status %s %+v, want delivery_pending with 2 of 3 delivered", d.Status, d.Delivery)
	}
	// The third action and its outcome arrive: delivered.
	a3 := actions.Action{ActionID: r.ActionIDs[2], Workspace: "acme", AutomationID: "upsell-flow", Type: actions.TypeFlow,
		Flow: &actions.Flow{ID: "expansion-outreach", PersonID: "C-503"}, EventID: "evt-13", FiredAt: base, RunID: r.RunID}
	o3 := OutcomeOf(a3, "flows", actions.StatusSkipped, base)
	o3.Reason = actions.ReasonAlreadyDelivered
	write(t, s, a3, o3)
	if d, err = s.Run(ctx(t), "acme", r.RunID); err != nil || d.Status != store.StatusDelivered {
		t.Fatalf("all delivered: %s, %v", d.Status, err)
	}
	page, err := s.Runs(ctx(t), store.RunQuery{Workspace: "acme"})
	if err != nil || len(page.Runs) != 1 || page.Runs[0].Status != store.StatusDelivered {
		t.Fatalf("the list's status differs from the run's: %+v, %v", page, err)
	}
}

func testAutomations(t *testing.T, s *store.Store, _ store.Driver) {
	runs := fixture(t, s)
	// A run two days earlier: outside a 24h window, still the last error
	// only if nothing later failed.
	old := NewRun("acme", "closed-won-brief", "evt-old", "opportunity", "006A1", base.Add(-48*time.Hour), "error", "eval_error")
	write(t, s, old)
	st, err := s.Automations(ctx(t), "acme", "", base.Add(-time.Hour), base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, auto := range []string{"closed-won-brief", "new-lead-nurture"} {
		got := st[auto]
		if got == nil {
			t.Fatalf("no stats of %s", auto)
		}
		wantBy := map[string]int64{}
		var total int64
		var last, lastErr *actions.Run
		for i := range runs {
			if r := &runs[i]; r.AutomationID == auto {
				wantBy[r.Outcome]++
				total++
				last = r
				if r.Outcome == "error" {
					lastErr = r
				}
			}
		}
		if got.Total != total || len(got.ByOutcome) != len(wantBy) {
			t.Fatalf("%s: %+v, want %v", auto, got, wantBy)
		}
		for o, n := range wantBy {
			if got.ByOutcome[o] != n {
				t.Fatalf("%s: %s %d, want %d", auto, o, got.ByOutcome[o], n)
			}
		}
		if got.LastRun == nil || got.LastRun.RunID != last.RunID || !got.LastRun.RanAt.Equal(last.RanAt) {
			t.Fatalf("%s: last run %+v, want %s", auto, got.LastRun, last.RunID)
		}
		switch {
		case lastErr == nil && auto == "closed-won-brief":
			if got.LastError == nil || got.LastError.RunID != old.RunID || got.LastError.Error != old.Error {
				t.Fatalf("%s: last error %+v, want the old one", auto, got.LastError)
			}
		case lastErr != nil:
			if got.LastError == nil || got.LastError.RunID != lastErr.RunID {
				t.Fatalf("%s: last error %+v, want %s", auto, got.LastError, lastErr.RunID)
			}
		}
	}
	one, err := s.Automations(ctx(t), "acme", "closed-won-brief", base.Add(-time.Hour), base.Add(time.Hour))
	if err != nil || len(one) != 1 || one["closed-won-brief"].Total != st["closed-won-brief"].Total ||
		one["closed-won-brief"].LastError == nil || one["closed-won-brief"].LastRun.RunID != st["closed-won-brief"].LastRun.RunID {
		t.Fatalf("one automation's stats %+v, %v; want those of the list", one, err)
	}
	h, err := s.Hourly(ctx(t), "acme", []string{"closed-won-brief"}, base.Add(-72*time.Hour), base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, b := range h["closed-won-brief"] {
		sum += b.Runs
	}
	if len(h["closed-won-brief"]) == 0 || h["closed-won-brief"][0].Hour != base.Add(-48*time.Hour) || sum != st["closed-won-brief"].Total+1 {
		t.Fatalf("hourly %+v, want the old run's hour first and %d runs", h, st["closed-won-brief"].Total+1)
	}
}

func testExpire(t *testing.T, s *store.Store, d store.Driver) {
	var recs []any
	var kept []actions.Run
	for i := range 23 {
		r := NewRun("acme", "closed-won-brief", fmt.Sprintf("evt-%d", i), "opportunity", "006A1", base.Add(time.Duration(i-20)*time.Hour), "completed", "")
		a := ActionOf(r)
		a.FiredAt = r.RanAt
		recs = append(recs, r, a, OutcomeOf(a, "webhook", actions.StatusDelivered, r.RanAt))
		if i >= 10 {
			kept = append(kept, r)
		}
	}
	write(t, s, recs...)
	n, err := s.Expire(ctx(t), base.Add(-10*time.Hour), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n[store.TableRuns] != 10 || n[store.TableActions] != 10 || n[store.TableOutcomes] != 10 || n[store.TableCounts] != 10 {
		t.Fatalf("deleted %v, want 10 runs, actions, outcomes and hourly counts", n)
	}
	got := list(t, s, store.RunQuery{Workspace: "acme", Limit: store.MaxLimit})
	if w := want(kept, func(actions.Run) bool { return true }); !slices.Equal(ids(got), w) {
		t.Fatalf("after expiry: %v\nwant %v", ids(got), w)
	}
	st, err := s.Automations(ctx(t), "acme", "", base.Add(-100*time.Hour), base.Add(3*time.Hour))
	if err != nil || st["closed-won-brief"].Total != int64(len(kept)) {
		t.Fatalf("counts after expiry: %+v, %v", st["closed-won-brief"], err)
	}
	// Everything expires: the last run goes too.
	if _, err := s.Expire(ctx(t), base.Add(3*time.Hour), 0, 0); err != nil {
		t.Fatal(err)
	}
	st, err = s.Automations(ctx(t), "acme", "", base.Add(-100*time.Hour), base.Add(3*time.Hour))
	if err != nil || len(st) != 0 {
		t.Fatalf("stats after expiring everything: %+v, %v", st, err)
	}
}

// testConcurrentWrites writes overlapping batches from several
// goroutines, as the consumer's partitions do: every run is stored once
// and counted once.
func testConcurrentWrites(t *testing.T, s *store.Store, _ store.Driver) {
	var all []actions.Run
	for i := range 200 {
		all = append(all, NewRun("acme", fmt.Sprintf("auto-%d", i%7), fmt.Sprintf("evt-%d", i), "lead", fmt.Sprintf("L-%d", i%13),
			base.Add(time.Duration(i%5)*time.Minute), []string{"completed", "skipped", "error"}[i%3], []string{"", "cooldown", "eval_error"}[i%3]))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Go(func() {
			// Each goroutine writes all runs in batches of 25, starting at
			// a different place: every run is written four times.
			for k := range 8 {
				start := ((g*2 + k) % 8) * 25
				var recs []any
				for _, r := range all[start : start+25] {
					recs = append(recs, r)
				}
				for attempt := 0; ; attempt++ {
					_, err := s.Write(ctx(t), Batch(t, recs...))
					if err == nil {
						break
					}
					if attempt == 5 { // a deadlock or busy file is retried, as the consumer does
						errs <- err
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := list(t, s, store.RunQuery{Workspace: "acme", Limit: store.MaxLimit})
	if len(got) != len(all) {
		t.Fatalf("%d runs stored, want %d", len(got), len(all))
	}
	st, err := s.Automations(ctx(t), "acme", "", base.Add(-time.Hour), base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, a := range st {
		total += a.Total
	}
	if total != int64(len(all)) {
		t.Fatalf("counted %d runs, want %d", total, len(all))
	}
}

// testWithoutWhy stores runs as the engine wrote them before it filled
// why, persons and context: they are served with those left out.
func testWithoutWhy(t *testing.T, s *store.Store, _ store.Driver) {
	raw := []byte(`{"run_id":"r-legacy","workspace":"acme","automation_id":"closed-won-brief","event_id":"evt-9f1c",
 "object":"opportunity","record_id":"006A1","ran_at":"2026-11-24T10:00:00.012Z",
 "outcome":"completed","reason":"","action_ids":["a-3b9e"]}`)
	row, err := store.DecodeRun(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx(t), &store.Batch{Runs: []store.RunRow{row}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Run(ctx(t), "acme", "r-legacy")
	if err != nil {
		t.Fatal(err)
	}
	if d.Why != nil || d.Persons != nil || d.Context != nil || !d.RanAt.Equal(time.Date(2026, 11, 24, 10, 0, 0, 12e6, time.UTC)) ||
		len(d.Actions) != 1 || !d.Actions[0].Missing {
		t.Fatalf("legacy run: %+v", d)
	}
}
