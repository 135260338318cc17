package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/engine/store/storetest"
	"github.com/whenthen/whenthen/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestRedis(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) storetest.Store {
		rdb, prefix := testenv.Redis(t)
		s, err := store.NewRedis(rdb, prefix, opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestRedisClusterLayout runs the suite on the cluster layout of keys
// (record and timer shards) on a single Redis.
func TestRedisClusterLayout(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) storetest.Store {
		rdb, prefix := testenv.Redis(t)
		opts.ClusterLayout = true
		s, err := store.NewRedis(rdb, prefix, opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestRedisCluster runs the suite on a real Redis Cluster (three masters,
// three replicas), where the cluster layout is chosen by the client.
func TestRedisCluster(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) storetest.Store {
		rdb, prefix := testenv.RedisClusterClient(t)
		s, err := store.NewRedis(rdb, prefix, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Cluster() {
			t.Fatal("the store keeps the single-Redis layout on a cluster client")
		}
		return s
	})
}

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) storetest.Store {
		s, err := store.NewMemory(opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// clusterACL is the ACL docs/operations.md gives whenthen's user on a
// Redis Cluster: the single-Redis one, CLUSTER SLOTS (the client's slot
// map; without it nothing works) and ASKING (to follow an ASK during a
// slot migration, which this test does not do).
const clusterACL = "+get +set +del +exists +zadd +zrem +zrangebyscore +zscore +sadd +srem +sscan +hget +hset +hsetnx +hdel +evalsha +script|load +ping +hello" +
	" +cluster|slots +asking"

// TestRedisClusterACL runs the suite on a Redis Cluster as a user with
// only the documented commands.
func TestRedisClusterACL(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) storetest.Store {
		admin, prefix := testenv.RedisClusterClient(t)
		ctx := context.Background()
		user := "wt-acl-" + strings.NewReplacer(":", "-", "{", "-", "}", "-").Replace(strings.TrimSuffix(prefix, ":"))
		args := []any{"acl", "setuser", user, "reset", "on", ">pw", "~" + prefix + "*", "resetchannels", "-@all"}
		for _, c := range strings.Fields(clusterACL) {
			args = append(args, c)
		}
		if err := admin.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.Do(ctx, args...).Err() }); err != nil {
			t.Fatal(err)
		}
		o := *admin.Options()
		o.Username, o.Password = user, "pw"
		rdb := redis.NewClusterClient(&o)
		t.Cleanup(func() { rdb.Close() })
		s, err := store.NewRedis(rdb, prefix, opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestAsNewAs: a snapshot stored at the millisecond of its event is as
// new as the event, whatever the event's nanoseconds (every delivery of a
// stateful record waited its whole freshness wait when events carried
// more precision than the stored millisecond).
func TestAsNewAs(t *testing.T) {
	ev := time.Date(2026, 12, 6, 22, 4, 31, 638318381, time.UTC)
	stored := time.UnixMilli(ev.UnixMilli()).UTC() // as a store reads it back
	for _, c := range []struct {
		snap time.Time
		want bool
	}{
		{stored, true},
		{ev, true},
		{stored.Add(time.Millisecond), true},
		{stored.Add(-time.Millisecond), false},
		{ev.Add(-time.Second), false},
	} {
		if got := (&store.Snapshot{Time: c.snap}).AsNewAs(ev); got != c.want {
			t.Errorf("snapshot at %v, event at %v: as new %v, want %v", c.snap, ev, got, c.want)
		}
	}
}
