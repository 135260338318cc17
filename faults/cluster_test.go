//go:build linux

package faults

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// clusterWorld is a world whose instance keeps its state on a Redis
// Cluster (three masters, three replicas) instead of the world's Redis,
// and the slot of the workspace's claims (hash tag {acme}).
type clusterWorld struct {
	*world
	rc   *testenv.RedisCluster
	in   *instance
	slot int
}

func newClusterWorld(t *testing.T) *clusterWorld {
	t.Helper()
	w := newWorld(t, worldOptions{partitions: 4})
	rc := testenv.StartRedisCluster(t)
	rdb := rc.Client()
	slot, err := rdb.ClusterKeySlot(context.Background(), "{"+workspace+"}").Result()
	if err != nil {
		t.Fatal(err)
	}
	in := w.start("instance", instanceOpts{redisURL: rc.URL()})
	return &clusterWorld{world: w, rc: rc, in: in, slot: int(slot)}
}

// stream produces the workload and calls fault once some actions are out;
// it returns when every event is committed, with the verdict, the time
// from the fault to then, and the pipeline's retries.
func (cw *clusterWorld) stream(t *testing.T, wl workload, fault func()) (*verdict, time.Duration, float64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := cw.produce(ctx, wl.messages(), wl.rate)
	testenv.WaitFor(t, 30*time.Second, "some actions", func() bool { return cw.kafka.Count(actions.DefaultActionsTopic) > 200 })
	faultAt := time.Now()
	fault()
	prod.wait(t, 5*time.Minute)
	testenv.WaitFor(t, 2*time.Minute, "every event committed", cw.allCommitted)
	settled := time.Since(faultAt)
	retries := cw.in.metric(`whenthen_pipeline_retries_total{stage="process"}`) + cw.in.metric(`whenthen_pipeline_retries_total{stage="commit"}`)
	if !cw.in.term(20 * time.Second) {
		t.Error("the instance did not exit cleanly on SIGTERM")
	}
	return cw.verify(t), settled, retries
}

// doneMarks counts the workspace's claims that are done (d), over every
// master: an action produced whose mark is not done had its mark lost
// (or not yet written), and would be produced again if its event were
// delivered again.
func (cw *clusterWorld) doneMarks(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	done := 0
	err := cw.rc.Client().ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		iter := n.Scan(ctx, 0, prefix+"{"+workspace+"}:a:*", 1000).Iterator()
		for iter.Next(ctx) {
			v, err := n.Get(ctx, iter.Val()).Result()
			if err != nil {
				return err
			}
			if v == "d" {
				mu.Lock()
				done++
				mu.Unlock()
			}
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// TestRedisClusterFailover fails over the master that holds the
// workspace's claims while events stream in. Killed: the master is
// SIGKILLed and its replica promoted (node timeout 1 s). Taken over: the
// replica takes over (CLUSTER FAILOVER TAKEOVER) while the master still
// answers, as after a partition; the old master acknowledges writes until
// it learns of the new epoch, and then drops them (replication is
// asynchronous). The pipeline retries what failed; nothing may be lost.
// Duplicates are counted, and the done marks missing at the end (actions
// a redelivery of their event would produce again).
func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		takeover bool
	}{
		{"killed", false},
		{"taken over", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			cw := newClusterWorld(t)
			wl := workload{records: pick(600, 5000), rate: 400, marker: "FAILOVERMARK"}
			var failover time.Duration
			v, settled, retries := cw.stream(t, wl, func() {
				victim := cw.rc.MasterOf(cw.slot)
				if tc.takeover {
					begun := time.Now()
					cw.rc.Takeover(victim)
					failover = time.Since(begun)
				} else {
					failover = cw.rc.KillMaster(victim)
				}
				if got := cw.rc.MasterOf(cw.slot); got == victim {
					t.Fatalf("slot %d still on the killed master %s", cw.slot, victim)
				}
			})
			v.check(t)
			report(t, start, "events", v.inputs, "expected_actions", v.expected, "actions_lost", len(v.lost),
				"duplicate_action_ids", v.dupCount(), "duplicates_by_automation", v.dupSummary(),
				"done_marks_missing", v.distinct-cw.doneMarks(t), "failover", failover.Round(100*time.Millisecond),
				"settled_after_kill", settled.Round(100*time.Millisecond), "pipeline_retries", retries, "commit_violations", len(v.violations))
		})
	}
}

// TestRedisClusterSlotMigration moves the slot of the workspace's claims
// to another master while events stream in, 10 keys every 50 ms: clients
// get ASK for the keys moved, and TRYAGAIN for a claim script whose keys
// are on both sides, until the slot is moved (MOVED). Nothing may be lost;
// duplicates are counted.
func TestRedisClusterSlotMigration(t *testing.T) {
	t.Parallel()
	start := time.Now()
	cw := newClusterWorld(t)
	wl := workload{records: pick(600, 5000), rate: 400, marker: "MIGRATEMARK"}
	var moved int
	var took time.Duration
	v, settled, retries := cw.stream(t, wl, func() {
		from := cw.rc.MasterOf(cw.slot)
		var to string
		for _, m := range cw.rc.Masters() {
			if m != from {
				to = m
				break
			}
		}
		begun := time.Now()
		moved = cw.rc.MigrateSlot(cw.slot, to, 10, 50*time.Millisecond)
		took = time.Since(begun)
		if got := cw.rc.MasterOf(cw.slot); got != to {
			t.Fatalf("slot %d on %s after the migration, want %s", cw.slot, got, to)
		}
	})
	v.check(t)
	if moved == 0 {
		t.Error("the migration moved no key")
	}
	// MIGRATE moves a key whole: unlike a failover to a replica that may
	// lag (whose missing marks are measured, docs/guarantees.md), a slot
	// migration loses no done mark.
	missing := v.distinct - cw.doneMarks(t)
	if missing != 0 {
		t.Errorf("%d done marks missing after the slot migration", missing)
	}
	report(t, start, "events", v.inputs, "expected_actions", v.expected, "actions_lost", len(v.lost),
		"duplicate_action_ids", v.dupCount(), "duplicates_by_automation", v.dupSummary(),
		"done_marks_missing", missing, "keys_moved", moved, "migration", took.Round(100*time.Millisecond), "settled_after_start", settled.Round(100*time.Millisecond),
		"pipeline_retries", retries, "commit_violations", len(v.violations))
}
