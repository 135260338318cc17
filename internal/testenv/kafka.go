package testenv

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EnvKfakeLog names the environment variable that turns on the kfake
// broker's log on stderr: debug, info, warn or error.
const EnvKfakeLog = "WHENTHEN_TEST_KFAKE_LOG"

// minSessionTimeout is the shortest consumer group session timeout the
// cluster accepts.
const minSessionTimeout = 100 * time.Millisecond

// Cluster is an in-process Kafka-protocol cluster owned by one test. The
// embedded *kfake.Cluster offers fault injection (ControlKey, Fault),
// inspection (GroupInfo, PartitionInfo) and CreateTopic.
type Cluster struct {
	*kfake.Cluster
}

// Kafka starts a one-broker kfake cluster on a free 127.0.0.1 port with the
// given topics of one partition each, auto topic creation allowed (one
// partition) and group session timeouts down to 100ms accepted, and closes
// it at t.Cleanup.
func Kafka(t testing.TB, topics ...string) *Cluster {
	t.Helper()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(1),
		kfake.AllowAutoTopicCreation(),
		// Kafka's 6s floor would make tests of a consumer that dies without
		// leaving its group wait at least 6s for the rebalance.
		kfake.GroupMinSessionTimeout(minSessionTimeout),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(1, topics...))
	}
	if l, ok := kfakeLogLevel(os.Getenv(EnvKfakeLog)); ok {
		opts = append(opts, kfake.WithLogger(kfake.BasicLogger(os.Stderr, l)))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("testenv: starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Cluster{Cluster: c}
}

// Addrs returns the bootstrap addresses (host:port) of the cluster.
func (c *Cluster) Addrs() []string {
	return c.ListenAddrs()
}

func kfakeLogLevel(s string) (kfake.LogLevel, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return kfake.LogLevelDebug, true
	case "info":
		return kfake.LogLevelInfo, true
	case "warn":
		return kfake.LogLevelWarn, true
	case "error":
		return kfake.LogLevelError, true
	}
	return kfake.LogLevelNone, false
}

// Count returns the number of messages in topic, over its partitions.
func (c *Cluster) Count(topic string) int64 {
	var n int64
	for _, pi := range c.PartitionInfos(topic) {
		n += pi.HighWatermark - pi.LogStartOffset
	}
	return n
}
