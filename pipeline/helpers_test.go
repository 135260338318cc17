package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/actions/writer"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/pipeline"
	"github.com/whenthen/whenthen/rules"
)

const (
	inputTopic = ingest.DefaultTopic
	testGroup  = "whenthen-test"
)

// bigDealRules fire a brief on every opportunity event with an amount over
// 1000: one action and one run per such event.
const bigDealRules = `
automations:
  - id: big-deal
    when: {record: opportunity}
    if: record.amount > 1000
    fire: every_time
    then:
      brief: {kind: opportunity, recipients: ["user:u-1"]}
`

// rig is a consumer and pipeline on a kfake cluster and a real Redis.
type rig struct {
	t        testing.TB
	cluster  *testenv.Cluster
	reg      *prometheus.Registry
	engine   *engine.Engine
	writer   *writer.Writer
	pipeline *pipeline.Pipeline
	consumer *consumer.Consumer
}

type rigOptions struct {
	partitions int
	redisURL   string // "" for the shared test Redis
	rules      string
	consumer   func(*consumer.Options)
	pipeline   func(*pipeline.Options)
	clock      func() time.Time // the engine's; nil for time.Now
	logger     *slog.Logger
}

// newRig builds the rig on a fresh cluster with the input topic (opts.partitions
// partitions, default 1) and the three output topics.
func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	c := testenv.Kafka(t, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic)
	if err := c.CreateTopic(inputTopic, int32(max(o.partitions, 1)), nil); err != nil {
		t.Fatal(err)
	}
	return newRigOn(t, c, o)
}

func newRigOn(t testing.TB, c *testenv.Cluster, o rigOptions) *rig {
	t.Helper()
	if o.rules == "" {
		o.rules = bigDealRules
	}
	log := o.logger
	if log == nil {
		log = testenv.Logger(t)
	}
	comp, err := rules.NewCompiler(rules.CompilerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := comp.Compile([]rules.Source{{Name: "rules.yaml", Data: []byte(o.rules)}})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, cluster: c, reg: prometheus.NewRegistry()}
	var st *store.Redis
	if o.redisURL == "" {
		rdb, prefix := testenv.Redis(t)
		st, err = store.NewRedis(rdb, prefix, store.Options{Schema: comp.Schema(), Logger: log})
	} else {
		rdb := newRedisClient(t, o.redisURL)
		st, err = store.NewRedis(rdb, "wt:", store.Options{Schema: comp.Schema(), Logger: log})
	}
	if err != nil {
		t.Fatal(err)
	}
	r.engine, err = engine.New(engine.Options{Rules: set, Schema: comp.Schema(), Store: st, Clock: o.clock, Registerer: r.reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	transport := &kafka.Transport{MetadataTTL: time.Second}
	t.Cleanup(transport.CloseIdleConnections)
	r.writer, err = writer.New(writer.Options{Brokers: c.Addrs(), Transport: transport, Registerer: r.reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.writer.Close(ctx)
	})
	dec, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: comp.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	po := pipeline.Options{Decoder: dec, Engine: r.engine, Writer: r.writer, Registerer: r.reg, Logger: log}
	if o.pipeline != nil {
		o.pipeline(&po)
	}
	r.pipeline, err = pipeline.New(po)
	if err != nil {
		t.Fatal(err)
	}
	co := testenv.ConsumerOptions(c.Addrs(), testGroup, inputTopic, transport)
	co.Registerer, co.Logger = r.reg, log
	if o.consumer != nil {
		o.consumer(&co)
	}
	r.consumer, err = consumer.New(co)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs the consumer with the pipeline until the returned stop is
// called (or the test ends).
func (r *rig) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.consumer.Run(ctx, r.pipeline.Handle); err != nil {
			r.t.Errorf("consumer Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				r.t.Error("consumer did not stop within 15s")
			}
		})
	}
	r.t.Cleanup(stop)
	return stop
}

// oppEvent is an opportunity envelope: event evt-N about record opp-N.
func oppEvent(n int, amount int) kafka.Message {
	return kafka.Message{
		Key: fmt.Appendf(nil, "opp-%d", n),
		Value: fmt.Appendf(nil, `{"id":"evt-%d","type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity",`+
			`"record":{"id":"opp-%d","amount":%d,"owner_id":"u-7"}}`, n, n, amount),
	}
}

// bigDealActionID is the action id the big-deal automation gives event evt-N.
func bigDealActionID(n int) string {
	return actions.ActionID("", "big-deal", fmt.Sprintf("evt-%d", n), "brief")
}

// newRedisClient returns a client of the Redis at url, closed at cleanup.
func newRedisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.DialerRetries, o.MaxRetries = 1, 1 // fail fast while a test has it down
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// refuseWrites makes the broker answer every produce request to topic with
// NOT_ENOUGH_REPLICAS while failing is true.
func refuseWrites(c *testenv.Cluster, topic string, failing *atomic.Bool) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if !failing.Load() || len(pr.Topics) == 0 || pr.Topics[0].Topic != topic {
			return nil, nil, false
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = pr.Version
		for _, tp := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, pp := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = pp.Partition
				rp.ErrorCode = kerr.NotEnoughReplicas.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}
