package bench

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/whenthen/whenthen/actions/writer"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/ingest/consumer"
)

// The passthroughs are the yardsticks of the end-to-end benchmark: a
// consumer group that reads the input topic and writes to another topic,
// with nothing between. They write as many records per event as the
// service wrote (its actions and runs per event, measured on the same
// backlog first), copies of the events they read, so that only the
// engine, decoding and Redis separate them from the service.
const (
	// clientKafkaGo is the service's own consumer (consumer.Consumer: a
	// worker per partition, batches of up to 500 messages or 5 ms, commits
	// every 50 ms as the benchmark's service does) and a kafka-go writer
	// with the service's producer settings.
	clientKafkaGo = "kafka-go"
	// clientFranzGo is franz-go's consumer group and producer with their
	// defaults: each poll's partitions copied by a goroutine each, records
	// marked once produced, marks committed every 50 ms. The
	// ceiling of what a Go consumer does on the machine.
	clientFranzGo = "franz-go"
)

// passthroughCommitInterval is the commit cadence of the service in the
// benchmark (child.go), and so of the passthroughs.
const passthroughCommitInterval = 50 * time.Millisecond

// outputQuota spreads outputs per event over batches: each partition owes
// per records per message it read and writes whole ones.
type outputQuota struct {
	per  float64
	mu   sync.Mutex
	owed map[int]float64
}

func newOutputQuota(per float64) *outputQuota {
	return &outputQuota{per: per, owed: map[int]float64{}}
}

// take returns how many records partition owes once it read n more
// messages.
func (q *outputQuota) take(partition, n int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	owed := q.owed[partition] + q.per*float64(n)
	k := int(owed)
	q.owed[partition] = owed - float64(k)
	return k
}

// runPassthrough runs the passthrough client req.Client until ctx is done.
func runPassthrough(ctx context.Context, req childRequest) error {
	q := newOutputQuota(req.OutputsPerEvent)
	switch req.Client {
	case clientKafkaGo, "":
		return passthroughKafkaGo(ctx, req.Brokers, req.Group, req.AtEnd, q)
	case clientFranzGo:
		return passthroughFranzGo(ctx, req.Brokers, req.Group, req.AtEnd, q)
	}
	return fmt.Errorf("passthrough client %q: want %s or %s", req.Client, clientKafkaGo, clientFranzGo)
}

// passthroughKafkaGo is the kafka-go passthrough: the service's consumer,
// partition workers and commit cadence, its producer's settings.
func passthroughKafkaGo(ctx context.Context, brokers []string, group string, atEnd bool, q *outputQuota) error {
	start := kafka.FirstOffset
	if atEnd {
		start = kafka.LastOffset
	}
	c, err := consumer.New(consumer.Options{Brokers: brokers, GroupID: group, Topic: ingest.DefaultTopic, StartOffset: start,
		CommitInterval: passthroughCommitInterval, LagInterval: -1})
	if err != nil {
		return err
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: e2ePassthroughTopic, Balancer: &kafka.Hash{},
		BatchTimeout: writer.DefaultBatchTimeout, BatchSize: writer.DefaultBatchSize, RequiredAcks: kafka.RequireAll}
	defer closeWriter(w)
	var pool sync.Pool
	return c.Run(ctx, func(ctx context.Context, msgs []kafka.Message) error {
		k := q.take(msgs[0].Partition, len(msgs))
		if k == 0 {
			return nil
		}
		out, _ := pool.Get().(*[]kafka.Message)
		if out == nil {
			out = new([]kafka.Message)
		}
		defer pool.Put(out)
		*out = (*out)[:0]
		for i := range k {
			m := &msgs[i%len(msgs)]
			*out = append(*out, kafka.Message{Key: m.Key, Value: m.Value})
		}
		return ignoreCanceled(ctx, w.WriteMessages(ctx, *out...))
	})
}

// passthroughFranzGo is the franz-go passthrough.
func passthroughFranzGo(ctx context.Context, brokers []string, group string, atEnd bool, q *outputQuota) error {
	reset := kgo.NewOffset().AtStart()
	if atEnd {
		reset = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(ingest.DefaultTopic),
		kgo.ConsumeResetOffset(reset), kgo.AutoCommitMarks(),
		kgo.DefaultProduceTopic(e2ePassthroughTopic), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	// franz-go autocommits every 100 ms at the most often: the marks are
	// committed every 50 ms here, as the service commits.
	var wg sync.WaitGroup
	defer wg.Wait()
	commitCtx, stopCommits := context.WithCancel(ctx)
	defer stopCommits()
	wg.Go(func() {
		t := time.NewTicker(passthroughCommitInterval)
		defer t.Stop()
		for {
			select {
			case <-commitCtx.Done():
				return
			case <-t.C:
				_ = cl.CommitMarkedOffsets(commitCtx)
			}
		}
	})
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() {
			return nil
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			wg.Go(func() {
				k := q.take(int(p.Partition), len(p.Records))
				out := make([]*kgo.Record, k)
				for i := range out {
					r := p.Records[i%len(p.Records)]
					out[i] = &kgo.Record{Key: r.Key, Value: r.Value}
				}
				if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
				cl.MarkCommitRecords(p.Records[len(p.Records)-1])
			})
		})
		wg.Wait()
		if first != nil {
			return ignoreCanceled(ctx, first)
		}
	}
	stopCommits()
	wg.Wait()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = cl.CommitMarkedOffsets(cctx)
	return nil
}
