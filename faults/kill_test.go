//go:build linux

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestKillUnderLoad SIGKILLs the `whenthen run` child at random moments
// while events stream in, restarting it each time (short: 3 kills, long:
// 20). No input event's actions may be lost; duplicates (the same
// action_id twice in the topic) are counted and attributed to the step
// they come from: a claim the killed process left pending after producing
// its actions (the crash between Publish and Commit) is taken over by the
// next process, which produces the actions again.
func TestKillUnderLoad(t *testing.T) {
	t.Parallel()
	start := time.Now()
	kills := pick(3, 20)
	w := newWorld(t, worldOptions{partitions: 4})
	marker := fmt.Sprintf("KILLMARK%d", rand.Uint32())
	wl := workload{records: pick(1500, 15000), rate: pick(300, 350), marker: marker}
	// Network latency as between zones: batches spend longer between
	// their claim and their commit, where a kill leaves claims pending.
	w.kproxy.SetLatency(5 * time.Millisecond)
	w.rproxy.SetLatency(2 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := w.produce(ctx, wl.messages(), wl.rate)

	actionsProduced := func() int64 { p, _ := w.ledger.snapshot(); return p[actions.DefaultActionsTopic] }
	type killInfo struct {
		at      time.Duration
		actions int64 // action records in the topic when killed
		pending int   // claims it left pending
	}
	var ks []killInfo
	pendingAt := map[string][]int{} // action id → the kills that left it pending
	topicAtKill := map[int]int64{}  // kill → action records in the topic then
	var restarts []time.Duration    // restart until the first action produced
	for i := range kills {
		t0 := time.Now()
		before := actionsProduced()
		in := w.start(fmt.Sprintf("instance-%d", i), instanceOpts{})
		testenv.WaitFor(t, 60*time.Second, "the restarted instance producing actions", func() bool { return actionsProduced() > before })
		restarts = append(restarts, time.Since(t0))
		// A random moment, most often while the backlog of the restart gap drains.
		time.Sleep(time.Duration(rand.IntN(pick(800, 1500))) * time.Millisecond)
		in.kill()
		// A produce the process sent before it died may still be applied:
		// count once the topic stops growing.
		n := w.kafka.Count(actions.DefaultActionsTopic)
		for {
			time.Sleep(300 * time.Millisecond)
			m := w.kafka.Count(actions.DefaultActionsTopic)
			if m == n {
				break
			}
			n = m
		}
		pending := w.expireLeases(ctx)
		for _, id := range pending {
			pendingAt[id] = append(pendingAt[id], i)
		}
		topicAtKill[i] = n
		ks = append(ks, killInfo{at: time.Since(start).Round(time.Millisecond), actions: n, pending: len(pending)})
		t.Logf("kill %d at %v: %d actions in the topic, %d claims left pending, %d of %d events produced",
			i, ks[i].at, n, len(pending), prod.count(), wl.total())
	}
	final := w.start("final", instanceOpts{})
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, 2*time.Minute, "every event committed", w.allCommitted)
	if !final.term(20 * time.Second) {
		t.Error("the final instance did not exit cleanly on SIGTERM")
	}

	w.kproxy.SetLatency(0)
	w.rproxy.SetLatency(0)
	v := w.verify(t)
	v.check(t)
	// Attribute each duplicate: pending at a kill and produced before it
	// → the crash between Publish and Commit.
	steps := map[string]int{}
	for id := range v.dups {
		step := "unexplained"
		for _, k := range pendingAt[id] {
			if v.actionAt[id] < topicAtKill[k] {
				step = "publish→commit"
			}
		}
		steps[step]++
	}
	if steps["unexplained"] > 0 {
		t.Errorf("%d duplicated action ids not explained by a kill between Publish and Commit", steps["unexplained"])
	}
	if n, ex := w.logsContaining(marker); n > 0 {
		t.Errorf("%d log lines hold a record field value, e.g. %s", n, ex)
	}
	sort.Slice(restarts, func(i, j int) bool { return restarts[i] < restarts[j] })
	pendingTotal := 0
	for _, k := range ks {
		pendingTotal += k.pending
	}
	report(t, start, "kills", kills, "events", v.inputs, "expected_actions", v.expected,
		"actions_lost", len(v.lost), "action_records", v.actions, "distinct_actions", v.distinct,
		"duplicate_action_ids", v.dupCount(), "duplicates_by_automation", v.dupSummary(),
		"duplicates_by_step", fmt.Sprint(steps), "claims_pending_at_kills", pendingTotal,
		"commit_violations", len(v.violations), "backward_commits", v.backwards,
		"restart_to_first_action_max", restarts[len(restarts)-1].Round(time.Millisecond))
}
