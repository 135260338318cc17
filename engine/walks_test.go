package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

// fireAll does everything due by upTo, limit at a time, and returns the
// compact lines of every round and the rounds it took.
func (h *harness) fireAll(upTo time.Time, limit int) ([]string, int) {
	h.t.Helper()
	var lines []string
	for rounds := 1; ; rounds++ {
		out, err := h.e.FireDue(context.Background(), upTo, limit)
		if err != nil {
			h.t.Fatal(err)
		}
		if err := h.e.Commit(context.Background(), out); err != nil {
			h.t.Fatal(err)
		}
		lines = append(lines, summarize(out)...)
		if out.Work() == 0 {
			return lines, rounds
		}
		if rounds > 1000 {
			h.t.Fatal("FireDue keeps finding work")
		}
	}
}

// runsOf keeps the run lines of the automation, with their record.
func runsOf(lines []string, id string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "action "+id+" ") {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

const weekly = `
automations:
  - id: stale-deals
    when: {schedule: {cron: "0 9 * * MON", timezone: America/New_York, record: opportunity}}
    if: record.stage != "Closed Won"
    then: {flow: {id: nudge, who: record.primary_contact_id}}
`

func TestScheduleTicks(t *testing.T) {
	opp := func(id, stage string) string {
		return fmt.Sprintf(`{"id":"e-%s","type":"record.created","object":"opportunity","record":{"id":%q,"stage":%q,"primary_contact_id":"c-%s"}}`, id, id, stage, id)
	}
	// Sunday 2026-11-29 12:00 UTC; Monday 9:00 New York is 14:00 UTC.
	sunday := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	monday := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	t.Run("each record of the object at each tick, once", func(t *testing.T) {
		h := newHarness(t, weekly)
		h.now = sunday
		h.process(opp("o1", "Negotiation"), opp("o2", "Closed Won"), opp("o3", "Prospecting"))
		lines, _ := h.fireAll(h.now, 100) // first sight: the schedule starts with its next tick
		expect(t, runsOf(lines, "stale-deals"))
		h.now = monday.Add(2 * time.Second)
		lines, _ = h.fireAll(h.now, 100)
		expect(t, runsOf(lines, "stale-deals"), "action stale-deals o1 flow:nudge:c-o1", "action stale-deals o3 flow:nudge:c-o3")
		lines, _ = h.fireAll(h.now.Add(time.Hour), 100)
		expect(t, runsOf(lines, "stale-deals"))
	})
	t.Run("the run's context and event", func(t *testing.T) {
		h := newHarness(t, weekly)
		h.now = sunday
		h.process(opp("o1", "Negotiation"))
		h.fireAll(h.now, 100)
		h.now = monday.Add(1500 * time.Millisecond)
		var out *Output
		for {
			o, err := h.e.FireDue(context.Background(), h.now, 100)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.e.Commit(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if len(o.Runs) > 0 {
				out = o
				break
			}
			if o.Work() == 0 {
				t.Fatal("no run")
			}
		}
		r := out.Runs[0]
		if got := jsonOf(t, r.Context); got != `{"schedule":{"cron":"0 9 * * MON","tick":"2026-11-30T14:00:00Z","late_ms":1500}}` {
			t.Fatalf("context %s", got)
		}
		if r.Trigger != "schedule" || r.RecordID != "o1" || !strings.HasPrefix(r.EventID, "tick-") {
			t.Fatalf("run %+v", r)
		}
	})
	t.Run("a mark a tool moves back is seen within markRecheck", func(t *testing.T) {
		h := newHarness(t, weekly)
		h.now = sunday
		h.process(opp("o1", "Negotiation"))
		h.fireAll(h.now, 100) // first sight: mark now, next tick Monday cached
		a, _ := h.e.Rules().Automation("stale-deals")
		lastMonday := monday.Add(-7 * 24 * time.Hour)
		if err := h.store.(*store.Redis).SetWalkMark(context.Background(), ScheduleWalk(a), fmt.Sprint(lastMonday.UnixMilli()-1)); err != nil {
			t.Fatal(err)
		}
		h.now = sunday.Add(time.Second)
		lines, _ := h.fireAll(h.now, 100)
		expect(t, runsOf(lines, "stale-deals")) // the cached next tick is trusted
		h.now = sunday.Add(markRecheck + time.Second)
		lines, _ = h.fireAll(h.now, 100)
		expect(t, runsOf(lines, "stale-deals"), "action stale-deals o1 flow:nudge:c-o1")
	})
	t.Run("after downtime, the latest tick only, late", func(t *testing.T) {
		h := newHarness(t, weekly)
		h.now = sunday
		h.process(opp("o1", "Negotiation"))
		h.fireAll(h.now, 100)
		h.now = monday.Add(21*24*time.Hour + time.Hour) // three ticks missed
		lines, _ := h.fireAll(h.now, 100)
		expect(t, runsOf(lines, "stale-deals"), "action stale-deals o1 flow:nudge:c-o1")
		for _, l := range lines {
			if strings.HasPrefix(l, "run ") && !strings.HasSuffix(l, "late=3600000ms") {
				t.Fatalf("run %q, want 1h late", l)
			}
		}
	})
	t.Run("a tick walks a million records in chunks; deleted ones are not walked", func(t *testing.T) {
		h := newHarness(t, weekly)
		h.now = sunday
		var evs []string
		for i := range 25 {
			evs = append(evs, opp(fmt.Sprintf("o%02d", i), "Negotiation"))
		}
		h.process(evs...)
		h.process(`{"id":"d1","type":"record.deleted","object":"opportunity","record":{"id":"o07"}}`)
		h.fireAll(h.now, 100)
		h.now = monday
		lines, rounds := h.fireAll(h.now, 4)
		if got := runsOf(lines, "stale-deals"); len(got) != 24 || strings.Contains(strings.Join(got, " "), "o07") {
			t.Fatalf("%d actions: %v", len(got), got)
		}
		if rounds < 6 {
			t.Fatalf("%d rounds for 24 records 4 at a time", rounds)
		}
	})
	t.Run("simulated time runs every tick", func(t *testing.T) {
		r, err := NewReplay(Options{Rules: h0(t, weekly), Schema: crm.DefaultSchema(), Store: memStore(t)})
		if err != nil {
			t.Fatal(err)
		}
		h := &harness{t: t, schema: crm.DefaultSchema()}
		ev := h.ev(opp("o1", "Negotiation"))
		ev.Time = sunday
		if _, err := r.Event(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		outs, err := r.Until(context.Background(), monday.Add(14*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var ticks []string
		for _, o := range outs {
			for _, run := range o.Runs {
				ticks = append(ticks, run.Context.Schedule.Tick.Format("01-02"))
			}
		}
		expect(t, ticks, "11-30", "12-07", "12-14")
	})
}

func TestCatchUp(t *testing.T) {
	rules := func(catchUp string) string {
		return `
automations:
  - id: renewal
    when: {date: {record: account, field: renewal_date, offset: -720h` + catchUp + `}}
    then: {flow: {id: renew, who: record.primary_contact_id}}
`
	}
	// First seen 20 days before renewal: the 30-day due time passed 10 days ago.
	acct := `{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","primary_contact_id":"c1","renewal_date":"2026-11-21T09:00:00Z"}}`
	t.Run("past by more than the default catch_up: no fire", func(t *testing.T) {
		h := newHarness(t, rules(""))
		h.process(acct)
		lines, _ := h.fireAll(h.now.Add(time.Minute), 100)
		expect(t, runsOf(lines, "renewal"))
	})
	t.Run("within a longer catch_up: fires at once, late", func(t *testing.T) {
		h := newHarness(t, rules(", catch_up: 336h"))
		h.process(acct)
		h.now = h.now.Add(time.Second)
		lines, _ := h.fireAll(h.now, 100)
		expect(t, runsOf(lines, "renewal"), "action renewal a1 flow:renew:c1")
		if !strings.Contains(strings.Join(lines, "\n"), "late=864001000ms") {
			t.Fatalf("not 10 days late: %v", lines)
		}
	})
	t.Run("catch_up 0: only due times ahead", func(t *testing.T) {
		h := newHarness(t, rules(", catch_up: 0"))
		h.process(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","primary_contact_id":"c1","renewal_date":"2026-12-01T08:00:00Z"}}`)
		lines, _ := h.fireAll(h.now.Add(time.Minute), 100) // due an hour ago
		expect(t, runsOf(lines, "renewal"))
	})
	t.Run("a due time an hour past fires with the default catch_up", func(t *testing.T) {
		h := newHarness(t, rules(""))
		h.process(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","primary_contact_id":"c1","renewal_date":"2026-12-01T08:00:00Z"}}`)
		lines, _ := h.fireAll(h.now.Add(time.Minute), 100)
		expect(t, runsOf(lines, "renewal"), "action renewal a1 flow:renew:c1")
	})
}

func TestRearmOnReload(t *testing.T) {
	const before = `
automations:
  - id: renewal
    when: {date: {record: account, field: renewal_date, offset: -720h}}
    then: {flow: {id: renew, who: record.primary_contact_id}}
`
	h := newHarness(t, before)
	h.process(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","primary_contact_id":"c1","renewal_date":"2027-03-01T00:00:00Z"}}`,
		`{"id":"e2","type":"record.created","object":"account","record":{"id":"a2","primary_contact_id":"c2","renewal_date":"2027-06-01T00:00:00Z"}}`)
	h.fireAll(h.now, 100)
	// A second automation, 120 days before: a1's is due 2026-11-01, today;
	// a2's in February.
	h.e.SetRules(h0(t, before+`  - id: early
    when: {date: {record: account, field: renewal_date, offset: -2880h}}
    then: {flow: {id: early, who: record.primary_contact_id}}
`))
	h.now = h.now.Add(time.Hour)
	lines, _ := h.fireAll(h.now, 100)
	expect(t, runsOf(lines, "early"), "action early a1 flow:early:c1")
	lines, _ = h.fireAll(time.Date(2027, 2, 2, 0, 0, 0, 0, time.UTC), 100)
	expect(t, runsOf(lines, "early"), "action early a2 flow:early:c2")
	expect(t, runsOf(lines, "renewal"), "action renewal a1 flow:renew:c1")
}

// h0 compiles rules with the standard schema.
func h0(t *testing.T, yaml string) *rules.Set {
	t.Helper()
	c, err := rules.NewCompiler(rules.CompilerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.Compile([]rules.Source{{Name: "t.yaml", Data: []byte(yaml)}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// memStore is an empty in-memory store of the standard schema.
func memStore(t *testing.T) Store {
	t.Helper()
	s, err := store.NewMemory(store.Options{Schema: crm.DefaultSchema()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTickOnceAcrossInstances: two engines on one store walk a tick
// concurrently, in small chunks: every record runs once, no action twice.
// TestTickOnceAcrossInstances: two instances walk a tick together, in
// chunks, on a single Redis and on a Redis Cluster (known records in
// record shards, walked shard after shard): each record once.
func TestTickOnceAcrossInstances(t *testing.T) {
	t.Run("redis", func(t *testing.T) { tickOnceAcrossInstances(t, newHarness(t, weekly)) })
	t.Run("redis cluster", func(t *testing.T) {
		rdb, prefix := testenv.RedisClusterClient(t)
		st, err := store.NewRedis(rdb, prefix, store.Options{Schema: crm.DefaultSchema()})
		if err != nil {
			t.Fatal(err)
		}
		tickOnceAcrossInstances(t, newHarnessWithStore(t, weekly, crm.DefaultSchema(), st))
	})
}

func tickOnceAcrossInstances(t *testing.T, h *harness) {
	h.now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var evs []string
	for i := range 60 {
		evs = append(evs, fmt.Sprintf(`{"id":"e%d","type":"record.created","object":"opportunity","record":{"id":"o%02d","stage":"Open","primary_contact_id":"c%d"}}`, i, i, i))
	}
	h.process(evs...)
	h.fireAll(h.now, 100)
	other, err := New(Options{Rules: h.e.Rules(), Schema: h.schema, Store: h.store, Clock: func() time.Time { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	h.now = time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	results := make(chan []string, 2)
	for _, e := range []*Engine{h.e, other} {
		go func() {
			var ids []string
			for range 1000 {
				out, err := e.FireDue(context.Background(), h.now, 3)
				if err == nil {
					err = e.Commit(context.Background(), out)
				}
				if err != nil {
					t.Error(err)
					break
				}
				for _, a := range out.Actions {
					ids = append(ids, a.ActionID)
				}
				if out.Work() == 0 {
					break
				}
			}
			results <- ids
		}()
	}
	all := append(<-results, <-results...)
	seen := map[string]bool{}
	for _, id := range all {
		if seen[id] {
			t.Fatalf("action %s emitted twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 60 {
		t.Fatalf("%d actions, want 60", len(seen))
	}
}

// TestRearmWalksShareACall: after a load, the re-arm walks of many
// workspaces with few records finish in one FireDue (within its budget),
// not one call each: whenthen eval on 1,000 workspaces spent its time
// listing the walks still due before each of them.
func TestRearmWalksShareACall(t *testing.T) {
	var srcs []rules.Source
	for i := range 50 {
		srcs = append(srcs, rules.Source{Name: fmt.Sprintf("ws%d.yaml", i), Data: fmt.Appendf(nil, `
workspace: ws%d
automations:
  - id: renewal-%d
    when: {date: {record: account, field: renewal_date, offset: -720h}}
    then: {flow: {id: renew, who: record.primary_contact_id}}
`, i, i)})
	}
	c, err := rules.NewCompiler(rules.CompilerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.Compile(srcs)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	e, err := New(Options{Rules: set, Schema: crm.DefaultSchema(), Store: memStore(t), Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := e.FireDue(ctx, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	if out.Work() != 50 {
		t.Errorf("the first FireDue did %d units of work, want 50 (one per empty re-arm walk)", out.Work())
	}
	if err := e.Commit(ctx, out); err != nil {
		t.Fatal(err)
	}
	out, err = e.FireDue(ctx, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	if out.Work() != 0 {
		t.Errorf("a second FireDue found %d units of work: the re-arm walks did not all finish in the first", out.Work())
	}
	for _, g := range e.ix.Load().dateGroups {
		if !g.settled.Load() {
			t.Errorf("date group %s/%s/%s not settled", g.workspace, g.object, g.field.Name)
		}
	}
}
