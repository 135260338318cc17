package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/actions/writer"
	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/testenv"
)

// Benchmark sizes: modest, so that a run takes seconds on two cores.
const (
	benchEvents     = 20_000
	benchPartitions = 4
	benchProduce    = 1000 // events per WriteMessages of the load generator
)

// BenchmarkPipeline measures whenthen broker to broker: events produced to
// a kfake broker at full speed, consumed, decoded, run through the engine
// with a real Redis (one matching automation: one action and one run per
// event), published and committed. It reports events/s and the p50 and p99
// latency from an event's Kafka timestamp to its action's.
//
//	go test -run '^$' -bench 'Pipeline|Passthrough' -benchtime 1x ./pipeline/
func BenchmarkPipeline(b *testing.B) {
	benchmarkFlow(b, func(b *testing.B, c *testenv.Cluster) func() {
		r := newRigOn(b, c, rigOptions{logger: slog.New(slog.DiscardHandler), consumer: func(o *consumer.Options) {
			o.CommitInterval = time.Second
		}})
		return r.start()
	})
}

// BenchmarkPassthrough is the baseline for BenchmarkPipeline on the same
// broker, as strong as the pipeline: the same consumer (consumer.Consumer:
// a worker per partition, batches of up to 500 messages or 5ms, offsets
// committed every second as BenchmarkPipeline's are) and kafka-go writers
// with the service's producer settings, writing what the pipeline writes
// per event (one action and one run: here a copy of the event to the
// actions topic and one to the runs topic, concurrently as
// writer.Publish does), and nothing else.
func BenchmarkPassthrough(b *testing.B) {
	benchmarkFlow(b, func(b *testing.B, c *testenv.Cluster) func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := passthrough(ctx, c); err != nil {
				b.Error(err)
			}
		}()
		return func() { cancel(); <-done }
	})
}

func passthrough(ctx context.Context, c *testenv.Cluster) error {
	transport := &kafka.Transport{MetadataTTL: time.Second}
	defer transport.CloseIdleConnections()
	co := testenv.ConsumerOptions(c.Addrs(), testGroup, inputTopic, transport)
	co.CommitInterval = time.Second
	cons, err := consumer.New(co)
	if err != nil {
		return err
	}
	newWriter := func(topic string) *kafka.Writer {
		return &kafka.Writer{Addr: kafka.TCP(c.Addrs()...), Topic: topic, Balancer: &kafka.Hash{}, Transport: transport,
			BatchTimeout: writer.DefaultBatchTimeout, BatchSize: writer.DefaultBatchSize, RequiredAcks: kafka.RequireAll}
	}
	acts, runs := newWriter(actions.DefaultActionsTopic), newWriter(actions.DefaultRunsTopic)
	defer acts.Close()
	defer runs.Close()
	return cons.Run(ctx, func(ctx context.Context, msgs []kafka.Message) error {
		copies := func() []kafka.Message {
			out := make([]kafka.Message, len(msgs))
			for i, m := range msgs {
				out[i] = kafka.Message{Key: m.Key, Value: m.Value}
			}
			return out
		}
		a, r := copies(), copies()
		var runErr error
		var wg sync.WaitGroup
		wg.Go(func() { runErr = runs.WriteMessages(ctx, r...) })
		actErr := acts.WriteMessages(ctx, a...)
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errors.Join(actErr, runErr)
	})
}

// benchmarkFlow runs, per iteration, a fresh cluster with the system
// under test started by start, produces benchEvents events and waits for
// as many actions.
func benchmarkFlow(b *testing.B, start func(*testing.B, *testenv.Cluster) (stop func())) {
	var lat []time.Duration
	var elapsed time.Duration
	n := 0
	b.StopTimer()
	for range b.N {
		c := testenv.Kafka(b)
		for _, topic := range []string{inputTopic, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic} {
			if err := c.CreateTopic(topic, benchPartitions, nil); err != nil {
				b.Fatal(err)
			}
		}
		msgs := make([]kafka.Message, benchEvents)
		for i := range msgs {
			msgs[i] = oppEvent(i, 5000)
		}
		stop := start(b, c)
		testenv.WaitFor(b, 20*time.Second, "the group to be assigned", func() bool {
			gi := c.GroupInfo(testGroup)
			return gi != nil && gi.State == "Stable" && gi.NumAssigned() == benchPartitions
		})
		w := c.Writer(b, inputTopic)
		b.StartTimer()

		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		for i := 0; i < len(msgs); i += benchProduce {
			if err := w.WriteMessages(ctx, msgs[i:min(i+benchProduce, len(msgs))]...); err != nil {
				b.Fatal(err)
			}
		}
		cancel()
		testenv.WaitFor(b, 60*time.Second, "every action", func() bool { return c.Count(actions.DefaultActionsTopic) >= benchEvents })
		b.StopTimer()
		stop()
		l, e := latencies(b, c)
		c.Close()
		lat = append(lat, l...)
		elapsed += e
		n += benchEvents
	}
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// latencies matches each event (by key) to its action and returns the
// time between their Kafka timestamps, and the time from the first event
// to the last action.
func latencies(b *testing.B, c *testenv.Cluster) ([]time.Duration, time.Duration) {
	in := map[string]time.Time{}
	var first, last time.Time
	for _, m := range c.ReadTopic(b, inputTopic) {
		in[string(m.Key)] = m.Time
		if first.IsZero() || m.Time.Before(first) {
			first = m.Time
		}
	}
	var out []time.Duration
	for _, m := range c.ReadTopic(b, actions.DefaultActionsTopic) {
		t0, ok := in[string(m.Key)]
		if !ok {
			b.Fatalf("action with key %s for no event", m.Key)
		}
		out = append(out, m.Time.Sub(t0))
		if m.Time.After(last) {
			last = m.Time
		}
	}
	if len(out) != benchEvents {
		b.Fatalf("%d actions, want %d", len(out), benchEvents)
	}
	return out, last.Sub(first)
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
