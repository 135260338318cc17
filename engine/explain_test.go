package engine

import (
	"context"
	"sort"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/redis/go-redis/v9"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

func evalCond(t *testing.T, a *rules.Automation, act interpreter.Activation) bool {
	t.Helper()
	v, err := a.If.Eval(context.Background(), act)
	if err != nil {
		t.Fatal(err)
	}
	return v == types.True
}

// TestBind: the variables an event binds are those Process evaluates with:
// the partial record merged into the stored state, before from the
// stored state, nothing before on create.
func TestBind(t *testing.T) {
	h := newHarness(t, bigDeal)
	a := h.e.Rules().Automations[0]
	ctx := context.Background()
	create := h.ev(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Negotiation","amount":300000,"owner_id":"u1"}}`)
	bd, err := h.e.Bind(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	if bd.BeforeVars != nil || bd.Before != nil || bd.Stale || evalCond(t, a, bd.Vars) {
		t.Fatalf("create: %+v", bd)
	}
	h.process(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Negotiation","amount":300000,"owner_id":"u1"}}`)

	update := h.ev(`{"id":"e2","type":"record.updated","object":"opportunity","partial":true,"record":{"id":"o1","stage":"Closed Won"}}`)
	bd, err = h.e.Bind(ctx, update)
	if err != nil {
		t.Fatal(err)
	}
	if bd.Record.String("owner_id") != "u1" || bd.Before.String("stage") != "Negotiation" {
		t.Fatalf("partial update: record %v, before %v", bd.Record, bd.Before)
	}
	if !evalCond(t, a, bd.Vars) || evalCond(t, a, bd.BeforeVars) {
		t.Fatal("want the condition true after and false before")
	}
	// Bind wrote nothing: processing the update still fires once.
	expect(t, h.process(`{"id":"e2","type":"record.updated","object":"opportunity","partial":true,"record":{"id":"o1","stage":"Closed Won"}}`),
		"run big-win e2 completed", "action big-win o1 brief:user:u1,user:u-42")

	h.now = h.now.Add(-time.Hour)
	old := h.ev(`{"id":"e0","type":"record.updated","object":"opportunity","record":{"id":"o1","stage":"Lost"}}`)
	old.Time = h.now.Add(-time.Hour)
	if bd, err = h.e.Bind(ctx, old); err != nil || !bd.Stale {
		t.Fatalf("old event: stale %v, err %v", bd != nil && bd.Stale, err)
	}

	unknown := h.ev(`{"id":"e3","type":"record.updated","object":"opportunity","partial":true,"record":{"id":"o9","stage":"Closed Won"}}`)
	if bd, err = h.e.Bind(ctx, unknown); err != nil || bd.BeforeVars != nil {
		t.Fatalf("partial update of an unseen record: before %v, err %v", bd.BeforeVars, err)
	}
}

// TestBindDue: the timers BindDue lists are those FireDue then fires, and
// listing them claims nothing.
func TestBindDue(t *testing.T) {
	h := newHarness(t, renewal)
	ctx := context.Background()
	h.process(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","tier":"Enterprise","primary_contact_id":"c1","renewal_date":"2027-01-31T00:00:00Z"}}`)
	h.process(`{"id":"e2","type":"record.created","object":"account","record":{"id":"a2","tier":"SMB","primary_contact_id":"c2","renewal_date":"2027-01-15T00:00:00Z"}}`)
	h.process(`{"id":"e3","type":"record.created","object":"account","record":{"id":"a3","tier":"SMB","renewal_date":"2027-06-15T00:00:00Z"}}`)
	upTo := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	for range 2 {
		due, err := h.e.BindDue(ctx, upTo)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range due {
			got = append(got, d.RecordID+" "+d.Due.Format(time.RFC3339)+" "+map[bool]string{true: "true", false: "false"}[evalCond(t, d.Automation, d.Vars)])
		}
		expect(t, got, "a2 2026-12-16T00:00:00Z false", "a1 2027-01-01T00:00:00Z true")
		if due[1].EventID != timerEventID("", "renewal", "a1", due[1].Due) {
			t.Fatalf("event id %s", due[1].EventID)
		}
	}
	h.now = upTo
	expect(t, h.fire(upTo), "run renewal "+timerEventID("", "renewal", "a1", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))+" completed late=2678400000ms", "action renewal a1 flow:renew:c1")
	if due, _ := h.e.BindDue(ctx, upTo); len(due) != 0 {
		t.Fatalf("after firing: %d due", len(due))
	}
}

// TestCopyState: a dry run against an empty store, the state it names
// copied from the live store, and the event run again decides as the live
// store would; the live store is not written.
func TestCopyState(t *testing.T) {
	ctx := context.Background()
	const yaml = `
automations:
  - id: hot
    when: {record: account}
    if: record.employee_count > 100
    fire: every_time
    then: {brief: {}}
    cooldown: 24h
  - id: welcome
    when: {record: account}
    if: record.employee_count > 100
    fire: every_time
    then: {flow: {id: welcome, who: record.primary_contact_id}}
  - id: grew
    when: {record: account}
    if: record.employee_count > 100
    then: {brief: {}}
`
	live := newHarness(t, yaml)
	live.process(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","owner_id":"u1","employee_count":50,"primary_contact_id":"c1"}}`)
	live.now = live.now.Add(time.Hour)
	expect(t, live.process(`{"id":"e2","type":"record.updated","object":"account","record":{"id":"a1","owner_id":"u1","employee_count":200,"primary_contact_id":"c1"}}`),
		"run hot e2 completed", "run welcome e2 completed", "run grew e2 completed",
		"action hot a1 brief:user:u1", "action welcome a1 flow:welcome:c1", "action grew a1 brief:user:u1")
	before := dumpKeys(t, live.rdb, live.prefix)
	liveStore := live.store.(*store.Redis)

	rdb, prefix := testenv.Redis(t)
	copyStore, err := store.NewRedis(rdb, prefix, store.Options{Schema: live.schema})
	if err != nil {
		t.Fatal(err)
	}
	ev := `{"id":"e3","type":"record.updated","object":"account","partial":true,"record":{"id":"a1","employee_count":150}}`
	dry := newHarnessWithStore(t, yaml, live.schema, copyStore)
	dry.now = live.now.Add(time.Hour)
	if err := CopyState(ctx, liveStore, copyStore, dry.ev(ev), nil); err != nil {
		t.Fatal(err)
	}
	out, err := dry.e.Process(ctx, []*Event{dry.ev(ev)}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Start over with the snapshot and everything the dry run touched.
	for _, k := range dumpKeysNames(t, rdb, prefix) {
		rdb.Del(ctx, k)
	}
	if err := CopyState(ctx, liveStore, copyStore, dry.ev(ev), []*Output{out}); err != nil {
		t.Fatal(err)
	}
	again := newHarnessWithStore(t, yaml, live.schema, copyStore)
	again.now = dry.now
	// The partial update merges into the copied snapshot: hot's cooldown
	// from e2 holds, c1 is already enrolled in welcome, and grew's
	// condition already held before.
	expect(t, again.process(ev), "run hot e3 skipped/cooldown", "run welcome e3 skipped/already_enrolled")
	if after := dumpKeys(t, live.rdb, live.prefix); !equalMaps(before, after) {
		t.Fatalf("live store written:\nbefore %v\nafter  %v", before, after)
	}
}

func dumpKeysNames(t *testing.T, rdb *redis.Client, prefix string) []string {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

func dumpKeys(t *testing.T, rdb *redis.Client, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range dumpKeysNames(t, rdb, prefix) {
		v, err := rdb.Dump(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestBindDueListsEveryDueInSimulatedTime: with several automations of one
// field due before upTo, BindDue lists each, as FireDue fires each.
func TestBindDueListsEveryDueInSimulatedTime(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	c, err := rules.NewCompiler(rules.CompilerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.Compile([]rules.Source{{Name: "t.yaml", Data: []byte(`
automations:
  - id: early
    when: {date: {record: account, field: renewal_date, offset: -1440h}}
    if: record.tier == "Enterprise"
    then: {flow: {id: a, who: record.primary_contact_id}}
  - id: late
    when: {date: {record: account, field: renewal_date, offset: -720h}}
    if: record.tier == "Enterprise"
    then: {flow: {id: b, who: record.primary_contact_id}}
`)}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.NewRedis(rdb, prefix, store.Options{Schema: c.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReplay(Options{Rules: set, Schema: c.Schema(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acc, _ := c.Schema().Object(crm.ObjAccount)
	rec, _ := acc.NewRecord(map[string]any{"id": "a1", "tier": "Enterprise", "primary_contact_id": "c1", "renewal_date": "2027-03-02T00:00:00Z"}, crm.Limits{})
	if _, err := r.Event(ctx, &Event{ID: "e1", Type: TypeRecordCreated, Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Object: "account", Record: rec}); err != nil {
		t.Fatal(err)
	}
	upTo := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	due, err := r.Engine().BindDue(ctx, upTo)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range due {
		got = append(got, d.Automation.ID+" "+d.Due.Format(time.DateOnly))
	}
	expect(t, got, "early 2027-01-01", "late 2027-01-31")
	outs, err := r.Until(ctx, upTo)
	if err != nil {
		t.Fatal(err)
	}
	var fired []string
	for _, o := range outs {
		for _, run := range o.Runs {
			fired = append(fired, run.AutomationID)
		}
	}
	expect(t, fired, "early", "late")
}
