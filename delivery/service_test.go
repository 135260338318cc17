package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestDeliverEndToEnd runs actions as the engine writes them through the
// deliverer to a real webhook receiver and a real SMTP server (STARTTLS,
// AUTH PLAIN, a self-signed certificate trusted through ca_file), and
// checks what they received, the outcomes and the dead letters.
func TestDeliverEndToEnd(t *testing.T) {
	secret := must(webhook.ParseSecrets(hookSecret))
	hooks, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer hooks.Close()
	tlsCfg, certPEM, err := sink.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	mail, err := sink.NewSMTP("127.0.0.1:0", sink.SMTPOptions{TLS: tlsCfg, Username: "whenthen", Password: smtpPass})
	if err != nil {
		t.Fatal(err)
	}
	defer mail.Close()
	host, port, _ := strings.Cut(mail.Addr(), ":")

	cfg := fmt.Sprintf(`
destinations:
  - name: outreach
    workspaces: [acme]
    actions: [flow]
    webhook:
      url: %s/hooks/whenthen?tenant=acme
      secret_env: HOOK_SECRET
      headers: {X-Tenant: acme}
  - name: revops-email
    workspaces: ["*"]
    actions: [brief]
    email:
      smtp: {host: %s, port: %s, username: whenthen, password_env: SMTP_PASSWORD, ca_file: "{{DIR}}/ca.pem"}
      from: "whenthen <whenthen@example.com>"
      directory: {file: "{{DIR}}/users.csv"}
fields:
  - workspaces: [acme]
    allow:
      opportunity: [name, stage, amount, account_id]
`, hooks.URL(), host, port)
	w := newWorld(t, cfg, func(o *delivery.Options) {
		dir := filepath.Dir(o.ConfigFile)
		os.WriteFile(filepath.Join(dir, "ca.pem"), certPEM, 0o644)
		os.WriteFile(filepath.Join(dir, "users.csv"), []byte("id,email\nu-7,ana@acme.example\n"), 0o644)
	})
	w.save("acme", "opportunity", map[string]any{"id": "O-1", "name": "Acme expansion", "stage": "Closed Won",
		"amount": 250000, "owner_id": "u-7", "account_id": "A-1", "type": "MARKER-not-allowed"})
	w.save("acme", "account", map[string]any{"id": "A-1", "name": "Acme", "tier": "Enterprise"})
	w.save("acme", "contact", map[string]any{"id": "C-501", "email": "cora@acme.example", "first_name": "Cora"})

	flow := flowAction("acme", "upsell-flow", "evt-1", "expansion-outreach", "C-501", "opportunity", "O-1")
	br := briefAction("acme", "closed-won-brief", "evt-2", "opportunity", "O-1", "user:u-7", "user:u-9", "email:revops@example.com")
	other := flowAction("globex", "upsell-flow", "evt-3", "expansion-outreach", "C-9", "", "")
	w.produce(flow, br, other)
	w.kafka.Produce(t, actions.DefaultActionsTopic, kafka.Message{Key: []byte("k"), Value: []byte(`{"action_id": "a-x", "type": "sms"}`)})
	outs := w.waitOutcomes(3, 20*time.Second)

	// The webhook: signed, the body as documented.
	reqs := hooks.Received()
	if len(reqs) != 1 {
		t.Fatalf("%d webhook calls, want 1", len(reqs))
	}
	r := reqs[0]
	if r.SigErr != nil || r.ID != flow.ActionID || r.Attempt != "1" || r.Header.Get("X-Tenant") != "acme" ||
		r.Header.Get("Content-Type") != "application/json" || r.Path != "/hooks/whenthen" || r.Header.Get("whenthen-destination") != "outreach" {
		t.Errorf("webhook call: id %s attempt %s sig %v headers %v", r.ID, r.Attempt, r.SigErr, r.Header)
	}
	var body struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			Action actions.Action `json:"action"`
			Flow   actions.Flow   `json:"flow"`
			Record struct {
				Object, ID string
				AsOf       time.Time `json:"as_of"`
				Fields     map[string]any
			} `json:"record"`
			Person struct {
				Object, ID string
				Fields     map[string]any
			} `json:"person"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	d := body.Data
	if body.Type != "flow.enroll" || !body.Timestamp.Equal(flow.FiredAt) || d.Action.ActionID != flow.ActionID ||
		d.Flow != *flow.Flow || d.Record.Object != "opportunity" || d.Record.ID != "O-1" || !d.Record.AsOf.Equal(t0) {
		t.Errorf("body %s", r.Body)
	}
	wantFields := map[string]any{"id": "O-1", "name": "Acme expansion", "stage": "Closed Won", "amount": 250000.0, "account_id": "A-1"}
	if fmt.Sprint(d.Record.Fields) != fmt.Sprint(wantFields) {
		t.Errorf("record fields %v, want only the allowed %v", d.Record.Fields, wantFields)
	}
	if d.Person.Object != "contact" || d.Person.Fields["email"] != "cora@acme.example" {
		t.Errorf("person %+v", d.Person)
	}

	// The brief: in the inbox, over TLS, to the known recipients.
	mails := mail.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	m := mails[0]
	subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header("Subject"))
	if !m.TLS || m.User != "whenthen" || strings.Join(m.To, ",") != "ana@acme.example,revops@example.com" ||
		subj != "Closed Won: Acme expansion" || m.Header("Message-ID") != "<"+br.ActionID+".revops-email@whenthen>" {
		t.Errorf("mail to %v subject %q tls %v:\n%s", m.To, subj, m.TLS, m.Data)
	}
	if strings.Contains(string(m.Data), "MARKER") || !strings.Contains(string(m.Data), "tier: Enterprise") {
		t.Errorf("the brief holds a field not allowed, or not the account's:\n%s", m.Data)
	}

	// The outcomes.
	fo := outs[flow.ActionID+"/outreach"]
	if fo.Status != actions.StatusDelivered || fo.Attempts != 1 || fo.HTTPStatus != 200 || fo.RunID != flow.RunID ||
		len(fo.AttemptLog) != 1 || fo.Detail != "POST "+hooks.URL()+"/hooks/whenthen: HTTP 200" {
		t.Errorf("flow outcome %+v", fo)
	}
	bo := outs[br.ActionID+"/revops-email"]
	if bo.Status != actions.StatusDelivered || bo.Attempts != 1 ||
		bo.Detail != `sent "Closed Won: Acme expansion" to user:u-7 (ana@acme.example), email:revops@example.com; unknown, skipped: user:u-9` {
		t.Errorf("brief outcome %+v", bo)
	}
	if so := outs[other.ActionID+"/"]; so.Status != actions.StatusSkipped || so.Reason != actions.ReasonNoDestination {
		t.Errorf("unrouted outcome %+v", so)
	}
	if n := len(w.topicOutcomes()); n != 3 {
		t.Errorf("%d outcomes on the topic, want 3", n)
	}
	testenv.WaitFor(t, 10*time.Second, "the invalid action record dead-lettered", func() bool {
		return w.kafka.Count(actions.DefaultDLQTopic) >= 1
	})
	dlq := w.kafka.ReadTopic(t, actions.DefaultDLQTopic)
	if len(dlq) != 1 || testenv.Header(dlq[0], actions.HeaderDLQReason) != "invalid_action" {
		t.Errorf("dead letters %v", dlq)
	}

	// Redis: final marks kept, jobs gone; every offset committed.
	ctx := context.Background()
	for _, k := range []string{w.prefix + "{d:outreach}:f:" + flow.ActionID, w.prefix + "{d:revops-email}:f:" + br.ActionID} {
		v, err := w.rdb.Get(ctx, k).Result()
		if err != nil || !strings.HasPrefix(v, "delivered||1|") {
			t.Errorf("final mark %s = %q (%v)", k, v, err)
		}
	}
	if n := w.rdb.Exists(ctx, w.prefix+"{d:outreach}:j:"+flow.ActionID).Val(); n != 0 {
		t.Error("the finished job is still in Redis")
	}
	testenv.WaitFor(t, 5*time.Second, "the offsets committed", func() bool {
		return w.kafka.Committed(delivery.DefaultGroup, actions.DefaultActionsTopic, 0) == 4
	})
	if got := testenv.Metric(t, w.svc.Gatherer(), "whenthen_deliveries_total", "destination", "outreach", "status", "delivered"); got != 1 {
		t.Errorf("whenthen_deliveries_total{outreach,delivered} = %v", got)
	}

	// The same actions again (a redelivery): nothing sent, no outcome.
	w.produce(flow, br)
	time.Sleep(300 * time.Millisecond)
	testenv.WaitFor(t, 5*time.Second, "the redelivery committed", func() bool {
		return w.kafka.Committed(delivery.DefaultGroup, actions.DefaultActionsTopic, 0) == 6
	})
	if len(hooks.Received()) != 1 || len(mail.Mails()) != 1 || len(w.all()) != 3 {
		t.Errorf("a redelivered action was sent again: %d calls, %d mails, %d outcomes", len(hooks.Received()), len(mail.Mails()), len(w.all()))
	}
}
