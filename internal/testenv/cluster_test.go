package testenv_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/testenv"
)

// TestRedisCluster forms a cluster, writes a key to every master, kills
// the master of one slot and moves another slot: the keys stay readable
// through the client.
func TestRedisCluster(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartRedisCluster(t)
	if n := len(c.Masters()); n != 3 {
		t.Fatalf("masters: %d, want 3", n)
	}
	rdb := c.Client()
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		if err := rdb.Set(ctx, keys[i], i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// WAIT on every master makes the kill below lose nothing: the
	// replicas have every key.
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		return n.Do(ctx, "wait", 1, 5000).Err()
	}); err != nil {
		t.Fatal(err)
	}
	victim := c.MasterOf(keySlot(t, rdb, keys[0]))
	if d := c.KillMaster(victim); d > 20*time.Second {
		t.Fatalf("failover took %s", d)
	}
	if got := len(c.Masters()); got != 3 {
		t.Fatalf("masters after the failover: %d, want 3", got)
	}
	check(t, rdb, keys)
	s := keySlot(t, rdb, keys[1])
	from := c.MasterOf(s)
	var to string
	for _, m := range c.Masters() {
		if m != from {
			to = m
		}
	}
	if moved := c.MigrateSlot(s, to, 10, 0); moved == 0 {
		t.Fatal("no key moved")
	}
	if got := c.MasterOf(s); got != to {
		t.Fatalf("slot %d on %s, want %s", s, got, to)
	}
	check(t, rdb, keys)
	if err := rdb.Set(ctx, keys[1], "new", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func keySlot(t *testing.T, rdb *redis.ClusterClient, key string) int {
	t.Helper()
	s, err := rdb.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return int(s)
}

func check(t *testing.T, rdb *redis.ClusterClient, keys []string) {
	t.Helper()
	for i, k := range keys {
		v, err := rdb.Get(context.Background(), k).Result()
		if err != nil || v != strconv.Itoa(i) {
			t.Fatalf("%s = %q %v, want %d", k, v, err, i)
		}
	}
}
