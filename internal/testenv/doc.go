// Package testenv gives tests of every whenthen package the real things they
// run against: a redis-server (or a Redis Cluster), a PostgreSQL database
// and an in-process Kafka-protocol broker (kfake).
//
// # Redis
//
// [Redis] returns a go-redis client and a key prefix unique to the calling
// test, so tests that share one server never see each other's keys. Prefix
// every key a test writes; never FLUSHDB or FLUSHALL on the shared server. A
// test that needs a server of its own (to kill or restart it, or to start it
// with ACL, TLS or maxmemory arguments) uses [StartRedis].
//
// The shared server is chosen once per test binary:
//
//   - if WHENTHEN_TEST_REDIS_URL is set (redis://host:port/db), it is used
//     as is; `make test` sets it through scripts/with-redis.sh;
//   - otherwise one redis-server from PATH is started on a free 127.0.0.1
//     port with persistence off, in a temporary directory.
//
// If neither is possible the test fails (it is never skipped) with a message
// saying to install redis-server (apt-get install redis-server) or to set
// WHENTHEN_TEST_REDIS_URL.
//
// Packages that use the shared server should stop it when their tests end:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// A package that forgets TestMain still works: on Linux every redis-server
// started here gets SIGKILL from the kernel when the test binary exits
// (Pdeathsig), so none is left behind; elsewhere the shared server would
// outlive the binary. Servers from [StartRedis] are stopped at t.Cleanup
// either way.
//
// # Redis Cluster
//
// [RedisClusterClient] returns a go-redis cluster client and a unique key
// prefix on a Redis Cluster shared by the tests of the binary (started
// once, on first use, and stopped by [Main]): three masters and three
// replicas, each a redis-server from PATH with --cluster-enabled yes on a
// free port, formed with `redis-cli --cluster create --cluster-replicas 1`
// (redis-cli must be on PATH too). A test that breaks the cluster uses a
// cluster of its own, [StartRedisCluster], whose [RedisCluster.KillMaster]
// kills a master and waits for its replica's promotion,
// [RedisCluster.Takeover] promotes a replica while its master still
// answers, and [RedisCluster.MigrateSlot] moves a slot to another master
// a few keys at a time (clients meanwhile get ASK and TRYAGAIN). The
// node timeout is 1 s, so a failover takes a few seconds, and forming a
// cluster about five.
//
// # PostgreSQL
//
// [Postgres] creates a database of the calling test's own on the server
// at [PostgresURL] (WHENTHEN_TEST_POSTGRES_URL, else the 127.0.0.1:5432
// server `make test` makes sure of) and drops it at t.Cleanup.
//
// # Kafka
//
// [Kafka] starts a kfake cluster with one broker on a free 127.0.0.1 port,
// seeds the given topics with one partition each (more with
// Cluster.CreateTopic), allows auto topic creation (one partition) and closes
// the cluster at t.Cleanup. Its [Cluster.Addrs] are the bootstrap addresses
// for any client, franz-go or segmentio/kafka-go. The embedded
// *kfake.Cluster gives fault injection (ControlKey, Fault) and inspection
// (GroupInfo, PartitionInfo) to tests that need them. The tests' own
// Kafka chores are methods of Cluster, so that no package copies them:
// [Cluster.Produce] (or a [Cluster.Writer]) writes with kafka-go,
// [Cluster.ReadTopic] reads a topic back whole, [Cluster.Count] and
// [Cluster.Committed] say what the broker holds; [Header] reads a message
// header; [ConsumerOptions] are consumer options with the short timings
// below. Set WHENTHEN_TEST_KFAKE_LOG=debug (or info, warn, error) to see
// the broker's log on stderr.
//
// segmentio/kafka-go works against kfake over TCP, consumer groups included
// (Reader with GroupID, FetchMessage, CommitMessages; a new Reader in the
// group resumes after the last commit; members of one group split the
// partitions). Found while writing this package's tests:
//
//   - Reader: set MaxWait short (e.g. 100ms). With the default 10s,
//     Reader.Close waits for the fetch in flight and takes about 9s, in every
//     test that closes a reader. Bound FetchMessage with a context deadline.
//   - Writer: set BatchTimeout short (e.g. 10ms). With the default 1s every
//     WriteMessages call takes a second. RequiredAcks RequireAll works.
//     Headers, keys and compression round-trip.
//   - Groups: a single member's first FetchMessage returns in milliseconds.
//     When a second member joins, the first notices at its next heartbeat:
//     HeartbeatInterval 200ms (default 3s) makes the rebalance quick.
//     A new group starts at StartOffset (default FirstOffset).
//   - Commits: CommitMessages with CommitInterval 0 (default) is synchronous;
//     Cluster.GroupInfo(group).Commits shows what kfake holds.
//   - A member that dies without Close keeps its partitions until its
//     SessionTimeout (kafka-go default 30s) passes. Kafka refuses session
//     timeouts under 6s; the cluster from Kafka accepts them down to 100ms,
//     so a crash test sets SessionTimeout to about 1s (HeartbeatInterval
//     well below it).
//   - Writer.AllowAutoTopicCreation works (auto-created topics get one
//     partition); seeding topics through Kafka is still clearer.
//
// The package's own tests (kafka_test.go) exercise exactly this.
//
// # Metrics
//
// [Metric] reads one series of a Prometheus registry (a counter, gauge or
// histogram count), failing the test when no series matches.
package testenv
