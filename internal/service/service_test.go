package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/service"
	"github.com/whenthen/whenthen/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const specRules = `
workspace: acme
automations:
  - id: closed-won-brief
    when: {record: opportunity, on: [created, updated]}
    if: record.stage == "Closed Won" && record.amount > 200000
    fire: on_enter
    then:
      brief: {kind: opportunity, recipients: [owner, "user:u-42"]}
  - id: lead-nurture
    when: {record: lead, on: [created]}
    if: record.score >= 50
    then:
      flow: {id: nurture}
  - id: upsell-flow
    when: {tracker: Upsell opportunity}
    then:
      flow:
        id: expansion-outreach
        who: tracker.participants.filter(p, p.role == "customer").map(p, p.contact_id)
        reenroll_after: 720h
`

// TestEndToEnd produces event envelopes (docs/events.md), runs the service in-process and
// compares the action and run records it writes, exactly.
func TestEndToEnd(t *testing.T) {
	c := newCluster(t, 1)
	dir := t.TempDir()
	writeFile(t, dir, "acme.yaml", specRules)
	s, _ := start(t, options(t, c, dir, ""))

	const tm = `"time":"2026-11-24T10:00:00Z","workspace":"acme"`
	c.Produce(t, inputTopic,
		// Created below the threshold: nothing.
		event("006A1", `{"id":"evt-1","type":"record.created",`+tm+`,"object":"opportunity","record":{"id":"006A1","stage":"Negotiation","amount":250000,"owner_id":"u-7"}}`),
		// Enters Closed Won: a brief to the owner and u-42.
		event("006A1", `{"id":"evt-2","type":"record.updated",`+tm+`,"object":"opportunity","record":{"id":"006A1","stage":"Closed Won","amount":250000,"owner_id":"u-7"},"before":{"stage":"Negotiation"}}`),
		// Still Closed Won (stored state): on_enter does not fire again.
		event("006A1", `{"id":"evt-3","type":"record.updated",`+tm+`,"object":"opportunity","record":{"id":"006A1","stage":"Closed Won","amount":260000,"owner_id":"u-7"}}`),
		// A lead with a high score: the lead itself into the flow. The
		// schema has no lead_source_v2: dropped and counted.
		event("L1", `{"id":"evt-4","type":"record.created",`+tm+`,"object":"lead","record":{"id":"L1","score":80,"lead_source_v2":"web"}}`),
		// An undecodable message in between.
		event("bad", `{"id":"evt-bad","type":"record.created"`),
		// Tracker: the two customers into the flow.
		event("call-1", `{"id":"evt-5","type":"tracker.detected",`+tm+`,"tracker":{"name":"Upsell opportunity","call_id":"call-1","confidence":0.9,`+
			`"participants":[{"contact_id":"c1","role":"customer"},{"contact_id":"c2","role":"internal"},{"contact_id":"c3","role":"customer"}]}}`),
		// Again for c1: already enrolled.
		event("call-2", `{"id":"evt-6","type":"tracker.detected",`+tm+`,"tracker":{"name":"Upsell opportunity","call_id":"call-2",`+
			`"participants":[{"contact_id":"c1","role":"customer"}]}}`),
		// Another workspace: no automation sees it.
		event("006B1", `{"id":"evt-7","type":"record.created","time":"2026-11-24T10:00:00Z","workspace":"other","object":"opportunity",`+
			`"record":{"id":"006B1","stage":"Closed Won","amount":900000,"owner_id":"u-9"}}`),
	)
	testenv.WaitFor(t, 20*time.Second, "every event committed", func() bool { return allCommitted(c) })

	brief := actions.ActionID("acme", "closed-won-brief", "evt-2", "brief")
	lead := actions.ActionID("acme", "lead-nurture", "evt-4", "L1")
	c1 := actions.ActionID("acme", "upsell-flow", "evt-5", "c1")
	c3 := actions.ActionID("acme", "upsell-flow", "evt-5", "c3")
	wantActions := []action{
		{ActionID: brief, Workspace: "acme", AutomationID: "closed-won-brief", Type: "brief", EventID: "evt-2", RecordID: "006A1",
			Brief: &actions.Brief{Kind: "opportunity", Recipients: []string{"user:u-7", "user:u-42"}}},
		{ActionID: lead, Workspace: "acme", AutomationID: "lead-nurture", Type: "flow", EventID: "evt-4", RecordID: "L1",
			Flow: &actions.Flow{ID: "nurture", PersonID: "L1"}},
		{ActionID: c1, Workspace: "acme", AutomationID: "upsell-flow", Type: "flow", EventID: "evt-5",
			Flow: &actions.Flow{ID: "expansion-outreach", PersonID: "c1"}},
		{ActionID: c3, Workspace: "acme", AutomationID: "upsell-flow", Type: "flow", EventID: "evt-5",
			Flow: &actions.Flow{ID: "expansion-outreach", PersonID: "c3"}},
	}
	wantRuns := []run{
		{AutomationID: "closed-won-brief", EventID: "evt-2", Outcome: "completed", ActionIDs: []string{brief}},
		{AutomationID: "lead-nurture", EventID: "evt-4", Outcome: "completed", ActionIDs: []string{lead}},
		{AutomationID: "upsell-flow", EventID: "evt-5", Outcome: "completed", ActionIDs: []string{c1, c3}},
		{AutomationID: "upsell-flow", EventID: "evt-6", Outcome: "skipped", Reason: "already_enrolled", ActionIDs: []string{}},
	}
	gotActions := readActions(t, c)
	slices.SortFunc(gotActions, func(a, b action) int { return strings.Compare(a.EventID+a.ActionID, b.EventID+b.ActionID) })
	slices.SortFunc(wantActions, func(a, b action) int { return strings.Compare(a.EventID+a.ActionID, b.EventID+b.ActionID) })
	if got, want := mustJSON(t, gotActions), mustJSON(t, wantActions); got != want {
		t.Errorf("actions:\n got %s\nwant %s", got, want)
	}
	// One partition everywhere: runs are in event order.
	if got, want := mustJSON(t, readRuns(t, c)), mustJSON(t, wantRuns); got != want {
		t.Errorf("runs:\n got %s\nwant %s", got, want)
	}
	dlq := c.ReadTopic(t, actions.DefaultDLQTopic)
	if len(dlq) != 1 || string(dlq[0].Value) != `{"id":"evt-bad","type":"record.created"` {
		t.Errorf("dead letters: %v", dlq)
	}

	// Metrics: values, and names that pass promtool's lint.
	g := s.Gatherer()
	for _, m := range []struct {
		name, label, value string
		want               float64
	}{
		{"whenthen_consumer_messages_total", "", "", 8},
		{"whenthen_decoded_events_total", "", "", 7},
		{"whenthen_dead_letters_total", "reason", "invalid_json", 1},
		{"whenthen_actions_total", "type", "flow", 3},
		{"whenthen_actions_total", "type", "brief", 1},
		{"whenthen_rule_reloads_total", "result", "success", 1},
		{"whenthen_rule_reloads_total", "result", "failure", 0},
		{"whenthen_pipeline_stalled_batches", "", "", 0},
		{"whenthen_consumer_inflight_messages", "", "", 0},
		{"whenthen_unknown_fields_total", "field", "lead_source_v2", 1},
	} {
		var labels []string
		if m.label != "" {
			labels = []string{m.label, m.value}
		}
		if got := testenv.Metric(t, g, m.name, labels...); got != m.want {
			t.Errorf("%s{%s=%q} = %v, want %v", m.name, m.label, m.value, got, m.want)
		}
	}
	if n := testenv.Metric(t, g, "whenthen_event_latency_seconds"); n != 8 {
		t.Errorf("latency histogram has %v samples, want 8", n)
	}
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric lint: %s: %s", p.Metric, p.Text)
	}
	code, body := get(t, "http://"+s.MetricsAddr()+"/metrics")
	if code != 200 || !strings.Contains(body, "whenthen_decoded_events_total 7") || !strings.Contains(body, "go_goroutines") ||
		!strings.Contains(body, "process_cpu_seconds_total") {
		t.Errorf("/metrics: %d, %d bytes", code, len(body))
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const bigDeal = `
automations:
  - id: big-deal
    when: {record: opportunity}
    if: record.amount > 1000
    fire: every_time
    then:
      brief: {kind: opportunity, recipients: ["user:u-1"]}
`

func bigDealAction(n int) string {
	return actions.ActionID("", "big-deal", fmt.Sprintf("evt-%d", n), "brief")
}

// assertOnce checks that the actions topic holds the big-deal action of
// each of events 0 to n-1 exactly once, and nothing else.
func assertOnce(t *testing.T, c *testenv.Cluster, n int) {
	t.Helper()
	got := actionCounts(t, c)
	for i := range n {
		if k := got[bigDealAction(i)]; k != 1 {
			t.Errorf("action of evt-%d produced %d times, want once", i, k)
		}
		delete(got, bigDealAction(i))
	}
	if len(got) > 0 {
		t.Errorf("%d unexpected actions", len(got))
	}
}

// TestRestartMidStream closes the service after some events and starts a
// new one in the same group: nothing is lost, no action is produced twice.
func TestRestartMidStream(t *testing.T) {
	const total = 300
	c := newCluster(t, 2)
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", bigDeal)
	o := options(t, c, dir, "")
	o.BatchSize = 10 // many batches, so the close lands mid-stream
	var msgs []kafka.Message
	for i := range total {
		msgs = append(msgs, oppEvent(i, 5000))
	}
	c.Produce(t, inputTopic, msgs...)

	_, stopA := start(t, o)
	testenv.WaitFor(t, 20*time.Second, "some actions", func() bool { return c.Count(actions.DefaultActionsTopic) >= 50 })
	stopA()
	if n := c.Count(actions.DefaultActionsTopic); n >= total {
		t.Logf("the first instance finished everything (%d actions) before it closed", n)
	}
	b, _ := start(t, o)
	testenv.WaitFor(t, 20*time.Second, "every event committed", func() bool { return allCommitted(c) })
	assertOnce(t, c, total)
	if n := testenv.Metric(t, b.Gatherer(), "whenthen_decoded_events_total"); n == 0 {
		t.Error("the second instance processed nothing: the close was not mid-stream")
	}
}

// TestTwoInstancesShareGroup runs two services in one group on a topic of
// four partitions, the second joining mid-stream (a rebalance while the
// first has batches in flight): each ends with some partitions, and no
// action is doubled.
func TestTwoInstancesShareGroup(t *testing.T) {
	const total = 400
	c := newCluster(t, 4)
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", bigDeal)
	o := options(t, c, dir, "")
	o.BatchSize = 10
	var msgs []kafka.Message
	for i := range total {
		msgs = append(msgs, oppEvent(i, 5000))
	}
	c.Produce(t, inputTopic, msgs...)
	a, _ := start(t, o)
	testenv.WaitFor(t, 20*time.Second, "some actions", func() bool { return c.Count(actions.DefaultActionsTopic) >= 40 })
	b, _ := start(t, o)
	testenv.WaitFor(t, 20*time.Second, "two members sharing the partitions", func() bool {
		gi := c.GroupInfo(group)
		return gi != nil && gi.State == "Stable" && len(gi.Members) == 2 &&
			gi.Members[0].NumAssigned() > 0 && gi.Members[1].NumAssigned() > 0
	})
	// More events once both are members: both get some.
	var more []kafka.Message
	for i := total; i < 2*total; i++ {
		more = append(more, oppEvent(i, 5000))
	}
	c.Produce(t, inputTopic, more...)
	testenv.WaitFor(t, 30*time.Second, "every event committed", func() bool { return allCommitted(c) })
	assertOnce(t, c, 2*total)
	na := testenv.Metric(t, a.Gatherer(), "whenthen_decoded_events_total")
	nb := testenv.Metric(t, b.Gatherer(), "whenthen_decoded_events_total")
	if na == 0 || nb == 0 || na+nb < 2*total {
		t.Errorf("instances decoded %v and %v events, want both some, %d in all", na, nb, 2*total)
	}
}

// TestReload checks hot reload through the file watcher: a broken file
// keeps the old rules (and counts a failure), a good change takes effect.
func TestReload(t *testing.T) {
	c := newCluster(t, 1)
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", bigDeal)
	o := options(t, c, dir, "")
	o.ReloadInterval = 20 * time.Millisecond
	s, _ := start(t, o)
	g := s.Gatherer()
	reloads := func(result string) float64 {
		return testenv.Metric(t, g, "whenthen_rule_reloads_total", "result", result)
	}
	before := testenv.Metric(t, g, "whenthen_rule_reload_last_success_timestamp_seconds")

	c.Produce(t, inputTopic, oppEvent(1, 5000))
	testenv.WaitFor(t, 20*time.Second, "the first action", func() bool { return c.Count(actions.DefaultActionsTopic) == 1 })

	// Broken: a misspelled field. The old rules stay.
	writeFile(t, dir, "r.yaml", strings.Replace(bigDeal, "record.amount", "record.amuont", 1))
	testenv.WaitFor(t, 10*time.Second, "a failed reload", func() bool { return reloads("failure") == 1 })
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "amuont") {
		t.Errorf("Reload() of the broken file = %v, want the error naming the field", err)
	}
	if got := reloads("failure"); got != 2 {
		t.Errorf("failures = %v, want 2", got)
	}
	failedAt := testenv.Metric(t, g, "whenthen_rule_reload_last_failure_timestamp_seconds")
	if failedAt < before {
		t.Errorf("last failure time %v, want at or after the first load's %v (the alert compares them)", failedAt, before)
	}
	c.Produce(t, inputTopic, oppEvent(2, 5000))
	testenv.WaitFor(t, 20*time.Second, "the second action", func() bool { return c.Count(actions.DefaultActionsTopic) == 2 })

	// A good change: a new automation with a lower threshold.
	writeFile(t, dir, "r.yaml", strings.NewReplacer("big-deal", "any-deal", "> 1000", "> 100").Replace(bigDeal))
	testenv.WaitFor(t, 10*time.Second, "a successful reload", func() bool { return reloads("success") == 2 })
	if _, ok := s.Rules().Automation("any-deal"); !ok {
		t.Error("the live rules lack any-deal after the reload")
	}
	if after := testenv.Metric(t, g, "whenthen_rule_reload_last_success_timestamp_seconds"); after < before || after < failedAt {
		t.Errorf("last reload time went from %v to %v (last failure %v)", before, after, failedAt)
	}
	c.Produce(t, inputTopic, oppEvent(3, 500))
	testenv.WaitFor(t, 20*time.Second, "the third action", func() bool { return c.Count(actions.DefaultActionsTopic) == 3 })
	got := actionCounts(t, c)
	for _, id := range []string{bigDealAction(1), bigDealAction(2), actions.ActionID("", "any-deal", "evt-3", "brief")} {
		if got[id] != 1 {
			t.Errorf("action %s: %d, want 1 (all: %v)", id, got[id], got)
		}
	}
}

// TestReadyz checks the HTTP endpoints while Redis goes away and comes
// back.
func TestReadyz(t *testing.T) {
	c := newCluster(t, 1)
	srv := testenv.StartRedis(t)
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", bigDeal)
	o := options(t, c, dir, srv.URL())
	s, _ := start(t, o)
	base := "http://" + s.MetricsAddr()
	ready := func() (int, string) { return get(t, base+"/readyz") }
	testenv.WaitFor(t, 20*time.Second, "ready", func() bool { code, _ := ready(); return code == 200 })
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}

	srv.Stop()
	testenv.WaitFor(t, 20*time.Second, "not ready without Redis", func() bool { code, _ := ready(); return code == 503 })
	if _, body := ready(); !strings.HasPrefix(body, "not ready: redis:") {
		t.Errorf("/readyz body %q, want the Redis error", body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d while Redis is down, want 200", code)
	}
	srv.Restart()
	testenv.WaitFor(t, 20*time.Second, "ready again", func() bool { code, _ := ready(); return code == 200 })
}

// TestDateTimer arms a date timer through an event and lets the timer loop
// fire it.
func TestDateTimer(t *testing.T) {
	c := newCluster(t, 1)
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", `
automations:
  - id: renewal
    when:
      date: {record: account, field: renewal_date, offset: -1h}
    then:
      flow: {id: renewal, who: record.primary_contact_id}
`)
	o := options(t, c, dir, "")
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	clock := make(chan time.Time, 1)
	clock <- now
	o.Clock = func() time.Time { t := <-clock; clock <- t; return t }
	start(t, o)
	// Renewal at 12:00, so the timer is due at 11:00.
	c.Produce(t, inputTopic, event("A1", `{"id":"evt-1","type":"record.created","time":"2026-11-24T10:00:00Z","object":"account",`+
		`"record":{"id":"A1","renewal_date":"2026-11-24T12:00:00Z","primary_contact_id":"c9"}}`))
	testenv.WaitFor(t, 20*time.Second, "the event committed", func() bool { return allCommitted(c) })
	if n := c.Count(actions.DefaultActionsTopic); n != 0 {
		t.Fatalf("%d actions before the timer is due", n)
	}
	<-clock
	clock <- now.Add(90 * time.Minute)
	testenv.WaitFor(t, 20*time.Second, "the timer's action", func() bool { return c.Count(actions.DefaultActionsTopic) == 1 })
	as := readActions(t, c)
	if as[0].AutomationID != "renewal" || as[0].Flow == nil || as[0].Flow.PersonID != "c9" || as[0].RecordID != "A1" {
		t.Errorf("timer action %+v", as[0])
	}
}

func TestCloseAndRun(t *testing.T) {
	c := newCluster(t, 1)
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", bigDeal)
	o := options(t, c, dir, "")
	s, err := service.New(o)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.MetricsAddr()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, service.ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	// The listener is released.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("metrics address still taken after Close: %v", err)
	} else {
		l.Close()
	}

	// Run stops when its context is done; a second Run is refused.
	s, err = service.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testenv.WaitFor(t, 10*time.Second, "ready", func() bool { code, _ := get(t, "http://"+s.MetricsAddr()+"/readyz"); return code == 200 })
	if err := s.Run(ctx); err == nil {
		t.Error("second Run succeeded")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(o.ShutdownTimeout + 2*time.Second):
		t.Fatal("Run did not return within the shutdown timeout")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	c := newCluster(t, 1)
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", bigDeal)
	bad := t.TempDir()
	writeFile(t, bad, "r.yaml", strings.Replace(bigDeal, "record.amount", "record.amuont", 1))
	for _, tc := range []struct {
		name string
		edit func(*service.Options)
		want string
	}{
		{"no brokers", func(o *service.Options) { o.Kafka.Brokers = nil }, "no Kafka brokers"},
		{"bad broker", func(o *service.Options) { o.Kafka.Brokers = []string{"nohost"} }, "want host:port"},
		{"same topics", func(o *service.Options) { o.Kafka.RunsTopic = "automations.actions" }, "actions and runs topics"},
		{"sasl mechanism", func(o *service.Options) { o.Kafka.SASL = daemon.SASLOptions{Mechanism: "GSSAPI", Username: "u"} }, "GSSAPI"},
		{"sasl without user", func(o *service.Options) { o.Kafka.SASL.Mechanism = "scram-sha-512" }, "no username"},
		{"cert without key", func(o *service.Options) { o.Kafka.TLS.CertFile = "c.pem" }, "certificate and key"},
		{"missing CA", func(o *service.Options) { o.Kafka.TLS.CAFile = "/nonexistent/ca.pem" }, "CA file"},
		{"redis scheme", func(o *service.Options) { o.Redis.URL = "http://localhost:6379" }, "want redis, rediss, redis+cluster or rediss+cluster"},
		{"redis cluster database", func(o *service.Options) { o.Redis.URL = "redis+cluster://127.0.0.1:1,127.0.0.1:2/1" }, "only database 0"},
		{"redis CA without TLS", func(o *service.Options) { o.Redis.URL = "redis+cluster://127.0.0.1:1"; o.Redis.CAFile = "ca.pem" }, "not rediss://"},
		{"no rules", func(o *service.Options) { o.Rules = nil }, "no rule files"},
		{"broken rules", func(o *service.Options) { o.Rules = []string{bad} }, "amuont"},
		{"missing rules", func(o *service.Options) { o.Rules = []string{"/nonexistent"} }, "nonexistent"},
		{"decoder", func(o *service.Options) { o.Decoder.Kind = "avro" }, "decoder \"avro\""},
		{"debezium without tables", func(o *service.Options) { o.Decoder.Kind = "debezium" }, "table mapping"},
		{"schema", func(o *service.Options) { o.Schema = "/nonexistent/schema.yaml" }, "schema"},
		{"log level", func(o *service.Options) { o.Logger = nil; o.LogLevel = "loud" }, "log level"},
		{"listen", func(o *service.Options) { o.MetricsListen = "256.0.0.1:1" }, "metrics listener"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options(t, c, dir, "redis://127.0.0.1:1/0")
			tc.edit(&o)
			s, err := service.New(o)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestShutdownBoundedWhenKafkaHangs stops the service while the broker
// swallows every fetch, commit and leave-group request: kafka-go's reader
// then hangs in Close, and the service must still stop within its
// shutdown timeout.
func TestShutdownBoundedWhenKafkaHangs(t *testing.T) {
	c := newCluster(t, 1)
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", bigDeal)
	o := options(t, c, dir, "")
	o.ShutdownTimeout = 2 * time.Second
	s, _ := start(t, o)
	c.Produce(t, inputTopic, oppEvent(1, 5000))
	testenv.WaitFor(t, 20*time.Second, "the event committed", func() bool { return allCommitted(c) })

	for _, key := range []kmsg.Key{kmsg.Fetch, kmsg.OffsetCommit, kmsg.LeaveGroup, kmsg.Heartbeat, kmsg.OffsetFetch} {
		c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			return nil, nil, true // never answered
		})
	}
	c.Produce(t, inputTopic, oppEvent(2, 5000)) // a fetch is surely in flight
	begin := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(begin); d > o.ShutdownTimeout+time.Second {
		t.Errorf("Close took %v with a shutdown timeout of %v", d, o.ShutdownTimeout)
	}
}
