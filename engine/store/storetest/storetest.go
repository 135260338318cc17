// Package storetest is the conformance suite of the engine's stores:
// store.Redis and store.Memory pass the same Run, so that the offline
// tools decide as production does.
package storetest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/testenv"
)

// Store is what the suite exercises: the engine's Store, and the copy of
// settled state from one store to another.
type Store interface {
	engine.Store
	engine.StateSource
	engine.StateSink
}

// Lease is the lease of the stores the suite opens.
const Lease = 30 * time.Second

// Run runs the suite. open returns a new, empty store with opts; every
// subtest opens its own.
func Run(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	t.Run("claims", func(t *testing.T) { claims(t, open) })
	t.Run("enrollments", func(t *testing.T) { enrollments(t, open) })
	t.Run("cooldowns", func(t *testing.T) { cooldowns(t, open) })
	t.Run("snapshots", func(t *testing.T) { snapshots(t, open) })
	t.Run("timers", func(t *testing.T) { timers(t, open) })
	t.Run("known records", func(t *testing.T) { known(t, open) })
	t.Run("walks", func(t *testing.T) { walks(t, open) })
	t.Run("export", func(t *testing.T) { export(t, open) })
	t.Run("concurrent instances", func(t *testing.T) { concurrent(t, open) })
}

// t0 is the suite's first `now`.
var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// env is one subtest's store and what it logged.
type env struct {
	t      *testing.T
	s      Store
	schema *crm.Schema
	log    *testenv.Buffer
	open   func() Store // another empty store like s
}

func newEnv(t *testing.T, open func(t *testing.T, opts store.Options) Store) *env {
	return newEnvWith(t, open, nil)
}

// newEnvWith is newEnv with options set by with.
func newEnvWith(t *testing.T, open func(t *testing.T, opts store.Options) Store, with func(*store.Options)) *env {
	t.Helper()
	e := &env{t: t, schema: crm.DefaultSchema(), log: &testenv.Buffer{}}
	opts := store.Options{Schema: e.schema, TTLs: store.TTLs{Lease: Lease},
		Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if with != nil {
		with(&opts)
	}
	e.open = func() Store { return open(t, opts) }
	e.s = e.open()
	return e
}

var ctx = context.Background()

// claim claims c as token at now and returns its result: "busy",
// "cooldown", or the statuses of its targets.
func (e *env) claim(c *store.Claim, token string, now time.Time) string {
	e.t.Helper()
	if err := e.s.Claim(ctx, []*store.Claim{c}, token, now); err != nil {
		e.t.Fatal(err)
	}
	switch {
	case c.Busy && c.Cooldown:
		e.t.Fatal("a claim both busy and refused by its cooldown")
	case c.Busy:
		return "busy"
	case c.Cooldown:
		return "cooldown"
	}
	var st []string
	for _, t := range c.Targets {
		st = append(st, t.Status.String())
	}
	return strings.Join(st, " ")
}

func (e *env) confirm(token string, ids ...string) {
	e.t.Helper()
	var refs []store.ActionRef
	for _, id := range ids {
		refs = append(refs, store.ActionRef{Workspace: "acme", ActionID: id})
	}
	if err := e.s.Confirm(ctx, refs, token); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) apply(w store.Writes, now time.Time) {
	e.t.Helper()
	if err := e.s.Apply(ctx, &w, now); err != nil {
		e.t.Fatal(err)
	}
}

// brief is a claim of one event's brief actions, without cooldown.
func brief(event string, actions ...string) *store.Claim {
	c := &store.Claim{Workspace: "acme", AutomationID: "a", EventID: event, RecordID: "r1"}
	for _, id := range actions {
		c.Targets = append(c.Targets, store.Target{ActionID: id})
	}
	return c
}

// flow is a claim of one flow action per person (an action id per
// person), enrolled until until (zero: forever).
func flow(event string, until time.Time, people ...string) *store.Claim {
	c := &store.Claim{Workspace: "acme", AutomationID: "a", EventID: event, RecordID: "r1"}
	for _, p := range people {
		c.Targets = append(c.Targets, store.Target{ActionID: event + "-" + p, Flow: "f", Person: p, EnrollUntil: until})
	}
	return c
}

func expect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func claims(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	t.Run("new, then ours when the same token claims again", func(t *testing.T) {
		e := newEnv(t, open)
		expect(t, "first claim", e.claim(brief("e1", "x1", "x2"), "A", t0), "new new")
		// The reply was lost: the same batch retries with its token.
		expect(t, "retry", e.claim(brief("e1", "x1", "x2"), "A", t0.Add(time.Second)), "ours ours")
	})
	t.Run("done after confirm", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(brief("e1", "x1"), "A", t0)
		e.confirm("A", "x1")
		expect(t, "redelivery", e.claim(brief("e1", "x1"), "B", t0.Add(time.Second)), "done")
		expect(t, "redelivery with the first token", e.claim(brief("e1", "x1"), "A", t0.Add(time.Second)), "done")
	})
	t.Run("busy while another token's lease is live, taken over after it", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(brief("e1", "x1"), "A", t0)
		expect(t, "within the lease", e.claim(brief("e1", "x1"), "B", t0.Add(Lease-time.Millisecond)), "busy")
		expect(t, "at the end of the lease", e.claim(brief("e1", "x1"), "B", t0.Add(Lease)), "new")
		// B holds it now, with a lease of its own.
		expect(t, "A after the takeover", e.claim(brief("e1", "x1"), "A", t0.Add(Lease+time.Second)), "busy")
		expect(t, "B again", e.claim(brief("e1", "x1"), "B", t0.Add(Lease+time.Second)), "ours")
	})
	t.Run("a busy claim takes nothing", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(brief("e1", "x2"), "A", t0)
		expect(t, "x1 with x2 busy", e.claim(brief("e2", "x1", "x2"), "B", t0), "busy")
		expect(t, "x1 alone", e.claim(brief("e3", "x1"), "C", t0), "new")
	})
	t.Run("done and new in one claim", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(brief("e1", "x1"), "A", t0)
		e.confirm("A", "x1")
		expect(t, "claim", e.claim(brief("e1", "x1", "x2"), "B", t0), "done new")
	})
	t.Run("confirm leaves another token's claim pending", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(brief("e1", "x1"), "A", t0)
		e.confirm("B", "x1")
		expect(t, "after B's confirm", e.claim(brief("e1", "x1"), "C", t0.Add(time.Second)), "busy")
		e.confirm("A", "x1")
		expect(t, "after A's confirm", e.claim(brief("e1", "x1"), "C", t0.Add(time.Second)), "done")
	})
	t.Run("confirm of a claim that is gone marks it done", func(t *testing.T) {
		e := newEnv(t, open)
		e.confirm("A", "x1")
		expect(t, "claim", e.claim(brief("e1", "x1"), "B", t0), "done")
	})
	t.Run("per workspace", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(brief("e1", "x1"), "A", t0)
		e.confirm("A", "x1")
		c := brief("e1", "x1")
		c.Workspace = ""
		expect(t, "the same action id elsewhere", e.claim(c, "B", t0), "new")
	})
	t.Run("several claims at once", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(brief("e0", "x2"), "A", t0)
		cs := []*store.Claim{brief("e1", "x1"), brief("e2", "x2"), brief("e3", "x3")}
		if err := e.s.Claim(ctx, cs, "B", t0); err != nil {
			t.Fatal(err)
		}
		if cs[0].Busy || !cs[1].Busy || cs[2].Busy || cs[0].Targets[0].Status != store.StatusNew || cs[2].Targets[0].Status != store.StatusNew {
			t.Fatalf("got %+v", cs)
		}
	})
}

func enrollments(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	t.Run("forever", func(t *testing.T) {
		e := newEnv(t, open)
		expect(t, "first", e.claim(flow("e1", time.Time{}, "p1"), "A", t0), "new")
		e.confirm("A", "e1-p1")
		expect(t, "ten years later", e.claim(flow("e2", time.Time{}, "p1"), "B", t0.AddDate(10, 0, 0)), "enrolled")
		expect(t, "another person", e.claim(flow("e3", time.Time{}, "p2"), "B", t0.AddDate(10, 0, 0)), "new")
	})
	t.Run("reenroll_after window", func(t *testing.T) {
		e := newEnv(t, open)
		window := 720 * time.Hour
		expect(t, "first", e.claim(flow("e1", t0.Add(window), "p1"), "A", t0), "new")
		e.confirm("A", "e1-p1")
		now := t0.Add(window - time.Millisecond)
		expect(t, "within the window", e.claim(flow("e2", now.Add(window), "p1"), "B", now), "enrolled")
		// A refused action takes nothing: it is refused again, not busy.
		expect(t, "again", e.claim(flow("e2", now.Add(window), "p1"), "C", now), "enrolled")
		now = t0.Add(window)
		expect(t, "at the end of the window", e.claim(flow("e3", now.Add(window), "p1"), "B", now), "new")
		e.confirm("B", "e3-p1")
		// e3 enrolled p1 anew.
		now = now.Add(time.Hour)
		expect(t, "within e3's window", e.claim(flow("e4", now.Add(window), "p1"), "C", now), "enrolled")
	})
	t.Run("the enrolling action is not refused by its own enrollment", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(flow("e1", time.Time{}, "p1"), "A", t0) // never confirmed: the instance died
		expect(t, "after the lease", e.claim(flow("e1", time.Time{}, "p1"), "B", t0.Add(Lease)), "new")
	})
	t.Run("some people enrolled, others new", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(flow("e1", time.Time{}, "p2"), "A", t0)
		e.confirm("A", "e1-p2")
		expect(t, "claim", e.claim(flow("e2", time.Time{}, "p1", "p2", "p3"), "B", t0), "new enrolled new")
	})
	t.Run("a done action is done, not enrolled", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(flow("e1", time.Time{}, "p1"), "A", t0)
		e.confirm("A", "e1-p1")
		expect(t, "redelivery", e.claim(flow("e1", time.Time{}, "p1"), "B", t0), "done")
	})
	t.Run("per workspace", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(flow("e1", time.Time{}, "p1"), "A", t0)
		e.confirm("A", "e1-p1")
		c := flow("e2", time.Time{}, "p1")
		c.Workspace = "globex"
		expect(t, "the same flow and person elsewhere", e.claim(c, "B", t0), "new")
	})
}

// cooled is a claim of event's brief action with a cooldown of a day.
func cooled(event, record string, now time.Time) *store.Claim {
	c := brief(event, event+"-"+record)
	c.RecordID = record
	c.CooldownUntil = now.Add(24 * time.Hour)
	return c
}

func cooldowns(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	t.Run("another event is refused within the window, allowed after", func(t *testing.T) {
		e := newEnv(t, open)
		expect(t, "first", e.claim(cooled("e1", "r1", t0), "A", t0), "new")
		e.confirm("A", "e1-r1")
		now := t0.Add(24*time.Hour - time.Millisecond)
		expect(t, "within the window", e.claim(cooled("e2", "r1", now), "B", now), "cooldown")
		now = t0.Add(24 * time.Hour)
		expect(t, "at its end", e.claim(cooled("e3", "r1", now), "B", now), "new")
		// e3 set a window of its own.
		now = now.Add(time.Hour)
		expect(t, "within e3's window", e.claim(cooled("e4", "r1", now), "C", now), "cooldown")
	})
	t.Run("the same event may claim again", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(cooled("e1", "r1", t0), "A", t0)
		expect(t, "retry", e.claim(cooled("e1", "r1", t0), "A", t0.Add(time.Minute)), "ours")
		e.confirm("A", "e1-r1")
		expect(t, "redelivery", e.claim(cooled("e1", "r1", t0), "B", t0.Add(time.Hour)), "done")
	})
	t.Run("an event id holding the separator", func(t *testing.T) {
		// Event ids are the senders' strings; the stored window is
		// EVENT_ID|UNTIL_MS, split at its last separator.
		e := newEnv(t, open)
		expect(t, "first", e.claim(cooled("e|1|x", "r1", t0), "A", t0), "new")
		e.confirm("A", "e|1|x-r1")
		expect(t, "the same event", e.claim(cooled("e|1|x", "r1", t0), "B", t0.Add(time.Minute)), "done")
		expect(t, "another event within the window", e.claim(cooled("e|2", "r1", t0), "B", t0.Add(time.Hour)), "cooldown")
		now := t0.Add(24 * time.Hour)
		expect(t, "another event after it", e.claim(cooled("e|2", "r1", now), "B", now), "new")
	})
	t.Run("per automation and record", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(cooled("e1", "r1", t0), "A", t0)
		expect(t, "another record", e.claim(cooled("e2", "r2", t0), "B", t0), "new")
		c := cooled("e3", "r1", t0)
		c.AutomationID = "b"
		expect(t, "another automation", e.claim(c, "B", t0), "new")
	})
	t.Run("a run that emits nothing sets no window", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(brief("e0", "e1-r1"), "A", t0)
		e.confirm("A", "e1-r1")
		expect(t, "all done", e.claim(cooled("e1", "r1", t0), "B", t0), "done")
		expect(t, "another event", e.claim(cooled("e2", "r1", t0), "B", t0), "new")
	})
	t.Run("a refused run sets no window", func(t *testing.T) {
		e := newEnv(t, open)
		e.claim(cooled("e1", "r1", t0), "A", t0)
		now := t0.Add(23 * time.Hour)
		expect(t, "refused", e.claim(cooled("e2", "r1", now), "B", now), "cooldown")
		now = t0.Add(24 * time.Hour)
		expect(t, "after e1's window", e.claim(cooled("e3", "r1", now), "B", now), "new")
	})
	t.Run("a window past the year 5138 rounds as Lua writes it", func(t *testing.T) {
		// Lua writes numbers with 14 digits: 253402300799994 ms is stored
		// as 253402300799990, and a claim 2 ms before the window's end
		// is past it.
		e := newEnv(t, open)
		end := time.UnixMilli(253402300799994).UTC()
		c := cooled("e1", "r1", t0)
		c.CooldownUntil = end
		e.claim(c, "A", t0)
		now := end.Add(-2 * time.Millisecond)
		c = cooled("e2", "r1", now)
		expect(t, "2ms before the end", e.claim(c, "B", now), "new")
	})
}

// rec builds an account record.
func (e *env) rec(fields map[string]any) *crm.Record {
	e.t.Helper()
	acc, _ := e.schema.Object(crm.ObjAccount)
	r, err := acc.NewRecord(fields, crm.Limits{})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) load(refs ...store.RecordRef) []*store.Snapshot {
	e.t.Helper()
	got, err := e.s.LoadSnapshots(ctx, refs)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(got) != len(refs) {
		e.t.Fatalf("LoadSnapshots gave %d snapshots for %d records", len(got), len(refs))
	}
	return got
}

var (
	r1 = store.RecordRef{Workspace: "acme", Object: crm.ObjAccount, ID: "a1"}
	r2 = store.RecordRef{Workspace: "acme", Object: crm.ObjAccount, ID: "a2"}
)

func snapshots(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	t.Run("saved, loaded as stored", func(t *testing.T) {
		e := newEnv(t, open)
		// A timestamp with an offset reads back in UTC, a cleared field as
		// absent, the time to the millisecond, as from the stored form.
		in := e.rec(map[string]any{"id": "a1", "name": "Acme", "employee_count": 120, "annual_revenue": 1.5e6,
			"renewal_date": "2027-01-31T10:00:00.123456+02:00", "tier": nil})
		at := time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
		e.apply(store.Writes{Saves: []store.Save{{Ref: r1, Snapshot: store.Snapshot{Record: in, Time: at}}}}, t0)
		got := e.load(r2, r1, r1)
		if got[0] != nil {
			t.Fatalf("a record never saved: %+v", got[0])
		}
		s := got[1]
		if s == nil || got[2] == nil {
			t.Fatal("saved snapshot not loaded")
		}
		if want := at.Truncate(time.Millisecond).UTC(); !s.Time.Equal(want) || s.Time.Location() != time.UTC {
			t.Errorf("time %v, want %v", s.Time, want)
		}
		if ch := s.Record.Changed(in); len(ch) > 0 || s.Record.Equal(in) != types.True {
			t.Errorf("changed fields %v", ch)
		}
		f, _ := s.Record.Object().Field("renewal_date")
		if ts, ok := s.Record.Get(f).(types.Timestamp); !ok || ts.Time.Location() != time.UTC || ts.Time.Nanosecond() != 123456000 {
			t.Errorf("renewal_date %v", s.Record.Get(f))
		}
		js, err := s.Record.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "record", string(js), `{"id":"a1","name":"Acme","annual_revenue":1.5e+06,"employee_count":120,"renewal_date":"2027-01-31T08:00:00.123456Z"}`)
	})
	t.Run("deleted", func(t *testing.T) {
		e := newEnv(t, open)
		snap := store.Snapshot{Record: e.rec(map[string]any{"id": "a1"}), Time: t0}
		e.apply(store.Writes{Saves: []store.Save{{Ref: r1, Snapshot: snap}, {Ref: r2, Snapshot: snap}}}, t0)
		e.apply(store.Writes{Deletes: []store.RecordRef{r1}}, t0)
		if got := e.load(r1, r2); got[0] != nil || got[1] == nil {
			t.Fatalf("after deleting a1: %v", got)
		}
		// Deletes come before saves in one batch: deleted and created again.
		e.apply(store.Writes{Saves: []store.Save{{Ref: r1, Snapshot: snap}}, Deletes: []store.RecordRef{r1}}, t0)
		if got := e.load(r1); got[0] == nil {
			t.Fatal("deleted and saved in one batch: gone")
		}
	})
	t.Run("replaced by a later save", func(t *testing.T) {
		e := newEnv(t, open)
		e.apply(store.Writes{Saves: []store.Save{{Ref: r1, Snapshot: store.Snapshot{Record: e.rec(map[string]any{"id": "a1", "tier": "SMB"}), Time: t0}}}}, t0)
		e.load(r1)
		e.apply(store.Writes{Saves: []store.Save{{Ref: r1, Snapshot: store.Snapshot{Record: e.rec(map[string]any{"id": "a1", "tier": "Enterprise"}), Time: t0.Add(time.Hour)}}}}, t0)
		s := e.load(r1)[0]
		if s == nil || s.Record.String("tier") != "Enterprise" || !s.Time.Equal(t0.Add(time.Hour)) {
			t.Fatalf("got %+v", s)
		}
	})
	t.Run("stored forms", func(t *testing.T) {
		// Stored data holds these bytes: they never change.
		for _, c := range []struct{ encoding, want string }{
			{"", "\xb1\x80\xaa\xb2\xe5\xb2h\x02\x01\x01\x02a1\x06\x01\x03SMB"},
			{store.EncodingBinary, "\xb1\x80\xaa\xb2\xe5\xb2h\x02\x01\x01\x02a1\x06\x01\x03SMB"},
			{store.EncodingJSON, `{"t":1793523600000,"r":{"id":"a1","tier":"SMB"}}`},
		} {
			e := newEnvWith(t, open, func(o *store.Options) { o.SnapshotEncoding = c.encoding })
			e.apply(store.Writes{Saves: []store.Save{{Ref: r1, Snapshot: store.Snapshot{Record: e.rec(map[string]any{"id": "a1", "tier": "SMB"}), Time: t0}}}}, t0)
			st, err := e.s.Export(ctx, store.Selection{Records: []store.RecordRef{r1}})
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Snapshots) != 1 {
				t.Fatalf("exported %d snapshots", len(st.Snapshots))
			}
			expect(t, "stored form "+c.encoding, fmt.Sprintf("%q", st.Snapshots[0].Data), fmt.Sprintf("%q", c.want))
			// A store writing the other form reads it: a mixed deployment.
			other := store.EncodingJSON
			if c.encoding == store.EncodingJSON {
				other = store.EncodingBinary
			}
			o := newEnvWith(t, open, func(o *store.Options) { o.SnapshotEncoding = other })
			o.importSnapshot(r1, c.want)
			if s := o.load(r1)[0]; s == nil || s.Record.String("tier") != "SMB" || !s.Time.Equal(t0) {
				t.Fatalf("%s form read by a %s store: %+v", c.encoding, other, s)
			}
		}
	})
	t.Run("other JSON of the stored shape is read", func(t *testing.T) {
		e := newEnv(t, open)
		e.importSnapshot(r1, ` { "r" : {"tier":"SMB", "id":"a1"}, "t": 1793523600000 }`)
		s := e.load(r1)[0]
		if s == nil || s.Record.String("tier") != "SMB" || !s.Time.Equal(t0) {
			t.Fatalf("got %+v", s)
		}
	})
	t.Run("unreadable is absent, logged without values", func(t *testing.T) {
		e := newEnv(t, open)
		e.importSnapshot(r1, `{"t":1793523600000,"r":{"id":"a1","employee_count":"SECRET-VALUE"}}`)
		e.importSnapshot(r2, `not json SECRET-VALUE`)
		r3 := store.RecordRef{Workspace: "acme", Object: "nosuchobject", ID: "x"}
		e.importSnapshot(r3, `{"t":1793523600000,"r":{"id":"x"}}`)
		// A binary form cut short, and one whose int field holds a string.
		r4 := store.RecordRef{Workspace: "acme", Object: crm.ObjAccount, ID: "a4"}
		e.importSnapshot(r4, "\xb1\x80\xaa\xb2\xe5\xb2h\x02\x01\x01\x02a1\x06\x01\x03SM")
		r5 := store.RecordRef{Workspace: "acme", Object: crm.ObjAccount, ID: "a5"}
		e.importSnapshot(r5, "\xb1\x80\xaa\xb2\xe5\xb2h\x01\x0a\x01\x0cSECRET-VALUE")
		for i, s := range e.load(r1, r2, r3, r4, r5) {
			if s != nil {
				t.Errorf("snapshot %d: %+v", i, s)
			}
		}
		log := e.log.String()
		if n := strings.Count(log, "unreadable record snapshot"); n != 5 || !strings.Contains(log, "record=a1") || !strings.Contains(log, "record=a2") ||
			!strings.Contains(log, "record=a4") || !strings.Contains(log, "record=a5") {
			t.Errorf("%d warnings:\n%s", n, log)
		}
		if strings.Contains(log, "SECRET") {
			t.Errorf("a field value in the log:\n%s", log)
		}
	})
}

func (e *env) importSnapshot(ref store.RecordRef, data string) {
	e.t.Helper()
	if err := e.s.Import(ctx, &store.State{Snapshots: []store.StoredSnapshot{{Ref: ref, Data: []byte(data)}}}); err != nil {
		e.t.Fatal(err)
	}
}

func timer(ws, record string) store.TimerRef {
	return store.TimerRef{Workspace: ws, Object: crm.ObjAccount, Field: "renewal_date", RecordID: record}
}

var (
	date = time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	due1 = date.Add(-60 * 24 * time.Hour)
	due2 = date.Add(-30 * 24 * time.Hour)
)

// arm arms the timers at t0 for date, due at next.
func (e *env) arm(next time.Time, refs ...store.TimerRef) {
	e.t.Helper()
	var w store.Writes
	for _, r := range refs {
		w.Arms = append(w.Arms, store.Arm{TimerRef: r, Date: date, Fired: t0, Next: next})
	}
	e.apply(w, t0)
}

// due describes timers: "RECORD@NEXT fired=FIRED", sorted as given.
func due(ts []store.DueTimer) string {
	var out []string
	for _, t := range ts {
		s := fmt.Sprintf("%s/%s@%s fired=%s", t.Workspace, t.RecordID, t.Score.Format(time.DateOnly), t.Fired.Format(time.DateOnly))
		if !t.Date.Equal(date) {
			s += " date=" + t.Date.Format(time.DateOnly)
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func (e *env) claimDue(upTo, now time.Time, limit int) []store.DueTimer {
	e.t.Helper()
	ts, err := e.s.ClaimDue(ctx, upTo, now, limit)
	if err != nil {
		e.t.Fatal(err)
	}
	return ts
}

func (e *env) peek(upTo time.Time) string {
	e.t.Helper()
	ts, err := e.s.PeekDue(ctx, upTo)
	if err != nil {
		e.t.Fatal(err)
	}
	return due(ts)
}

func (e *env) ack(ts ...store.DueTimer) {
	e.t.Helper()
	if err := e.s.AckTimers(ctx, ts); err != nil {
		e.t.Fatal(err)
	}
}

func timers(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	far := date.AddDate(1, 0, 0)
	t.Run("armed, due at its next", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due1, timer("acme", "a1"))
		expect(t, "before", due(e.claimDue(due1.Add(-time.Millisecond), t0, 10)), "")
		expect(t, "peek", e.peek(due1), "acme/a1@2026-12-02 fired=2026-11-01")
		expect(t, "due", due(e.claimDue(due1, due1, 10)), "acme/a1@2026-12-02 fired=2026-11-01")
	})
	t.Run("the first sight of its date is kept through claims and acks", func(t *testing.T) {
		e := newEnv(t, open)
		seen := t0.Add(time.Hour)
		e.apply(store.Writes{Arms: []store.Arm{{TimerRef: timer("acme", "a1"), Date: date, Fired: t0, Next: due1, Seen: seen}}}, t0)
		ts := e.claimDue(due1, due1, 10)
		if len(ts) != 1 || !ts[0].Seen.Equal(seen) {
			t.Fatalf("claimed %+v", ts)
		}
		ts[0].NewFired, ts[0].Next = due1, due2
		e.ack(ts...)
		if ts = e.claimDue(due2, due2, 10); len(ts) != 1 || !ts[0].Seen.Equal(seen) || !ts[0].Fired.Equal(due1) {
			t.Fatalf("after the ack: %+v", ts)
		}
	})
	t.Run("forced, re-armed with the same date", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due2, timer("acme", "a1"))
		e.apply(store.Writes{Arms: []store.Arm{{TimerRef: timer("acme", "a1"), Date: date, Fired: due1, Next: due1, Seen: due1, Force: true}}}, t0)
		expect(t, "peek", e.peek(far), "acme/a1@2026-12-02 fired=2026-12-02")
	})
	t.Run("forced, left as it is when armed for the same signature", func(t *testing.T) {
		e := newEnv(t, open)
		e.apply(store.Writes{Arms: []store.Arm{{TimerRef: timer("acme", "a1"), Date: date, Fired: t0, Next: due2, Sig: "v2"}}}, t0)
		e.apply(store.Writes{Arms: []store.Arm{{TimerRef: timer("acme", "a1"), Date: date, Fired: due1, Next: due1, Sig: "v2", Force: true}}}, t0)
		expect(t, "same signature", e.peek(far), "acme/a1@2027-01-01 fired=2026-11-01")
		e.apply(store.Writes{Arms: []store.Arm{{TimerRef: timer("acme", "a1"), Date: date, Fired: due1, Next: due1, Sig: "v3", Force: true}}}, t0)
		expect(t, "another", e.peek(far), "acme/a1@2026-12-02 fired=2026-12-02")
		ts := e.claimDue(due1, due1, 10)
		if len(ts) != 1 || ts[0].Sig != "v3" {
			t.Fatalf("claimed %+v", ts)
		}
	})
	t.Run("re-armed with the same date is left as it is", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due1, timer("acme", "a1"))
		e.apply(store.Writes{Arms: []store.Arm{{TimerRef: timer("acme", "a1"), Date: date, Fired: due1, Next: due2}}}, due1)
		expect(t, "peek", e.peek(far), "acme/a1@2026-12-02 fired=2026-11-01")
	})
	t.Run("re-armed with another date", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due1, timer("acme", "a1"))
		later := date.Add(30 * 24 * time.Hour)
		e.apply(store.Writes{Arms: []store.Arm{{TimerRef: timer("acme", "a1"), Date: later, Fired: due1, Next: due2}}}, due1)
		expect(t, "peek", e.peek(far), "acme/a1@2027-01-01 fired=2026-12-02 date=2027-03-02")
		// Armed with nothing left to fire: out of the queue, but armed (a
		// re-arm with the same date is left as it is).
		e.apply(store.Writes{Arms: []store.Arm{{TimerRef: timer("acme", "a1"), Date: date, Fired: due2}}}, due2)
		expect(t, "none left", e.peek(far), "")
		e.arm(due1, timer("acme", "a1"))
		expect(t, "same date again", e.peek(far), "")
	})
	t.Run("cancelled", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due1, timer("acme", "a1"), timer("acme", "a2"))
		e.apply(store.Writes{Cancels: []store.TimerRef{timer("acme", "a1"), timer("acme", "nosuch")}}, t0)
		expect(t, "peek", e.peek(far), "acme/a2@2026-12-02 fired=2026-11-01")
		// A cancelled timer is armed anew by the same date.
		e.arm(due2, timer("acme", "a1"))
		expect(t, "re-armed", e.peek(far), "acme/a2@2026-12-02 fired=2026-11-01, acme/a1@2027-01-01 fired=2026-11-01")
	})
	t.Run("claimed earliest first, ties in key order, up to the limit", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due2, timer("acme", "b"))
		e.arm(due1, timer("acme", "z"), timer("acme", "a:1"), timer("", "a"), timer("globex", "a"))
		all := "acme/a:1@2026-12-02 fired=2026-11-01, acme/z@2026-12-02 fired=2026-11-01, " +
			"globex/a@2026-12-02 fired=2026-11-01, /a@2026-12-02 fired=2026-11-01, acme/b@2027-01-01 fired=2026-11-01"
		expect(t, "peek", e.peek(far), all)
		expect(t, "first three", due(e.claimDue(due1, due1, 3)), "acme/a:1@2026-12-02 fired=2026-11-01, acme/z@2026-12-02 fired=2026-11-01, globex/a@2026-12-02 fired=2026-11-01")
		expect(t, "the rest", due(e.claimDue(due1, due1, 10)), "/a@2026-12-02 fired=2026-11-01")
		expect(t, "within the leases", due(e.claimDue(due1.Add(Lease-time.Millisecond), due1.Add(Lease-time.Millisecond), 10)), "")
		// A lease ends at its score: the four are due again, before b.
		expect(t, "after the leases", due(e.claimDue(due2, due2, 10)), all)
	})
	t.Run("a lease that runs out lets another instance claim", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due1, timer("acme", "a1"))
		first := e.claimDue(due1, due1, 10)
		expect(t, "first", due(first), "acme/a1@2026-12-02 fired=2026-11-01")
		expect(t, "within the lease", due(e.claimDue(due1.Add(Lease-time.Millisecond), due1.Add(Lease-time.Millisecond), 10)), "")
		// The first instance died; the lease's end is the score.
		expect(t, "peek", e.peek(due1.Add(Lease)), "acme/a1@2026-12-02 fired=2026-11-01")
		second := e.claimDue(due1.Add(Lease), due1.Add(Lease), 10)
		if len(second) != 1 || !second[0].Score.Equal(due1.Add(Lease)) {
			t.Fatalf("second claim: %s", due(second))
		}
		// The first instance's late ack is ignored; the second's counts.
		first[0].NewFired, first[0].Next = due1, due2
		e.ack(first...)
		expect(t, "after the stale ack", e.peek(far), "acme/a1@2026-12-02 fired=2026-11-01")
		second[0].NewFired, second[0].Next = due1, due2
		e.ack(second...)
		expect(t, "after the ack", e.peek(far), "acme/a1@2027-01-01 fired=2026-12-02")
	})
	t.Run("ack moves to the next due or out of the queue", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due1, timer("acme", "a1"), timer("acme", "a2"))
		ts := e.claimDue(due1, due1, 10)
		ts[0].NewFired, ts[0].Next = due1, due2
		ts[1].NewFired = due1
		e.ack(ts...)
		expect(t, "peek", e.peek(far), "acme/a1@2027-01-01 fired=2026-12-02")
		// a2 is still armed for date: the same date re-arms nothing.
		e.arm(due1, timer("acme", "a2"))
		expect(t, "a2 re-armed", e.peek(far), "acme/a1@2027-01-01 fired=2026-12-02")
	})
	t.Run("an ack is ignored when the timer was re-armed or cancelled meanwhile", func(t *testing.T) {
		e := newEnv(t, open)
		e.arm(due1, timer("acme", "a1"), timer("acme", "a2"))
		ts := e.claimDue(due1, due1, 10)
		later := date.Add(30 * 24 * time.Hour)
		e.apply(store.Writes{
			Arms:    []store.Arm{{TimerRef: timer("acme", "a1"), Date: later, Fired: due1, Next: due2}},
			Cancels: []store.TimerRef{timer("acme", "a2")},
		}, due1)
		for i := range ts {
			ts[i].NewFired = due1
		}
		e.ack(ts...)
		expect(t, "peek", e.peek(far), "acme/a1@2027-01-01 fired=2026-12-02 date=2027-03-02")
	})
}

func export(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	e := newEnv(t, open)
	// Done: x1. Pending: x2. Enrolled: p1 by e1-p1 for a window, p2 by
	// e2-p2 forever. Cooldown: e3 on r1 for a day.
	e.claim(brief("e0", "x1", "x2"), "A", t0)
	e.confirm("A", "x1")
	e.claim(flow("e1", t0.Add(time.Hour), "p1"), "A", t0)
	e.claim(flow("e2", time.Time{}, "p2"), "A", t0)
	e.claim(cooled("e3", "r1", t0), "A", t0)
	e.apply(store.Writes{Saves: []store.Save{{Ref: r1, Snapshot: store.Snapshot{Record: e.rec(map[string]any{"id": "a1"}), Time: t0}}}}, t0)
	sel := store.Selection{
		Records:   []store.RecordRef{r1, r2},
		Cooldowns: []store.CooldownRef{{Workspace: "acme", AutomationID: "a", RecordID: "r1"}, {Workspace: "acme", AutomationID: "a", RecordID: "r2"}},
		Actions: []store.ActionRef{{Workspace: "acme", ActionID: "x1"}, {Workspace: "acme", ActionID: "x2"},
			{Workspace: "acme", ActionID: "x3"}},
		Enrollments: []store.EnrollmentRef{{Workspace: "acme", Flow: "f", Person: "p1"}, {Workspace: "acme", Flow: "f", Person: "p2"},
			{Workspace: "acme", Flow: "f", Person: "p3"}},
	}
	st, err := e.s.Export(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("snapshots %d, cooldowns %+v, done %+v, enrollments %+v", len(st.Snapshots), st.Cooldowns, st.Done, st.Enrollments)
	want := fmt.Sprintf("snapshots 1, cooldowns %+v, done %+v, enrollments %+v",
		[]store.Cooldown{{CooldownRef: sel.Cooldowns[0], EventID: "e3", Until: t0.Add(24 * time.Hour)}},
		[]store.ActionRef{sel.Actions[0]},
		[]store.Enrollment{{EnrollmentRef: sel.Enrollments[0], ActionID: "e1-p1", Until: t0.Add(time.Hour)},
			{EnrollmentRef: sel.Enrollments[1], ActionID: "e2-p2"}})
	expect(t, "export", got, want)

	dst := e.open()
	if err := dst.Import(ctx, st); err != nil {
		t.Fatal(err)
	}
	e.s = dst
	now := t0.Add(time.Minute)
	expect(t, "x1", e.claim(brief("e0", "x1", "x2"), "B", now), "done new")
	expect(t, "p1, p2", e.claim(flow("e4", time.Time{}, "p1", "p2", "p3"), "B", now), "enrolled enrolled new")
	expect(t, "cooldown", e.claim(cooled("e5", "r1", now), "B", now), "cooldown")
	if s := e.load(r1)[0]; s == nil || s.Record.ID() != "a1" {
		t.Fatalf("snapshot %+v", s)
	}
}

// concurrent: instances racing for the same actions and timers each get
// a share, never the same one.
func concurrent(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	const n = 8
	e := newEnv(t, open)
	var refs []store.TimerRef
	for i := range 20 {
		refs = append(refs, timer("acme", fmt.Sprintf("a%02d", i)))
	}
	e.arm(due1, refs...)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		won     []string
		claimed = map[string]int{}
		errs    []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := fmt.Sprintf("T%d", i)
			c := brief("e1", "x1", "x2")
			err := e.s.Claim(ctx, []*store.Claim{c}, token, t0)
			var mine []string
			for err == nil {
				var ts []store.DueTimer
				if ts, err = e.s.ClaimDue(ctx, due1, due1, 3); len(ts) == 0 {
					break
				}
				for _, d := range ts {
					mine = append(mine, d.RecordID)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if !c.Busy {
				won = append(won, token+": "+c.Targets[0].Status.String()+" "+c.Targets[1].Status.String())
			}
			for _, id := range mine {
				claimed[id]++
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(won) != 1 || !strings.HasSuffix(won[0], ": new new") {
		t.Errorf("claims won: %v, want one new new", won)
	}
	for _, r := range refs {
		if claimed[r.RecordID] != 1 {
			t.Errorf("timer %s claimed %d times", r.RecordID, claimed[r.RecordID])
		}
	}
	if len(claimed) != len(refs) {
		t.Errorf("%d timers claimed, want %d", len(claimed), len(refs))
	}
}
