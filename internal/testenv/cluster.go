package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/childproc"
)

// clusterTimeout bounds forming a cluster and a failover: with a node
// timeout of 1 s a replica is promoted within a few seconds.
const clusterTimeout = 30 * time.Second

// RedisCluster is a Redis Cluster of three masters and three replicas,
// each a redis-server child process on a free 127.0.0.1 port, formed with
// `redis-cli --cluster create`. The node timeout is 1 s, so a killed
// master's replica is promoted within seconds. The methods fail the test
// on error and must be called from the test goroutine.
type RedisCluster struct {
	t   testing.TB // nil for the shared cluster
	dir string

	mu    sync.Mutex
	nodes []*clusterNode
}

type clusterNode struct {
	port int
	dir  string
	srv  *childproc.Redis // nil once killed
}

func (n *clusterNode) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// sharedCluster is the one cluster per test binary behind RedisClusterClient.
var sharedCluster struct {
	once sync.Once
	c    *RedisCluster
	err  error
}

// StartRedisCluster starts a cluster dedicated to this test (for tests that
// kill nodes or move slots) and waits until every node says cluster_state:ok
// and every replica is in sync. It is stopped at t.Cleanup, and the logs of
// its nodes are printed if the test failed.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	c, err := startCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c.t = t
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("testenv: redis-server log (%s):\n%s", n.addr(), tail(filepath.Join(n.dir, "redis.log"), 15))
			}
		}
		c.stop()
	})
	return c
}

// RedisClusterClient returns a client of the cluster shared by the tests of
// this test binary (started once, stopped by Main) and a key prefix unique to
// this test; the keys under the prefix are deleted and the client closed at
// t.Cleanup.
func RedisClusterClient(t testing.TB) (*redis.ClusterClient, string) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal(errNoRedis)
	}
	sharedCluster.once.Do(func() {
		dir, err := os.MkdirTemp("", "whenthen-testenv-cluster-")
		if err != nil {
			sharedCluster.err = err
			return
		}
		sharedCluster.c, sharedCluster.err = startCluster(dir)
		if sharedCluster.err != nil {
			os.RemoveAll(dir)
		}
	})
	if sharedCluster.err != nil {
		t.Fatal(sharedCluster.err)
	}
	c := sharedCluster.c.newClient()
	return c, ownPrefix(t, c)
}

func stopSharedCluster() {
	if c := sharedCluster.c; c != nil {
		c.stop()
		os.RemoveAll(c.dir)
	}
}

func startCluster(dir string) (*RedisCluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("testenv: a Redis Cluster needs redis-cli: %w", err)
	}
	c := &RedisCluster{dir: dir}
	for i := range 6 {
		n := &clusterNode{dir: filepath.Join(dir, "node"+strconv.Itoa(i))}
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			c.stop()
			return nil, err
		}
		n.srv, err = childproc.StartRedis(context.Background(), childproc.RedisOptions{Dir: n.dir, Args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
			// A replica that lost its master for long still takes over.
			"--cluster-replica-validity-factor", "0",
		}})
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("testenv: starting cluster node: %w", err)
		}
		n.port = n.srv.Port
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.stop()
		return nil, fmt.Errorf("testenv: redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.waitHealthy(ctx); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// Addrs returns the host:port of every node still running.
func (c *RedisCluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		if n.srv != nil {
			out = append(out, n.addr())
		}
	}
	return out
}

// URL returns the cluster's redis+cluster:// URL, every running node a seed.
func (c *RedisCluster) URL() string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",")
}

// Client returns a new client of the cluster, closed at t.Cleanup.
func (c *RedisCluster) Client() *redis.ClusterClient {
	rdb := c.newClient()
	c.t.Cleanup(func() { rdb.Close() })
	return rdb
}

func (c *RedisCluster) newClient() *redis.ClusterClient {
	// go-redis reloads the slot map on MOVED and ASK, and otherwise only
	// every ClusterStateReloadInterval (default 60 s): after a failover
	// the dead master's slots fail to dial until then.
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), MaxRedirects: 16,
		ClusterStateReloadInterval: time.Second})
}

// node returns a plain client of one node, closed by the caller.
func node(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
}

// MasterOf returns the address of the master that serves slot, as the
// running nodes see it.
func (c *RedisCluster) MasterOf(slot int) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for _, a := range c.Addrs() {
		n := node(a)
		shards, err := n.ClusterShards(ctx).Result()
		n.Close()
		if err != nil {
			continue
		}
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if int(r.Start) > slot || slot > int(r.End) {
					continue
				}
				for _, nd := range sh.Nodes {
					if nd.Role == "master" && nd.Health == "online" {
						return net.JoinHostPort(nd.IP, strconv.FormatInt(nd.Port, 10))
					}
				}
			}
		}
	}
	c.t.Fatalf("testenv: no node serves slot %d", slot)
	return ""
}

// Masters returns the addresses of the masters, as the running nodes see
// them.
func (c *RedisCluster) Masters() []string {
	c.t.Helper()
	var out []string
	for _, a := range c.Addrs() {
		if c.role(a) == "master" {
			out = append(out, a)
		}
	}
	return out
}

func (c *RedisCluster) role(addr string) string {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	n := node(addr)
	defer n.Close()
	info, err := n.Info(ctx, "replication").Result()
	if err != nil {
		return ""
	}
	return infoField(info, "role")
}

// KillMaster kills (SIGKILL) the master at addr, as a crash would, and waits
// until its replica is promoted and every running node says
// cluster_state:ok. It returns how long the slots of the master were
// unserved, from the kill to the promotion seen by every node.
func (c *RedisCluster) KillMaster(addr string) time.Duration {
	c.t.Helper()
	c.mu.Lock()
	var victim *clusterNode
	for _, n := range c.nodes {
		if n.addr() == addr && n.srv != nil {
			victim = n
		}
	}
	c.mu.Unlock()
	if victim == nil {
		c.t.Fatalf("testenv: no running node at %s", addr)
	}
	start := time.Now()
	victim.srv.Kill()
	c.mu.Lock()
	victim.srv = nil
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := c.waitHealthy(ctx); err != nil {
		c.t.Fatal(err)
	}
	return time.Since(start)
}

// Replicas returns the addresses of the replicas of the master at addr.
func (c *RedisCluster) Replicas(addr string) []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	n := node(addr)
	defer n.Close()
	info, err := n.Info(ctx, "replication").Result()
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for i := 0; ; i++ {
		v := infoField(info, "slave"+strconv.Itoa(i))
		if v == "" {
			return out
		}
		var ip, port string
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(kv, "=")
			switch k {
			case "ip":
				ip = val
			case "port":
				port = val
			}
		}
		out = append(out, net.JoinHostPort(ip, port))
	}
}

// Takeover promotes a replica of the master at addr with CLUSTER FAILOVER
// TAKEOVER, without the master's agreement, as after a partition: the
// old master goes on answering until it learns of the new epoch, and then
// becomes a replica of the new one, dropping what it acknowledged
// meanwhile. It waits until the cluster is healthy and returns the new
// master's address.
func (c *RedisCluster) Takeover(addr string) string {
	c.t.Helper()
	rs := c.Replicas(addr)
	if len(rs) == 0 {
		c.t.Fatalf("testenv: %s has no replica", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	n := node(rs[0])
	err := n.Do(ctx, "cluster", "failover", "takeover").Err()
	n.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	for c.role(rs[0]) != "master" || c.role(addr) != "slave" {
		select {
		case <-ctx.Done():
			c.t.Fatalf("testenv: %s not promoted", rs[0])
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := c.waitHealthy(ctx); err != nil {
		c.t.Fatal(err)
	}
	return rs[0]
}

// waitHealthy waits until every running node says cluster_state:ok with all
// slots served by running masters, and every running replica's link to its
// master is up.
func (c *RedisCluster) waitHealthy(ctx context.Context) error {
	var last string
	for {
		ok := true
		for _, a := range c.Addrs() {
			n := node(a)
			info, err := n.ClusterInfo(ctx).Result()
			repl, err2 := n.Info(ctx, "replication").Result()
			n.Close()
			if err != nil || err2 != nil {
				ok, last = false, fmt.Sprintf("%s: %v %v", a, err, err2)
				break
			}
			if infoField(info, "cluster_state") != "ok" || infoField(info, "cluster_slots_ok") != "16384" ||
				infoField(info, "cluster_slots_pfail") != "0" || infoField(info, "cluster_slots_fail") != "0" {
				ok, last = false, a+": "+strings.ReplaceAll(strings.TrimSpace(info), "\r\n", " ")
				break
			}
			if infoField(repl, "role") == "slave" && infoField(repl, "master_link_status") != "up" {
				ok, last = false, a+": replica link down"
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: cluster not healthy: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// infoField reads a field of an INFO or CLUSTER INFO reply.
func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
			return v
		}
	}
	return ""
}

// MigrateSlot moves slot from its master to the master at to, the way
// `redis-cli --cluster reshard` does: SETSLOT IMPORTING on the target and
// MIGRATING on the source, MIGRATE of its keys batch keys at a time with
// pause between batches (clients meanwhile get ASK for the keys moved and
// TRYAGAIN for a script over keys on both sides), then SETSLOT NODE on
// both (and the other masters). It returns how many keys it moved.
func (c *RedisCluster) MigrateSlot(slot int, to string, batch int, pause time.Duration) int {
	c.t.Helper()
	from := c.MasterOf(slot)
	if from == to {
		c.t.Fatalf("testenv: slot %d is on %s already", slot, to)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	src, dst := node(from), node(to)
	defer src.Close()
	defer dst.Close()
	srcID, err := src.ClusterMyID(ctx).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	dstID, err := dst.ClusterMyID(ctx).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := dst.Do(ctx, "cluster", "setslot", slot, "importing", srcID).Err(); err != nil {
		c.t.Fatalf("testenv: migrating slot %d: %v", slot, err)
	}
	if err := src.Do(ctx, "cluster", "setslot", slot, "migrating", dstID).Err(); err != nil {
		c.t.Fatalf("testenv: migrating slot %d: %v", slot, err)
	}
	host, port, _ := net.SplitHostPort(to)
	moved := 0
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, batch).Result()
		if err != nil {
			c.t.Fatalf("testenv: migrating slot %d: %v", slot, err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"migrate", host, port, "", 0, 5000, "keys"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			c.t.Fatalf("testenv: migrating slot %d: %v", slot, err)
		}
		moved += len(keys)
		time.Sleep(pause)
	}
	for _, n := range []*redis.Client{dst, src} {
		if err := n.Do(ctx, "cluster", "setslot", slot, "node", dstID).Err(); err != nil {
			c.t.Fatalf("testenv: migrating slot %d: %v", slot, err)
		}
	}
	for _, a := range c.Masters() {
		if a == from || a == to {
			continue
		}
		n := node(a)
		err := n.Do(ctx, "cluster", "setslot", slot, "node", dstID).Err()
		n.Close()
		if err != nil {
			c.t.Fatalf("testenv: migrating slot %d: %v", slot, err)
		}
	}
	return moved
}

func (c *RedisCluster) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.srv != nil {
			n.srv.Stop(stopTimeout)
			n.srv = nil
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
