package delivery_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
)

// TestBriefWaitsForItsSnapshot: the engine saves a batch's snapshots
// only after Kafka acknowledged its actions, so a brief can arrive while
// its record's snapshot is still the one before the event that fired it.
// The brief is written from the snapshot of its own event, and a flow
// whose record has no snapshot at all does not wait for one.
func TestBriefWaitsForItsSnapshot(t *testing.T) {
	hooks, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: must(webhook.ParseSecrets(hookSecret))})
	if err != nil {
		t.Fatal(err)
	}
	defer hooks.Close()
	cfg := fmt.Sprintf(`
destinations:
  - {name: hooks, workspaces: ["*"], actions: [brief, flow], webhook: {url: %q, secret_env: HOOK_SECRET}}
`, hooks.URL())
	w := newWorld(t, cfg, nil)
	fired := t0.Add(time.Hour)
	w.saveAt("acme", "opportunity", map[string]any{"id": "O-1", "name": "Northwind", "stage": "Negotiation"}, t0)

	br := briefAction("acme", "closed-won-brief", "evt-9", "opportunity", "O-1", "email:revops@example.com")
	br.EventTime, br.FiredAt = fired, time.Now()
	flow := flowAction("acme", "upsell-flow", "evt-10", "expansion-outreach", "C-1", "opportunity", "O-404")
	flow.EventTime, flow.FiredAt = fired, time.Now()
	w.produce(br, flow)
	time.Sleep(300 * time.Millisecond) // the engine's Commit, late
	w.saveAt("acme", "opportunity", map[string]any{"id": "O-1", "name": "Northwind", "stage": "Closed Won"}, fired)
	w.waitOutcomes(2, 20*time.Second)

	bodies := map[string]string{}
	for _, r := range hooks.Received() {
		var p struct {
			Type string `json:"type"`
			Data struct {
				Record *struct {
					AsOf   time.Time      `json:"as_of"`
					Fields map[string]any `json:"fields"`
				} `json:"record"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		bodies[p.Type] = string(r.Body)
		switch p.Type {
		case "brief.send":
			if p.Data.Record == nil || p.Data.Record.Fields["stage"] != "Closed Won" || !p.Data.Record.AsOf.Equal(fired) {
				t.Errorf("brief written from a snapshot older than its event: %s", r.Body)
			}
		case "flow.enroll":
			if p.Data.Record != nil {
				t.Errorf("flow of a record never stored carries one: %s", r.Body)
			}
		}
	}
	if len(bodies) != 2 {
		t.Fatalf("webhook calls %v, want a brief and a flow", bodies)
	}
}
