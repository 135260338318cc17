package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// harness drives an engine against a real Redis with a test's own key
// prefix and a settable clock.
type harness struct {
	t      *testing.T
	e      *Engine
	schema *crm.Schema
	now    time.Time
	reg    *prometheus.Registry
	store  Store
	// rdb and prefix are the Redis of the store, for tests that look at
	// its keys (whose names never change).
	rdb    *redis.Client
	prefix string
}

func newHarness(t *testing.T, yaml string) *harness {
	t.Helper()
	return newRedisHarness(t, yaml, store.TTLs{})
}

// newRedisHarness: the store is a Redis of the test's own with ttl.
func newRedisHarness(t *testing.T, yaml string, ttl store.TTLs) *harness {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	schema := crm.DefaultSchema()
	st, err := store.NewRedis(rdb, prefix, store.Options{Schema: schema, TTLs: ttl})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWithStore(t, yaml, schema, st)
	h.rdb, h.prefix = rdb, prefix
	return h
}

// newHarnessWithStore: the store is st, which reads snapshots with schema.
func newHarnessWithStore(t *testing.T, yaml string, schema *crm.Schema, st Store) *harness {
	t.Helper()
	c, err := rules.NewCompiler(rules.CompilerOptions{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.Compile([]rules.Source{{Name: "t.yaml", Data: []byte(yaml)}})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, schema: c.Schema(), now: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), reg: prometheus.NewRegistry(), store: st}
	h.e, err = New(Options{Rules: set, Schema: c.Schema(), Store: st, Clock: func() time.Time { return h.now }, Registerer: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ev builds an event from a compact JSON envelope.
func (h *harness) ev(js string) *Event {
	h.t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(js))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		h.t.Fatalf("bad test event %s: %v", js, err)
	}
	ev := &Event{ID: m["id"].(string), Type: m["type"].(string)}
	ev.Time = h.now
	if ts, ok := m["time"].(string); ok {
		ev.Time, _ = time.Parse(time.RFC3339, ts)
	}
	ev.Workspace, _ = m["workspace"].(string)
	ev.Object, _ = m["object"].(string)
	ev.Partial, _ = m["partial"].(bool)
	rec := func(o *crm.Object, v any) *crm.Record {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		r, err := o.NewRecord(mm, crm.Limits{})
		if err != nil {
			h.t.Fatal(err)
		}
		return r
	}
	if ev.Object != "" {
		o, _ := h.schema.Object(ev.Object)
		ev.Record = rec(o, m["record"])
		ev.Before = rec(o, m["before"])
	}
	acc, _ := h.schema.Object(crm.ObjAccount)
	opp, _ := h.schema.Object(crm.ObjOpportunity)
	ev.Account = rec(acc, m["account"])
	ev.Opportunity = rec(opp, m["opportunity"])
	ev.Tracker = rec(h.schema.Tracker, m["tracker"])
	ev.Call = rec(h.schema.Call, m["call"])
	if s, ok := m["schedule"].(map[string]any); ok {
		ev.Schedule, _ = s["name"].(string)
	}
	return ev
}

// process runs events one batch, commits, and returns compact lines:
// "run AUTOMATION EVENT OUTCOME/REASON" and "action AUTOMATION TARGET".
func (h *harness) process(events ...string) []string {
	h.t.Helper()
	evs := make([]*Event, len(events))
	for i, s := range events {
		evs[i] = h.ev(s)
	}
	out, err := h.e.Process(context.Background(), evs, "")
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.e.Commit(context.Background(), out); err != nil {
		h.t.Fatal(err)
	}
	return summarize(out)
}

func (h *harness) fire(upTo time.Time) []string {
	h.t.Helper()
	out, err := h.e.FireDue(context.Background(), upTo, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.e.Commit(context.Background(), out); err != nil {
		h.t.Fatal(err)
	}
	return summarize(out)
}

func summarize(out *Output) []string {
	var lines []string
	for _, r := range out.Runs {
		s := fmt.Sprintf("run %s %s %s", r.AutomationID, r.EventID, r.Outcome)
		if r.Reason != "" {
			s += "/" + r.Reason
		}
		if r.LateMS > 0 {
			s += fmt.Sprintf(" late=%dms", r.LateMS)
		}
		lines = append(lines, s)
	}
	for _, a := range out.Actions {
		var target string
		if a.Flow != nil {
			target = "flow:" + a.Flow.ID + ":" + a.Flow.PersonID
		} else {
			target = "brief:" + strings.Join(a.Brief.Recipients, ",")
		}
		lines = append(lines, fmt.Sprintf("action %s %s %s", a.AutomationID, a.RecordID, target))
	}
	return lines
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

const bigDeal = `
automations:
  - id: big-win
    when: {record: opportunity}
    if: record.stage == "Closed Won" && record.amount > 200000
    then: {brief: {kind: opportunity, recipients: [owner, "user:u-42"]}}
`

func TestOnEnter(t *testing.T) {
	t.Run("fires on create when the condition holds", func(t *testing.T) {
		h := newHarness(t, bigDeal)
		expect(t, h.process(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000,"owner_id":"u-7"}}`),
			"run big-win e1 completed", "action big-win o1 brief:user:u-7,user:u-42")
	})
	t.Run("fires on the update that enters, not on later ones", func(t *testing.T) {
		h := newHarness(t, bigDeal)
		expect(t, h.process(
			`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Prospecting","amount":300000}}`,
			`{"id":"e2","type":"record.updated","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000},"before":{"stage":"Prospecting"}}`,
			`{"id":"e3","type":"record.updated","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":310000},"before":{"amount":300000}}`,
		), "run big-win e2 completed", "action big-win o1 brief:user:u-42")
	})
	t.Run("uses stored state when the update has no before", func(t *testing.T) {
		h := newHarness(t, bigDeal)
		expect(t, h.process(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000}}`),
			"run big-win e1 completed", "action big-win o1 brief:user:u-42")
		// A later batch: the full record again, no before: the stored state
		// says the condition already held.
		expect(t, h.process(`{"id":"e2","type":"record.updated","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300001}}`))
	})
	t.Run("partial events merge into the stored state", func(t *testing.T) {
		h := newHarness(t, bigDeal)
		expect(t, h.process(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Prospecting","amount":300000}}`))
		expect(t, h.process(`{"id":"e2","type":"record.updated","object":"opportunity","partial":true,"record":{"id":"o1","stage":"Closed Won"}}`),
			"run big-win e2 completed", "action big-win o1 brief:user:u-42")
		expect(t, h.process(`{"id":"e3","type":"record.updated","object":"opportunity","partial":true,"record":{"id":"o1","amount":100}}`))
		expect(t, h.process(`{"id":"e4","type":"record.updated","object":"opportunity","partial":true,"record":{"id":"o1","amount":250000}}`),
			"run big-win e4 completed", "action big-win o1 brief:user:u-42")
	})
}

func TestEveryTimeAndChanged(t *testing.T) {
	h := newHarness(t, `
automations:
  - id: every
    when: {record: lead, on: [updated]}
    if: record.score > 50
    fire: every_time
    then: {flow: {id: nurture}}
  - id: status-change
    when: {record: lead}
    if: '"status" in changed && before.status == "new"'
    then: {flow: {id: qualify, reenroll_after: 1h}}
`)
	expect(t, h.process(
		`{"id":"e1","type":"record.created","object":"lead","record":{"id":"l1","score":60,"status":"new"}}`,
		`{"id":"e2","type":"record.updated","object":"lead","record":{"id":"l1","score":70,"status":"working"},"before":{"score":60,"status":"new"}}`,
		`{"id":"e3","type":"record.updated","object":"lead","record":{"id":"l1","score":80,"status":"working"},"before":{"score":70}}`,
	),
		"run every e2 completed", "run status-change e2 completed", "run every e3 skipped/already_enrolled",
		"action every l1 flow:nurture:l1", "action status-change l1 flow:qualify:l1")
}

func TestRedelivery(t *testing.T) {
	h := newHarness(t, bigDeal)
	e := `{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000}}`
	expect(t, h.process(e), "run big-win e1 completed", "action big-win o1 brief:user:u-42")
	expect(t, h.process(e), "run big-win e1 skipped/duplicate")
	// The same event twice in one batch.
	h2 := newHarness(t, bigDeal)
	expect(t, h2.process(e, e), "run big-win e1 completed", "run big-win e1 skipped/duplicate", "action big-win o1 brief:user:u-42")
	if got := testutil.ToFloat64(h.e.m.dedupHits.WithLabelValues("duplicate")); got != 1 {
		t.Fatalf("dedup hits: got %v", got)
	}
}

// TestCrashBeforeConfirm: a claim whose outputs were never confirmed (the
// process died) is taken over after the lease, so the action is not lost.
func TestCrashBeforeConfirm(t *testing.T) {
	h := newHarness(t, bigDeal)
	e := h.ev(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000}}`)
	if _, err := h.e.Process(context.Background(), []*Event{e}, ""); err != nil {
		t.Fatal(err)
	}
	// No Commit: the instance died. Another instance, after the lease:
	h.now = h.now.Add(h.store.(*store.Redis).TTLs().Lease + time.Second)
	expect(t, h.process(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000}}`),
		"run big-win e1 completed", "action big-win o1 brief:user:u-42")
}

// TestBusyClaimWaits: a live claim of another instance makes the batch
// wait; it resolves as a duplicate once that instance confirms.
func TestBusyClaimWaits(t *testing.T) {
	h := newHarness(t, bigDeal)
	js := `{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000}}`
	first, err := h.e.Process(context.Background(), []*Event{h.ev(js)}, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []string)
	go func() {
		out, err := h.e.Process(context.Background(), []*Event{h.ev(js)}, "")
		if err != nil {
			t.Error(err)
		}
		done <- summarize(out)
	}()
	if err := h.e.Commit(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	expect(t, <-done, "run big-win e1 skipped/duplicate")
}

// instance is another engine over h's rules and store, as another
// instance of the service would be, on clock.
func (h *harness) instance(clock func() time.Time) *Engine {
	h.t.Helper()
	e, err := New(Options{Rules: h.e.Rules(), Schema: h.schema, Store: h.store, Clock: clock})
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

// bigWin is an event creating opportunity rec, won and large: bigDeal's
// big-win automation runs on it.
func (h *harness) bigWin(id, rec string) *Event {
	return h.ev(`{"id":"` + id + `","type":"record.created","object":"opportunity","record":{"id":"` + rec + `","stage":"Closed Won","amount":300000}}`)
}

// TestWaitingBatchKeepsItsClaims: a batch that waits for another
// instance's claim keeps the claims it already won, their leases renewed
// at each retry, so that an instance meeting the same events meanwhile
// (after a rebalance) waits for them instead of finding their lease run
// out and emitting the actions a second time. (The soak test met this:
// a batch held by a killed instance's claims for a whole lease.)
func TestWaitingBatchKeepsItsClaims(t *testing.T) {
	h := newHarness(t, bigDeal)
	var clock atomic.Int64
	clock.Store(h.now.UnixNano())
	newEngine := func() *Engine { return h.instance(func() time.Time { return time.Unix(0, clock.Load()).UTC() }) }
	ctx := context.Background()
	e1, e2 := h.bigWin("e1", "o1"), h.bigWin("e2", "o2")

	// Instance x claims e1 and does not confirm (it died).
	if _, err := newEngine().Process(ctx, []*Event{e1}, "x"); err != nil {
		t.Fatal(err)
	}
	// Instance a takes both: e2's claim is won at once, e1's is busy.
	type result struct {
		out *Output
		err error
	}
	aDone := make(chan result, 1)
	a := newEngine()
	go func() {
		out, err := a.Process(ctx, []*Event{e1, e2}, "a")
		aDone <- result{out, err}
	}()
	e2Key := h.prefix + "{~}:a:" + actions.ActionID("", "big-win", "e2", actions.TypeBrief)
	testenv.WaitFor(t, 10*time.Second, "a's claim of e2", func() bool {
		v, _ := h.rdb.Get(ctx, e2Key).Result()
		return strings.HasPrefix(v, "p|a|")
	})
	// x's lease runs out while a waits, and so does the lease of a's
	// first claim of e2: a's retry must renew it.
	clock.Add(int64(h.store.(*store.Redis).TTLs().Lease + time.Second))
	var ra result
	select {
	case ra = <-aDone:
	case <-time.After(20 * time.Second):
		t.Fatal("a still waits after x's lease ran out")
	}
	if ra.err != nil {
		t.Fatal(ra.err)
	}
	expect(t, summarize(ra.out), "run big-win e1 completed", "run big-win e2 completed",
		"action big-win o1 brief:user:u-42", "action big-win o2 brief:user:u-42")

	// Instance b meets e2 before a confirms: it must wait for a, then
	// find the action done.
	bDone := make(chan result, 1)
	go func() {
		out, err := newEngine().Process(ctx, []*Event{e2}, "b")
		bDone <- result{out, err}
	}()
	select {
	case rb := <-bDone:
		t.Fatalf("b did not wait for a's claim: %v %v", summarize(rb.out), rb.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := a.Commit(ctx, ra.out); err != nil {
		t.Fatal(err)
	}
	rb := <-bDone
	if rb.err != nil {
		t.Fatal(rb.err)
	}
	expect(t, summarize(rb.out), "run big-win e2 skipped/duplicate")
}

// TestWaitingBatchesFreeEachOther: two instances whose batches each hold
// a claim the other waits for (the same events met on both sides of a
// rebalance) are freed by a lease running out, because a waiting batch
// does not renew the claims it holds while it waits (it retries at least
// every 2 s, so renewing would keep a 3 s lease alive for ever). Each
// event's actions are produced once. Real time, a short lease.
func TestWaitingBatchesFreeEachOther(t *testing.T) {
	h := newRedisHarness(t, bigDeal, store.TTLs{Lease: 3 * time.Second})
	ctx := context.Background()
	ex, ey := h.bigWin("ex", "ox"), h.bigWin("ey", "oy")
	a, b := h.instance(time.Now), h.instance(time.Now)
	// a holds ex's claim and b holds ey's, neither confirmed.
	if _, err := a.Process(ctx, []*Event{ex}, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Process(ctx, []*Event{ey}, "b"); err != nil {
		t.Fatal(err)
	}
	// Each now takes both: each waits for the other's claim.
	type result struct {
		name string
		e    *Engine
		out  *Output
		err  error
	}
	done := make(chan result, 2)
	for name, e := range map[string]*Engine{"a": a, "b": b} {
		go func() {
			out, err := e.Process(ctx, []*Event{ex, ey}, name)
			done <- result{name, e, out, err}
		}()
	}
	completed := map[string]int{}
	for range 2 {
		var r result
		select {
		case r = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the two batches still wait for each other after 30 s (10 leases)")
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, run := range r.out.Runs {
			if run.Outcome == actions.OutcomeCompleted {
				completed[run.EventID]++
			} else if run.Reason != actions.ReasonDuplicate {
				t.Errorf("%s: run %s %s/%s", r.name, run.EventID, run.Outcome, run.Reason)
			}
		}
		if err := r.e.Commit(ctx, r.out); err != nil {
			t.Fatal(err)
		}
	}
	if completed["ex"] != 1 || completed["ey"] != 1 {
		t.Fatalf("completed runs by event: %v, want each once", completed)
	}
}

func TestCooldown(t *testing.T) {
	h := newHarness(t, `
automations:
  - id: hot
    when: {record: account}
    if: record.employee_count > 100
    fire: every_time
    then: {brief: {}}
    cooldown: 24h
`)
	u := func(id string, n int) string {
		return fmt.Sprintf(`{"id":%q,"type":"record.updated","object":"account","record":{"id":"a1","owner_id":"u1","employee_count":%d}}`, id, n)
	}
	expect(t, h.process(u("e1", 200)), "run hot e1 completed", "action hot a1 brief:user:u1")
	h.now = h.now.Add(time.Hour)
	expect(t, h.process(u("e2", 300)), "run hot e2 skipped/cooldown")
	h.now = h.now.Add(24 * time.Hour)
	expect(t, h.process(u("e3", 300)), "run hot e3 completed", "action hot a1 brief:user:u1")
}

func TestReenrollment(t *testing.T) {
	h := newHarness(t, `
automations:
  - id: never
    when: {record: contact}
    fire: every_time
    if: record.title != ""
    then: {flow: {id: welcome}}
  - id: monthly
    when: {record: contact}
    if: record.title != ""
    fire: every_time
    then: {flow: {id: monthly, reenroll_after: 720h}}
`)
	u := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"type":"record.updated","object":"contact","record":{"id":"c1","title":"VP"}}`, id)
	}
	expect(t, h.process(u("e1")), "run never e1 completed", "run monthly e1 completed", "action never c1 flow:welcome:c1", "action monthly c1 flow:monthly:c1")
	h.now = h.now.Add(719 * time.Hour)
	expect(t, h.process(u("e2")), "run never e2 skipped/already_enrolled", "run monthly e2 skipped/already_enrolled")
	h.now = h.now.Add(2 * time.Hour)
	expect(t, h.process(u("e3")), "run never e3 skipped/already_enrolled", "run monthly e3 completed", "action monthly c1 flow:monthly:c1")
}

func TestTrackerFanOut(t *testing.T) {
	h := newHarness(t, `
automations:
  - id: upsell
    when: {tracker: {name: Upsell, min_confidence: 0.8}}
    if: account.tier == "Enterprise"
    then:
      flow:
        id: expansion
        who: tracker.participants.filter(p, p.role == "customer").map(p, p.contact_id)
  - id: nobody
    when: {tracker: Upsell}
    then: {flow: {id: x, who: 'tracker.participants.filter(p, p.role == "auditor").map(p, p.contact_id)'}}
`)
	expect(t, h.process(
		`{"id":"t1","type":"tracker.detected","tracker":{"name":"Upsell","confidence":0.9,"participants":[
			{"contact_id":"c1","role":"customer"},{"contact_id":"u9","role":"rep"},{"contact_id":"c2","role":"customer"},{"contact_id":"c1","role":"customer"}]},
		  "account":{"id":"a1","tier":"Enterprise"}}`,
		`{"id":"t2","type":"tracker.detected","tracker":{"name":"Upsell","confidence":0.5,"participants":[{"contact_id":"c3","role":"customer"}]},"account":{"id":"a1","tier":"Enterprise"}}`,
		`{"id":"t3","type":"tracker.detected","tracker":{"name":"Churn","confidence":0.99},"account":{"id":"a1","tier":"Enterprise"}}`,
	),
		"run upsell t1 completed", "run nobody t1 skipped/no_person", "run nobody t2 skipped/no_person",
		"action upsell  flow:expansion:c1", "action upsell  flow:expansion:c2")
}

func TestSchedule(t *testing.T) {
	h := newHarness(t, `
automations:
  - id: stale
    when: {schedule: {name: weekly, record: opportunity}}
    if: record.stage != "Closed Won" && now - record.updated_at > duration("336h")
    then: {flow: {id: nudge, who: record.primary_contact_id}}
`)
	h.now = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	expect(t, h.process(
		`{"id":"s1","type":"schedule.fired","schedule":{"name":"weekly"},"object":"opportunity","record":{"id":"o1","stage":"Proposal","updated_at":"2026-11-01T00:00:00Z","primary_contact_id":"c1"}}`,
		`{"id":"s2","type":"schedule.fired","schedule":{"name":"weekly"},"object":"opportunity","record":{"id":"o2","stage":"Proposal","updated_at":"2026-11-29T00:00:00Z","primary_contact_id":"c2"}}`,
		`{"id":"s3","type":"schedule.fired","schedule":{"name":"daily"},"object":"opportunity","record":{"id":"o3","stage":"Proposal","updated_at":"2026-01-01T00:00:00Z","primary_contact_id":"c3"}}`,
		`{"id":"s4","type":"schedule.fired","schedule":{"name":"weekly"},"object":"opportunity","record":{"id":"o4","stage":"Proposal","updated_at":"2026-01-01T00:00:00Z"}}`,
	), "run stale s1 completed", "run stale s4 skipped/no_person", "action stale o1 flow:nudge:c1")
}

const renewal = `
automations:
  - id: renewal
    when: {date: {record: account, field: renewal_date, offset: -720h}}
    if: record.tier == "Enterprise"
    then: {flow: {id: renew, who: record.primary_contact_id}}
`

func TestDateTimers(t *testing.T) {
	acct := func(id, date string) string {
		d := `null`
		if date != "" {
			d = `"` + date + `"`
		}
		return fmt.Sprintf(`{"id":%q,"type":"record.updated","object":"account","record":{"id":"a1","tier":"Enterprise","primary_contact_id":"c1","renewal_date":%s}}`, id, d)
	}
	t.Run("armed and fired", func(t *testing.T) {
		h := newHarness(t, renewal)
		expect(t, h.process(acct("e1", "2027-01-31T00:00:00Z")))
		expect(t, h.fire(time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC))) // not due yet
		h.now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		expect(t, h.fire(h.now), "run renewal timer-"+timerEventID("", "renewal", "a1", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))[6:]+" completed", "action renewal a1 flow:renew:c1")
		expect(t, h.fire(h.now.Add(time.Hour))) // fired once only
	})
	t.Run("re-armed when the date moves", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(acct("e1", "2027-01-31T00:00:00Z"))
		h.process(acct("e2", "2027-03-02T00:00:00Z"))
		h.now = time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
		expect(t, h.fire(h.now))
		h.now = time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
		got := h.fire(h.now)
		if len(got) != 2 || !strings.HasSuffix(got[0], " completed") {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("cancelled when cleared or deleted", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(acct("e1", "2027-01-31T00:00:00Z"))
		h.process(acct("e2", ""))
		h.process(`{"id":"e3","type":"record.created","object":"account","record":{"id":"a2","tier":"Enterprise","primary_contact_id":"c2","renewal_date":"2027-01-31T00:00:00Z"}}`)
		h.process(`{"id":"e4","type":"record.deleted","object":"account","record":{"id":"a2"}}`)
		h.now = time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
		expect(t, h.fire(h.now))
	})
	t.Run("deleted and created again in one batch: the new record keeps its timer", func(t *testing.T) {
		h := newHarness(t, renewal)
		create := func(id, t string) string {
			return fmt.Sprintf(`{"id":%q,"type":"record.created","time":%q,"object":"account","record":{"id":"a2","tier":"Enterprise","primary_contact_id":"c2","renewal_date":"2027-01-31T00:00:00Z"}}`, id, t)
		}
		h.process(create("e1", "2026-11-01T09:00:00Z"),
			`{"id":"e2","type":"record.deleted","time":"2026-11-01T09:00:01Z","object":"account","record":{"id":"a2"}}`,
			create("e3", "2026-11-01T09:00:02Z"))
		h.now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		if got := h.fire(h.now); len(got) != 2 || got[1] != "action renewal a2 flow:renew:c2" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("created and deleted in one batch: nothing is left", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(`{"id":"e1","type":"record.created","time":"2026-11-01T09:00:00Z","object":"account","record":{"id":"a2","tier":"Enterprise","primary_contact_id":"c2","renewal_date":"2027-01-31T00:00:00Z"}}`,
			`{"id":"e2","type":"record.deleted","time":"2026-11-01T09:00:01Z","object":"account","record":{"id":"a2"}}`)
		h.now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		expect(t, h.fire(h.now))
		if n, err := h.rdb.Exists(context.Background(), h.prefix+"{~}:r:account:a2").Result(); err != nil || n != 0 {
			t.Fatalf("snapshot left: %d %v", n, err)
		}
	})
	t.Run("fired late after downtime, re-evaluated on the latest state", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(acct("e1", "2027-01-31T00:00:00Z"))
		h.process(`{"id":"e2","type":"record.created","object":"account","record":{"id":"a2","tier":"Enterprise","primary_contact_id":"c2","renewal_date":"2027-01-31T00:00:00Z"}}`)
		h.process(`{"id":"e3","type":"record.updated","object":"account","partial":true,"record":{"id":"a2","tier":"SMB"}}`)
		h.now = time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC) // six hours late
		got := h.fire(h.now)
		if len(got) != 2 || !strings.HasSuffix(got[0], "completed late=21600000ms") || got[1] != "action renewal a1 flow:renew:c1" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("armed on the first event even when before lacks the date", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(`{"id":"e1","type":"record.updated","object":"account","record":{"id":"a1","tier":"Enterprise","primary_contact_id":"c1","renewal_date":"2027-01-31T00:00:00Z"},"before":{"tier":"SMB"}}`)
		h.now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		if got := h.fire(h.now); len(got) != 2 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("sub-millisecond dates fire", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(acct("e1", "2027-01-31T00:00:00.000123Z"))
		h.now = time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC)
		if got := h.fire(h.now); len(got) != 2 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("the record outlives a timer further out than the snapshot TTL", func(t *testing.T) {
		h := newRedisHarness(t, renewal, store.TTLs{Snapshot: time.Hour})
		h.process(acct("e1", "2027-06-30T00:00:00Z")) // due 2027-05-31, seven months out
		ttl, err := h.rdb.PTTL(context.Background(), h.prefix+"{~}:r:account:a1").Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2027, 5, 31, 0, 0, 0, 0, time.UTC).Sub(h.now); ttl < want {
			t.Fatalf("snapshot TTL %v, want at least %v", ttl, want)
		}
	})
	t.Run("a date already past is not armed", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(acct("e1", "2026-11-15T00:00:00Z")) // due 2026-10-16, before the event
		h.now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		expect(t, h.fire(h.now))
	})
	t.Run("a crash before the ack fires again after the lease, once", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(acct("e1", "2027-01-31T00:00:00Z"))
		h.now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, err := h.e.FireDue(context.Background(), h.now, 10); err != nil { // no Commit
			t.Fatal(err)
		}
		expect(t, h.fire(h.now)) // leased: nothing due
		h.now = h.now.Add(time.Minute)
		got := h.fire(h.now)
		if len(got) != 2 {
			t.Fatalf("got %v", got)
		}
	})
}

func TestWorkspaceIsolation(t *testing.T) {
	h := newHarness(t, `
workspace: acme
automations:
  - id: acme-flow
    when: {record: lead}
    then: {flow: {id: f}}
`)
	expect(t, h.process(
		`{"id":"e1","type":"record.created","workspace":"acme","object":"lead","record":{"id":"l1"}}`,
		`{"id":"e2","type":"record.created","workspace":"globex","object":"lead","record":{"id":"l1"}}`,
		`{"id":"e3","type":"record.created","object":"lead","record":{"id":"l1"}}`,
	), "run acme-flow e1 completed", "action acme-flow l1 flow:f:l1")
}

func TestEnrollmentIsPerWorkspace(t *testing.T) {
	yaml := func(ws string) string {
		return "workspace: " + ws + "\nautomations:\n  - id: " + ws + "-f\n    when: {record: lead}\n    then: {flow: {id: f}}\n"
	}
	rdb, prefix := testenv.Redis(t)
	schema := crm.DefaultSchema()
	st, err := store.NewRedis(rdb, prefix, store.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	a := newHarnessWithStore(t, yaml("acme"), schema, st)
	b := newHarnessWithStore(t, yaml("globex"), schema, st)
	expect(t, a.process(`{"id":"e1","type":"record.created","workspace":"acme","object":"lead","record":{"id":"l1"}}`), "run acme-f e1 completed", "action acme-f l1 flow:f:l1")
	expect(t, b.process(`{"id":"e1","type":"record.created","workspace":"globex","object":"lead","record":{"id":"l1"}}`), "run globex-f e1 completed", "action globex-f l1 flow:f:l1")
}

func TestEvaluationErrors(t *testing.T) {
	h := newHarness(t, `
automations:
  - id: divide
    when: {record: account}
    if: 1000 / record.employee_count > 1
    then: {brief: {}}
  - id: fine
    when: {record: account}
    then: {brief: {}}
`)
	out, err := h.e.Process(context.Background(), []*Event{h.ev(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","owner_id":"u1"}}`)}, "")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, summarize(out), "run divide e1 error/eval_error", "run fine e1 completed", "action fine a1 brief:user:u1")
	if out.Runs[0].Error != "division by zero" {
		t.Fatalf("error message: %q", out.Runs[0].Error)
	}
	if got := testutil.ToFloat64(h.e.m.evalErrors); got != 1 {
		t.Fatalf("eval error metric: %v", got)
	}
}

func TestSkipReasons(t *testing.T) {
	h := newHarness(t, `
automations:
  - id: owner-brief
    when: {record: opportunity}
    then: {brief: {recipients: [owner]}}
  - id: contact-flow
    when: {record: opportunity}
    then: {flow: {id: f, who: record.primary_contact_id}}
`)
	expect(t, h.process(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1"}}`),
		"run owner-brief e1 skipped/no_recipients", "run contact-flow e1 skipped/no_person")
}

func TestDeterministicIDs(t *testing.T) {
	h := newHarness(t, bigDeal)
	ev := h.ev(`{"id":"e1","type":"record.created","workspace":"","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000}}`)
	out, err := h.e.Process(context.Background(), []*Event{ev}, "")
	if err != nil {
		t.Fatal(err)
	}
	if out.Actions[0].ActionID != actions.ActionID("", "big-win", "e1", "brief") || out.Runs[0].RunID != actions.RunID("", "big-win", "e1") {
		t.Fatalf("ids: %+v %+v", out.Actions[0], out.Runs[0])
	}
	if !out.Actions[0].FiredAt.Equal(h.now) || out.Runs[0].ActionIDs[0] != out.Actions[0].ActionID {
		t.Fatalf("fields: %+v %+v", out.Actions[0], out.Runs[0])
	}
}

// TestDateAutomationsShareATimer: the date automations of one field share
// the record's timer, which fires each at its own due time, in order.
func TestDateAutomationsShareATimer(t *testing.T) {
	h := newHarness(t, `
automations:
  - id: renewal-60d
    when: {date: {record: account, field: renewal_date, offset: -1440h}}
    then: {flow: {id: early, who: record.primary_contact_id}}
  - id: renewal-30d
    when: {date: {record: account, field: renewal_date, offset: -720h}}
    then: {flow: {id: late, who: record.primary_contact_id}}
  - id: renewal-day
    when: {date: {record: account, field: renewal_date}}
    then: {flow: {id: day, who: record.primary_contact_id}}
`)
	h.process(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","primary_contact_id":"c1","renewal_date":"2027-03-02T00:00:00Z"}}`)
	n, err := h.rdb.ZCard(context.Background(), h.prefix+"timers").Result()
	if err != nil || n != 1 {
		t.Fatalf("queue entries: %d, %v; want 1", n, err)
	}
	fire := func(at time.Time) []string { h.now = at; return h.fire(at) }
	expect(t, fire(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))) // nothing due yet
	got := fire(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC))       // 60 days before
	if len(got) != 2 || !strings.HasPrefix(got[0], "run renewal-60d ") || got[1] != "action renewal-60d a1 flow:early:c1" {
		t.Fatalf("got %v", got)
	}
	got = fire(time.Date(2027, 3, 5, 0, 0, 0, 0, time.UTC)) // both others, late, in due order
	if len(got) != 4 || !strings.HasPrefix(got[0], "run renewal-30d ") || !strings.HasPrefix(got[1], "run renewal-day ") {
		t.Fatalf("got %v", got)
	}
	if n, _ := h.rdb.ZCard(context.Background(), h.prefix+"timers").Result(); n != 0 {
		t.Fatalf("queue entries after the last due: %d", n)
	}
	expect(t, fire(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)))
}
