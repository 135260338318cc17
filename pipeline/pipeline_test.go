package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/pipeline"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestPipelineBadMessages runs good events with undecodable ones between
// them: each bad one goes to the dead-letter topic with its original bytes
// and reason, and every event after it is still processed.
func TestPipelineBadMessages(t *testing.T) {
	r := newRig(t, rigOptions{})
	bad := []struct {
		value  []byte
		reason string
	}{
		{[]byte(`{"id":"evt-x","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"oppor`), ingest.ReasonInvalidJSON},
		{[]byte("{\"id\":\"evt-y\",\"type\":\"record.updated\",\"time\":\"2026-11-24T10:00:00Z\",\"object\":\"opportunity\",\"record\":{\"id\":\"o\",\"name\":\"\xff\xfe\"}}"), ingest.ReasonInvalidUTF8},
		{[]byte(`{"type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"o","amount":5000}}`), ingest.ReasonMissingField},
	}
	var msgs []kafka.Message
	want := map[string]bool{}
	for i := range 20 {
		msgs = append(msgs, oppEvent(i, 5000))
		want[bigDealActionID(i)] = true
	}
	// Bad messages after events 4, 9 and 14; an event the rule does not
	// match at the end (no action, no run).
	msgs = slices.Insert(msgs, 15, kafka.Message{Key: []byte("k-missing"), Value: bad[2].value})
	msgs = slices.Insert(msgs, 10, kafka.Message{Key: []byte("k-utf8"), Value: bad[1].value})
	msgs = slices.Insert(msgs, 5, kafka.Message{Key: []byte("k-trunc"), Value: bad[0].value})
	msgs = append(msgs, oppEvent(99, 10))
	r.cluster.Produce(t, inputTopic, msgs...)
	r.start()

	total := int64(len(msgs))
	testenv.WaitFor(t, 20*time.Second, "every message processed and committed", func() bool {
		return r.cluster.Count(actions.DefaultActionsTopic) >= 20 && r.cluster.Count(actions.DefaultDLQTopic) >= 3 &&
			r.cluster.Committed(testGroup, inputTopic, 0) == total
	})

	got := map[string]int{}
	for _, m := range r.cluster.ReadTopic(t, actions.DefaultActionsTopic) {
		got[testenv.Header(m, actions.HeaderActionID)]++
		var a struct {
			ActionID     string `json:"action_id"`
			AutomationID string `json:"automation_id"`
			EventID      string `json:"event_id"`
			RecordID     string `json:"record_id"`
		}
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatalf("action %s: %v", m.Value, err)
		}
		if a.AutomationID != "big-deal" || a.ActionID != testenv.Header(m, actions.HeaderActionID) ||
			"opp-"+strings.TrimPrefix(a.EventID, "evt-") != a.RecordID || string(m.Key) != a.RecordID {
			t.Errorf("action %s (key %s) does not match its event", m.Value, m.Key)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct actions, want %d", len(got), len(want))
	}
	for id, n := range got {
		if !want[id] || n != 1 {
			t.Errorf("action %s: %d times, wanted: %v", id, n, want[id])
		}
	}
	runs := r.cluster.ReadTopic(t, actions.DefaultRunsTopic)
	if len(runs) != 20 {
		t.Errorf("%d runs, want 20", len(runs))
	}
	for _, m := range runs {
		var run struct{ Outcome string }
		if err := json.Unmarshal(m.Value, &run); err != nil || run.Outcome != actions.OutcomeCompleted {
			t.Errorf("run %s: outcome %q, err %v", m.Value, run.Outcome, err)
		}
	}

	dlq := r.cluster.ReadTopic(t, actions.DefaultDLQTopic)
	if len(dlq) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dlq))
	}
	for i, want := range []struct {
		key, offset string
		value       []byte
		reason      string
	}{
		{"k-trunc", "5", bad[0].value, bad[0].reason},
		{"k-utf8", "11", bad[1].value, bad[1].reason},
		{"k-missing", "17", bad[2].value, bad[2].reason},
	} {
		m := dlq[i]
		if string(m.Key) != want.key || !bytes.Equal(m.Value, want.value) {
			t.Errorf("dead letter %d: key %q value %q, want the original %q %q", i, m.Key, m.Value, want.key, want.value)
		}
		if h := testenv.Header(m, actions.HeaderDLQReason); h != want.reason {
			t.Errorf("dead letter %d: reason %q, want %q", i, h, want.reason)
		}
		if h := testenv.Header(m, actions.HeaderSourceOffset); h != want.offset {
			t.Errorf("dead letter %d: source offset %q, want %s", i, h, want.offset)
		}
		if testenv.Header(m, actions.HeaderDLQDetail) == "" || testenv.Header(m, actions.HeaderSourceTopic) != inputTopic {
			t.Errorf("dead letter %d: headers %v", i, m.Headers)
		}
	}

	var exp strings.Builder
	exp.WriteString(`
# HELP whenthen_decoded_events_total Input messages decoded into events.
# TYPE whenthen_decoded_events_total counter
whenthen_decoded_events_total 21
# HELP whenthen_consumer_messages_total Messages fetched from the consumed topic (the input topic of whenthen run).
# TYPE whenthen_consumer_messages_total counter
whenthen_consumer_messages_total 24
# HELP whenthen_dead_letters_total Input messages written to the dead-letter topic, by reason.
# TYPE whenthen_dead_letters_total counter
`)
	for _, reason := range slices.Sorted(slices.Values(ingest.Reasons)) {
		n := 0
		switch reason {
		case ingest.ReasonInvalidJSON, ingest.ReasonInvalidUTF8, ingest.ReasonMissingField:
			n = 1
		}
		fmt.Fprintf(&exp, "whenthen_dead_letters_total{reason=%q} %d\n", reason, n)
	}
	exp.WriteString(`
# HELP whenthen_consumer_inflight_messages Messages fetched and not yet done (queued or being handled).
# TYPE whenthen_consumer_inflight_messages gauge
whenthen_consumer_inflight_messages 0
# HELP whenthen_pipeline_stalled_batches Batches currently retrying a failed step.
# TYPE whenthen_pipeline_stalled_batches gauge
whenthen_pipeline_stalled_batches 0
`)
	if err := testutil.GatherAndCompare(r.reg, strings.NewReader(exp.String()),
		"whenthen_decoded_events_total", "whenthen_consumer_messages_total", "whenthen_dead_letters_total",
		"whenthen_consumer_inflight_messages", "whenthen_pipeline_stalled_batches"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(r.reg, "whenthen_event_latency_seconds"); n != 1 {
		t.Errorf("latency histogram has %d series", n)
	}
	problems, err := testutil.GatherAndLint(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric lint: %s: %s", p.Metric, p.Text)
	}
}

// TestOffsetsNotCommittedPastUnprocessed makes Redis unavailable mid-stream:
// the batch then retries, and the group's committed offset stays at the
// last processed message until Redis is back; then every event is
// processed exactly once.
func TestOffsetsNotCommittedPastUnprocessed(t *testing.T) {
	srv := testenv.StartRedis(t)
	r := newRig(t, rigOptions{redisURL: srv.URL()})
	var first []kafka.Message
	for i := range 10 {
		first = append(first, oppEvent(i, 5000))
	}
	r.cluster.Produce(t, inputTopic, first...)
	r.start()
	testenv.WaitFor(t, 20*time.Second, "the first 10 events committed", func() bool {
		return r.cluster.Committed(testGroup, inputTopic, 0) == 10
	})

	srv.Stop()
	var second []kafka.Message
	for i := 10; i < 20; i++ {
		second = append(second, oppEvent(i, 5000))
	}
	r.cluster.Produce(t, inputTopic, second...)
	retries := func() float64 {
		return testenv.Metric(t, r.reg, "whenthen_pipeline_retries_total", "stage", pipeline.StageProcess)
	}
	testenv.WaitFor(t, 20*time.Second, "the batch to retry three times", func() bool { return retries() >= 3 })
	if err := r.pipeline.Err(); err == nil || !strings.Contains(err.Error(), "process") {
		t.Errorf("pipeline Err() = %v, want the process step failing", err)
	}
	if got := r.cluster.Committed(testGroup, inputTopic, 0); got != 10 {
		t.Fatalf("committed offset %d while Redis is down, want 10", got)
	}
	if n := r.cluster.Count(actions.DefaultActionsTopic); n != 10 {
		t.Fatalf("%d actions while Redis is down, want 10", n)
	}

	srv.Restart()
	testenv.WaitFor(t, 20*time.Second, "all 20 events committed after Redis is back", func() bool {
		return r.cluster.Committed(testGroup, inputTopic, 0) == 20
	})
	if err := r.pipeline.Err(); err != nil {
		t.Errorf("pipeline Err() = %v after recovery", err)
	}
	assertActionsOnce(t, r.cluster, 20)
}

// TestPublishFailureRetriesBatch makes the broker refuse writes of action
// records: the batch is retried with the same action ids, nothing is
// committed past it, and once writes succeed every event has its action.
// A write that timed out may still land (kafka-go #1427), so an action may
// be in Kafka twice, always with its one action id.
func TestPublishFailureRetriesBatch(t *testing.T) {
	r := newRig(t, rigOptions{pipeline: func(o *pipeline.Options) { o.PublishTimeout = 500 * time.Millisecond }})
	var failing atomic.Bool
	failing.Store(true)
	refuseWrites(r.cluster, actions.DefaultActionsTopic, &failing)
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, oppEvent(i, 5000))
	}
	r.cluster.Produce(t, inputTopic, msgs...)
	r.start()
	testenv.WaitFor(t, 20*time.Second, "a stalled publish", func() bool { return r.pipeline.Err() != nil })
	if got := r.cluster.Committed(testGroup, inputTopic, 0); got > 0 {
		t.Fatalf("committed offset %d while publishing fails, want none", got)
	}
	failing.Store(false)
	testenv.WaitFor(t, 30*time.Second, "all events committed after writes succeed", func() bool {
		return r.cluster.Committed(testGroup, inputTopic, 0) == 10
	})
	got := map[string]int{}
	for _, m := range r.cluster.ReadTopic(t, actions.DefaultActionsTopic) {
		got[testenv.Header(m, actions.HeaderActionID)]++
	}
	for i := range 10 {
		if got[bigDealActionID(i)] == 0 {
			t.Errorf("no action for evt-%d", i)
		}
		delete(got, bigDealActionID(i))
	}
	if len(got) > 0 {
		t.Errorf("unexpected actions: %v", got)
	}
}

// renewalRules enroll an account's primary contact in a flow an hour
// before its renewal date.
const renewalRules = `
automations:
  - id: renewal
    when:
      date: {record: account, field: renewal_date, offset: -1h}
    then:
      flow: {id: renewal, who: record.primary_contact_id}
`

// TestFireDue fires a date timer through the pipeline: a round before the
// timer is due fires nothing; a round whose publish Kafka refuses retries
// it, counted as a timer loop error and not as a stalled batch, and once
// Kafka takes the action acknowledges the timer; a round while Redis is
// down fails at the fire stage.
func TestFireDue(t *testing.T) {
	srv := testenv.StartRedis(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	r := newRig(t, rigOptions{redisURL: srv.URL(), rules: renewalRules, clock: clock,
		pipeline: func(o *pipeline.Options) { o.PublishTimeout = 500 * time.Millisecond }})
	ctx := t.Context()
	timerErrors := func(stage string) float64 {
		return testenv.Metric(t, r.reg, "whenthen_timer_loop_errors_total", "stage", stage)
	}

	// Renewal at 12:00, so the timer is due at 11:00.
	ev := kafka.Message{Topic: inputTopic, Key: []byte("A1"), Value: []byte(`{"id":"evt-1","type":"record.created",` +
		`"time":"2026-11-24T10:00:00Z","object":"account","record":{"id":"A1","renewal_date":"2026-11-24T12:00:00Z","primary_contact_id":"c9"}}`)}
	if err := r.pipeline.Handle(ctx, []kafka.Message{ev}); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	// The first rounds may re-arm the timers of the new date automation
	// (walks over the known records); nothing fires before the timer is due.
	for i := 0; ; i++ {
		work, err := r.pipeline.FireDue(ctx, clock(), 100)
		if err != nil {
			t.Fatalf("FireDue before the timer is due: %v", err)
		}
		if work == 0 {
			break
		}
		if i == 3 {
			t.Fatal("FireDue keeps finding work before the timer is due")
		}
	}
	if n := r.cluster.Count(actions.DefaultRunsTopic); n != 0 {
		t.Fatalf("%d runs before the timer is due", n)
	}

	now.Store(time.Date(2026, 11, 24, 11, 30, 0, 0, time.UTC).UnixNano())
	var failing atomic.Bool
	failing.Store(true)
	refuseWrites(r.cluster, actions.DefaultActionsTopic, &failing)
	type result struct {
		runs int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runs, err := r.pipeline.FireDue(ctx, clock(), 100)
		done <- result{runs, err}
	}()
	testenv.WaitFor(t, 20*time.Second, "a failed publish of the timer's action", func() bool { return timerErrors(pipeline.StagePublish) >= 1 })
	if err := r.pipeline.Err(); err != nil {
		t.Errorf("Err() = %v while a timer round retries, want nil (no batch is stalled)", err)
	}
	failing.Store(false)
	if res := <-done; res.err != nil || res.runs != 1 {
		t.Fatalf("FireDue = %d, %v; want 1 run", res.runs, res.err)
	}
	acts := r.cluster.ReadTopic(t, actions.DefaultActionsTopic)
	if len(acts) == 0 {
		t.Fatal("no action for the timer")
	}
	for _, m := range acts { // a refused write may still have landed: at least once
		var a actions.Action
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		if a.AutomationID != "renewal" || a.Flow == nil || a.Flow.PersonID != "c9" || a.RecordID != "A1" {
			t.Errorf("timer action %s", m.Value)
		}
	}
	if n := testenv.Metric(t, r.reg, "whenthen_pipeline_retries_total", "stage", pipeline.StagePublish); n != 0 {
		t.Errorf("whenthen_pipeline_retries_total{stage=publish} = %v, want 0: no batch retried", n)
	}
	if runs, err := r.pipeline.FireDue(ctx, clock(), 100); err != nil || runs != 0 {
		t.Errorf("FireDue after the timer was acknowledged = %d, %v; want 0 runs", runs, err)
	}

	srv.Stop()
	if _, err := r.pipeline.FireDue(ctx, clock(), 100); err == nil {
		t.Error("FireDue with Redis down succeeded")
	}
	if n := timerErrors(pipeline.StageFire); n != 1 {
		t.Errorf("whenthen_timer_loop_errors_total{stage=fire} = %v, want 1", n)
	}
	if n := timerErrors(pipeline.StageCommit); n != 0 {
		t.Errorf("whenthen_timer_loop_errors_total{stage=commit} = %v, want 0", n)
	}
}

// assertActionsOnce checks that the actions topic holds exactly the
// big-deal actions of events 0 to n-1, each once.
func assertActionsOnce(t *testing.T, c *testenv.Cluster, n int) {
	t.Helper()
	got := map[string]int{}
	for _, m := range c.ReadTopic(t, actions.DefaultActionsTopic) {
		got[testenv.Header(m, actions.HeaderActionID)]++
	}
	for i := range n {
		id := bigDealActionID(i)
		if got[id] != 1 {
			t.Errorf("action of evt-%d produced %d times, want once", i, got[id])
		}
		delete(got, id)
	}
	if len(got) > 0 {
		t.Errorf("unexpected actions: %v", slices.Collect(maps.Keys(got)))
	}
}
