//go:build linux

package faults

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestKafkaUnreachable cuts every connection to the broker (through the
// proxy it advertises) for a while (short: 5s, long: 60s) in the middle
// of the stream, then restores it: readiness goes red and back, nothing
// is lost, and no offset is committed past a message whose outputs were
// not produced.
func TestKafkaUnreachable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	outage := pick(5*time.Second, 60*time.Second)
	w := newWorld(t, worldOptions{partitions: 4})
	wl := workload{records: pick(800, 5000), rate: pick(400, 400), marker: "KAFKAMARK"}
	in := w.start("instance", instanceOpts{})
	ready := readiness(in)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := w.produce(ctx, wl.messages(), wl.rate)
	testenv.WaitFor(t, 30*time.Second, "some actions", func() bool { return w.kafka.Count(actions.DefaultActionsTopic) > 300 })

	cutAt := time.Now()
	w.kproxy.Cut()
	time.Sleep(outage)
	restoredAt := time.Now()
	if err := w.kproxy.Restore(); err != nil {
		t.Fatal(err)
	}
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, 3*time.Minute, "every event committed", w.allCommitted)
	drained := time.Since(restoredAt)
	time.Sleep(300 * time.Millisecond)
	samples := ready.finish()
	if !in.term(20 * time.Second) {
		t.Error("the instance did not exit cleanly on SIGTERM")
	}
	red, wentRed := firstAfter(samples, cutAt, func(v int64) bool { return v == 0 })
	green, cameBack := firstAfter(samples, restoredAt, func(v int64) bool { return v == 1 })
	if !wentRed || red.After(restoredAt) {
		t.Error("/readyz did not go red while Kafka was unreachable")
	}
	if !cameBack {
		t.Error("/readyz did not come back after Kafka did")
	}
	v := w.verify(t)
	v.check(t)
	report(t, start, "outage", outage, "events", v.inputs, "expected_actions", v.expected, "actions_lost", len(v.lost),
		"duplicate_action_ids", v.dupCount(), "duplicates_by_automation", v.dupSummary(),
		"readyz_red_after", red.Sub(cutAt).Round(100*time.Millisecond), "readyz_green_after", green.Sub(restoredAt).Round(100*time.Millisecond),
		"drained_in", drained.Round(100*time.Millisecond), "commit_violations", len(v.violations), "backward_commits", v.backwards)
}

// TestKafkaSlowBroker adds latency to every chunk to and from the broker
// (short: 100ms, long: 150ms each way; kafka-go's fetch deadline, the
// consumer's MaxWait of 1s, must hold a version request and a fetch, so
// a round trip over about 350ms stalls the consumer): slower, nothing lost, commits
// still behind the outputs.
func TestKafkaSlowBroker(t *testing.T) {
	t.Parallel()
	start := time.Now()
	latency := pick(100*time.Millisecond, 150*time.Millisecond)
	w := newWorld(t, worldOptions{partitions: 4})
	wl := workload{records: pick(250, 2000), rate: 0, marker: "SLOWMARK"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := w.produce(ctx, wl.messages(), 0)
	prod.wait(t, time.Minute)
	w.kproxy.SetLatency(latency)
	began := time.Now()
	in := w.start("instance", instanceOpts{})
	testenv.WaitFor(t, pick(2*time.Minute, 10*time.Minute), "every event committed", w.allCommitted)
	took := time.Since(began)
	w.kproxy.SetLatency(0)
	if !in.term(20 * time.Second) {
		t.Error("the instance did not exit cleanly on SIGTERM")
	}
	v := w.verify(t)
	v.check(t)
	report(t, start, "latency_each_way", latency, "events", v.inputs, "expected_actions", v.expected, "actions_lost", len(v.lost),
		"duplicate_action_ids", v.dupCount(), "backlog_drained_in", took.Round(100*time.Millisecond),
		"events_per_second", int(float64(v.inputs)/took.Seconds()), "commit_violations", len(v.violations))
}

// TestKafkaWritesTimeOut makes output writes "maybe written": the broker
// applies a produce to the actions topic and answers REQUEST_TIMED_OUT
// (short: 5 times, long: 30), and answers one produce only after the
// writer's timeout (10s), having applied it. The producer retries with
// the same action ids: duplicates in the topic are expected from exactly
// these writes, nothing is lost, and no offset is committed before the
// retried write succeeded.
func TestKafkaWritesTimeOut(t *testing.T) {
	t.Parallel()
	start := time.Now()
	timeouts := pick(5, 30)
	var delayed atomic.Int64      // action records in delayed produce requests
	var timedOutRecs atomic.Int64 // action records in requests answered REQUEST_TIMED_OUT
	var delayArmed atomic.Bool
	var faulted atomic.Int64
	w := newWorld(t, worldOptions{partitions: 4, controls: func(c *testenv.Cluster) {
		// One produce of actions answered after the writer gave up: applied,
		// the answer too late.
		c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
			n := actionRecords(r)
			if n == 0 || !delayArmed.CompareAndSwap(true, false) {
				return nil, nil, false
			}
			delayed.Add(n)
			c.SleepControl(func() { time.Sleep(12 * time.Second) })
			return nil, nil, false // then handled as usual
		})
	}})
	fh := w.kafka.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: actions.DefaultActionsTopic,
		Err: kerr.RequestTimedOut, Count: timeouts, When: func(r kmsg.Request) bool {
			if faulted.Add(1) <= int64(timeouts) {
				timedOutRecs.Add(actionRecords(r))
			}
			return true
		}})
	defer fh.Remove()
	wl := workload{records: pick(600, 4000), rate: 300, marker: "TIMEOUTMARK"}
	in := w.start("instance", instanceOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := w.produce(ctx, wl.messages(), wl.rate)
	testenv.WaitFor(t, 60*time.Second, "the timed-out writes", func() bool { return fh.Hits() >= timeouts })
	delayArmed.Store(true)
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, 2*time.Minute, "every event committed", w.allCommitted)
	retries := in.metric(`whenthen_produce_retries_total{topic="automations.actions"}`)
	if !in.term(20 * time.Second) {
		t.Error("the instance did not exit cleanly on SIGTERM")
	}
	v := w.verify(t)
	v.check(t)
	maybe := timedOutRecs.Load() + delayed.Load()
	if int64(v.dupCount()) > maybe {
		t.Errorf("%d duplicated action ids, more than the %d action records of the maybe-written produces", v.dupCount(), maybe)
	}
	report(t, start, "timed_out_produces", fh.Hits(), "late_answered_produces", boolInt(delayed.Load() > 0),
		"records_in_maybe_written_produces", maybe, "events", v.inputs, "expected_actions", v.expected,
		"actions_lost", len(v.lost), "duplicate_action_ids", v.dupCount(), "duplicates_by_automation", v.dupSummary(),
		"producer_retries", retries, "commit_violations", len(v.violations))
}

// actionRecords counts the records a produce request carries for the
// actions topic.
func actionRecords(r kmsg.Request) int64 {
	pr, ok := r.(*kmsg.ProduceRequest)
	if !ok {
		return 0
	}
	var n int64
	for _, tp := range pr.Topics {
		if tp.Topic == actions.DefaultActionsTopic {
			for _, p := range tp.Partitions {
				n += countRecords(p.Records)
			}
		}
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
