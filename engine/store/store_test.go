package store_test

import (
	"testing"

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
