package testenv_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/internal/testenv"
)

// TestKafkaGoGroup checks that segmentio/kafka-go produces to and consumes
// from kfake over TCP as a consumer group: FetchMessage, CommitMessages, and
// a new reader in the same group resuming after the last commit.
func TestKafkaGoGroup(t *testing.T) {
	const topic, group = "events", "whenthen-test"
	c := testenv.Kafka(t, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	w := &kafka.Writer{
		Addr:         kafka.TCP(c.Addrs()...),
		Topic:        topic,
		BatchTimeout: 10 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
	defer w.Close()
	write := func(from, to int) {
		t.Helper()
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, kafka.Message{
				Key:     fmt.Appendf(nil, "k%d", i),
				Value:   fmt.Appendf(nil, "v%d", i),
				Headers: []kafka.Header{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}},
			})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
	}
	// read consumes [from, to) with a fresh reader, committing each message,
	// and closes the reader.
	read := func(from, to int) {
		t.Helper()
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: c.Addrs(),
			GroupID: group,
			Topic:   topic,
			MaxWait: 100 * time.Millisecond,
		})
		for i := from; i < to; i++ {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("FetchMessage %d: %v", i, err)
			}
			want := fmt.Sprintf("v%d", i)
			if string(m.Value) != want || m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) {
				t.Fatalf("message %d: key %q value %q offset %d, want value %q offset %d", i, m.Key, m.Value, m.Offset, want, i)
			}
			if len(m.Headers) != 1 || m.Headers[0].Key != "n" || string(m.Headers[0].Value) != fmt.Sprint(i) {
				t.Fatalf("message %d: headers %v", i, m.Headers)
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("CommitMessages %d: %v", i, err)
			}
		}
		// With kafka-go's default MaxWait (10s) Close waits for the fetch
		// in flight, about 9s; a short MaxWait keeps it short.
		start := time.Now()
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("reader Close took %v, want well under MaxWait's default 10s", d)
		}
	}
	committed := func() int64 {
		t.Helper()
		gi := c.GroupInfo(group)
		if gi == nil {
			t.Fatalf("group %q unknown to kfake", group)
		}
		return gi.Commits[topic][0].Offset
	}

	write(0, 5)
	read(0, 5)
	if got := committed(); got != 5 {
		t.Fatalf("committed offset after first reader = %d, want 5", got)
	}
	write(5, 8)
	read(5, 8)
	if got := committed(); got != 8 {
		t.Fatalf("committed offset after second reader = %d, want 8", got)
	}
}

// TestKafkaGoRebalance checks that two kafka-go readers in one group split
// the partitions of a topic between them and together see every message.
func TestKafkaGoRebalance(t *testing.T) {
	const topic, group, partitions, total = "multi", "split", 4, 40
	c := testenv.Kafka(t)
	if err := c.CreateTopic(topic, partitions, nil); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	w := &kafka.Writer{
		Addr:         kafka.TCP(c.Addrs()...),
		Topic:        topic,
		Balancer:     &kafka.Hash{}, // k0..k39 land on all four partitions
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	var msgs []kafka.Message
	for i := range total {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}

	readers := make([]*kafka.Reader, 2)
	for i := range readers {
		readers[i] = kafka.NewReader(kafka.ReaderConfig{
			Brokers:           c.Addrs(),
			GroupID:           group,
			Topic:             topic,
			MaxWait:           100 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond, // notices the rebalance sooner than the 3s default
		})
		defer readers[i].Close()
	}
	// Readers join in the background; wait for the generation with both,
	// so that neither drains the topic alone before the other is in.
	gi, err := c.WaitGroupStable(ctx, group, 2)
	if err != nil {
		t.Fatalf("WaitGroupStable: %v", err)
	}
	if got := gi.NumAssigned(); got != partitions {
		t.Fatalf("%d partitions assigned, want %d", got, partitions)
	}
	for _, m := range gi.Members {
		if m.NumAssigned() == 0 {
			t.Fatalf("member %s has no partition", m.MemberID)
		}
	}

	var (
		mu    sync.Mutex
		seen  = map[string]bool{}       // values consumed
		parts = [2]map[int]bool{{}, {}} // reader -> partitions it read
		wg    sync.WaitGroup
	)
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == total
	}
	for id, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done() && ctx.Err() == nil {
				fctx, fcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				m, err := r.FetchMessage(fctx)
				fcancel()
				if err != nil {
					continue // a timeout once this reader's partitions are drained
				}
				mu.Lock()
				seen[string(m.Value)] = true
				parts[id][m.Partition] = true
				mu.Unlock()
				if err := r.CommitMessages(ctx, m); err != nil {
					t.Errorf("reader %d: CommitMessages: %v", id, err)
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("consumed %d of %d messages before the deadline", len(seen), total)
	}
	// Kafka is at-least-once around a rebalance, so a message may come twice;
	// what matters is that both readers share the work.
	for id, ps := range parts {
		if len(ps) == 0 {
			t.Errorf("reader %d read no partition", id)
		}
	}
}

// TestClusterHelpers checks Produce, ReadTopic, Header and Committed: what
// is produced is read back whole, each partition in offset order, and a
// group's commit shows once it is made.
func TestClusterHelpers(t *testing.T) {
	const topic, group, partitions, total = "helpers", "helpers-group", 3, 30
	c := testenv.Kafka(t)
	if err := c.CreateTopic(topic, partitions, nil); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if got := c.ReadTopic(t, topic); len(got) != 0 {
		t.Fatalf("ReadTopic of an empty topic: %d messages", len(got))
	}
	var msgs []kafka.Message
	for i := range total {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "%d", i),
			Headers: []kafka.Header{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}}})
	}
	c.Produce(t, topic, msgs[:10]...)
	c.Produce(t, topic, msgs[10:]...)
	if n := c.Count(topic); n != total {
		t.Fatalf("Count = %d, want %d", n, total)
	}

	got := c.ReadTopic(t, topic)
	if len(got) != total {
		t.Fatalf("ReadTopic: %d messages, want %d", len(got), total)
	}
	next := map[int]int64{}   // partition -> next offset expected
	last := map[string]int{}  // key -> last value read
	parts := map[string]int{} // key -> partition
	for _, m := range got {
		if m.Offset != next[m.Partition] {
			t.Errorf("partition %d: offset %d, want %d", m.Partition, m.Offset, next[m.Partition])
		}
		next[m.Partition] = m.Offset + 1
		if h := testenv.Header(m, "n"); h != string(m.Value) {
			t.Errorf("message %s: header n = %q", m.Value, h)
		}
		if h := testenv.Header(m, "missing"); h != "" {
			t.Errorf("message %s: header missing = %q", m.Value, h)
		}
		key := string(m.Key)
		if p, ok := parts[key]; ok && p != m.Partition {
			t.Errorf("key %s on partitions %d and %d", key, p, m.Partition)
		}
		parts[key] = m.Partition
		var v int
		fmt.Sscan(string(m.Value), &v)
		if l, ok := last[key]; ok && v <= l {
			t.Errorf("key %s: value %d read after %d", key, v, l)
		}
		last[key] = v
	}
	if len(next) < 2 {
		t.Errorf("%d partitions used: the test proves little", len(next))
	}

	if off := c.Committed(group, topic, 0); off != -1 {
		t.Errorf("Committed before any commit = %d, want -1", off)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Addrs(), GroupID: group, Topic: topic, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("FetchMessage: %v", err)
	}
	if err := r.CommitMessages(ctx, m); err != nil {
		t.Fatalf("CommitMessages: %v", err)
	}
	if off := c.Committed(group, topic, int32(m.Partition)); off != m.Offset+1 {
		t.Errorf("Committed = %d, want %d", off, m.Offset+1)
	}
}
