package engine

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCallTrigger(t *testing.T) {
	h := newHarness(t, `
workspace: acme
automations:
  - id: call-flow
    when: {call: processed}
    if: call.duration_s > 600 && account.tier == "Enterprise"
    then: {flow: {id: follow-up, who: 'call.participants.filter(p, p.role == "customer").map(p, p.contact_id)'}}
  - id: call-brief
    when: {call: processed}
    if: call.title.contains("QBR")
    then: {brief: {kind: account, recipients: [owner, "user:u-42"]}}
`)
	h.process(`{"id":"a1","type":"record.created","workspace":"acme","object":"account","record":{"id":"A-1","tier":"Enterprise","owner_id":"u-9"}}`)
	call := func(id, dur, account string) string {
		return `{"id":"` + id + `","type":"call.processed","workspace":"acme","call":{"id":"call-` + id + `","title":"Acme QBR","duration_s":` + dur +
			`,"account_id":"` + account + `","participants":[{"contact_id":"C-1","role":"customer"},{"contact_id":"U-1","role":"rep"}]}}`
	}
	out := h.output(call("c1", "1800", "A-1"))
	got := summarize(out)
	expect(t, got,
		"run call-flow c1 completed", "run call-brief c1 completed",
		"action call-flow  flow:follow-up:C-1", "action call-brief A-1 brief:user:u-9,user:u-42")
	if c := out.Runs[0].Context; c == nil || c.Call == nil || c.Call.ID != "call-c1" || c.Call.AccountID != "A-1" {
		t.Fatalf("context %s", jsonOf(t, c))
	}
	if a := out.Actions[1]; a.Object != "account" || a.RecordID != "A-1" {
		t.Fatalf("brief about %s/%s", a.Object, a.RecordID)
	}
	// A call of a short duration, of an account never seen, without one.
	expect(t, h.process(call("c2", "60", "A-1")), "run call-brief c2 completed", "action call-brief A-1 brief:user:u-9,user:u-42")
	expect(t, h.process(call("c3", "1800", "A-2")), "run call-brief c3 completed", "action call-brief A-2 brief:user:u-42")
	expect(t, h.process(call("c4", "1800", "")), "run call-brief c4 skipped/no_record")
}

func TestRelatedRecords(t *testing.T) {
	const rules = `
automations:
  - id: big-enterprise-deal
    when: {record: opportunity}
    if: account.tier == "Enterprise" && record.amount > 100
    then: {brief: {kind: opportunity}}
  - id: renewal-enterprise
    when: {date: {record: opportunity, field: close_date, offset: -24h}}
    if: account.tier == "Enterprise"
    then: {flow: {id: f, who: record.primary_contact_id}}
`
	opp := func(id, account string, amount int) string {
		return `{"id":"` + id + `","type":"record.updated","object":"opportunity","record":{"id":"O-1","account_id":"` + account +
			`","amount":` + strconv.Itoa(amount) + `,"owner_id":"u-7","primary_contact_id":"C-1","close_date":"2026-11-10T00:00:00Z"},"before":{"amount":0}}`
	}
	acct := func(id, tier string) string {
		return `{"id":"` + id + `","type":"record.updated","object":"account","record":{"id":"A-1","tier":"` + tier + `"},"before":{"tier":""}}`
	}
	t.Run("read from the stored account", func(t *testing.T) {
		h := newHarness(t, rules)
		h.process(acct("a1", "Enterprise"))
		expect(t, h.process(opp("o1", "A-1", 500)), "run big-enterprise-deal o1 completed", "action big-enterprise-deal O-1 brief:user:u-7")
	})
	t.Run("an account never seen reads as empty", func(t *testing.T) {
		h := newHarness(t, rules)
		expect(t, h.process(opp("o1", "A-9", 500)))
	})
	t.Run("the account's change earlier in the same batch is seen", func(t *testing.T) {
		h := newHarness(t, rules)
		h.process(acct("a1", "SMB"))
		expect(t, h.process(acct("a2", "Enterprise"), opp("o1", "A-1", 500)), "run big-enterprise-deal o1 completed", "action big-enterprise-deal O-1 brief:user:u-7")
	})
	t.Run("a partial event names its account through its stored state", func(t *testing.T) {
		h := newHarness(t, rules)
		h.process(acct("a1", "Enterprise"), `{"id":"o0","type":"record.created","object":"opportunity","record":{"id":"O-1","account_id":"A-1","amount":5,"owner_id":"u-7"}}`)
		expect(t, h.process(`{"id":"o1","type":"record.updated","object":"opportunity","partial":true,"record":{"id":"O-1","amount":500}}`),
			"run big-enterprise-deal o1 completed", "action big-enterprise-deal O-1 brief:user:u-7")
	})
	t.Run("a date timer reads its record's account", func(t *testing.T) {
		h := newHarness(t, rules)
		h.process(acct("a1", "Enterprise"), opp("o1", "A-1", 5))
		h.now = time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)
		got := h.fire(h.now)
		if len(got) != 2 || !strings.HasPrefix(got[0], "run renewal-enterprise") || got[1] != "action renewal-enterprise O-1 flow:f:C-1" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("an event that carries the account is not looked up", func(t *testing.T) {
		h := newHarness(t, rules)
		h.process(acct("a1", "SMB"))
		ev := strings.Replace(opp("o1", "A-1", 500), `"before"`, `"account":{"id":"A-1","tier":"Enterprise"},"before"`, 1)
		expect(t, h.process(ev), "run big-enterprise-deal o1 completed", "action big-enterprise-deal O-1 brief:user:u-7")
	})
}
