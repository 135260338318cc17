package engine

import "testing"

// TestAccepts: every refusal, and its explanation, for each trigger kind.
func TestAccepts(t *testing.T) {
	h := newHarness(t, `
workspace: acme
automations:
  - id: upd
    when: {record: opportunity, on: [updated]}
    then: {brief: {kind: opportunity}}
  - id: new
    when: {record: lead, on: [created]}
    then: {flow: {id: f}}
  - id: trk
    when: {tracker: {name: Upsell, min_confidence: 0.8}}
    then: {flow: {id: f, who: '"C-1"'}}
  - id: sch
    when: {schedule: {name: weekly, record: opportunity}}
    then: {flow: {id: f, who: record.primary_contact_id}}
  - id: due
    when: {date: {record: account, field: renewal_date, offset: -720h}}
    then: {flow: {id: f, who: record.primary_contact_id}}
`)
	tests := []struct {
		auto, event string
		want        Refusal
		why         string
	}{
		{"upd", `{"id":"e","type":"record.updated","workspace":"acme","object":"opportunity","record":{"id":"O"}}`, Accepted, ""},
		{"upd", `{"id":"e","type":"record.updated","workspace":"globex","object":"opportunity","record":{"id":"O"}}`, RefusedWorkspace,
			"the automation belongs to workspace acme, the event to workspace globex"},
		{"upd", `{"id":"e","type":"record.updated","object":"opportunity","record":{"id":"O"}}`, RefusedWorkspace,
			"the automation belongs to workspace acme, the event to no workspace"},
		{"upd", `{"id":"e","type":"record.deleted","workspace":"acme","object":"opportunity","record":{"id":"O"}}`, RefusedType,
			"a record trigger takes record.created and record.updated events, not record.deleted"},
		{"upd", `{"id":"e","type":"record.updated","workspace":"acme","object":"account","record":{"id":"A"}}`, RefusedObject,
			"the trigger is on opportunity records, the event is about a account"},
		{"upd", `{"id":"e","type":"record.created","workspace":"acme","object":"opportunity","record":{"id":"O"}}`, RefusedCreated,
			"the trigger takes updates only (on: [updated])"},
		{"new", `{"id":"e","type":"record.updated","workspace":"acme","object":"lead","record":{"id":"L"}}`, RefusedUpdated,
			"the trigger takes creates only (on: [created])"},
		{"trk", `{"id":"e","type":"tracker.detected","workspace":"acme","tracker":{"name":"Upsell","confidence":0.9}}`, Accepted, ""},
		{"trk", `{"id":"e","type":"tracker.detected","workspace":"acme","tracker":{"name":"Churn","confidence":0.9}}`, RefusedTracker,
			`the event's tracker is "Churn", the trigger's "Upsell"`},
		{"trk", `{"id":"e","type":"tracker.detected","workspace":"acme","tracker":{"name":"Upsell","confidence":0.5}}`, RefusedConfidence,
			"confidence 0.5 is below min_confidence 0.8"},
		{"trk", `{"id":"e","type":"record.updated","workspace":"acme","object":"opportunity","record":{"id":"O"}}`, RefusedType,
			"a tracker trigger takes tracker.detected events, not record.updated"},
		{"sch", `{"id":"e","type":"schedule.fired","workspace":"acme","object":"opportunity","record":{"id":"O"},"schedule":{"name":"weekly"}}`, Accepted, ""},
		{"sch", `{"id":"e","type":"schedule.fired","workspace":"acme","object":"opportunity","record":{"id":"O"},"schedule":{"name":"daily"}}`, RefusedSchedule,
			`the event's schedule is "daily", the trigger's "weekly"`},
		{"sch", `{"id":"e","type":"schedule.fired","workspace":"acme","object":"account","record":{"id":"A"},"schedule":{"name":"weekly"}}`, RefusedObject,
			"the trigger is for opportunity records, the schedule fired for a account"},
		{"due", `{"id":"e","type":"record.updated","workspace":"acme","object":"account","record":{"id":"A"}}`, RefusedDate,
			"a date trigger fires when account.renewal_date - 720h0m0s comes due, not on events"},
	}
	for _, tt := range tests {
		t.Run(tt.auto+"/"+tt.why, func(t *testing.T) {
			a, ok := h.e.Rules().Automation(tt.auto)
			if !ok {
				t.Fatalf("no automation %s", tt.auto)
			}
			ev := h.ev(tt.event)
			got := Accepts(a, ev)
			if got != tt.want || got.Explain(a, ev) != tt.why {
				t.Fatalf("Accepts = %d %q, want %d %q", got, got.Explain(a, ev), tt.want, tt.why)
			}
		})
	}
}
