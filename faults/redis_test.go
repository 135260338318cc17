//go:build linux

package faults

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// readiness samples an instance's /readyz: 200 → 1, anything else → 0.
func readiness(in *instance) *sampler {
	return sampleEvery(100*time.Millisecond, func() int64 {
		if code, _ := in.readyz(); code == 200 {
			return 1
		}
		return 0
	})
}

// TestRedisUnreachable cuts the connection to Redis for a while (short:
// 5s, long: 60s) while events keep arriving: /readyz must go red and come
// back, the process's memory must stay bounded while it is blocked, the
// backlog must drain by itself, and nothing may be lost.
func TestRedisUnreachable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	outage := pick(5*time.Second, 60*time.Second)
	w := newWorld(t, worldOptions{partitions: 4})
	// 2 KB events: the backlog built during the outage (short ~5 MB, long
	// ~60 MB) is large next to what the consumer may hold.
	wl := workload{records: pick(1000, 6000), rate: pick(400, 500), pad: 2048, marker: "REDISMARK"}
	in := w.start("instance", instanceOpts{})
	ready := readiness(in)
	rss := sampleEvery(100*time.Millisecond, in.rss)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := w.produce(ctx, wl.messages(), wl.rate)
	testenv.WaitFor(t, 30*time.Second, "some actions", func() bool { return w.kafka.Count(actions.DefaultActionsTopic) > 200 })
	time.Sleep(time.Second)

	cutAt := time.Now()
	w.rproxy.Cut()
	time.Sleep(outage)
	backlog := int64(prod.count()) - w.kafkaCommitted()
	restoredAt := time.Now()
	if err := w.rproxy.Restore(); err != nil {
		t.Fatal(err)
	}
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, 3*time.Minute, "every event committed", w.allCommitted)
	drained := time.Since(restoredAt)
	time.Sleep(300 * time.Millisecond)
	readySamples, rssSamples := ready.finish(), rss.finish()
	if !in.term(20 * time.Second) {
		t.Error("the instance did not exit cleanly on SIGTERM")
	}

	red, wentRed := firstAfter(readySamples, cutAt, func(v int64) bool { return v == 0 })
	green, cameBack := firstAfter(readySamples, restoredAt, func(v int64) bool { return v == 1 })
	if !wentRed || red.After(restoredAt) {
		t.Error("/readyz did not go red while Redis was unreachable")
	}
	if !cameBack {
		t.Error("/readyz did not come back after Redis did")
	}
	base := maxIn(rssSamples, start, cutAt)
	blocked := maxIn(rssSamples, cutAt, restoredAt)
	if blocked > base+128<<20 {
		t.Errorf("RSS while blocked %s, %s before: not bounded", mib(blocked), mib(base))
	}
	v := w.verify(t)
	v.check(t)
	report(t, start, "outage", outage, "events", v.inputs, "expected_actions", v.expected, "actions_lost", len(v.lost),
		"duplicate_action_ids", v.dupCount(), "duplicates_by_automation", v.dupSummary(),
		"backlog_at_restore", backlog, "readyz_red_after", red.Sub(cutAt).Round(100*time.Millisecond),
		"readyz_green_after", green.Sub(restoredAt).Round(100*time.Millisecond), "drained_in", drained.Round(100*time.Millisecond),
		"rss_before", mib(base), "rss_blocked_max", mib(blocked), "commit_violations", len(v.violations))
}

// TestRedisRepliesLost puts a proxy between the service and Redis that
// forwards every command but resets the connection instead of passing
// the reply on: the command ran, its caller never hears. First 10% of the
// replies are lost for the whole stream (go-redis retries the command on
// a new connection), then a claim's reply is cut and Redis stays unreachable
// for 5s (longer than go-redis's own retries: the pipeline retries
// Process). Claims carry the batch's
// token, also across the pipeline's retries of Process, so a retried
// claim recognises itself: nothing may be lost, no action may be produced
// twice, and the stream must not stall for a claim lease (30s).
func TestRedisRepliesLost(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, worldOptions{partitions: 4})
	wl := workload{records: pick(600, 5000), rate: 400, marker: "LOSSMARK"}
	in := w.start("instance", instanceOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.rproxy.SetReplyLoss(0.1)
	msgs := wl.messages()
	half := len(msgs) / 2
	prod := w.produce(ctx, msgs[:half], wl.rate)
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, pick(60*time.Second, 5*time.Minute), "the first half committed", w.allCommitted)
	_, randomLost, _ := w.rproxy.Stats()

	// A claim applied, then Redis unreachable for 5s before its reply
	// arrives: longer than go-redis's own retries, so the pipeline
	// retries Process.
	prod = w.produce(ctx, msgs[half:], wl.rate)
	testenv.WaitFor(t, 30*time.Second, "the second half flowing", func() bool { return prod.count() > 200 })
	w.rproxy.SetReplyLoss(0)
	fired := w.rproxy.CutOnReply(func(b []byte) bool { return bytes.Contains(b, []byte("$3\r\nnew\r\n")) })
	select {
	case <-fired:
	case <-time.After(30 * time.Second):
		t.Fatal("no claim reply to cut")
	}
	time.Sleep(5 * time.Second)
	if err := w.rproxy.Restore(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	// Caught up: everything produced by now committed (the stream goes on).
	target := w.kafka.Count(inputTopic)
	testenv.WaitFor(t, 2*time.Minute, "the backlog of the outage committed", func() bool { return w.kafkaCommitted() >= target })
	recovered := time.Since(healed)
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, 2*time.Minute, "every event committed", w.allCommitted)
	_, allLost, _ := w.rproxy.Stats()
	retries := in.metric(`whenthen_pipeline_retries_total{stage="process"}`) + in.metric(`whenthen_pipeline_retries_total{stage="commit"}`)
	if !in.term(20 * time.Second) {
		t.Error("the instance did not exit cleanly on SIGTERM")
	}
	if recovered > 20*time.Second {
		t.Errorf("the stream took %v to catch up after the replies came back: a retried claim waited out a lease", recovered)
	}
	v := w.verify(t)
	v.check(t)
	if v.dupCount() > 0 {
		t.Errorf("%d action ids produced twice after lost Redis replies (%s)", v.dupCount(), v.dupSummary())
	}
	report(t, start, "replies_lost_random_first_half", randomLost, "replies_lost_all", allLost, "claim_reply_cut_then_unreachable", "5s", "events", v.inputs,
		"expected_actions", v.expected, "actions_lost", len(v.lost), "duplicate_action_ids", v.dupCount(),
		"pipeline_retries", retries, "caught_up_after_burst", recovered.Round(100*time.Millisecond),
		"commit_violations", len(v.violations))
}

// TestRedisRestartedEmpty restarts redis-server without persistence in
// the middle of the stream: the scripts are gone (NOSCRIPT) and so is the
// dedup state. Nothing may be lost; duplicates are possible (the dedup
// state of events redelivered after the restart is gone) and counted.
func TestRedisRestartedEmpty(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, worldOptions{partitions: 4})
	wl := workload{records: pick(1000, 6000), rate: pick(500, 500), marker: "EMPTYMARK"}
	in := w.start("instance", instanceOpts{})
	ready := readiness(in)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := w.produce(ctx, wl.messages(), wl.rate)
	restarts := pick(1, 5)
	for i := range restarts {
		testenv.WaitFor(t, 30*time.Second, "progress", func() bool {
			return w.kafka.Count(actions.DefaultActionsTopic) > int64((i+1)*wl.total()/(restarts+2))
		})
		w.redis.Restart()
	}
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, 2*time.Minute, "every event committed", w.allCommitted)
	samples := ready.finish()
	red := 0
	for _, s := range samples {
		if s.v == 0 {
			red++
		}
	}
	if !in.term(20 * time.Second) {
		t.Error("the instance did not exit cleanly on SIGTERM")
	}
	if code, _ := in.readyz(); code == 200 {
		t.Error("still answering after SIGTERM")
	}
	v := w.verify(t)
	v.check(t)
	report(t, start, "restarts", restarts, "events", v.inputs, "expected_actions", v.expected, "actions_lost", len(v.lost),
		"duplicate_action_ids", v.dupCount(), "duplicates_by_automation", v.dupSummary(),
		"readyz_red_samples", fmt.Sprintf("%d/%d", red, len(samples)), "commit_violations", len(v.violations))
}
