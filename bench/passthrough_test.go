package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/ingest"
)

func TestOutputQuota(t *testing.T) {
	q := newOutputQuota(0.3)
	total := 0
	for _, n := range []int{1, 2, 3, 10, 500, 7} {
		total += q.take(0, n)
	}
	if want := 156; total != want { // 523 messages at 0.3: 156.9 records owed, 156 whole
		t.Errorf("partition 0 wrote %d records for 523 messages at 0.3, want %d", total, want)
	}
	if got := q.take(1, 3); got != 0 {
		t.Errorf("partition 1 owes %d after 3 messages at 0.3, want 0 (partitions owe apart)", got)
	}
	if got := newOutputQuota(2.5).take(0, 4); got != 10 {
		t.Errorf("%d records for 4 messages at 2.5, want 10", got)
	}
}

// TestPassthroughs: each passthrough drains the input topic, commits
// every offset and writes the records it owes, no more.
func TestPassthroughs(t *testing.T) {
	for _, client := range []string{clientKafkaGo, clientFranzGo} {
		t.Run(client, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, ingest.DefaultTopic, e2ePassthroughTopic))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			x := &e2e{cluster: c, brokers: c.ListenAddrs()}
			const events = 2000
			if err := x.produce(ctx, messages(gen.Workload{Automations: 100, Seed: 1}.Events(events))); err != nil {
				t.Fatal(err)
			}
			hwm := x.highWatermarks(ingest.DefaultTopic)
			group := "test-" + client
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- runPassthrough(runCtx, childRequest{Brokers: x.brokers, Group: group, Client: client, OutputsPerEvent: 0.25})
			}()
			for !x.committed(group, hwm) {
				select {
				case err := <-done:
					t.Fatalf("the passthrough stopped: %v", err)
				case <-ctx.Done():
					t.Fatal("the backlog was not committed within a minute")
				case <-time.After(5 * time.Millisecond):
				}
			}
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// Each partition writes the whole records it owes: at most one
			// fewer than a quarter of its messages.
			got := x.total(e2ePassthroughTopic)
			if want := int64(events / 4); got > want || got < want-int64(len(hwm)) {
				t.Errorf("%d records written for %d events at 0.25 each, want %s", got, events, fmt.Sprintf("%d to %d", want-int64(len(hwm)), want))
			}
		})
	}
}
