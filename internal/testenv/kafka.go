package testenv

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/whenthen/whenthen/ingest/consumer"
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

// Committed returns the group's committed offset of a partition of topic,
// as the broker holds it; -1 if there is none.
func (c *Cluster) Committed(group, topic string, partition int32) int64 {
	gi := c.GroupInfo(group)
	if gi == nil {
		return -1
	}
	pc, ok := gi.Commits[topic][partition]
	if !ok {
		return -1
	}
	return pc.Offset
}

// Writer returns a kafka-go writer to topic, closed at t.Cleanup: keys
// hashed to partitions (kafka.Hash, as whenthen's own writer), batches of
// up to 1000 messages sent after 2ms, acknowledged by all replicas.
func (c *Cluster) Writer(t testing.TB, topic string) *kafka.Writer {
	t.Helper()
	w := c.writer(topic)
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func (c *Cluster) writer(topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(c.Addrs()...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    1000,
		RequiredAcks: kafka.RequireAll,
	}
}

// Produce writes msgs to topic with a writer like [Cluster.Writer]'s,
// failing the test if they are not acknowledged within 20s.
func (c *Cluster) Produce(t testing.TB, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := c.writer(topic)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// ReadTopic reads every message of topic, partition by partition, each
// in offset order, over a kafka-go connection to the partition's leader
// (batches of up to 4 MiB); it fails the test if a batch cannot be read
// within 30s. It reads what the topic holds when it is called and waits
// for nothing more. (A Reader's fetch deadline, MaxWait, is too short for
// a loaded machine when short, and holds Close when long: a connection
// has neither problem.)
func (c *Cluster) ReadTopic(t testing.TB, topic string) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for _, pi := range c.PartitionInfos(topic) {
		if pi.HighWatermark == pi.LogStartOffset {
			continue
		}
		conn, err := kafka.DialLeader(context.Background(), "tcp", c.Addrs()[0], topic, int(pi.Partition))
		if err != nil {
			t.Fatalf("dial the leader of %s/%d: %v", topic, pi.Partition, err)
		}
		for off := pi.LogStartOffset; off < pi.HighWatermark; {
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Seek(off, kafka.SeekAbsolute); err != nil {
				conn.Close()
				t.Fatalf("seek %s/%d to %d: %v", topic, pi.Partition, off, err)
			}
			b := conn.ReadBatch(1, 4<<20)
			n := 0
			for {
				m, err := b.ReadMessage()
				if err != nil {
					break
				}
				if m.Offset < off || m.Offset >= pi.HighWatermark {
					continue
				}
				out = append(out, m)
				off = m.Offset + 1
				n++
			}
			if err := b.Close(); n == 0 {
				conn.Close()
				t.Fatalf("read %s/%d at %d: no message (%v)", topic, pi.Partition, off, err)
			}
		}
		if err := conn.Close(); err != nil {
			t.Errorf("close the connection of %s/%d: %v", topic, pi.Partition, err)
		}
	}
	return out
}

// Header returns the value of m's first header named key, "" if it has
// none.
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// ConsumerOptions are consumer options with the short timings a test
// needs against the cluster from Kafka (see the package doc): fetches
// that wait 100ms, heartbeats every 200ms, a 2s session, commits every
// 50ms, no lag gauge. transport may be nil.
func ConsumerOptions(brokers []string, group, topic string, transport *kafka.Transport) consumer.Options {
	return consumer.Options{
		Brokers:           brokers,
		GroupID:           group,
		Topic:             topic,
		Transport:         transport,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		SessionTimeout:    2 * time.Second,
		RebalanceTimeout:  2 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
		CommitInterval:    50 * time.Millisecond,
		LagInterval:       -1,
		DrainTimeout:      5 * time.Second,
	}
}
