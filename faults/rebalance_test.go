//go:build linux

package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestRebalance has instances join and leave one group while events
// stream in: A alone, then B and C join, A leaves, D joins, B leaves (in
// the long form, more rounds of joins and leaves). Every commit the
// broker receives is checked against the outputs produced before it (no
// commit past an unprocessed message); commits that move an offset
// backwards are counted (kafka-go can send an old generation's commit,
// #1398); nothing may be lost, and the engine's dedup must turn messages
// handled twice across the rebalance into skipped runs, not duplicates.
func TestRebalance(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, worldOptions{partitions: 6})
	wl := workload{records: pick(1500, 12000), rate: pick(300, 400), marker: "REBALMARK"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := w.produce(ctx, wl.messages(), wl.rate)
	live := map[string]*instance{}
	progress := func(what string) {
		n := w.kafka.Count(actions.DefaultActionsTopic)
		testenv.WaitFor(t, 60*time.Second, what, func() bool { return w.kafka.Count(actions.DefaultActionsTopic) > n+50 })
	}
	join := func(name string) {
		live[name] = w.start(name, instanceOpts{batchSize: 50})
		progress(name + " joined and the stream moving")
	}
	leave := func(name string) {
		if !live[name].term(20 * time.Second) {
			t.Errorf("%s did not leave cleanly", name)
		}
		delete(live, name)
		progress(name + " left and the stream moving")
	}
	rounds := pick(1, 4)
	join("A")
	join("B")
	join("C")
	for r := range rounds {
		leave([]string{"A", "B", "C"}[r%3])
		name := fmt.Sprintf("D%d", r)
		join(name)
		leave(name)
		join([]string{"A", "B", "C"}[r%3])
	}
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, 2*time.Minute, "every event committed", w.allCommitted)
	gi := w.kafka.GroupInfo(group)
	members := len(gi.Members)
	for name, in := range live {
		if !in.term(20 * time.Second) {
			t.Errorf("%s did not exit cleanly", name)
		}
	}
	v := w.verify(t)
	v.check(t)
	if v.dupCount() > 0 {
		t.Errorf("%d action ids produced twice across rebalances (%s)", v.dupCount(), v.dupSummary())
	}
	_, commits := w.ledger.snapshot()
	report(t, start, "joins_and_leaves", 3+4*rounds, "members_at_end", members, "events", v.inputs, "expected_actions", v.expected,
		"actions_lost", len(v.lost), "duplicate_action_ids", v.dupCount(), "commits_checked", len(commits),
		"commit_violations", len(v.violations), "backward_commits", v.backwards)
}
