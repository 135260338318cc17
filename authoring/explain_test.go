package authoring

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

const explainRules = `
workspace: acme
automations:
  - id: big-win
    when: {record: opportunity}
    if: record.stage == "Closed Won" && record.amount > 200000
    then: {brief: {recipients: [owner]}}
    cooldown: 24h
  - id: every-win
    when: {record: opportunity}
    if: record.stage == "Closed Won"
    fire: every_time
    then: {flow: {id: thanks, who: record.primary_contact_id}}
  - id: created-only
    when: {record: opportunity, on: [created]}
    then: {brief: {}}
  - id: off
    enabled: false
    when: {record: opportunity}
    then: {brief: {}}
  - id: divide
    when: {record: opportunity}
    if: 1000 / record.seats > 10 && record.stage != ""
    fire: every_time
    then: {brief: {}}
  - id: upsell
    when: {tracker: {name: Upsell, min_confidence: 0.8}}
    then:
      flow:
        id: up
        who: tracker.participants.map(p, p.contact_id)
`

type explainFixture struct {
	c   *rules.Compiler
	set *rules.Set
	dec *ingest.EnvelopeDecoder
}

func newExplainFixture(t *testing.T) *explainFixture {
	t.Helper()
	s, err := crm.LoadSchema("../examples/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := rules.NewCompiler(rules.CompilerOptions{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.Compile([]rules.Source{{Name: "r.yaml", Data: []byte(explainRules)}})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	return &explainFixture{c, set, dec}
}

func (f *explainFixture) event(t *testing.T, js string) *engine.Event {
	t.Helper()
	ev, err := f.dec.Decode(nil, []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestExplainOutcomes: each candidate's outcome and reason.
func TestExplainOutcomes(t *testing.T) {
	f := newExplainFixture(t)
	for _, tt := range []struct {
		name, event, only string
		want              map[string]string // id -> outcome/reason
	}{
		{"update entering the condition",
			`{"id":"e1","type":"record.updated","time":"2026-11-01T10:00:00Z","workspace":"acme","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000,"seats":0,"owner_id":"u1"},"before":{"stage":"Negotiation"}}`, "",
			map[string]string{"big-win": "completed", "every-win": "skipped/no_person", "created-only": "not_run/trigger", "off": "not_run/disabled", "divide": "error/eval_error"}},
		{"update that was already true",
			`{"id":"e1","type":"record.updated","time":"2026-11-01T10:00:00Z","workspace":"acme","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000,"seats":1,"primary_contact_id":"c1"},"before":{"amount":250000}}`, "",
			map[string]string{"big-win": "not_run/already_true", "every-win": "completed", "created-only": "not_run/trigger", "off": "not_run/disabled", "divide": "skipped/no_recipients"}},
		{"condition false",
			`{"id":"e1","type":"record.created","time":"2026-11-01T10:00:00Z","workspace":"acme","object":"opportunity","record":{"id":"o1","stage":"Negotiation","amount":300000,"seats":1}}`, "",
			map[string]string{"big-win": "not_run/condition_false", "every-win": "not_run/condition_false", "created-only": "skipped/no_recipients", "off": "not_run/disabled", "divide": "skipped/no_recipients"}},
		{"tracker below min_confidence",
			`{"id":"t1","type":"tracker.detected","time":"2026-11-01T10:00:00Z","workspace":"acme","tracker":{"name":"Upsell","confidence":0.5,"participants":[{"contact_id":"c1"}]}}`, "",
			map[string]string{"upsell": "not_run/trigger"}},
		{"tracker",
			`{"id":"t1","type":"tracker.detected","time":"2026-11-01T10:00:00Z","workspace":"acme","tracker":{"name":"Upsell","confidence":0.9,"participants":[{"contact_id":"c1"},{"contact_id":"c2"}]}}`, "",
			map[string]string{"upsell": "completed"}},
		{"another workspace, one automation",
			`{"id":"e1","type":"record.created","time":"2026-11-01T10:00:00Z","workspace":"globex","object":"opportunity","record":{"id":"o1"}}`, "big-win",
			map[string]string{"big-win": "not_run/workspace"}},
		{"another workspace",
			`{"id":"e1","type":"record.created","time":"2026-11-01T10:00:00Z","workspace":"globex","object":"opportunity","record":{"id":"o1"}}`, "",
			map[string]string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x, err := Explain(context.Background(), ExplainOptions{Compiler: f.c, Set: f.set, Automation: tt.only}, f.event(t, tt.event))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, a := range x.Automations {
				s := a.Outcome
				if a.Reason != "" {
					s += "/" + a.Reason
				}
				got[a.ID] = s
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for id, w := range tt.want {
				if got[id] != w {
					t.Errorf("%s: %s, want %s", id, got[id], w)
				}
			}
		})
	}
}

// TestExplainClauses: each clause is evaluated on its own, errors included.
func TestExplainClauses(t *testing.T) {
	f := newExplainFixture(t)
	ev := f.event(t, `{"id":"e1","type":"record.created","time":"2026-11-01T10:00:00Z","workspace":"acme","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":100,"seats":0}}`)
	x, err := Explain(context.Background(), ExplainOptions{Compiler: f.c, Set: f.set}, ev)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*AutomationExplanation{}
	for _, a := range x.Automations {
		byID[a.ID] = a
	}
	bw := byID["big-win"].Condition
	if *bw.Value || !*bw.Clauses[0].Value || *bw.Clauses[1].Value || bw.Clauses[1].Text != "record.amount > 200000" {
		t.Fatalf("big-win: %+v", bw)
	}
	dv := byID["divide"].Condition
	if dv.Value != nil || dv.Error != "division by zero" || dv.Clauses[0].Error != "division by zero" || !*dv.Clauses[1].Value {
		t.Fatalf("divide: %+v", dv)
	}
}

// TestExplainLive: against a live store, cooldown and enrollment come from
// it, and it is not written.
func TestExplainLive(t *testing.T) {
	f := newExplainFixture(t)
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	live, err := store.NewRedis(rdb, prefix, store.Options{Schema: f.c.Schema(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := engine.NewReplay(engine.Options{Rules: f.set, Schema: f.c.Schema(), Store: live, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range []string{
		`{"id":"e1","type":"record.created","time":"2026-11-01T09:00:00Z","workspace":"acme","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":300000,"seats":1,"owner_id":"u1","primary_contact_id":"c1"}}`,
		`{"id":"e2","type":"record.updated","time":"2026-11-01T10:00:00Z","workspace":"acme","object":"opportunity","partial":true,"record":{"id":"o1","stage":"Lost"}}`,
	} {
		if _, err := r.Event(ctx, f.event(t, js)); err != nil {
			t.Fatal(err)
		}
	}
	dump := func() string {
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			v, err := rdb.Dump(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %q\n", k, v)
		}
		return b.String()
	}
	before := dump()
	ev := f.event(t, `{"id":"e3","type":"record.updated","time":"2026-11-01T11:00:00Z","workspace":"acme","object":"opportunity","partial":true,"record":{"id":"o1","stage":"Closed Won"}}`)
	x, err := Explain(ctx, ExplainOptions{Compiler: f.c, Set: f.set, Live: live}, ev)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range x.Automations {
		got[a.ID] = a.Outcome + "/" + a.Reason
	}
	if x.State != "live" || got["big-win"] != "skipped/cooldown" || got["every-win"] != "skipped/already_enrolled" {
		t.Fatalf("state %s, outcomes %v", x.State, got)
	}
	if after := dump(); after != before {
		t.Fatalf("live state written:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Without the live state the same partial update knows nothing.
	x, _ = Explain(ctx, ExplainOptions{Compiler: f.c, Set: f.set, Automation: "big-win"}, ev)
	if a := x.Automations[0]; a.Outcome != "not_run" || a.Reason != WhyConditionFalse {
		t.Fatalf("fresh state: %s/%s", a.Outcome, a.Reason)
	}
}
