package pipeline_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/pipeline"
)

const closedWonRules = `
automations:
  - id: won
    when: {record: opportunity}
    if: record.stage == "Closed Won" && record.amount > 1000
    then:
      brief: {kind: opportunity, recipients: ["user:u-1"]}
`

// TestStateCacheAcrossInstances: a partition moves from instance A to B
// and back mid-stream; A's cache must not serve the state it held before
// B changed the record, or on_enter and partial merges go wrong.
func TestStateCacheAcrossInstances(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := testenv.Kafka(t, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic)
	if err := c.CreateTopic(inputTopic, 1, nil); err != nil {
		t.Fatal(err)
	}
	withCache := func(o *pipeline.Options) { o.StateCache = engine.NewCacheBudget(1 << 20) }
	a := newRigOn(t, c, rigOptions{redisURL: srv.URL(), rules: closedWonRules, pipeline: withCache})
	b := newRigOn(t, c, rigOptions{redisURL: srv.URL(), rules: closedWonRules, pipeline: withCache})
	msg := func(off int64, typ, record string, partial bool) kafka.Message {
		return kafka.Message{Topic: inputTopic, Partition: 0, Offset: off, Key: []byte("O1"), Value: []byte(fmt.Sprintf(
			`{"id":"e%d","type":%q,"time":"2026-11-01T09:00:%02dZ","object":"opportunity","partial":%v,"record":%s}`, off, typ, off, partial, record))}
	}
	handle := func(r *rig, msgs ...kafka.Message) {
		t.Helper()
		if err := r.pipeline.Handle(t.Context(), msgs); err != nil {
			t.Fatal(err)
		}
	}
	// A: the deal opens and grows; A's cache holds it.
	handle(a, msg(0, "record.created", `{"id":"O1","stage":"Prospecting","amount":5000}`, false),
		msg(1, "record.updated", `{"id":"O1","amount":6000}`, true))
	handle(a, msg(2, "record.updated", `{"id":"O1","amount":6500}`, true))
	// The partition moves to B, which closes the deal: it enters and runs.
	handle(b, msg(3, "record.updated", `{"id":"O1","stage":"Closed Won"}`, true))
	// Back to A: the amount drops and rises again. On B's state the deal
	// leaves and enters the condition again (a second run); on the state A
	// held before, it never was Closed Won.
	handle(a, msg(4, "record.updated", `{"id":"O1","amount":500}`, true))
	handle(a, msg(5, "record.updated", `{"id":"O1","amount":8000}`, true))

	var events []string
	for _, m := range c.ReadTopic(t, actions.DefaultActionsTopic) {
		var act actions.Action
		if err := json.Unmarshal(m.Value, &act); err != nil {
			t.Fatal(err)
		}
		events = append(events, act.EventID)
	}
	if fmt.Sprint(events) != "[e3 e5]" {
		t.Fatalf("actions on %v, want [e3 e5]", events)
	}
	hits := counter(t, a.reg, "whenthen_state_cache_hits_total")
	if hits < 1 {
		t.Fatalf("%v cache hits on A: its second batch should read O1 from the cache", hits)
	}
}

// counter is the value of a counter without labels.
func counter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
