package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
)

// run processes events in one batch, commits, and returns the runs and
// actions as JSON, as the writer would write them.
func (h *harness) output(events ...string) *Output {
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
	return out
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunWhy(t *testing.T) {
	t.Run("every clause held, with the values it read", func(t *testing.T) {
		h := newHarness(t, bigDeal)
		out := h.output(`{"id":"e1","type":"record.created","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":250000,"owner_id":"u-7"}}`)
		if len(out.Runs) != 1 {
			t.Fatalf("runs %v", out.Runs)
		}
		got := jsonOf(t, out.Runs[0].Why)
		want := `{"clauses":[{"text":"record.stage == \"Closed Won\"","result":true},{"text":"record.amount \u003e 200000","result":true}],"values":[{"field":"record.stage","value":"Closed Won"},{"field":"record.amount","value":250000}]}`
		if got != want {
			t.Fatalf("why\n got %s\nwant %s", got, want)
		}
		if a := out.Actions[0]; a.RunID != out.Runs[0].RunID {
			t.Fatalf("action run_id %q, run %q", a.RunID, out.Runs[0].RunID)
		}
	})
	t.Run("on_enter says the condition did not hold before", func(t *testing.T) {
		h := newHarness(t, bigDeal)
		out := h.output(`{"id":"e1","type":"record.updated","object":"opportunity","record":{"id":"o1","stage":"Closed Won","amount":250000,"owner_id":"u-7"},"before":{"stage":"Negotiation"}}`)
		if w := out.Runs[0].Why; w.HeldBefore == nil || *w.HeldBefore {
			t.Fatalf("held_before %v", w.HeldBefore)
		}
	})
	t.Run("an absent field is null", func(t *testing.T) {
		h := newHarness(t, `
automations:
  - id: no-region
    when: {record: account}
    if: '!has(record.region) && record.tier == "SMB"'
    fire: every_time
    then: {flow: {id: f, who: record.primary_contact_id}}
`)
		out := h.output(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","tier":"SMB","primary_contact_id":"c1"}}`)
		if got := jsonOf(t, out.Runs[0].Why.Values); got != `[{"field":"record.region","value":null},{"field":"record.tier","value":"SMB"}]` {
			t.Fatalf("values %s", got)
		}
	})
	t.Run("an error run evaluates each clause on its own", func(t *testing.T) {
		h := newHarness(t, `
automations:
  - id: divide
    when: {record: lead}
    if: record.status == "new" && 100 / record.score > 1
    then: {flow: {id: f}}
`)
		out := h.output(`{"id":"e1","type":"record.created","object":"lead","record":{"id":"l1","status":"new","score":0}}`)
		r := out.Runs[0]
		if r.Outcome != actions.OutcomeError {
			t.Fatalf("outcome %s", r.Outcome)
		}
		c := r.Why.Clauses
		if len(c) != 2 || c[0].Result == nil || !*c[0].Result || c[1].Result != nil || !strings.Contains(c[1].Error, "division by zero") {
			t.Fatalf("clauses %s", jsonOf(t, c))
		}
		if got := jsonOf(t, r.Why.Values); got != `[{"field":"record.status","value":"new"},{"field":"record.score","value":0}]` {
			t.Fatalf("values %s", got)
		}
	})
	t.Run("long values are cut and the why stays within its cap", func(t *testing.T) {
		var conds []string
		// An account is its own related account: each field twice.
		for _, v := range []string{"record", "account"} {
			for _, f := range []string{"name", "tier", "industry", "region", "primary_contact_id", "owner_id"} {
				conds = append(conds, v+"."+f+".size() > 0")
			}
		}
		h := newHarness(t, "automations:\n  - id: big\n    when: {record: account}\n    if: '"+strings.Join(conds, " && ")+"'\n    fire: every_time\n    then: {flow: {id: f, who: record.primary_contact_id}}\n")
		long := strings.Repeat("x", 2000)
		out := h.output(`{"id":"e1","type":"record.created","object":"account","record":{"id":"a1","name":"` + long + `","tier":"` + long + `","industry":"` + long + `","region":"` + long + `","primary_contact_id":"` + long + `","owner_id":"` + long + `"}}`)
		w := out.Runs[0].Why
		js := jsonOf(t, w)
		if len(js) > actions.MaxWhyBytes || !w.Truncated || len(w.Values) == 0 || !w.Values[0].Truncated || len(w.Values[0].Value) > actions.MaxValueBytes {
			t.Fatalf("%d bytes, truncated %v, %d values: %.300s", len(js), w.Truncated, len(w.Values), js)
		}
	})
}

func TestRunPersonsAndContext(t *testing.T) {
	t.Run("each person of a flow run", func(t *testing.T) {
		h := newHarness(t, `
automations:
  - id: upsell
    when: {tracker: Upsell}
    then: {flow: {id: f, who: 'tracker.participants.map(p, p.contact_id)'}}
`)
		tracker := func(id string, people ...string) string {
			var ps []string
			for _, p := range people {
				ps = append(ps, `{"contact_id":"`+p+`","role":"customer"}`)
			}
			return `{"id":"` + id + `","type":"tracker.detected","tracker":{"name":"Upsell","call_id":"call-1","confidence":0.9,"participants":[` + strings.Join(ps, ",") + `]},"account":{"id":"A-1"}}`
		}
		h.output(tracker("e1", "c1"))
		out := h.output(tracker("e2", "c1", "c2"))
		r := out.Runs[0]
		if got := jsonOf(t, r.Persons); got != `[{"person_id":"c1","status":"skipped","reason":"already_enrolled"},{"person_id":"c2","status":"enrolled","action_id":"`+out.Actions[0].ActionID+`"}]` {
			t.Fatalf("persons %s", got)
		}
		if got := jsonOf(t, r.Context); got != `{"tracker":{"name":"Upsell","call_id":"call-1","confidence":0.9,"account_id":"A-1"}}` {
			t.Fatalf("context %s", got)
		}
		out = h.output(tracker("e2", "c1", "c2")) // redelivered
		if got := jsonOf(t, out.Runs[0].Persons); got != `[{"person_id":"c1","status":"skipped","reason":"already_enrolled"},{"person_id":"c2","status":"skipped","reason":"duplicate"}]` {
			t.Fatalf("redelivered: persons %s", got)
		}
	})
	t.Run("a timer run's context", func(t *testing.T) {
		h := newHarness(t, renewal)
		h.process(`{"id":"e1","type":"record.updated","object":"account","record":{"id":"a1","tier":"Enterprise","primary_contact_id":"c1","renewal_date":"2027-01-31T00:00:00Z"}}`)
		h.now = time.Date(2027, 1, 1, 0, 0, 5, 0, time.UTC)
		out, err := h.e.FireDue(context.Background(), h.now, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonOf(t, out.Runs[0].Context); got != `{"timer":{"field":"renewal_date","date":"2027-01-31T00:00:00Z","due":"2027-01-01T00:00:00Z","late_ms":5000}}` {
			t.Fatalf("context %s", got)
		}
	})
}
