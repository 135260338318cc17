package store_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestRedisKeys pins the keys and values Redis holds: running deployments
// have data under them, and a new version must read it.
func TestRedisKeys(t *testing.T) {
	testRedisKeys(t, false, []string{
		`timers = zset {acme}:t:account:renewal_date:a:1=1798761600000 (ttl none)`,
		`{acme}:a:x1 = p|tok|1793523630000 (ttl 168h0m0s)`,
		`{acme}:c:hot:r:1 = e1|1793610000000 (ttl 192h0m0s)`,
		`{acme}:k:account = set a:1 (ttl none)`,
		`{acme}:r:account:a:1 = "\xb1\x80\xaa\xb2\xe5\xb2h\x03\x01\x01\x03a:1\x06\x01\x03SMB\v\x06\x80\xe6\xf3\xb5\r\x00" (ttl 2160h0m0s)`,
		`{acme}:t:account:renewal_date:a:1 = 1801353600000|1793523600000|1793523601000|s1 (ttl 2160h0m0s)`,
		`{acme}:w:opportunity:s:weekly = hash cursor= lease=tok|1793523630000 mark=1000 target=2000 (ttl none)`,
		`{~}:a:y1 = d (ttl 168h0m0s)`,
		`{~}:a:y2 = p|tok|1793523630000 (ttl 168h0m0s)`,
		`{~}:e:1:g:p2 = y2|0 (ttl none)`,
		`{~}:e:3:f:1:p1 = y1|1793527200000 (ttl 169h0m0s)`,
	})
}

// TestRedisClusterKeys pins the keys of the cluster layout: records,
// known records and timers in shards, the claims and walks as on a single
// Redis.
func TestRedisClusterKeys(t *testing.T) {
	testRedisKeys(t, true, []string{
		`{acme:s41}:k:account = set a:1 (ttl none)`,
		`{acme:s41}:r:account:a:1 = "\xb1\x80\xaa\xb2\xe5\xb2h\x03\x01\x01\x03a:1\x06\x01\x03SMB\v\x06\x80\xe6\xf3\xb5\r\x00" (ttl 2160h0m0s)`,
		`{acme}:a:x1 = p|tok|1793523630000 (ttl 168h0m0s)`,
		`{acme}:c:hot:r:1 = e1|1793610000000 (ttl 192h0m0s)`,
		`{acme}:w:opportunity:s:weekly = hash cursor= lease=tok|1793523630000 mark=1000 target=2000 (ttl none)`,
		`{timers:1}:q = zset {timers:1}:t:acme:account:renewal_date:a:1=1798761600000 (ttl none)`,
		`{timers:1}:t:acme:account:renewal_date:a:1 = 1801353600000|1793523600000|1793523601000|s1 (ttl 2160h0m0s)`,
		`{~}:a:y1 = d (ttl 168h0m0s)`,
		`{~}:a:y2 = p|tok|1793523630000 (ttl 168h0m0s)`,
		`{~}:e:1:g:p2 = y2|0 (ttl none)`,
		`{~}:e:3:f:1:p1 = y1|1793527200000 (ttl 169h0m0s)`,
	})
}

func testRedisKeys(t *testing.T, cluster bool, want []string) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	schema := crm.DefaultSchema()
	s, err := store.NewRedis(rdb, prefix, store.Options{Schema: schema, ClusterLayout: cluster})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC) // 1793523600000
	claims := []*store.Claim{
		{Workspace: "acme", AutomationID: "hot", EventID: "e1", RecordID: "r:1", CooldownUntil: t0.Add(24 * time.Hour),
			Targets: []store.Target{{ActionID: "x1"}}},
		{Workspace: "", AutomationID: "welcome", EventID: "e1", RecordID: "c1",
			Targets: []store.Target{{ActionID: "y1", Flow: "f:1", Person: "p1", EnrollUntil: t0.Add(time.Hour)}, {ActionID: "y2", Flow: "g", Person: "p2"}}},
	}
	if err := s.Claim(ctx, claims, "tok", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Confirm(ctx, []store.ActionRef{{Workspace: "", ActionID: "y1"}}, "tok"); err != nil {
		t.Fatal(err)
	}
	acc, _ := schema.Object(crm.ObjAccount)
	rec, err := acc.NewRecord(map[string]any{"id": "a:1", "tier": "SMB", "renewal_date": "2027-01-31T00:00:00Z"}, crm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) // 1798761600000
	w := store.Writes{
		Saves: []store.Save{{Ref: store.RecordRef{Workspace: "acme", Object: "account", ID: "a:1"}, Snapshot: store.Snapshot{Record: rec, Time: t0}}},
		Arms: []store.Arm{{TimerRef: store.TimerRef{Workspace: "acme", Object: "account", Field: "renewal_date", RecordID: "a:1"},
			Date: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), Fired: t0, Next: due, Seen: t0.Add(time.Second), Sig: "s1"}},
	}
	walk := store.WalkRef{Workspace: "acme", Object: "opportunity", Name: "s:weekly"}
	if _, err := s.WalkMarks(ctx, []store.WalkRef{walk}, []string{"1000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartWalks(ctx, []store.WalkStart{{Ref: walk, Target: "2000", Ordered: true}}, "tok", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, &w, t0); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var got []string
	for _, k := range keys {
		var v string
		switch typ, _ := rdb.Type(ctx, k).Result(); typ {
		case "zset":
			zs, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			v = "zset"
			for _, z := range zs {
				v += fmt.Sprintf(" %s=%d", strings.TrimPrefix(z.Member.(string), prefix), int64(z.Score))
			}
		case "set":
			m, _ := rdb.SMembers(ctx, k).Result()
			sort.Strings(m)
			v = "set " + strings.Join(m, ",")
		case "hash":
			h, _ := rdb.HGetAll(ctx, k).Result()
			fs := make([]string, 0, len(h))
			for f, x := range h {
				fs = append(fs, f+"="+x)
			}
			sort.Strings(fs)
			v = "hash " + strings.Join(fs, " ")
		default:
			if v, err = rdb.Get(ctx, k).Result(); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(v, "\xb1") { // a binary snapshot
				v = fmt.Sprintf("%q", v)
			}
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		ttls := "none"
		if ttl >= 0 {
			ttls = ttl.Round(time.Hour).String()
		}
		got = append(got, fmt.Sprintf("%s = %s (ttl %s)", strings.TrimPrefix(k, prefix), strings.TrimSpace(v), ttls))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("keys:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestRedisScriptsLost flushes Redis's script cache before each step, as a
// restart or a failover to a replica that never loaded them does: every
// step loads the scripts again (on every master of a cluster) and
// succeeds, with the results it would have had.
func TestRedisScriptsLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (redis.UniversalClient, string)
	}{
		// A server of its own: the shared one serves other packages' tests
		// at the same time, whose scripts a flush would take away.
		{"single", func(t *testing.T) (redis.UniversalClient, string) {
			c := redis.NewClient(&redis.Options{Addr: testenv.StartRedis(t).Addr()})
			t.Cleanup(func() { c.Close() })
			return c, "wt:"
		}},
		// The shared cluster is this test binary's own, and its tests run
		// one at a time.
		{"cluster", func(t *testing.T) (redis.UniversalClient, string) { return testenv.RedisClusterClient(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rdb, prefix := tc.open(t)
			flush := func() {
				t.Helper()
				var err error
				if c, ok := rdb.(*redis.ClusterClient); ok {
					err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.ScriptFlush(ctx).Err() })
				} else {
					err = rdb.ScriptFlush(ctx).Err()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			s, err := store.NewRedis(rdb, prefix, store.Options{Schema: crm.DefaultSchema()})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
			flush()
			c := &store.Claim{Workspace: "acme", AutomationID: "a", EventID: "e1", Targets: []store.Target{{ActionID: "x1"}}}
			if err := s.Claim(ctx, []*store.Claim{c}, "tok", t0); err != nil || c.Targets[0].Status != store.StatusNew {
				t.Fatalf("claim: %v %v", c.Targets[0].Status, err)
			}
			flush()
			if err := s.Confirm(ctx, []store.ActionRef{{Workspace: "acme", ActionID: "x1"}}, "tok"); err != nil {
				t.Fatal(err)
			}
			// Timers in several shards.
			var w store.Writes
			for _, id := range []string{"r1", "r2", "r3", "r4", "r5", "r6"} {
				w.Arms = append(w.Arms, store.Arm{TimerRef: store.TimerRef{Workspace: "acme", Object: "account", Field: "renewal_date", RecordID: id},
					Date: t0.Add(48 * time.Hour), Fired: t0, Next: t0.Add(time.Hour)})
			}
			flush()
			if err := s.Apply(ctx, &w, t0); err != nil {
				t.Fatal(err)
			}
			flush()
			due, err := s.ClaimDue(ctx, t0.Add(time.Hour), t0.Add(time.Hour), 10)
			if err != nil || len(due) != 6 {
				t.Fatalf("claim due: %d timers, %v", len(due), err)
			}
			for i := range due {
				due[i].NewFired = t0.Add(time.Hour)
			}
			flush()
			if err := s.AckTimers(ctx, due); err != nil {
				t.Fatal(err)
			}
			if left, err := s.PeekDue(ctx, t0.Add(100*time.Hour)); err != nil || len(left) != 0 {
				t.Fatalf("after the ack: %d timers due, %v", len(left), err)
			}
			flush()
			ws, err := s.StartWalks(ctx, []store.WalkStart{{Ref: store.WalkRef{Workspace: "acme", Object: "account", Name: "s:x"}, Target: "1", Ordered: true}}, "tok", t0)
			if err != nil || ws[0].Status != store.WalkOurs {
				t.Fatalf("start walk: %v %v", ws, err)
			}
			c = &store.Claim{Workspace: "acme", AutomationID: "a", EventID: "e1", Targets: []store.Target{{ActionID: "x1"}}}
			if err := s.Claim(ctx, []*store.Claim{c}, "tok2", t0); err != nil || c.Targets[0].Status != store.StatusDone {
				t.Fatalf("claim again: %v %v", c.Targets[0].Status, err)
			}
		})
	}
}

// TestRedisKnownChunks: SSCAN gives a small set whole (an intset here, a
// listpack from Redis 7.2) whatever its COUNT; the ids past the budget come
// in the next chunks through the cursor, none lost, none over budget.
func TestRedisKnownChunks(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	schema := crm.DefaultSchema()
	s, err := store.NewRedis(rdb, prefix, store.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := schema.Object(crm.ObjAccount)
	var w store.Writes
	for i := range 50 {
		id := fmt.Sprint(i + 1) // integer ids: the set is an intset
		rec, err := acc.NewRecord(map[string]any{"id": id}, crm.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		w.Saves = append(w.Saves, store.Save{Ref: store.RecordRef{Workspace: "acme", Object: "account", ID: id}, Snapshot: store.Snapshot{Record: rec, Time: time.Now()}})
	}
	if err := s.Apply(ctx, &w, time.Now()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	carried := false
	for cursor, calls := "", 0; ; calls++ {
		ids, next, err := s.KnownRecords(ctx, "acme", "account", cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 7 || calls > 20 {
			t.Fatalf("call %d: %d ids for a budget of 7", calls, len(ids))
		}
		for _, id := range ids {
			seen[id] = true
		}
		carried = carried || strings.Contains(next, "|")
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 50 || !carried {
		t.Fatalf("%d ids walked, carried in the cursor: %v", len(seen), carried)
	}
	for _, bad := range []string{"x", "end", "3|", "3|[]", "3|{", "-1", "end|[1]"} {
		if _, _, err := s.KnownRecords(ctx, "acme", "account", bad, 7); err == nil {
			t.Errorf("cursor %q: no error", bad)
		}
	}
}

// TestRedisArmCalls: a batch's timers are armed in one script call per
// timer queue of at most 200 timers, every one of them armed, over
// workspaces, in both layouts.
func TestRedisArmCalls(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("cluster layout %v", cluster), func(t *testing.T) {
			ctx := context.Background()
			srv := testenv.StartRedis(t)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			defer rdb.Close()
			s, err := store.NewRedis(rdb, "wt:", store.Options{Schema: crm.DefaultSchema(), ClusterLayout: cluster})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
			var w store.Writes
			for i := range 450 {
				w.Arms = append(w.Arms, store.Arm{TimerRef: store.TimerRef{Workspace: fmt.Sprintf("ws%d", i%150), Object: "account", Field: "renewal_date", RecordID: fmt.Sprintf("a%d", i)},
					Date: t0.Add(24 * time.Hour), Fired: t0, Next: t0.Add(time.Hour), Seen: t0, Sig: "s"})
			}
			// The first call loads the scripts (NOSCRIPT, then again).
			if err := s.Apply(ctx, &store.Writes{Arms: w.Arms[:1]}, t0); err != nil {
				t.Fatal(err)
			}
			if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.Apply(ctx, &w, t0); err != nil {
				t.Fatal(err)
			}
			due, err := s.PeekDue(ctx, t0.Add(2*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			stats, err := rdb.Info(ctx, "commandstats").Result()
			if err != nil {
				t.Fatal(err)
			}
			calls := -1
			for _, l := range strings.Split(stats, "\n") {
				if rest, ok := strings.CutPrefix(l, "cmdstat_evalsha:calls="); ok {
					fmt.Sscanf(rest, "%d", &calls)
				}
			}
			want := 3 // 450 timers, 200 a call
			if cluster {
				want = 64 // 450 timers over the 64 queues, under 200 each
			}
			if len(due) != 450 || calls != want {
				t.Fatalf("%d timers due, %d arm calls, want 450 and %d", len(due), calls, want)
			}
		})
	}
}
