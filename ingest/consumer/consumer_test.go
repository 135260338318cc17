package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/testenv"
)

const (
	inputTopic = "crm.events"
	testGroup  = "whenthen-test"
)

// TestConsumerPartitions checks the consumer alone on four partitions:
// partitions are handled at the same time, each in offset order; a batch
// whose handler fails is handed over again; the committed offsets reach
// the end of every partition.
func TestConsumerPartitions(t *testing.T) {
	const parts, total = 4, 400
	c := testenv.Kafka(t)
	if err := c.CreateTopic(inputTopic, parts, nil); err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for i := range total {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
	}
	c.Produce(t, inputTopic, msgs...)
	transport := &kafka.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	co := testenv.ConsumerOptions(c.Addrs(), testGroup, inputTopic, transport)
	co.BatchSize = 16
	co.QueueSize = total // no queue fills: a held partition must not hold the others here
	co.Logger = testenv.Logger(t)
	cons, err := consumer.New(co)
	if err != nil {
		t.Fatal(err)
	}

	var (
		entered  = make(chan int, parts)
		barrier  = make(chan struct{})
		next     [parts]int64 // only touched by each partition's worker
		seen     atomic.Int64
		failOnce atomic.Bool
		failedAt atomic.Int64
		retried  atomic.Bool
		firsts   [parts]atomic.Bool
	)
	failedAt.Store(-1)
	go func() {
		got := map[int]bool{}
		for len(got) < parts {
			got[<-entered] = true
		}
		close(barrier)
	}()
	handler := func(ctx context.Context, batch []kafka.Message) error {
		p := batch[0].Partition
		if !firsts[p].Swap(true) {
			// The first batch of each partition waits for the other
			// partitions' first batches: they must run at the same time.
			entered <- p
			select {
			case <-barrier:
			case <-time.After(10 * time.Second):
				return fmt.Errorf("partition %d: the other partitions never ran alongside it", p)
			}
		}
		if p == 1 && !failOnce.Swap(true) {
			failedAt.Store(batch[0].Offset)
			return fmt.Errorf("injected failure")
		}
		if p == 1 && batch[0].Offset == failedAt.Load() {
			retried.Store(true)
		}
		for _, m := range batch {
			if m.Offset < next[p] {
				t.Errorf("partition %d: offset %d after %d", p, m.Offset, next[p]-1)
			}
			next[p] = m.Offset + 1
		}
		seen.Add(int64(len(batch)))
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx, handler) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	testenv.WaitFor(t, 20*time.Second, "every partition committed to its end", func() bool {
		for _, pi := range c.PartitionInfos(inputTopic) {
			if c.Committed(testGroup, inputTopic, pi.Partition) != pi.HighWatermark {
				return false
			}
		}
		return true
	})
	if !retried.Load() {
		t.Error("the failed batch was not handed over again from the same offset")
	}
	if n := seen.Load(); n != total {
		t.Errorf("handled %d messages, want %d (each once)", n, total)
	}
}

// TestConsumerLag checks the lag gauge against the brokers' offsets.
func TestConsumerLag(t *testing.T) {
	c := testenv.Kafka(t)
	if err := c.CreateTopic(inputTopic, 1, nil); err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for i := range 30 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
	}
	c.Produce(t, inputTopic, msgs...)
	transport := &kafka.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	reg := prometheus.NewRegistry()
	co := testenv.ConsumerOptions(c.Addrs(), testGroup, inputTopic, transport)
	co.Registerer, co.Logger = reg, testenv.Logger(t)
	cons, err := consumer.New(co)
	if err != nil {
		t.Fatal(err)
	}
	lagIs := func(want int) error {
		return testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP whenthen_consumer_lag Messages of the consumed topic after the group's committed offset, by partition, as the brokers report it (the same on every member of the group).
# TYPE whenthen_consumer_lag gauge
whenthen_consumer_lag{partition="0"} %d
`, want)), "whenthen_consumer_lag")
	}

	ctx := context.Background()
	if err := cons.UpdateLag(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lagIs(30); err != nil {
		t.Errorf("lag before consuming: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(runCtx, func(context.Context, []kafka.Message) error { return nil }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	testenv.WaitFor(t, 20*time.Second, "all committed", func() bool { return c.Committed(testGroup, inputTopic, 0) == 30 })
	if err := cons.UpdateLag(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lagIs(0); err != nil {
		t.Errorf("lag after consuming: %v", err)
	}
}
